package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
	"github.com/vward/vward/sqlitedb"
)

// chartAPI serves the chart routes and the observation routes on a real
// registry, monitor, entries' store and in-memory history. p1 (ward w1)
// was admitted 3 days ago on Scale 1, p2 (w2) is another ward's, and p3
// (w1) on Scale 2 has been on the ward for 40 days.
type chartAPI struct {
	*obsAPI
	admitted time.Time
}

func newChartAPI(t *testing.T) *chartAPI {
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
	now := time.Now().UTC().Truncate(time.Second)
	admitted := now.Add(-72 * time.Hour)
	m := alerting.NewMonitor(news2.DefaultFreshness(), nil, nil, log)
	for _, p := range []devices.Patient{
		{ID: "p1", Ward: "w1", Name: "Ada", Admitted: admitted},
		{ID: "p2", Ward: "w2", Name: "Bea", Admitted: admitted},
		{ID: "p3", Ward: "w1", Name: "Cy", Admitted: now.Add(-40 * 24 * time.Hour), SpO2Scale: 2},
	} {
		if err := reg.Admit(ctx, p); err != nil {
			t.Fatal(err)
		}
		m.Admit(alerting.PatientInfo{ID: p.ID, Ward: p.Ward, Name: p.Name, SpO2Scale: p.SpO2Scale})
	}
	store, err := observations.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	hist := history.NewMemory(10000)
	s := NewServer(ctx, Deps{Monitor: m, History: hist, Registry: reg,
		Observations: observations.NewService(store, hist, m, log), Log: log})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/patients/{id}/readings", s.readings)
	mux.HandleFunc("GET /api/v1/patients/{id}/scores", s.scores)
	s.observationRoutes(mux)
	srv := asTestUser(t, mux)
	return &chartAPI{obsAPI: &obsAPI{alertAPI: &alertAPI{url: srv.URL, monitor: m}, reg: reg, history: hist, entries: store}, admitted: admitted}
}

