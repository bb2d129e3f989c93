package alerting

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// boardRow is a Row as the tests read it, the way the board shows it
// (web.PatientView): its vitals by kind, and its NEWS2 rendered, nil when
// the patient is not scored.
type boardRow struct {
	Row
	Vitals map[string]vward.Reading
	News2  *Score
}

// view reads a row the board's way, as in view(m.Patient(id)).
func view(r Row, ok bool) (boardRow, bool) {
	v := boardRow{Row: r, Vitals: map[string]vward.Reading{}}
	for _, rd := range r.Vitals {
		if rd.Kind != "" {
			v.Vitals[string(rd.Kind)] = rd
		}
	}
	if r.Scored {
		s := NewScore(r.Result)
		v.News2 = &s
	}
	return v, ok
}

// boardRecorder is a RowPublisher that fetches each changed row at once,
// as a board client that keeps up does, listening while listening is
// true.
type boardRecorder struct {
	t         testing.TB
	mu        sync.Mutex
	listening bool
	changes   []RowChange
	rows      []boardRow
	fetched   []Row // the rows as fetched
}

func (b *boardRecorder) Publish(Event) {}

func (b *boardRecorder) RowChanged(c RowChange) {
	var row Row
	ok := c.Rows.CopyRow(c.Patient, c.Trend, &row)
	if !ok || row.Ward != c.Ward {
		b.t.Errorf("change of %s in %s: fetched the row of ward %q, ok %v", c.Patient, c.Ward, row.Ward, ok)
	}
	if row.Patient != c.Patient {
		b.t.Fatalf("change of %s: fetched %+v, want the patient's row", c.Patient, row)
	}
	v, _ := view(row, ok)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.changes = append(b.changes, c)
	b.rows = append(b.rows, v)
	b.fetched = append(b.fetched, row)
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
func (b *boardRecorder) last() (boardRow, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.rows) == 0 {
		return boardRow{}, 0
	}
	return b.rows[len(b.rows)-1], len(b.rows)
}

// A board event carries the patient's NEWS2 trend only when the trend
// changed since the previous event; the snapshot always carries it whole.
func TestPatientEventCarriesTrendOnlyWhenChanged(t *testing.T) {
	board := &boardRecorder{t: t, listening: true}
	m := NewMonitor(news2.DefaultFreshness(), board, nil, quiet)
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
	board := &boardRecorder{t: t, listening: true}
	fresh := news2.DefaultFreshness()
	fresh[news2.Temperature] = time.Minute
	m := NewMonitor(fresh, board, nil, quiet)
	now := t0
	m.now = func() time.Time { return now }
	m.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "One"})
	observe := func(kind vward.ReadingKind, v float64) {
		now = now.Add(time.Second)
		m.Observe([]vward.Reading{{Device: "d1", Patient: "p1", Ward: "w1", Kind: kind, Value: v, At: now}})
	}
	check := func(what string, row boardRow, score, missing int) {
		t.Helper()
		if row.News2 == nil || row.News2.Score != score || len(row.News2.Missing) != missing {
			t.Fatalf("%s: row NEWS2 %+v, want score %d with %d missing", what, row.News2, score, missing)
		}
	}
	event := func() boardRow { row, _ := board.last(); return row }
	snapshot := func() boardRow { row, _ := view(m.Patient("p1")); return row }

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

// The monitor builds no rows: it says whose row changed, in which ward,
// and whether the trend changed, through readings and the periodic
// rescore; the row it then gives is the patient's row, with the trend when
// it changed. (That its event is encoding/json's, byte for byte, web's
// TestPatientAppendEventMatchesRow checks.)
func TestRowChangesSayWhoseRowChanged(t *testing.T) {
	board := &boardRecorder{t: t, listening: true}
	fresh := news2.DefaultFreshness()
	fresh[news2.Temperature] = time.Minute
	now := t0
	m := NewMonitor(fresh, board, nil, quiet)
	m.now = func() time.Time { return now }
	m.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "Zoë One", SpO2Scale: 2})
	if len(board.changes) != 1 || board.changes[0].Patient != "p1" {
		t.Fatalf("row changes after the admission = %+v, want p1's: a new patient is listed at once", board.changes)
	}
	board.changes, board.rows, board.fetched = nil, nil, nil
	// want is, for each change, the patient's row as the monitor gives
	// it (Patient) just after, with the trend if the change says so.
	var want []Row
	step := func(f func()) {
		t.Helper()
		before := len(board.changes)
		f()
		if len(board.changes) != before+1 {
			t.Fatalf("%d row changes, want %d", len(board.changes), before+1)
		}
		row, _ := m.Patient("p1")
		if !board.changes[before].Trend {
			row.Trend = nil
		}
		want = append(want, row)
	}
	observe := func(kind vward.ReadingKind, v float64) {
		step(func() {
			now = now.Add(time.Second)
			m.Observe([]vward.Reading{{Device: "d1", Patient: "p1", Ward: "w1", Kind: kind, Value: v, At: now}})
		})
	}
	observe(vward.HeartRate, 70)
	observe(vward.HeartRate, 72)
	observe(vward.Temperature, 39.5)
	observe(vward.SupplementalOxygen, 1)
	observe(vward.Consciousness, 1)
	observe(vward.SpO2, 91)
	step(func() {
		now = now.Add(2 * time.Minute)
		m.rescoreAll()
	})
	trends := 0
	for i, c := range board.changes {
		if got := board.fetched[i]; !reflect.DeepEqual(got, want[i]) {
			t.Errorf("change %d:\nfetched %+v\nwant    %+v", i, got, want[i])
		}
		if c.Patient != "p1" || c.Ward != "w1" {
			t.Errorf("change %d: %s in %s; want p1 in w1", i, c.Patient, c.Ward)
		}
		if c.Trend {
			trends++
		}
	}
	if trends == 0 || trends == len(board.changes) {
		t.Errorf("%d of %d changes carried the trend; want some, not all", trends, len(board.changes))
	}
	untouched := Row{Name: "x", Trend: []TrendPoint{{Score: 1}}}
	row := untouched
	if ok := m.CopyRow("p2", true, &row); ok || !reflect.DeepEqual(row, untouched) {
		t.Errorf("CopyRow of a patient not admitted: %+v, %v; want into unchanged, not ok", row, ok)
	}
}
