package alerting

import (
	"sync"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// boardRecorder keeps patient events, listening while listening is true.
type boardRecorder struct {
	mu        sync.Mutex
	listening bool
	rows      []PatientView
}

func (b *boardRecorder) Publish(e Event) {
	if e.Type != "patient" {
		return
	}
	b.mu.Lock()
	b.rows = append(b.rows, *e.Patient)
	b.mu.Unlock()
}

func (b *boardRecorder) ListeningTo(vward.WardID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.listening
}

func (b *boardRecorder) listen(on bool) {
	b.mu.Lock()
	b.listening = on
	b.mu.Unlock()
}

// last returns the newest event's row and how many there were.
func (b *boardRecorder) last() (PatientView, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.rows) == 0 {
		return PatientView{}, 0
	}
	return b.rows[len(b.rows)-1], len(b.rows)
}

// A board event carries the patient's NEWS2 trend only when the trend
// changed since the previous event; the snapshot always carries it whole.
func TestPatientEventCarriesTrendOnlyWhenChanged(t *testing.T) {
	board := &boardRecorder{listening: true}
	m := NewMonitor(news2.DefaultFreshness(), board, quiet)
	now := t0
	m.now = func() time.Time { return now }
	m.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "One"})
	hr := func(v float64) []vward.Reading {
		return []vward.Reading{{Device: "d1", Patient: "p1", Ward: "w1", Kind: vward.HeartRate, Value: v, At: now}}
	}
	step := func(what string, v float64, wantTrend int) {
		t.Helper()
		now = now.Add(time.Second)
		_, before := board.last()
		m.Observe(hr(v))
		row, n := board.last()
		if n != before+1 {
			t.Fatalf("%s: %d events, want %d", what, n, before+1)
		}
		if len(row.Trend) != wantTrend {
			t.Errorf("%s: the event's trend has %d points, want %d", what, len(row.Trend), wantTrend)
		}
	}
	step("first score", 70, 1)
	step("same score, a second later", 72, 0)
	step("score changes", 135, 2)
	step("same score again", 136, 0)

	// Unheard changes are sent with the next event heard.
	board.listen(false)
	now = now.Add(time.Second)
	m.Observe(hr(70)) // back to 0: a third point, nobody listening
	board.listen(true)
	step("first event after nobody listened", 71, 3)

	snap := m.Snapshot(nil)
	if len(snap) != 1 || len(snap[0].Trend) != 3 {
		t.Fatalf("snapshot %+v, want p1 with the whole trend of 3 points", snap)
	}
	if row, ok := m.Patient("p1"); !ok || len(row.Trend) != 3 {
		t.Errorf("Patient(p1) trend %+v, want 3 points", row.Trend)
	}
}

// A row's NEWS2 is the patient's current result, whether a reading or the
// passing of time changed it.
func TestRowNews2FollowsResult(t *testing.T) {
	board := &boardRecorder{listening: true}
	fresh := news2.DefaultFreshness()
	fresh[news2.Temperature] = time.Minute
	m := NewMonitor(fresh, board, quiet)
	now := t0
	m.now = func() time.Time { return now }
	m.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "One"})
	observe := func(kind vward.ReadingKind, v float64) {
		now = now.Add(time.Second)
		m.Observe([]vward.Reading{{Device: "d1", Patient: "p1", Ward: "w1", Kind: kind, Value: v, At: now}})
	}
	check := func(what string, row PatientView, score, missing int) {
		t.Helper()
		if row.News2 == nil || row.News2.Score != score || len(row.News2.Missing) != missing {
			t.Fatalf("%s: row NEWS2 %+v, want score %d with %d missing", what, row.News2, score, missing)
		}
	}
	event := func() PatientView { row, _ := board.last(); return row }
	snapshot := func() PatientView { row, _ := m.Patient("p1"); return row }

	observe(vward.HeartRate, 70)
	check("heart rate 70", event(), 0, 6)
	observe(vward.HeartRate, 72)
	check("heart rate 72, same result", event(), 0, 6)
	observe(vward.HeartRate, 135)
	check("heart rate 135", event(), 3, 6)
	check("heart rate 135, Patient(p1)", snapshot(), 3, 6)
	observe(vward.Temperature, 39.5)
	check("temperature 39.5 added", event(), 5, 5)
	observe(vward.HeartRate, 70)
	check("heart rate back to 70", event(), 2, 5)

	// The temperature ages out after a minute: a periodic rescore changes
	// the result with no new reading.
	now = now.Add(2 * time.Minute)
	m.rescoreAll()
	check("temperature aged out, event", event(), 0, 6)
	check("temperature aged out, Patient(p1)", snapshot(), 0, 6)
}

