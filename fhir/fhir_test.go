package fhir

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// day is one patient's day on the ward: a device's readings every four
// hours, a telephone entry, one entered in error, a partial set.
type day struct {
	patient  devices.Patient
	device   devices.Device
	readings []Reading
	alerts   []alerting.Alert
	from, to time.Time
}

func oneDay() day {
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	d := day{from: t0, to: t0.Add(24 * time.Hour)}
	d.patient = devices.Patient{ID: "p-ada", Ward: "ward-a", NHSNumber: "9434765919", Name: "Ada Lovelace",
		Born: "1946-12-10", Status: devices.StatusAdmitted, SpO2Scale: 1, Admitted: t0.Add(-48 * time.Hour)}
	d.device = devices.Device{ID: "pulseox-7", Kind: "pulse oximeter", Serial: "SN-0007", Patient: "p-ada", Ward: "ward-a"}
	dev := func(msg string, at time.Time, kv ...any) {
		for i := 0; i < len(kv); i += 2 {
			d.readings = append(d.readings, Reading{Reading: vward.Reading{Device: "pulseox-7", Patient: "p-ada", Ward: "ward-a",
				MsgID: msg, Kind: kv[i].(vward.ReadingKind), Value: kv[i+1].(float64), At: at}})
		}
	}
	full := func(msg string, at time.Time, rr, spo2, sys, dia, hr, temp float64) {
		dev(msg, at, vward.RespiratoryRate, rr, vward.SpO2, spo2, vward.SupplementalOxygen, 0.0,
			vward.SystolicBP, sys, vward.DiastolicBP, dia, vward.HeartRate, hr, vward.Consciousness, float64(vward.Alert),
			vward.Temperature, temp)
	}
	full("m-0800", t0, 16, 97, 124, 78, 72, 36.8)
	full("m-1200", t0.Add(4*time.Hour), 22, 93, 104, 66, 104, 38.4)
	// Heart rate and SpO2 alone: a partial set once the rest age out.
	dev("m-1600", t0.Add(8*time.Hour), vward.HeartRate, 96.0, vward.SpO2, 95.0)
	entry := func(id int64, at time.Time, src observations.Source, author string, mark *observations.ErrorMark, kv ...any) {
		e := &observations.Entry{ID: id, Patient: "p-ada", Ward: "ward-a", Source: src, Author: author, MeasuredAt: at, EnteredAt: at.Add(5 * time.Minute), Stored: true, Error: mark}
		for i := 0; i < len(kv); i += 2 {
			d.readings = append(d.readings, Reading{Entry: e, Reading: vward.Reading{Device: src.Device(), Patient: "p-ada", Ward: "ward-a",
				MsgID: e.Name(), Kind: kv[i].(vward.ReadingKind), Value: kv[i+1].(float64), At: at}})
		}
	}
	entry(12, t0.Add(8*time.Hour+10*time.Minute), observations.Telephone, "nurse.jo", nil,
		vward.RespiratoryRate, 20.0, vward.Consciousness, float64(vward.Confused), vward.SupplementalOxygen, 1.0)
	entry(13, t0.Add(9*time.Hour), observations.HomeVisit, "nurse.jo",
		&observations.ErrorMark{At: t0.Add(9*time.Hour + 30*time.Minute), By: "dr.lee", Reason: "another patient's chart"},
		vward.Temperature, 39.5)
	// The kinds beyond NEWS2's: the patient's own morning report, and a
	// fall the carer saw.
	entry(14, t0.Add(30*time.Minute), observations.PatientSelfReport, "nurse.jo", nil,
		vward.Weight, 82.4, vward.BloodGlucose, 6.1, vward.PeakFlow, 320.0, vward.PainScore, 3.0)
	entry(15, t0.Add(14*time.Hour), observations.Carer, "nurse.jo", nil, vward.FallEvent, 1.0)
	raised := t0.Add(4 * time.Hour)
	d.alerts = []alerting.Alert{
		{ID: 41, Patient: "p-ada", Ward: "ward-a", Condition: alerting.News2, Queue: alerting.Clinical, Risk: news2.Medium, Score: 7,
			State: alerting.Acknowledged, Active: true, Reason: "NEWS2 7 (high)", RaisedAt: raised, UpdatedAt: raised.Add(6 * time.Minute),
			AcknowledgedAt: raised.Add(6 * time.Minute), AcknowledgedBy: "nurse.jo", AckNote: "calling the patient"},
		{ID: 42, Patient: "p-ada", Ward: "ward-a", Device: "pulseox-7", Condition: alerting.DeviceOffline, Queue: alerting.Technical,
			State: alerting.Resolved, Reason: "device back online", RaisedAt: t0.Add(20 * time.Hour), UpdatedAt: t0.Add(21 * time.Hour),
			ResolvedAt: t0.Add(21 * time.Hour), ResolvedBy: alerting.System},
	}
	return d
}