// measure stores device readings and tells the monitor of them, as ingest
// does.
func (a *chartAPI) measure(t *testing.T, rs ...vward.Reading) {
	t.Helper()
	if err := a.history.WriteReadings(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	a.monitor.Observe(rs)
}

type chartAnswer struct {
	From     time.Time               `json:"from"`
	To       time.Time               `json:"to"`
	Stay     bool                    `json:"stay"`
	Capped   bool                    `json:"capped"`
	Scale    int                     `json:"spo2_scale"`
	Bands    map[string][]news2.Band `json:"bands"`
	Fresh    map[string]float64      `json:"freshness_seconds"`
	Readings []chartPoint            `json:"readings"`
	Scores   []struct {
		At       time.Time `json:"at"`
		Score    *int      `json:"score"`
		Risk     string    `json:"risk"`
		Complete bool      `json:"complete"`
		Missing  []string  `json:"missing"`
	} `json:"scores"`
}

func (a *chartAPI) chart(t *testing.T, user, path string) chartAnswer {
	t.Helper()
	code, b := a.do(t, user, "GET", path, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	var out chartAnswer
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
	return out
}

func dev(p vward.PatientID, kind vward.ReadingKind, v float64, at time.Time) vward.Reading {
	return vward.Reading{Device: "ox-" + vward.DeviceID(p), Patient: p, Ward: "w1", Kind: kind, Value: v, At: at}
}

// Each reading says where it came from: a device's id, or the entry, its
// source and who entered it, and whether it was marked in error.
func TestChartReadingsSayTheirSource(t *testing.T) {
	api := newChartAPI(t)
	now := time.Now()
	api.measure(t, dev("p1", vward.SpO2, 95, now.Add(-30*time.Minute)), dev("p1", vward.HeartRate, 88, now.Add(-30*time.Minute)),
		dev("p1", vward.SpO2, 94, now.Add(-10*time.Hour)))
	if code, _, raw := api.enter(t, alice, "p1", `{"source":"telephone","readings":{"respiratory_rate":22}}`); code != 201 {
		t.Fatalf("enter: %d %s", code, raw)
	}
	code, wrong, raw := api.enter(t, alice, "p1", `{"source":"home_visit","readings":{"temperature":38.4}}`)
	if code != 201 {
		t.Fatalf("enter: %d %s", code, raw)
	}
	if code, b := api.do(t, alice, "POST", "/api/v1/observations/"+wrong.Entry.ID+"/entered-in-error", `{"reason":"wrong patient"}`); code != 200 {
		t.Fatalf("mark: %d %s", code, b)
	}

	got := api.chart(t, vera, "/api/v1/patients/p1/readings?hours=6")
	if d := time.Since(got.From) - 6*time.Hour; d < 0 || d > time.Minute || time.Since(got.To) > time.Minute {
		t.Errorf("from %v to %v, want the last 6 hours", got.From, got.To)
	}
	byKind := map[vward.ReadingKind]chartPoint{}
	for _, p := range got.Readings {
		byKind[p.Kind] = p
	}
	if len(got.Readings) != 4 {
		t.Errorf("%d readings in 6 hours, want 4 (not the one 10 hours ago): %+v", len(got.Readings), got.Readings)
	}
	if p := byKind[vward.SpO2]; p.Device != "ox-p1" || p.Value != 95 || p.Source != "" || p.Entry != "" {
		t.Errorf("the device's SpO2: %+v", p)
	}
	if p := byKind[vward.RespiratoryRate]; p.Device != "person:telephone" || p.Source != "telephone" || p.EnteredBy != "alice" || p.Entry != "obs-1" || p.EnteredInError {
		t.Errorf("the telephone's respiratory rate: %+v", p)
	}
	if p := byKind[vward.Temperature]; p.Device != "person:home_visit" || p.Entry != wrong.Entry.ID || !p.EnteredInError {
		t.Errorf("the temperature entered in error: %+v", p)
	}
	if got.Scale != 1 || len(got.Bands["spo2"]) != 4 || got.Bands["spo2_on_oxygen"] != nil || got.Bands["heart_rate"][2] != (news2.Band{Min: 51, Max: 90, Score: 0}) {
		t.Errorf("Scale 1 bands: %+v", got.Bands)
	}
	if got.Fresh["heart_rate"] != 3600 {
		t.Errorf("freshness %v, want the monitor's hour", got.Fresh)
	}
	if len(api.chart(t, alice, "/api/v1/patients/p1/readings").Readings) != 5 {
		t.Error("the default range is not the last 24 hours")
	}
	s2 := api.chart(t, alice, "/api/v1/patients/p3/readings")
	if s2.Scale != 2 || len(s2.Bands["spo2_on_oxygen"]) != 7 || s2.Bands["spo2"][3] != (news2.Band{Min: 88, Max: 100, Score: 0}) {
		t.Errorf("Scale 2 bands: %+v", s2.Bands)
	}
}

// since=stay reaches back to the admission, and no further than 31 days.
func TestChartsOverTheStay(t *testing.T) {
	api := newChartAPI(t)
	api.measure(t, dev("p1", vward.HeartRate, 70, api.admitted.Add(-time.Hour)), dev("p1", vward.HeartRate, 72, api.admitted.Add(time.Hour)),
		dev("p1", vward.HeartRate, 74, time.Now().Add(-time.Hour)))
	got := api.chart(t, alice, "/api/v1/patients/p1/readings?since=stay")
	if !got.From.Equal(api.admitted) || !got.Stay || got.Capped {
		t.Errorf("from %v stay %v capped %v, want the admission at %v", got.From, got.Stay, got.Capped, api.admitted)
	}
	if len(got.Readings) != 2 || got.Readings[0].Value != 72 {
		t.Errorf("readings of the stay: %+v", got.Readings)
	}
	// The reading an hour before the admission still counts at it, for
	// an hour: the score is scored as the monitor would have.
	sc := api.chart(t, alice, "/api/v1/patients/p1/scores?since=stay")
	if !sc.From.Equal(api.admitted) || len(sc.Scores) != 6 || !sc.Scores[0].At.Equal(api.admitted) {
		t.Errorf("scores of the stay from %v: %+v", sc.From, sc.Scores)
	}
	long := api.chart(t, alice, "/api/v1/patients/p3/readings?since=stay")
	if d := time.Since(long.From) - 744*time.Hour; !long.Capped || d < 0 || d > time.Minute {
		t.Errorf("a 40-day stay: from %v capped %v, want the last 744 hours", long.From, long.Capped)
	}
}

func TestChartRefusals(t *testing.T) {
	api := newChartAPI(t)
	for _, path := range []string{"readings", "scores"} {
		for _, c := range []struct {
			user, query string
			patient     vward.PatientID
			code        int
			says        string
		}{
			{alice, "hours=0", "p1", 400, `hours=\"0\": want a whole number of hours from 1 to 744`},
			{alice, "hours=745", "p1", 400, `hours=\"745\"`},
			{alice, "hours=1.5", "p1", 400, `hours=\"1.5\"`},
			{alice, "hours=", "p1", 200, ""},
			{alice, "since=admission", "p1", 400, `since=\"admission\": want since=stay`},
			{alice, "hours=6&since=stay", "p1", 400, "give one of them, not both"},
			{alice, "hour=6", "p1", 400, `unknown parameter \"hour\": give hours=N or since=stay`},
			{bob, "hours=6", "p1", 404, "no such patient"},
			{bob, "since=stay", "p1", 404, "no such patient"},
			{alice, "since=stay", "p2", 404, "no such patient"},
			{alice, "", "p9", 404, "no such patient"},
		} {
			code, b := api.do(t, c.user, "GET", "/api/v1/patients/"+string(c.patient)+"/"+path+"?"+c.query, "")
			if code != c.code || !strings.Contains(string(b), c.says) {
				t.Errorf("%s of %s as %s with %q: %d %s, want %d saying %s", path, c.patient, c.user, c.query, code, b, c.code, c.says)
			}
		}
	}
}

// The scores over the last day agree with the monitor's, leave out an
// entry marked in error, and say when there was no score at all.
func TestChartScores(t *testing.T) {
	api := newChartAPI(t)
	now := time.Now()
	// A spot check five hours ago, scored then and gone an hour later.
	api.measure(t, dev("p1", vward.HeartRate, 120, now.Add(-5*time.Hour)))
	// A round now: 2 for the pulse, 3 for the SpO2.
	api.measure(t, dev("p1", vward.HeartRate, 115, now.Add(-20*time.Minute)), dev("p1", vward.SpO2, 90, now.Add(-20*time.Minute)))
	code, got, raw := api.enter(t, alice, "p1", `{"source":"telephone","readings":{"respiratory_rate":30}}`)
	if code != 201 || got.Patient.News2.Score != 8 {
		t.Fatalf("enter: %d %s", code, raw)
	}
	row, _ := api.monitor.Patient("p1")
	last := row.Trend[len(row.Trend)-1]

	sc := api.chart(t, alice, "/api/v1/patients/p1/scores?hours=6").Scores
	if len(sc) != 4 || sc[0].Score == nil || *sc[0].Score != 2 || sc[1].Score != nil {
		t.Fatalf("scores: %+v", sc)
	}
	if p := sc[len(sc)-1]; p.Score == nil || *p.Score != last.Score || p.Complete == last.Partial || p.Risk != "high" {
		t.Errorf("the series ends at %+v, the monitor at %+v", p, last)
	}
	if m := sc[len(sc)-1].Missing; len(m) != 4 || m[0] != "supplemental_oxygen" {
		t.Errorf("missing %v", m)
	}
	if code, b := api.do(t, alice, "POST", "/api/v1/observations/"+got.Entry.ID+"/entered-in-error", `{"reason":"wrong patient"}`); code != 200 {
		t.Fatalf("mark: %d %s", code, b)
	}
	sc = api.chart(t, alice, "/api/v1/patients/p1/scores?hours=6").Scores
	row, _ = api.monitor.Patient("p1")
	if p := sc[len(sc)-1]; p.Score == nil || *p.Score != 5 || *p.Score != row.Result.Score {
		t.Errorf("after the mark the series ends at %+v, the monitor scores %d", p, row.Result.Score)
	}
}

// thinSpy is the in-memory history, counting the thinned reads asked of it.
type thinSpy struct {
	*history.Memory
	thinned int
}

func (s *thinSpy) Thinned(ctx context.Context, p vward.PatientID, from, to time.Time, every time.Duration) ([]vward.Reading, error) {
	s.thinned++
	return s.Memory.Thinned(ctx, p, from, to, every)
}

// A range with more readings of one series than the charts hold is read
// thinned at the source, in thinBuckets windows, a spike kept; a range of
// a few is read whole.
func TestChartsThinAtTheSource(t *testing.T) {
	ctx := context.Background()
	spy := &thinSpy{Memory: history.NewMemory(20000)}
	s := NewServer(ctx, Deps{History: spy, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	to := time.Now().UTC().Truncate(time.Second)
	from := to.Add(-72 * time.Hour)
	var rs []vward.Reading
	for i := range chartSeriesLimit + 1000 {
		v := 70.0 + float64(i%9)
		if i == 4321 {
			v = 171
		}
		rs = append(rs, vward.Reading{Device: "wear-1", Patient: "p1", Ward: "w1", Kind: vward.HeartRate, Value: v,
			At: from.Add(time.Duration(i) * 36 * time.Second)})
	}
	if err := spy.WriteReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	got, every, err := s.drawnReadings(ctx, "p1", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if spy.thinned != 1 || every != 72*time.Hour/thinBuckets {
		t.Fatalf("thinned %d times, windows %s: want once, in %s windows", spy.thinned, every, 72*time.Hour/thinBuckets)
	}
	if len(got) >= len(rs) || len(got) > 4*thinBuckets {
		t.Errorf("%d readings of %d", len(got), len(rs))
	}
	spike := false
	for _, r := range got {
		spike = spike || r.Value == 171
	}
	if !spike {
		t.Error("the spike is lost")
	}
	markRuns(got, news2.DefaultFreshness(), 2*every)
	for i, r := range got[1:] {
		if r.gap {
			t.Fatalf("a gap drawn at %v in a continuous run (%v after the one before)", r.At, r.At.Sub(got[i].At))
		}
	}

	few, every, err := s.drawnReadings(ctx, "p1", from, from.Add(time.Hour))
	if err != nil || every != 0 || spy.thinned != 1 || len(few) == 0 {
		t.Errorf("an hour: %d readings, windows %s, %d thinned reads, %v; want it whole", len(few), every, spy.thinned, err)
	}
}