// rowRecorder is a RowPublisher that fetches each changed row at once, as
// a board client that keeps up does, and keeps it.
type rowRecorder struct {
	boardRecorder
	changes []RowChange
	events  [][]byte
}

func (r *rowRecorder) RowChanged(c RowChange) {
	b, ward, ok := c.Rows.AppendRowEvent(nil, c.Patient, c.Trend)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
	if ok && ward == c.Ward {
		r.events = append(r.events, b)
	} else {
		r.events = append(r.events, nil)
	}
}

// Given a RowPublisher, the monitor builds no rows: it says whose row
// changed, and the row it then gives is byte for byte the event it gives
// another publisher, with the trend when it changed, through readings and
// the periodic rescore.
func TestRowPublisherFetchesTheSameEvents(t *testing.T) {
	views, rows := &boardRecorder{listening: true}, &rowRecorder{boardRecorder: boardRecorder{listening: true}}
	fresh := news2.DefaultFreshness()
	fresh[news2.Temperature] = time.Minute
	now := t0
	var ms []*Monitor
	for _, pub := range []Publisher{views, rows} {
		m := NewMonitor(fresh, pub, quiet)
		m.now = func() time.Time { return now }
		m.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "Zoë One", SpO2Scale: 2})
		ms = append(ms, m)
	}
	observe := func(kind vward.ReadingKind, v float64) {
		now = now.Add(time.Second)
		for _, m := range ms {
			m.Observe([]vward.Reading{{Device: "d1", Patient: "p1", Ward: "w1", Kind: kind, Value: v, At: now}})
		}
	}
	observe(vward.HeartRate, 70)
	observe(vward.HeartRate, 72)
	observe(vward.Temperature, 39.5)
	observe(vward.SupplementalOxygen, 1)
	observe(vward.Consciousness, 1)
	observe(vward.SpO2, 91)
	now = now.Add(2 * time.Minute)
	for _, m := range ms {
		m.rescoreAll()
	}
	if len(rows.rows) != 0 {
		t.Errorf("the RowPublisher was also given %d PatientViews", len(rows.rows))
	}
	if len(views.rows) != 7 || len(rows.events) != len(views.rows) {
		t.Fatalf("%d events and %d row changes, want 7 of each", len(views.rows), len(rows.events))
	}
	trends := 0
	for i, v := range views.rows {
		want, got, c := AppendPatientEvent(nil, &v), rows.events[i], rows.changes[i]
		if string(got) != string(want) {
			t.Errorf("change %d:\nfetched %s\nwant    %s", i, got, want)
		}
		if c.Patient != "p1" || c.Ward != "w1" || c.Trend != (len(v.Trend) > 0) {
			t.Errorf("change %d: %s in %s, trend %v; want p1 in w1, trend %v", i, c.Patient, c.Ward, c.Trend, len(v.Trend) > 0)
		}
		if len(v.Trend) > 0 {
			trends++
		}
	}
	if trends == 0 || trends == len(views.rows) {
		t.Errorf("%d of %d events carried the trend; want some, not all", trends, len(views.rows))
	}
	if b, ward, ok := ms[1].AppendRowEvent([]byte("x"), "p2", true); ok || ward != "" || string(b) != "x" {
		t.Errorf("AppendRowEvent of a patient not admitted: %q, %q, %v; want b unchanged, not ok", b, ward, ok)
	}
}
