package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRunScore(t *testing.T) {
	in := strings.Join([]string{
		scoreExampleIn,                    // 1
		`{"spo2": 96, "heart_rate": 131}`, // 2: partial, red score
		``,                                // 3: blank, skipped
		`   `,                             // 4: blank, skipped
		`{"spo2": 105}`,                   // 5
		`{"spo2": 97, "spo2_scale": 2, "supplemental_oxygen": true}`, // 6
		`{"spo2": 97, "spo2_scale": 2}`,                              // 7: oxygen unknown scores as air
		`{"spo2": 97, "spo2_scale": 3}`,                              // 8
		`{"consciousness": "X"}`,                                     // 9
		`{"consciousness": "a"}`,                                     // 10
		`{"heart_rate": "fast"}`,                                     // 11
		`{"heart_rate": 80, "pulse": 80}`,                            // 12
		`{"SpO2": 95}`,                                               // 13
		`{"spo2": 95, "spo2": 85}`,                                   // 14
		`{"spo2": 95`,                                                // 15
		`[1, 2]`,                                                     // 16
		`{"spo2": 95} {"spo2": 85}`,                                  // 17
		`{"supplemental_oxygen": 1}`,                                 // 18
		`{"temperature": 98.6}`,                                      // 19
		`{"temperature": null, "respiratory_rate": 25}` + "\r",       // 20: CRLF
		`{"heart_rate": 1e400}`,                                      // 21
		`{}`,                                                         // 22: nothing present, no line ending
	}, "\n")
	var out bytes.Buffer
	failed, err := runScore(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		scoreExampleOut,
		`{"score":3,"risk":"low-medium","red_score":true,"complete":false,` +
			`"missing":["respiratory_rate","supplemental_oxygen","systolic_bp","consciousness","temperature"],` +
			`"subscores":{"spo2":0,"heart_rate":3},"monitoring":"hourly",` +
			`"response":"Registered nurse to inform the medical team caring for the patient, who will review and decide whether escalation of care is necessary."}`,
		`{"error":"line 5: spo2 105 is outside 0–100"}`,
		`SCORE 5 medium`,
		`SCORE 0 low`,
		`{"error":"line 8: spo2_scale 3 is not 1 or 2"}`,
		`{"error":"line 9: consciousness \"X\" is not one of A, C, V, P, U"}`,
		`{"error":"line 10: consciousness \"a\" is not one of A, C, V, P, U"}`,
		`{"error":"line 11: heart_rate: want a number, got a string"}`,
		`{"error":"line 12: unknown field \"pulse\""}`,
		`{"error":"line 13: unknown field \"SpO2\""}`,
		`{"error":"line 14: field \"spo2\" appears more than once"}`,
		`{"error":"line 15: invalid JSON: the line ends inside the object"}`,
		`{"error":"line 16: not a JSON object"}`,
		`{"error":"line 17: unexpected data after the JSON object"}`,
		`{"error":"line 18: supplemental_oxygen: want true or false, got a number"}`,
		`{"error":"line 19: temperature 98.6 is outside 25–45"}`,
		`SCORE 3 low-medium`,
		`{"error":"line 21: heart_rate: 1e400 is out of range"}`,
		`SCORE 0 low`,
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d output lines, want %d:\n%s", len(got), len(want), out.String())
	}
	for i := range want {
		if s, ok := strings.CutPrefix(want[i], "SCORE "); ok {
			var res struct {
				Score int    `json:"score"`
				Risk  string `json:"risk"`
			}
			if err := json.Unmarshal([]byte(got[i]), &res); err != nil {
				t.Errorf("output %d: %v: %s", i+1, err, got[i])
			} else if fmt.Sprintf("%d %s", res.Score, res.Risk) != s {
				t.Errorf("output %d: %s, want score and risk %s", i+1, got[i], s)
			}
			continue
		}
		if got[i] != want[i] {
			t.Errorf("output %d:\n got %s\nwant %s", i+1, got[i], want[i])
		}
	}
	if failed != 14 {
		t.Errorf("failed = %d, want 14", failed)
	}
}

// TestScoreHelpExample holds the help's example to what the command prints.
func TestScoreHelpExample(t *testing.T) {
	var out bytes.Buffer
	failed, err := runScore(strings.NewReader(scoreExampleIn+"\n"), &out)
	if err != nil || failed != 0 {
		t.Fatalf("failed %d, err %v", failed, err)
	}
	if out.String() != scoreExampleOut+"\n" {
		t.Errorf("got  %s\nwant %s", out.String(), scoreExampleOut)
	}
	if !strings.Contains(newScoreCmd().Long, scoreExampleIn) || !strings.Contains(newScoreCmd().Long, scoreExampleOut) {
		t.Error("help does not show the example")
	}
}

