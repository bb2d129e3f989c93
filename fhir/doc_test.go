package fhir

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vward/vward"
)

// docTable returns the rows of the table between <!-- name --> and
// <!-- /name --> in docs/fhir.md, header and rule left out.
func docTable(t *testing.T, name string) [][]string {
	t.Helper()
	b, err := os.ReadFile("../docs/fhir.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "<!-- "+name+" -->")
	end := strings.Index(doc, "<!-- /"+name+" -->")
	if start < 0 || end < start {
		t.Fatalf("docs/fhir.md has no table marked <!-- %s -->", name)
	}
	var rows [][]string
	for i, line := range strings.Split(strings.TrimSpace(doc[start:end]), "\n")[1:] {
		if i < 2 {
			continue // header and rule
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		rows = append(rows, cells)
	}
	return rows
}

// vwardNames are vward's own code systems whose codes are its names,
// which docs/fhir.md lists in prose.
var vwardNames = []string{AlertCondition, AlertState, StayOutcome}

// written collects every coding and UCUM unit in the day's resources,
// and in an ACVPU reading of each level, so that every code is written.
func written(t *testing.T) (codes map[Code]bool, units map[string]bool) {
	codes, units = map[Code]bool{}, map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			sys, _ := v["system"].(string)
			code, _ := v["code"].(string)
			if sys != "" && code != "" {
				if sys == UCUM {
					units[code] = true
				} else if !slices.Contains(vwardNames, sys) {
					disp, _ := v["display"].(string)
					codes[Code{sys, code, disp}] = true
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	res := oneDay().resources()
	var levels []Reading
	for l := vward.Alert; l <= vward.Unresponsive; l++ {
		levels = append(levels, Reading{Reading: vward.Reading{Device: "d", Patient: "p", Kind: vward.Consciousness, Value: float64(l)}})
	}
	res["levels"] = Observations(levels)
	for _, r := range res {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		walk(v)
	}
	return codes, units
}

// TestCodesTableMatches holds docs/fhir.md's table of codes to exactly
// the codes written, and to Codes.
func TestCodesTableMatches(t *testing.T) {
	doc := map[Code]bool{}
	for _, row := range docTable(t, "codes") {
		if len(row) != 5 {
			t.Fatalf("codes table row %q: want 5 cells", row)
		}
		c := Code{row[0], row[1], row[2]}
		if doc[c] {
			t.Errorf("docs/fhir.md lists %v twice", c)
		}
		doc[c] = true
	}
	codes, units := written(t)
	for c := range codes {
		if !doc[c] {
			t.Errorf("written but not in docs/fhir.md's codes table: | %s | %s | %s |", c.System, c.Code, c.Display)
		}
	}
	for c := range doc {
		if !codes[c] {
			t.Errorf("docs/fhir.md's codes table lists %v, which is never written", c)
		}
	}
	listed := map[Code]bool{}
	for _, c := range Codes() {
		listed[c] = true
	}
	for c := range doc {
		if !listed[c] {
			t.Errorf("%v is in docs/fhir.md but not in Codes()", c)
		}
	}
	if len(listed) != len(doc) {
		t.Errorf("Codes() has %d codes, docs/fhir.md %d", len(listed), len(doc))
	}

	docUnits := map[string]bool{}
	for _, row := range docTable(t, "units") {
		docUnits[row[0]] = true
	}
	for u := range units {
		if !docUnits[u] {
			t.Errorf("UCUM unit %q is written but not in docs/fhir.md's units table", u)
		}
	}
	for u := range docUnits {
		if !units[u] || !slices.Contains(Units, u) {
			t.Errorf("docs/fhir.md's units table lists %q, which is never written (or not in Units)", u)
		}
	}
}
