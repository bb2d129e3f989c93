package planstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
	"github.com/vward/vward/planstore"
)

// monitor records the plans a Follower gives it; it watches p1 and p2.
type monitor struct {
	mu       sync.Mutex
	versions map[vward.PatientID]int
	told     []string
	filled   []string // "p1 v1: 2 readings"
}

func (m *monitor) SetCarePlan(id vward.PatientID, plan *careplan.Plan, version int, _ map[vward.ReadingKind]time.Time, cause string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id != "p1" && id != "p2" {
		return false
	}
	if plan == nil {
		version = 0
	}
	m.versions[id] = version
	m.told = append(m.told, fmt.Sprintf("%s v%d: %s", id, version, cause))
	return true
}

func (m *monitor) FillCarePlan(id vward.PatientID, version int, rs []vward.Reading, _ string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.versions[id] != version {
		return false
	}
	m.filled = append(m.filled, fmt.Sprintf("%s v%d: %d readings", id, version, len(rs)))
	return true
}

// history answers with a reading of each kind asked for, and records what
// it was asked.
type history struct {
	mu    sync.Mutex
	asked []string
}

func (h *history) CarePlanReadings(_ context.Context, p vward.PatientID, kinds []vward.ReadingKind, from, to time.Time) ([]vward.Reading, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = append(h.asked, fmt.Sprintf("%s %v over %s", p, kinds, to.Sub(from).Round(time.Hour)))
	var rs []vward.Reading
	for _, k := range kinds {
		rs = append(rs, vward.Reading{Patient: p, Kind: k, Value: 1, At: from.Add(time.Hour)})
	}
	return rs, nil
}

func (m *monitor) CarePlanVersion(id vward.PatientID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.versions[id]
}

func (m *monitor) said() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.told)
}

// The follower gives the monitor each current plan once at start, each
// change written by this process or another as it reads it, and the end
// of a plan; a plan it already has is not given again.
func TestFollower(t *testing.T) {
	f := open(t)
	if _, err := f.store.Put(f.ctx, "p1", []byte(smallPlan), "low SpO2 at home"); err != nil {
		t.Fatal(err)
	}
	m := &monitor{versions: map[vward.PatientID]int{}}
	fl := planstore.NewFollower(f.store, m, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := fl.All(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := fl.All(f.ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"p1 v1: care plan version 1 by dr.patel: low SpO2 at home"}
	if got := m.said(); !slices.Equal(got, want) {
		t.Fatalf("at start the monitor was told %q, want %q", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- fl.Run(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	if _, err := f.store.PutTemplate(f.ctx, "p2", "heart_failure", "heart failure"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.End(f.ctx, "p1", "recovered"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "p2 v1: care plan version 1 by dr.patel: heart failure", "p1 v0: care plan ended (version 2) by dr.patel: recovered")
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(m.said(), want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := m.said(); !slices.Equal(got, want) {
		t.Errorf("the monitor was told %q, want %q", got, want)
	}
}

// Each measurement counts from the oldest version of the unbroken run that
// expected it: an edit does not postpone it, an added one counts from when
// it was added, and a plan ended and begun again starts afresh.
func TestExpectedSince(t *testing.T) {
	at := func(d int) time.Time { return time.Date(2026, 11, d, 9, 0, 0, 0, time.UTC) }
	plan := func(kinds ...vward.ReadingKind) *careplan.Plan {
		p := &careplan.Plan{Version: careplan.FormatVersion, Name: "test"}
		for _, k := range kinds {
			p.Expected = append(p.Expected, careplan.Expectation{Kind: k, Every: 24 * time.Hour})
		}
		return p
	}
	v := func(n, day int, p *careplan.Plan) planstore.Version {
		return planstore.Version{Patient: "p1", Number: n, Plan: p, At: at(day)}
	}
	cases := []struct {
		name string
		vs   []planstore.Version // newest first
		want map[vward.ReadingKind]time.Time
	}{
		{"one version", []planstore.Version{v(1, 2, plan(careplan.Weight))}, map[vward.ReadingKind]time.Time{careplan.Weight: at(2)}},
		{"an edit keeps the clock", []planstore.Version{v(2, 5, plan(careplan.Weight)), v(1, 2, plan(careplan.Weight))},
			map[vward.ReadingKind]time.Time{careplan.Weight: at(2)}},
		{"an added measurement counts from when it was added",
			[]planstore.Version{v(2, 5, plan(careplan.Weight, vward.SpO2)), v(1, 2, plan(careplan.Weight))},
			map[vward.ReadingKind]time.Time{careplan.Weight: at(2), vward.SpO2: at(5)}},
		{"dropped and added again: from when it came back",
			[]planstore.Version{v(3, 7, plan(careplan.Weight)), v(2, 5, plan(vward.SpO2)), v(1, 2, plan(careplan.Weight))},
			map[vward.ReadingKind]time.Time{careplan.Weight: at(7)}},
		{"ended and begun again",
			[]planstore.Version{v(3, 7, plan(careplan.Weight)), v(2, 5, nil), v(1, 2, plan(careplan.Weight))},
			map[vward.ReadingKind]time.Time{careplan.Weight: at(7)}},
		{"ended", []planstore.Version{v(2, 5, nil), v(1, 2, plan(careplan.Weight))}, map[vward.ReadingKind]time.Time{}},
		{"none", nil, map[vward.ReadingKind]time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := planstore.ExpectedSince(c.vs)
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for k, w := range c.want {
				if !got[k].Equal(w) {
					t.Errorf("%s since %v, want %v", k, got[k], w)
				}
			}
		})
	}
}

// Each plan given to the monitor, at start or changed, has its rules'
// readings read back by Run, as far back as its rules read and a day at
// least; a plan without rules reads nothing back.
func TestFollowerReadsBack(t *testing.T) {
	f := open(t)
	if _, err := f.store.PutTemplate(f.ctx, "p1", "heart_failure", "heart failure"); err != nil {
		t.Fatal(err)
	}
	m := &monitor{versions: map[vward.PatientID]int{}}
	h := &history{}
	fl := planstore.NewFollower(f.store, m, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := fl.All(f.ctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- fl.Run(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	if _, err := f.store.Put(f.ctx, "p2", []byte(smallPlan), "low SpO2 at home"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		n := len(m.filled)
		m.mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.mu.Lock()
	filled := slices.Clone(m.filled)
	m.mu.Unlock()
	slices.Sort(filled)
	h.mu.Lock()
	asked := slices.Clone(h.asked)
	h.mu.Unlock()
	slices.Sort(asked)
	if len(filled) != 2 || !strings.HasPrefix(filled[0], "p1 v1: ") || !strings.HasPrefix(filled[1], "p2 v1: ") {
		t.Fatalf("filled %q, asked %q: want both plans read back", filled, asked)
	}
	// The heart failure template's weight rule reads three days.
	if len(asked) != 2 || !strings.Contains(asked[0], "weight") || !strings.HasSuffix(asked[0], "over 72h0m0s") || !strings.HasSuffix(asked[1], "over 24h0m0s") {
		t.Errorf("asked %q", asked)
	}
}