func TestRunScoreOverlongLine(t *testing.T) {
	long := `{"spo2": 95, "x": "` + strings.Repeat("a", 2*maxScoreLine) + `"}`
	in := long + "\n" + `{"heart_rate": 80}` + "\n" + strings.Repeat(" ", maxScoreLine+1)
	var out bytes.Buffer
	failed, err := runScore(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want0 := fmt.Sprintf(`{"error":"line 1: longer than %d bytes"}`, maxScoreLine)
	want2 := fmt.Sprintf(`{"error":"line 3: longer than %d bytes"}`, maxScoreLine)
	if len(lines) != 3 || lines[0] != want0 || !strings.HasPrefix(lines[1], `{"score":0,`) || lines[2] != want2 {
		t.Errorf("got %q", lines)
	}
	if failed != 2 {
		t.Errorf("failed = %d, want 2", failed)
	}
}

func TestRunScoreLineAtTheLimit(t *testing.T) {
	obj := `{"heart_rate": 80}`
	line := obj + strings.Repeat(" ", maxScoreLine-len(obj))
	var out bytes.Buffer
	failed, err := runScore(strings.NewReader(line+"\r\n"), &out)
	if err != nil || failed != 0 || !strings.HasPrefix(out.String(), `{"score":0,`) {
		t.Errorf("failed %d, err %v, output %.80s", failed, err, out.String())
	}
}

func TestRunScoreByteOrderMark(t *testing.T) {
	var out bytes.Buffer
	failed, err := runScore(strings.NewReader("\xef\xbb\xbf{\"heart_rate\": 80}\n"), &out)
	if err != nil || failed != 0 {
		t.Errorf("failed %d, err %v, output %s", failed, err, out.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRunScoreWriteError(t *testing.T) {
	_, err := runScore(strings.NewReader(scoreExampleIn+"\n"), failingWriter{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestRunScoreReadError(t *testing.T) {
	_, err := runScore(failingReader{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("err = %v", err)
	}
}

func TestScoreCmd(t *testing.T) {
	run := func(in string) (string, error) {
		cmd := newScoreCmd()
		var out, errOut bytes.Buffer
		cmd.SetIn(strings.NewReader(in))
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		cmd.SetArgs([]string{})
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run(scoreExampleIn + "\n\n")
	if err != nil || out != scoreExampleOut+"\n" {
		t.Errorf("good input: err %v, output %s", err, out)
	}
	out, err = run(scoreExampleIn + "\n{\"spo2\": 101}\n" + scoreExampleIn + "\n")
	if err == nil || !strings.Contains(err.Error(), "1 input line(s) could not be scored") {
		t.Errorf("bad line: err %v", err)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("bad line: %d output lines, want 3 (scoring goes on):\n%s", n, out)
	}
}

// FuzzRunScore feeds arbitrary input to the command: it must never fail as a
// whole, must answer every non-blank line with exactly one JSON object, and
// every score it prints must add up.
func FuzzRunScore(f *testing.F) {
	for _, s := range []string{
		scoreExampleIn,
		`{"spo2": 97, "spo2_scale": 2, "supplemental_oxygen": true, "consciousness": "C"}`,
		`{"temperature": 38.05, "respiratory_rate": 20.5}`,
		`{"spo2": 105}`,
		`{"spo2": "x"}` + "\n\n" + `{}`,
		`[`, `{"a":`, `null`, `{"spo2": 1e400}`, "\xef\xbb\xbf{}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		failed, err := runScore(strings.NewReader(in), &out)
		if err != nil {
			t.Fatalf("runScore: %v", err)
		}
		nonBlank := 0
		for i, line := range strings.Split(strings.ReplaceAll(in, "\r\n", "\n"), "\n") {
			if i == 0 {
				line = strings.TrimPrefix(line, "\xef\xbb\xbf")
			}
			if strings.TrimSpace(line) != "" {
				nonBlank++
			}
		}
		dec := json.NewDecoder(&out)
		lines, errs := 0, 0
		for dec.More() {
			var res struct {
				Error     *string        `json:"error"`
				Score     int            `json:"score"`
				Risk      string         `json:"risk"`
				Missing   []string       `json:"missing"`
				Subscores map[string]int `json:"subscores"`
			}
			if err := dec.Decode(&res); err != nil {
				t.Fatalf("output is not JSON lines: %v", err)
			}
			lines++
			if res.Error != nil {
				errs++
				continue
			}
			sum := 0
			for _, s := range res.Subscores {
				sum += s
			}
			if sum != res.Score || res.Score > 20 || res.Missing == nil || len(res.Missing)+len(res.Subscores) != 7 {
				t.Fatalf("inconsistent result %+v", res)
			}
		}
		if lines != nonBlank || errs != failed {
			t.Fatalf("%d non-blank input lines, %d output lines, %d errors, failed %d", nonBlank, lines, errs, failed)
		}
	})
}
