package history

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vward/vward"
)

// Memory keeps the most recent readings of each patient in RAM, up to
// PerPatient of them, so that the demo runs with nothing installed. It is
// not durable: a restart loses it, and the board says so.
type Memory struct {
	perPatient int

	mu       sync.Mutex
	patients map[vward.PatientID]*ring
}

// NewMemory returns a history that keeps at most perPatient readings a patient.
func NewMemory(perPatient int) *Memory {
	return &Memory{perPatient: perPatient, patients: make(map[vward.PatientID]*ring)}
}

type key struct {
	kind vward.ReadingKind
	at   int64
}

// ring is one patient's readings, with an index so that a redelivered
// reading replaces its first copy as it would in InfluxDB.
type ring struct {
	buf   []vward.Reading
	next  int
	full  bool
	index map[key]int
}

// WriteReadings implements Store.
func (m *Memory) WriteReadings(_ context.Context, rs []vward.Reading) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rs {
		g := m.patients[r.Patient]
		if g == nil {
			g = &ring{buf: make([]vward.Reading, m.perPatient), index: make(map[key]int)}
			m.patients[r.Patient] = g
		}
		k := key{r.Kind, r.At.UnixNano()}
		if i, ok := g.index[k]; ok {
			g.buf[i] = r
			continue
		}
		if g.full {
			old := g.buf[g.next]
			delete(g.index, key{old.Kind, old.At.UnixNano()})
		}
		g.buf[g.next] = r
		g.index[k] = g.next
		g.next++
		if g.next == len(g.buf) {
			g.next, g.full = 0, true
		}
	}
	return nil
}

// Readings implements Store.
func (m *Memory) Readings(_ context.Context, p vward.PatientID, from, to time.Time) ([]vward.Reading, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.patients[p]
	if g == nil {
		return nil, nil
	}
	var out []vward.Reading
	for _, i := range g.index {
		r := g.buf[i]
		if !r.At.Before(from) && r.At.Before(to) {
			out = append(out, r)
		}
	}
	sortByTime(out)
	return out, nil
}

// ReadingsOf implements Store.
func (m *Memory) ReadingsOf(ctx context.Context, p vward.PatientID, kinds []vward.ReadingKind, from, to time.Time, limit int) ([]vward.Reading, error) {
	rs, _ := m.Readings(ctx, p, from, to)
	type series struct {
		device vward.DeviceID
		kind   vward.ReadingKind
	}
	kept := make(map[series]int)
	out := make([]vward.Reading, 0, len(rs))
	for i := len(rs) - 1; i >= 0; i-- { // newest first, for the limit
		r := rs[i]
		s := series{r.Device, r.Kind}
		if !slices.Contains(kinds, r.Kind) || kept[s] >= limit {
			continue
		}
		kept[s]++
		out = append(out, r)
	}
	slices.Reverse(out)
	return out, nil
}

// Thinned implements Store, as InfluxDB's window() and selectors do.
func (m *Memory) Thinned(ctx context.Context, p vward.PatientID, from, to time.Time, every time.Duration) ([]vward.Reading, error) {
	rs, _ := m.Readings(ctx, p, from, to)
	every = max(every, time.Second)
	type window struct {
		device vward.DeviceID
		kind   vward.ReadingKind
		n      int64
	}
	type picks struct{ first, lo, hi, last int }
	ws := map[window]*picks{}
	for i, r := range rs {
		// Windows from the Unix epoch, as InfluxDB's window() draws them.
		w := window{r.Device, r.Kind, r.At.UnixNano() / int64(every)}
		pk := ws[w]
		if pk == nil {
			ws[w] = &picks{i, i, i, i}
			continue
		}
		if r.Value < rs[pk.lo].Value {
			pk.lo = i
		}
		if r.Value > rs[pk.hi].Value {
			pk.hi = i
		}
		pk.last = i
	}
	keep := make([]bool, len(rs))
	for _, pk := range ws {
		keep[pk.first], keep[pk.lo], keep[pk.hi], keep[pk.last] = true, true, true, true
	}
	out := make([]vward.Reading, 0, 4*len(ws))
	for i, r := range rs {
		if keep[i] {
			out = append(out, r)
		}
	}
	return out, nil
}

// Earliest implements Store.
func (m *Memory) Earliest(ctx context.Context, p vward.PatientID) (time.Time, bool, error) {
	rs, _ := m.Readings(ctx, p, time.Unix(0, 0), time.Now().Add(24*time.Hour))
	if len(rs) == 0 {
		return time.Time{}, false, nil
	}
	return rs[0].At, true, nil
}

// Latest implements Store.
func (m *Memory) Latest(_ context.Context, from, to time.Time) ([]vward.Reading, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []vward.Reading
	for _, g := range m.patients {
		newest := make(map[vward.ReadingKind]vward.Reading)
		for _, i := range g.index {
			r := g.buf[i]
			if r.At.Before(from) || !r.At.Before(to) {
				continue
			}
			if cur, ok := newest[r.Kind]; !ok || r.At.After(cur.At) {
				newest[r.Kind] = r
			}
		}
		for _, r := range newest {
			out = append(out, r)
		}
	}
	sortByTime(out)
	return out, nil
}

// Ping implements Store.
func (m *Memory) Ping(context.Context) error { return nil }

// Describe implements Store.
func (m *Memory) Describe() string {
	return "in memory only (not durable; start with --influx-url to keep readings)"
}

func sortByTime(rs []vward.Reading) {
	sort.Slice(rs, func(a, b int) bool { return rs[a].At.Before(rs[b].At) })
}
