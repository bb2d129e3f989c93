package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/fhir"
	"github.com/vward/vward/history"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/sqlitedb"
	"github.com/vward/vward/tokens"
)

// fhirAPI serves /fhir/R4 on a real registry, alert engine and in-memory
// history: p1 (w1) has a reading every 10 minutes for the last 3 hours,
// p2 is on w2, p3 (w1) was discharged.
type fhirTestAPI struct {
	*alertAPI
	t0     time.Time     // p1's first reading
	tokens *tokens.Store // the API tokens
	bearer string        // the server's URL behind fhirSession, for tokens
	reg    *devices.Registry
	hist   *history.Memory
}

func newFHIRAPI(t *testing.T) *fhirTestAPI {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []vward.WardID{"w1", "w2"} {
		if err := reg.AddWard(ctx, devices.Ward{ID: w, Name: string(w)}); err != nil {
			t.Fatal(err)
		}
	}
	admitted := time.Now().UTC().Add(-6 * time.Hour).Truncate(time.Minute)
	for _, p := range []devices.Patient{
		{ID: "p1", Ward: "w1", Name: "Ada", NHSNumber: "9434765919", Born: "1946-12-10", Admitted: admitted},
		{ID: "p2", Ward: "w2", Name: "Bea", NHSNumber: "9434765870", Admitted: admitted},
		{ID: "p3", Ward: "w1", Name: "Cy", Admitted: admitted},
	} {
		if err := reg.Admit(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Discharge(ctx, "p3", "recovered", "home", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AddDevice(ctx, "ox-1", "pulse oximeter"); err != nil {
		t.Fatal(err)
	}
	if err := reg.Assign(ctx, "ox-1", "p1", admitted); err != nil {
		t.Fatal(err)
	}
	e, err := alerting.OpenEngine(ctx, db, alerting.Config{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	m := alerting.NewMonitor(news2.DefaultFreshness(), nil, e, log)
	m.Admit(alerting.PatientInfo{ID: "p1", Ward: "w1", Name: "Ada"})
	m.Admit(alerting.PatientInfo{ID: "p2", Ward: "w2", Name: "Bea"})
	hist := history.NewMemory(1000)
	t0 := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	var rs []vward.Reading
	for i := range 18 {
		at := t0.Add(time.Duration(i) * 10 * time.Minute)
		msg := fmt.Sprintf("m%03d", i)
		rs = append(rs, vward.Reading{Device: "ox-1", Patient: "p1", Ward: "w1", MsgID: msg, Kind: vward.HeartRate, Value: 70 + float64(i), At: at},
			vward.Reading{Device: "ox-1", Patient: "p1", Ward: "w1", MsgID: msg, Kind: vward.SpO2, Value: 97, At: at})
	}
	// A high respiratory rate: a red score, an alert.
	rs = append(rs, vward.Reading{Device: "ox-1", Patient: "p1", Ward: "w1", MsgID: "m-rr", Kind: vward.RespiratoryRate, Value: 30, At: t0.Add(175 * time.Minute)})
	if err := hist.WriteReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	m.Observe(rs)
	tok, err := tokens.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ctx, Deps{Monitor: m, History: hist, Registry: reg, Alerts: e, Tokens: tok, Log: log})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/R4/metadata", s.fhirMetadata(time.Now()))
	mux.Handle("/fhir/R4/", s.fhirAPI())
	s.tokenRoutes(mux)
	srv := asTestUser(t, mux)
	bearer := httptest.NewServer(s.fhirSession(s.fhirAPI()))
	t.Cleanup(bearer.Close)
	return &fhirTestAPI{alertAPI: &alertAPI{url: srv.URL, engine: e, monitor: m}, t0: t0, tokens: tok, bearer: bearer.URL, reg: reg, hist: hist}
}

// get asks as a user and checks the answer is FHIR JSON that the strict
// R4 parser reads.
func (a *fhirTestAPI) get(t *testing.T, user, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", a.url+path, nil)
	req.Header.Set("X-Test-User", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.UnmarshalR4(b); err != nil {
		t.Errorf("GET %s: not FHIR R4: %v\n%s", path, err, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, out
}

// outcomeNames checks an answer is an OperationOutcome naming param.
func outcomeNames(t *testing.T, what string, body map[string]any, param string) {
	t.Helper()
	b, _ := json.Marshal(body)
	var oo fhir.OperationOutcome
	_ = json.Unmarshal(b, &oo)
	if oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 || len(oo.Issue[0].Expression) != 1 || oo.Issue[0].Expression[0] != param {
		t.Errorf("%s: want an OperationOutcome naming %s, got %s", what, param, b)
	}
}

func TestFHIRReadsOnlyTheUsersWards(t *testing.T) {
	api := newFHIRAPI(t)
	code, p := api.get(t, alice, "/fhir/R4/Patient/p1")
	if code != http.StatusOK || p["resourceType"] != "Patient" || p["birthDate"] != "1946-12-10" {
		t.Errorf("alice reads p1: %d %v", code, p)
	}
	ids, _ := json.Marshal(p["identifier"])
	if !strings.Contains(string(ids), `"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"`) {
		t.Errorf("p1's identifier: %s", ids)
	}
	// Another ward's patient, and one that does not exist, answer alike.
	for _, path := range []string{
		"/fhir/R4/Patient/p2", "/fhir/R4/Patient/nobody", "/fhir/R4/EpisodeOfCare/p2",
		"/fhir/R4/Observation?patient=p2", "/fhir/R4/Flag?patient=Patient/p2", "/fhir/R4/Flag/999", "/fhir/R4/Flag/x",
	} {
		code, body := api.get(t, alice, path)
		if code != http.StatusNotFound || body["resourceType"] != "OperationOutcome" {
			t.Errorf("alice asks for %s: %d %v, want 404", path, code, body)
		}
	}
	if code, _ := api.get(t, "root:admin:", "/fhir/R4/Patient/p2"); code != http.StatusOK {
		t.Errorf("an admin reads p2: %d", code)
	}
	// The search finds only w1's patients, the discharged stay too.
	_, b := api.get(t, alice, "/fhir/R4/Patient")
	if b["total"] != 2.0 {
		t.Errorf("alice's patients: %v, want p1 and p3", b)
	}
	_, b = api.get(t, alice, "/fhir/R4/Patient?identifier="+url.QueryEscape(fhir.NHSNumber+"|9434765870"))
	if b["total"] != 0.0 {
		t.Errorf("alice finds w2's patient by NHS number: %v", b)
	}
	_, b = api.get(t, "bob:clinician:w2", "/fhir/R4/Patient?identifier=943+476+5870")
	if b["total"] != 1.0 {
		t.Errorf("bob finds his patient by NHS number: %v", b)
	}
	code, ep := api.get(t, alice, "/fhir/R4/EpisodeOfCare/p3")
	if code != http.StatusOK || ep["status"] != "finished" {
		t.Errorf("p3's stay: %d %v", code, ep)
	}
	if code, d := api.get(t, alice, "/fhir/R4/Device/ox-1"); code != http.StatusOK || d["resourceType"] != "Device" {
		t.Errorf("alice reads p1's device: %d %v", code, d)
	}
	if code, _ := api.get(t, "bob:clinician:w2", "/fhir/R4/Device/ox-1"); code != http.StatusNotFound {
		t.Errorf("bob reads w1's device: %d, want 404", code)
	}
}

func TestFHIRObservationSearch(t *testing.T) {
	api := newFHIRAPI(t)
	search := func(q string) map[string]any {
		t.Helper()
		code, b := api.get(t, alice, "/fhir/R4/Observation?patient=p1"+q)
		if code != http.StatusOK {
			t.Fatalf("search %s: %d %v", q, code, b)
		}
		return b
	}
	hr := "&code=" + url.QueryEscape(fhir.LOINC+"|8867-4")
	b := search(hr + "&_count=1000")
	if b["total"] != 18.0 {
		t.Fatalf("heart rates: total %v, want 18", b["total"])
	}
	entries := b["entry"].([]any)
	if len(entries) != 18 {
		t.Errorf("_count=1000 gives %d entries, want all 18 (up to %d)", len(entries), fhirMaxCount)
	}
	first := entries[0].(map[string]any)["resource"].(map[string]any)
	if first["effectiveDateTime"] != fhir.DateTime(api.t0) {
		t.Errorf("first heart rate at %v, want %v: oldest first", first["effectiveDateTime"], fhir.DateTime(api.t0))
	}
	// NEWS2 scores are found by their SNOMED code, marked partial: only
	// SpO2, pulse and at the end respiratory rate were measured.
	b = search("&code=1104051000000101")
	if n, _ := b["total"].(float64); n < 2 {
		t.Fatalf("NEWS2 scores: %v", b)
	}
	for _, e := range b["entry"].([]any) {
		o := e.(map[string]any)["resource"].(map[string]any)
		if o["status"] != "preliminary" {
			t.Errorf("a partial NEWS2 is %v, want preliminary", o["status"])
		}
	}

	// Paging: 18 heart rates, 5 a page.
	links := func(b map[string]any) map[string]string {
		out := map[string]string{}
		for _, l := range b["link"].([]any) {
			m := l.(map[string]any)
			out[m["relation"].(string)] = m["url"].(string)
		}
		return out
	}
	b = search(hr + "&_count=5")
	l := links(b)
	if len(b["entry"].([]any)) != 5 || l["previous"] != "" || l["next"] == "" {
		t.Errorf("first page: %d entries, links %v", len(b["entry"].([]any)), l)
	}
	next, _ := url.Parse(l["next"])
	if next.Query().Get("_offset") != "5" || next.Query().Get("_count") != "5" || next.Query().Get("patient") != "p1" {
		t.Errorf("next link %s", l["next"])
	}
	b = search(hr + "&_count=5&_offset=15")
	l = links(b)
	if len(b["entry"].([]any)) != 3 || l["next"] != "" || l["previous"] == "" {
		t.Errorf("last page: %d entries, links %v", len(b["entry"].([]any)), l)
	}
	if prev, _ := url.Parse(l["previous"]); prev.Query().Get("_offset") != "10" {
		t.Errorf("previous link %s", l["previous"])
	}
	b = search(hr + "&_count=5&_offset=40")
	if b["total"] != 18.0 || b["entry"] != nil {
		t.Errorf("past the end: %v", b)
	}
	b = search(hr + "&_count=0")
	if b["total"] != 18.0 || b["entry"] != nil || len(links(b)) != 1 {
		t.Errorf("_count=0: %v, want the total alone", b)
	}

	// date ge and le are inclusive, gt and lt are not, at the instant.
	at := func(i int) string {
		return url.QueryEscape(fhir.DateTime(api.t0.Add(time.Duration(i) * 10 * time.Minute)))
	}
	for _, c := range []struct {
		q    string
		want float64
	}{
		{"&date=ge" + at(3) + "&date=le" + at(5), 3},
		{"&date=gt" + at(3) + "&date=lt" + at(5), 1},
		{"&date=ge" + at(17), 1},
		{"&date=le" + at(0), 1},
		{"&date=lt" + at(0), 0},
		{"&date=" + at(4), 1},
		{"&date=ge" + at(5) + "&date=le" + at(3), 0},
		{"&date=" + api.t0.Format(time.DateOnly), float64(18 - countBeforeDay(api.t0, 18))},
	} {
		if b := search(hr + c.q); b["total"] != c.want {
			t.Errorf("%s: total %v, want %v", c.q, b["total"], c.want)
		}
	}
}

// Every Observation a search finds reads by its id, the same; another
// ward's, or an id vward never wrote, is not found.
func TestFHIRObservationRead(t *testing.T) {
	api := newFHIRAPI(t)
	_, b := api.get(t, alice, "/fhir/R4/Observation?patient=p1&_count=500")
	entries := b["entry"].([]any)
	var scores int
	for _, e := range entries {
		o := e.(map[string]any)["resource"].(map[string]any)
		id := o["id"].(string)
		if strings.HasPrefix(id, "news2-") {
			scores++
		}
		code, got := api.get(t, alice, "/fhir/R4/Observation/"+id)
		if code != http.StatusOK || mustJSON(got) != mustJSON(o) {
			t.Errorf("read %s: %d %s, want the search's %s", id, code, mustJSON(got), mustJSON(o))
		}
		if code, _ := api.get(t, "bob:clinician:w2", "/fhir/R4/Observation/"+id); code != http.StatusNotFound {
			t.Errorf("bob (w2) reads w1's %s: %d, want 404", id, code)
		}
	}
	if len(entries) < 20 || scores == 0 {
		t.Fatalf("p1's observations: %d, %d scores", len(entries), scores)
	}
	for _, id := range []string{"vs-p1-0123456789abcdef", "vs-" + strings.Repeat("0", 24), "vs-p2-0123456789abcdef", "nothing", "news2-nobody-0123456789abcdef"} {
		if code, b := api.get(t, alice, "/fhir/R4/Observation/"+id); code != http.StatusNotFound || b["resourceType"] != "OperationOutcome" {
			t.Errorf("read %s: %d %v, want a 404 OperationOutcome", id, code, b)
		}
	}
}

// _lastUpdated searches meta.lastUpdated, which for a device's reading is
// its measured time, and for a Flag the alert's last change; ge and le
// are inclusive, gt and lt are not.
func TestFHIRLastUpdated(t *testing.T) {
	api := newFHIRAPI(t)
	total := func(path string) float64 {
		t.Helper()
		code, b := api.get(t, alice, path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %v", path, code, b)
		}
		n, _ := b["total"].(float64)
		return n
	}
	at := func(i int) string {
		return url.QueryEscape(fhir.DateTime(api.t0.Add(time.Duration(i) * 10 * time.Minute)))
	}
	hr := "/fhir/R4/Observation?patient=p1&code=8867-4"
	for _, c := range []struct {
		q    string
		want float64
	}{
		{"&_lastUpdated=ge" + at(3) + "&_lastUpdated=le" + at(5), 3},
		{"&_lastUpdated=gt" + at(3) + "&_lastUpdated=lt" + at(5), 1},
		{"&_lastUpdated=ge" + at(17), 1},
		{"&_lastUpdated=gt" + at(17), 0},
		{"&_lastUpdated=le" + at(0), 1},
		{"&_lastUpdated=lt" + at(0), 0},
		{"&_lastUpdated=" + at(4), 1},
		{"&_lastUpdated=ge" + at(2) + "&date=le" + at(3), 2},
	} {
		if n := total(hr + c.q); n != c.want {
			t.Errorf("%s: total %v, want %v", c.q, n, c.want)
		}
	}
	_, b := api.get(t, alice, "/fhir/R4/Flag?patient=p1")
	f := b["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
	updated := url.QueryEscape(f["meta"].(map[string]any)["lastUpdated"].(string))
	for prefix, want := range map[string]float64{"ge": 1, "le": 1, "eq": 1, "gt": 0, "lt": 0} {
		if n := total("/fhir/R4/Flag?patient=p1&_lastUpdated=" + prefix + updated); n != want {
			t.Errorf("Flag _lastUpdated=%s<its lastUpdated>: total %v, want %v", prefix, n, want)
		}
	}
	for _, path := range []string{hr + "&_lastUpdated=yesterday", "/fhir/R4/Flag?patient=p1&_lastUpdated=ge2026-3-2"} {
		code, b := api.get(t, alice, path)
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, code)
		}
		outcomeNames(t, path, b, "_lastUpdated")
	}
}

// A patient whose id is too long to be named in an Observation's id has
// Observations of a hash alone, which read all the same.
func TestFHIRObservationReadOfALongPatientID(t *testing.T) {
	api := newFHIRAPI(t)
	ctx := context.Background()
	long := vward.PatientID("p_" + strings.Repeat("x", 45))
	if err := api.reg.Admit(ctx, devices.Patient{ID: long, Ward: "w1", Name: "Di", Admitted: api.t0}); err != nil {
		t.Fatal(err)
	}
	rs := []vward.Reading{
		{Device: "ox-1", Patient: long, Ward: "w1", MsgID: "l1", Kind: vward.HeartRate, Value: 80, At: api.t0},
		{Device: "ox-1", Patient: long, Ward: "w1", MsgID: "l1", Kind: vward.SpO2, Value: 96, At: api.t0},
	}
	if err := api.hist.WriteReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	_, b := api.get(t, alice, "/fhir/R4/Observation?patient="+fhir.ID(string(long)))
	entries, _ := b["entry"].([]any)
	if len(entries) < 3 {
		t.Fatalf("the long id's observations: %v", b)
	}
	for _, e := range entries {
		id := e.(map[string]any)["resource"].(map[string]any)["id"].(string)
		if _, named, _ := fhir.ObservationPatient(id); named && strings.HasPrefix(id, "news2-") {
			t.Errorf("%s names a patient whose id is too long for a NEWS2's", id)
		}
		if code, _ := api.get(t, alice, "/fhir/R4/Observation/"+id); code != http.StatusOK {
			t.Errorf("read %s: %d", id, code)
		}
		if code, _ := api.get(t, "bob:clinician:w2", "/fhir/R4/Observation/"+id); code != http.StatusNotFound {
			t.Errorf("bob (w2) reads %s: %d, want 404", id, code)
		}
	}
}

// countBeforeDay counts the 10-minute readings from t0 that fall on a
// later UTC day than t0's, which a date=<t0's day> search leaves out.
func countBeforeDay(t0 time.Time, n int) int {
	c := 0
	for i := range n {
		if t0.Add(time.Duration(i)*10*time.Minute).YearDay() != t0.YearDay() {
			c++
		}
	}
	return c
}

func TestFHIRBadParameters(t *testing.T) {
	api := newFHIRAPI(t)
	for _, c := range []struct{ path, param string }{
		{"/fhir/R4/Observation", "patient"},
		{"/fhir/R4/Observation?patient=p1&_count=ten", "_count"},
		{"/fhir/R4/Observation?patient=p1&_count=-1", "_count"},
		{"/fhir/R4/Observation?patient=p1&_count=1&_count=2", "_count"},
		{"/fhir/R4/Observation?patient=p1&_offset=x", "_offset"},
		{"/fhir/R4/Observation?patient=p1&date=yesterday", "date"},
		{"/fhir/R4/Observation?patient=p1&date=ap2026-03-01", "date"},
		{"/fhir/R4/Observation?patient=p1&date=2026-03-02T08:00:00", "date"},
		{"/fhir/R4/Observation?patient=p1&code=", "code"},
		{"/fhir/R4/Observation?patient=p1&cod=8867-4", "cod"},
		{"/fhir/R4/Flag", "patient"},
		{"/fhir/R4/Patient?identifier=123", "identifier"},
		{"/fhir/R4/Patient?identifier=" + url.QueryEscape("urn:other|9434765919"), "identifier"},
	} {
		code, b := api.get(t, alice, c.path)
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", c.path, code)
		}
		outcomeNames(t, c.path, b, c.param)
	}
	if code, b := api.get(t, alice, "/fhir/R4/Encounter/1"); code != http.StatusNotFound || b["resourceType"] != "OperationOutcome" {
		t.Errorf("an unserved resource: %d %v", code, b)
	}
	// Read-only: a write is not served.
	if code, b := api.do(t, alice, "POST", "/fhir/R4/Patient", `{"resourceType":"Patient"}`); code != http.StatusNotFound || !strings.Contains(string(b), "not-supported") {
		t.Errorf("POST /fhir/R4/Patient: %d %s, want a 404 not-supported", code, b)
	}
}

func TestFHIRFlags(t *testing.T) {
	api := newFHIRAPI(t)
	code, b := api.get(t, alice, "/fhir/R4/Flag?patient=p1")
	if code != http.StatusOK || b["total"] != 1.0 {
		t.Fatalf("p1's flags: %d %v", code, b)
	}
	f := b["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
	if f["status"] != "active" || !strings.Contains(mustJSON(f["code"]), `"code":"news2"`) {
		t.Errorf("p1's NEWS2 flag: %v", f)
	}
}

// TestFHIRServesWhatItSays asks for each interaction the
// CapabilityStatement lists, and finds it served.
func TestFHIRServesWhatItSays(t *testing.T) {
	api := newFHIRAPI(t)
	code, cs := api.get(t, alice, "/fhir/R4/metadata")
	if code != http.StatusOK || cs["resourceType"] != "CapabilityStatement" || cs["fhirVersion"] != "4.0.1" {
		t.Fatalf("metadata: %d %v", code, cs)
	}
	_, b := api.get(t, alice, "/fhir/R4/Observation?patient=p1&_count=1")
	obs := b["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
	_, b = api.get(t, alice, "/fhir/R4/Flag?patient=p1&_count=1")
	flag := b["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
	ids := map[string]string{"Patient": "p1", "EpisodeOfCare": "p1", "Device": "ox-1", "Observation": obs["id"].(string), "Flag": flag["id"].(string)}
	if code, _ := api.get(t, "bob:clinician:w2", "/fhir/R4/Flag/"+ids["Flag"]); code != http.StatusNotFound {
		t.Errorf("bob of w2 reads p1's Flag: %d, want 404", code)
	}
	for _, r := range fhir.Served {
		for _, in := range r.Interaction {
			path := "/fhir/R4/" + r.Type
			switch in.Code {
			case "read":
				path += "/" + ids[r.Type]
			case "search-type":
				path += "?patient=p1"
				if r.Type == "Patient" {
					path = "/fhir/R4/Patient?identifier=9434765919"
				}
			}
			if code, b := api.get(t, alice, path); code != http.StatusOK {
				t.Errorf("%s %s: %d %v", r.Type, in.Code, code, b)
			}
		}
	}
	for _, op := range fhir.ServedOperations {
		if code, _ := api.do(t, alice, "GET", "/fhir/R4/$"+op.Name+"?ward=w1", ""); code != http.StatusOK {
			t.Errorf("$%s: %d", op.Name, code)
		}
	}
}

// exportLines asks for an export and checks each line of the answer is
// a resource the strict R4 parser reads; it counts them by type.
func exportLines(t *testing.T, req *http.Request) (int, map[string]int, []map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/fhir+ndjson" {
		t.Errorf("export: Content-Type %q", ct)
	}
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var all []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		if _, err := u.UnmarshalR4([]byte(line)); err != nil {
			t.Errorf("export line %d: not FHIR R4: %v\n%s", i+1, err, line)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("export line %d: %v", i+1, err)
		}
		kinds[m["resourceType"].(string)]++
		all = append(all, m)
	}
	return resp.StatusCode, kinds, all
}

// A ward's export holds its patients, stays, devices, observations and
// flags, each line R4; another ward's, for a user or a token of w1, is
// not found.
func TestFHIRExport(t *testing.T) {
	api := newFHIRAPI(t)
	ask := func(user, q string) (int, map[string]int, []map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", api.url+"/fhir/R4/$export?"+q, nil)
		req.Header.Set("X-Test-User", user)
		return exportLines(t, req)
	}
	_, search := api.get(t, alice, "/fhir/R4/Observation?patient=p1&_count=0")
	code, kinds, all := ask(alice, "ward=w1")
	want := map[string]int{"Patient": 2, "EpisodeOfCare": 2, "Device": 1, "Observation": int(search["total"].(float64)), "Flag": 1}
	if code != http.StatusOK || mustJSON(kinds) != mustJSON(want) {
		t.Errorf("alice exports w1: %d %v, want %v", code, kinds, want)
	}
	for _, r := range all {
		if r["resourceType"] == "Patient" && r["id"] == "p2" {
			t.Errorf("w1's export holds w2's patient")
		}
	}
	// _since keeps the records changed since, and every patient, stay
	// and device, whose changes vward does not date.
	last := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if code, kinds, _ := ask(alice, "ward=w1&_since="+url.QueryEscape(last)); code != http.StatusOK || mustJSON(kinds) != mustJSON(map[string]int{"Patient": 2, "EpisodeOfCare": 2, "Device": 1}) {
		t.Errorf("_since an hour ahead: %d %v", code, kinds)
	}
	mid := url.QueryEscape(fhir.DateTime(api.t0.Add(170 * time.Minute)))
	if _, kinds, _ := ask(alice, "ward=w1&_type=Observation&_since="+mid); kinds["Observation"] == 0 || kinds["Observation"] >= want["Observation"] || len(kinds) != 1 {
		t.Errorf("_since the last readings: %v, want some of %d observations alone", kinds, want["Observation"])
	}
	if _, kinds, _ := ask(alice, "ward=w1&_type=Patient,Flag"); mustJSON(kinds) != `{"Flag":1,"Patient":2}` {
		t.Errorf("_type=Patient,Flag: %v", kinds)
	}
	for _, c := range []struct{ user, q string }{{alice, "ward=w2"}, {alice, "ward=w9"}, {"root:admin:", "ward=w9"}} {
		if code, _, _ := ask(c.user, c.q); code != http.StatusNotFound {
			t.Errorf("%s exports %s: %d, want 404", c.user, c.q, code)
		}
	}
	if code, kinds, _ := ask("root:admin:", "ward=w2"); code != http.StatusOK || kinds["Patient"] != 1 {
		t.Errorf("an admin exports w2: %d %v", code, kinds)
	}
	for q, param := range map[string]string{"": "ward", "ward=w1&ward=w2": "ward", "ward=w1&_since=yesterday": "_since",
		"ward=w1&_type=Encounter": "_type", "ward=w1&_count=5": "_count"} {
		code, b := api.get(t, alice, "/fhir/R4/$export?"+q)
		if code != http.StatusBadRequest {
			t.Errorf("$export?%s: %d, want 400", q, code)
		}
		outcomeNames(t, q, b, param)
	}

	// A token of w1 exports w1, never w2.
	secret, _, err := api.tokens.Create(context.Background(), "analytics", []vward.WardID{"w1"}, 0, "root")
	if err != nil {
		t.Fatal(err)
	}
	for ward, wantCode := range map[string]int{"w1": http.StatusOK, "w2": http.StatusNotFound} {
		req, _ := http.NewRequest("GET", api.bearer+"/fhir/R4/$export?ward="+ward, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		if code, _, _ := exportLines(t, req); code != wantCode {
			t.Errorf("the w1 token exports %s: %d, want %d", ward, code, wantCode)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestParseDateParam(t *testing.T) {
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in         string
		lo, hi     time.Time
		prefix     string
		wantFailed bool
	}{
		{in: "2026-03-02", lo: day, hi: day.Add(24 * time.Hour), prefix: "eq"},
		{in: "ge2026-03-02", lo: day, hi: day.Add(24 * time.Hour), prefix: "ge"},
		{in: "le2026-03-02T08:00:00Z", lo: at, hi: at.Add(time.Nanosecond), prefix: "le"},
		{in: "gt2026-03-02T09:00:00+01:00", lo: at, hi: at.Add(time.Nanosecond), prefix: "gt"},
		{in: "lt2026-03-02T08:00:00.5Z", lo: at.Add(500 * time.Millisecond), hi: at.Add(500*time.Millisecond + time.Nanosecond), prefix: "lt"},
		{in: "sa2026-03-02", wantFailed: true}, // FHIR's "starts after": not served
		{in: "2026-03-02T08:00:00", wantFailed: true},
		{in: "2026-3-2", wantFailed: true},
		{in: "ge", wantFailed: true},
		{in: "", wantFailed: true},
	} {
		lo, hi, prefix, err := parseDateParam(c.in)
		if c.wantFailed {
			if err == nil {
				t.Errorf("parseDateParam(%q) = %v, %v, %q; want an error", c.in, lo, hi, prefix)
			}
			continue
		}
		if err != nil || !lo.Equal(c.lo) || !hi.Equal(c.hi) || prefix != c.prefix {
			t.Errorf("parseDateParam(%q) = %v, %v, %q, %v; want %v, %v, %q", c.in, lo, hi, prefix, err, c.lo, c.hi, c.prefix)
		}
	}
}

func TestSearchQueryPaging(t *testing.T) {
	for _, c := range []struct {
		q          string
		count, off int
		badParam   string
	}{
		{q: "", count: fhirDefaultCount},
		{q: "_count=0", count: 0},
		{q: "_count=7&_offset=14", count: 7, off: 14},
		{q: "_count=100000", count: fhirMaxCount},
		{q: "_count=1.5", badParam: "_count"},
		{q: "_count=", badParam: "_count"},
		{q: "_offset=-3", badParam: "_offset"},
		{q: "_count=1&_count=1", badParam: "_count"},
		{q: "_sort=date", badParam: "_sort"},
	} {
		v, _ := url.ParseQuery(c.q)
		_, pg, err := searchQuery(v, "patient")
		var pe paramError
		switch {
		case c.badParam != "":
			if !errors.As(err, &pe) || pe.param != c.badParam {
				t.Errorf("%q: %v, want a refusal of %s", c.q, err, c.badParam)
			}
		case err != nil || pg.count != c.count || pg.offset != c.off:
			t.Errorf("%q: %+v %v, want count %d offset %d", c.q, pg, err, c.count, c.off)
		}
	}
}

// A machine client's token reads its wards' patients as a viewer would,
// and nothing once revoked; every use is in the token's audit, without
// the NHS numbers searched for.
func TestFHIRBearerTokens(t *testing.T) {
	api := newFHIRAPI(t)
	ctx := context.Background()
	secret, _, err := api.tokens.Create(ctx, "gp-system", []vward.WardID{"w1"}, 0, "root")
	if err != nil {
		t.Fatal(err)
	}
	get := func(auth, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", api.bearer+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]int{
		"/fhir/R4/Patient/p1":                    http.StatusOK,
		"/fhir/R4/Observation?patient=p1":        http.StatusOK,
		"/fhir/R4/Patient/p2":                    http.StatusNotFound,
		"/fhir/R4/Flag?patient=p2":               http.StatusNotFound,
		"/fhir/R4/Patient?identifier=9434765919": http.StatusOK,
	} {
		if code, b := get("Bearer "+secret, path); code != want {
			t.Errorf("the w1 token GET %s: %d %s, want %d", path, code, b, want)
		}
	}
	if _, b := get("Bearer "+secret, "/fhir/R4/Patient?identifier=9434765870"); !strings.Contains(b, `"total":0`) {
		t.Errorf("the w1 token finds w2's patient: %s", b)
	}
	for _, auth := range []string{"Bearer vwt_guess", "Basic " + secret, secret, "Bearer"} {
		if code, b := get(auth, "/fhir/R4/Patient/p1"); code != http.StatusUnauthorized || !strings.Contains(b, "OperationOutcome") {
			t.Errorf("Authorization %q: %d %s, want a 401 OperationOutcome", auth, code, b)
		}
	}
	if err := api.tokens.Revoke(ctx, "gp-system", "root", "contract ended"); err != nil {
		t.Fatal(err)
	}
	if code, _ := get("Bearer "+secret, "/fhir/R4/Patient/p1"); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d, want 401", code)
	}
	uses, err := api.tokens.Audit(ctx, "gp-system", 0)
	if err != nil {
		t.Fatal(err)
	}
	var used, refused int
	for _, u := range uses {
		if strings.Contains(u.Detail, "9434765") {
			t.Errorf("the audit names an NHS number: %+v", u)
		}
		switch u.Action {
		case "token.use":
			used++
		case "token.refused":
			refused++
		}
	}
	if used != 6 || refused != 1 {
		t.Errorf("audit: %d uses and %d refusals, want 6 and 1: %+v", used, refused, uses)
	}
}

// Only an admin manages tokens; a token's secret is answered once, at
// its creation, and its wards must exist.
func TestTokenAPI(t *testing.T) {
	api := newFHIRAPI(t)
	const root = "root:admin:"
	if code, _ := api.do(t, alice, "POST", "/api/v1/tokens", `{"name":"gp","wards":["w1"]}`); code != http.StatusForbidden {
		t.Errorf("a clinician creates a token: %d, want 403", code)
	}
	if code, _ := api.do(t, alice, "GET", "/api/v1/tokens", ""); code != http.StatusForbidden {
		t.Errorf("a clinician lists tokens: %d, want 403", code)
	}
	if code, b := api.do(t, root, "POST", "/api/v1/tokens", `{"name":"gp","wards":["w9"]}`); code != http.StatusBadRequest {
		t.Errorf("a token for an unknown ward: %d %s, want 400", code, b)
	}
	code, b := api.do(t, root, "POST", "/api/v1/tokens", `{"name":"gp","wards":["w1"]}`)
	var created struct {
		Secret string       `json:"secret"`
		Token  tokens.Token `json:"token"`
	}
	if err := json.Unmarshal(b, &created); code != http.StatusCreated || err != nil || !strings.HasPrefix(created.Secret, tokens.Prefix) || created.Token.CreatedBy != "root" {
		t.Fatalf("create: %d %s", code, b)
	}
	code, b = api.do(t, root, "GET", "/api/v1/tokens", "")
	if code != http.StatusOK || strings.Contains(string(b), created.Secret) || !strings.Contains(string(b), `"name":"gp"`) {
		t.Errorf("list: %d %s", code, b)
	}
	if code, b := api.do(t, root, "POST", "/api/v1/tokens/gp/revoke", `{"reason":"test"}`); code != http.StatusNoContent {
		t.Errorf("revoke: %d %s", code, b)
	}
	if code, _ := api.do(t, root, "POST", "/api/v1/tokens/gp/revoke", `{"reason":"again"}`); code != http.StatusConflict {
		t.Errorf("revoke twice: %d, want 409", code)
	}
	code, b = api.do(t, root, "GET", "/api/v1/tokens/gp/audit", "")
	if code != http.StatusOK || !strings.Contains(string(b), "token.revoke") || !strings.Contains(string(b), "token.create") {
		t.Errorf("audit: %d %s", code, b)
	}
}