// resources writes every resource of the day, by golden file name.
func (d day) resources() map[string]any {
	obs := Observations(d.readings)
	scores := Scores(d.readings, d.patient.ID, news2.Scale1, news2.DefaultFreshness(), d.from, d.to)
	all := append(append([]Observation{}, obs...), scores...)
	SortByTime(all)
	res := make([]Resource, len(all))
	for i, o := range all {
		res[i] = o
	}
	page := Page{Base: "https://vward.example/fhir/R4", Type: "Observation",
		Query: map[string][]string{"patient": {"p-ada"}}, Count: 5, Offset: 5, Total: len(res)}
	flags := []any{}
	for _, a := range d.alerts {
		flags = append(flags, FlagOf(a))
	}
	discharged := d.patient
	at := d.to
	discharged.Status, discharged.Discharged, discharged.Outcome = devices.StatusDischarged, &at, "recovered"
	return map[string]any{
		"capability":    Capability("2026-03-02T08:00:00Z", "test"),
		"patient":       PatientOf(d.patient),
		"episode":       EpisodeOfCareOf(d.patient),
		"episode-ended": EpisodeOfCareOf(discharged),
		"device":        DeviceOf(d.device),
		"observations":  obs,
		"scores":        scores,
		"flags":         flags,
		"bundle":        Searchset(page, res[5:10]),
		"outcome":       Outcome("invalid", "_count=\"ten\": want a whole number", "_count"),
	}
}

// TestGoldenDay compares one patient's day, written as FHIR, with the
// files in testdata (go test -update rewrites them).
func TestGoldenDay(t *testing.T) {
	for name, v := range oneDay().resources() {
		got, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("testdata", name+".json")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to write it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", name, path, got)
		}
	}
}

// each calls f with every single resource of the day, a list split.
func each(t *testing.T, f func(name string, b []byte)) {
	t.Helper()
	for name, v := range oneDay().resources() {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] == '[' {
			var items []json.RawMessage
			if err := json.Unmarshal(b, &items); err != nil {
				t.Fatal(err)
			}
			for i, it := range items {
				f(fmt.Sprintf("%s[%d]", name, i), it)
			}
			continue
		}
		f(name, b)
	}
}

// TestStrictR4Parser parses every resource with Google's FHIR R4 parser,
// which refuses an unknown element, a bad code of a required binding, a
// malformed id, date or reference, and a missing required element.
func TestStrictR4Parser(t *testing.T) {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	each(t, func(name string, b []byte) {
		n++
		if _, err := u.UnmarshalR4(b); err != nil {
			t.Errorf("%s does not parse as FHIR R4: %v\n%s", name, err, b)
		}
	})
	if n < 20 {
		t.Errorf("only %d resources parsed; the day should have more", n)
	}
}

// TestParserRefusesWhatIsNotR4 checks that the parser the test above
// trusts does refuse: an unknown element, a status R4 has not.
func TestParserRefusesWhatIsNotR4(t *testing.T) {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		`{"resourceType":"Flag","id":"1","status":"raised","code":{"text":"x"},"subject":{"display":"x"}}`,
		`{"resourceType":"Patient","id":"p_1"}`,
		`{"resourceType":"Patient","id":"p1","nhsNumber":"9434765919"}`,
		`{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"effectiveDateTime":"2026-03-02 08:00"}`,
	} {
		if _, err := u.UnmarshalR4([]byte(bad)); err == nil {
			t.Errorf("parsed, though not R4: %s", bad)
		}
	}
}

func TestID(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"p-ada", "p-ada"},
		{"ward_a", "ward.-a"},
		{"p.1", "p..1"},
		{"a.-b", "a..-b"},
		{"a_.b", "a.-..b"},
		{strings.Repeat("a", 63) + "_", ""},
	} {
		got := ID(c.in)
		if got != c.want {
			t.Errorf("ID(%q) = %q, want %q", c.in, got, c.want)
		}
		if got == "" {
			continue
		}
		back, ok := ParseID(got)
		if !ok || back != c.in {
			t.Errorf("ParseID(%q) = %q, %v; want %q", got, back, ok, c.in)
		}
	}
	for _, bad := range []string{"", "a.", "a.b", "a.x"} {
		if s, ok := ParseID(bad); ok {
			t.Errorf("ParseID(%q) = %q, true; want false", bad, s)
		}
	}
}

// Every reading kind of device protocol v1 is written as an Observation:
// a kind FHIR has no mapping for would vanish from the record silently.
func TestEveryKindIsWritten(t *testing.T) {
	for _, k := range vward.ReadingKinds {
		r := vward.Reading{Device: "d", Patient: "p", Kind: k, Value: k.PossibleRange().Max, At: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
		obs := Observations([]Reading{{Reading: r}})
		if len(obs) != 1 {
			t.Errorf("%s: %d Observations, want 1", k, len(obs))
			continue
		}
		if o := obs[0]; o.ValueQuantity == nil && o.ValueBoolean == nil && o.ValueCodeableConcept == nil && o.Component == nil &&
			k != vward.SupplementalOxygen {
			t.Errorf("%s: an Observation with no value: %+v", k, o)
		}
	}
}

// An Observation's id names its patient, so that a read by id reads one
// patient's history; a patient id too long for that gives a hash alone.
func TestObservationPatient(t *testing.T) {
	long := vward.PatientID(strings.Repeat("p", 50))
	for _, c := range []struct {
		id        string
		patient   vward.PatientID
		named, ok bool
	}{
		{id: patientHashID("vs-", "p-ada", "ox-1"), patient: "p-ada", named: true, ok: true},
		{id: patientHashID("news2-", "ward_a-7", "1"), patient: "ward_a-7", named: true, ok: true},
		{id: patientHashID("news2-", long, "1"), ok: true},
		{id: "vs-" + strings.Repeat("0", 24), ok: true},
		{id: "vs-p-ada-0123456789abcdeg"},
		{id: "vs-p-ada-0123456789abcde"},
		{id: "vs--0123456789abcdef"},
		{id: "vs-p.x-0123456789abcdef"},
		{id: "flag-p-ada-0123456789abcdef"},
		{id: "p-ada"},
	} {
		p, named, ok := ObservationPatient(c.id)
		if p != c.patient || named != c.named || ok != c.ok {
			t.Errorf("ObservationPatient(%q) = %q, %v, %v; want %q, %v, %v", c.id, p, named, ok, c.patient, c.named, c.ok)
		}
		if len(c.id) > 64 {
			t.Errorf("%q: longer than a FHIR id may be", c.id)
		}
	}
	if NamesPatient(long) || !NamesPatient("p-ada") {
		t.Errorf("NamesPatient: %v for a long id, %v for p-ada", NamesPatient(long), NamesPatient("p-ada"))
	}
}

// An Observation's meta.lastUpdated is when vward last changed what it
// knows: a device's reading when measured (vward keeps no received time),
// an entry when entered or marked in error, a score at its own time.
func TestLastUpdated(t *testing.T) {
	d := oneDay()
	t0 := d.from
	want := map[string]time.Time{
		"m-0800": t0,
		"obs-12": t0.Add(8*time.Hour + 15*time.Minute),
		"obs-13": t0.Add(9*time.Hour + 30*time.Minute),
	}
	seen := 0
	for _, o := range Observations(d.readings) {
		if len(o.Identifier) == 0 {
			t.Fatalf("%s: no identifier", o.ID)
		}
		w, ok := want[o.Identifier[0].Value]
		if !ok {
			continue
		}
		seen++
		if !o.Updated().Equal(w) || o.Meta == nil || o.Meta.LastUpdated != DateTime(w) {
			t.Errorf("%s: updated %v, meta %+v; want %v", o.Identifier[0].Value, o.Updated(), o.Meta, w)
		}
	}
	if seen == 0 {
		t.Fatal("no observation of the messages looked for")
	}
	for _, o := range Scores(d.readings, d.patient.ID, news2.Scale1, news2.DefaultFreshness(), d.from, d.to) {
		if !o.Updated().Equal(o.At()) || o.Meta == nil || o.Meta.LastUpdated != o.EffectiveDateTime {
			t.Errorf("score %s: updated %v, meta %+v; want its time %v", o.ID, o.Updated(), o.Meta, o.At())
		}
	}
}

// The Observations written a part at a time are those written over the
// whole, in the same order, wherever the parts are cut: the golden day,
// and a day of a wearable beside it.
func TestObservationStreamInParts(t *testing.T) {
	d := oneDay()
	rs := slices.Clone(d.readings)
	for i := range 900 { // every 90 s, a wearable's pulse and saturation
		at := d.from.Add(-2*time.Hour + time.Duration(i)*90*time.Second)
		for _, k := range []vward.ReadingKind{vward.HeartRate, vward.SpO2} {
			rs = append(rs, Reading{Reading: vward.Reading{Device: "patch-1", Patient: "p-ada", Ward: "ward-a",
				MsgID: fmt.Sprintf("patch-%d", i), Kind: k, Value: float64(80 + i%23), At: at}})
		}
	}
	slices.SortStableFunc(rs, func(a, b Reading) int { return a.At.Compare(b.At) })
	f := news2.DefaultFreshness()
	from, to := d.from.Add(time.Hour), d.to
	var want []Observation
	for _, o := range append(Observations(rs), Scores(rs, d.patient.ID, news2.Scale1, f, from, to.Add(-time.Nanosecond))...) {
		if !o.at.Before(from) && o.at.Before(to) {
			want = append(want, o)
		}
	}
	SortByTime(want)
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 3))
		w := NewObservationStream(d.patient.ID, news2.Scale1, f, from, to)
		var got []Observation
		rest := rs
		for at := d.from.Add(-3 * time.Hour); at.Before(to); {
			end := at.Add(time.Duration(1+rng.IntN(300)) * time.Minute)
			if end.After(to) {
				end = to
			}
			n := 0
			for n < len(rest) && rest[n].At.Before(end) {
				n++
			}
			got = append(got, w.Add(rest[:n], end)...)
			rest, at = rest[n:], end
		}
		if len(got) != len(want) {
			t.Fatalf("seed %d: %d Observations in parts, %d whole", seed, len(got), len(want))
		}
		for i := range want {
			g, _ := json.Marshal(got[i])
			x, _ := json.Marshal(want[i])
			if string(g) != string(x) {
				t.Fatalf("seed %d: Observation %d in parts\n%s\nwhole\n%s", seed, i, g, x)
			}
		}
	}
}
