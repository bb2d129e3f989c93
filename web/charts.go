package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
)

// The patient view's charts (docs/observations.md, "Charts"): a patient's
// readings over a range, each with where it came from, and their NEWS2
// over the same range, scored from those readings.

// chartReach is the furthest back a chart reaches, 31 days: a longer stay
// shows its last 31 days.
const chartReach = 744 * time.Hour

// chartWindow is the time a chart covers, up to now.
type chartWindow struct {
	from, to time.Time
	stay     bool // from the admission
	capped   bool // the stay is longer than chartReach
}

// chartWindowOf reads ?hours=N (1–744, 24 when left out) or ?since=stay
// (from the patient's admission), answering a bad value or an unknown
// parameter with a 400 that names it.
func (s *Server) chartWindowOf(w http.ResponseWriter, r *http.Request, id vward.PatientID) (chartWindow, bool) {
	q := r.URL.Query()
	now := time.Now().UTC()
	win := chartWindow{from: now.Add(-24 * time.Hour), to: now}
	for k := range q {
		if k != "hours" && k != "since" {
			// "?hour=6" is a typo, not the default 24 hours.
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q: give hours=N or since=stay", k))
			return win, false
		}
	}
	hours, since := q.Get("hours"), q.Get("since")
	switch {
	case hours != "" && since != "":
		writeError(w, http.StatusBadRequest, fmt.Sprintf("hours=%q and since=%q: give one of them, not both", hours, since))
		return win, false
	case hours != "":
		// Whole hours only: "1h2" or "0.0000001" is a typo, not a span.
		n, err := strconv.Atoi(hours)
		if err != nil || n < 1 || n > int(chartReach/time.Hour) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("hours=%q: want a whole number of hours from 1 to %d", hours, int(chartReach/time.Hour)))
			return win, false
		}
		win.from = now.Add(-time.Duration(n) * time.Hour)
	case since != "":
		if since != "stay" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since=%q: want since=stay, the patient's stay from their admission", since))
			return win, false
		}
		if s.Registry == nil {
			writeError(w, http.StatusServiceUnavailable, "since=stay: the registry of stays is not available here")
			return win, false
		}
		p, err := s.Registry.Patient(r.Context(), id)
		if errors.Is(err, vward.ErrNotFound) {
			writeError(w, http.StatusNotFound, "no such patient")
			return win, false
		}
		if err != nil {
			s.log.Error("read the patient's stay", "patient", id, "err", err)
			writeError(w, http.StatusServiceUnavailable, "the registry of stays is unavailable")
			return win, false
		}
		win.from, win.stay = p.Admitted.UTC(), true
		if oldest := now.Add(-chartReach); win.from.Before(oldest) {
			win.from, win.capped = oldest, true
		}
	}
	return win, true
}

// chartReading is a reading as the charts draw it: a device's, or one of
// an entry people made.
type chartReading struct {
	vward.Reading
	entry *observations.Entry // nil for a device's reading, or where the entries are not known
	gap   bool                // starts a run of its kind (markRuns)
}

func (r chartReading) inError() bool { return r.entry != nil && r.entry.Error != nil }

// chartReadings returns a patient's readings measured in [from, to),
// oldest first: the devices' from the history, and the entries people made
// from the entries' store, which knows who made each and which are marked
// in error (the history keeps what was entered, in error or not).
func (s *Server) chartReadings(ctx context.Context, id vward.PatientID, from, to time.Time) ([]chartReading, error) {
	rs, err := s.history.Readings(ctx, id, from, to)
	if err != nil {
		return nil, fmt.Errorf("read the history of %s: %w", id, err)
	}
	return s.withEntries(ctx, id, rs, from, to)
}

// historyPart is how much of a patient's history the scores and FHIR's
// Observations read at a time: a month of a wearable is never held whole.
const historyPart = 24 * time.Hour

// byDay gives fn a patient's readings (chartReadings) measured in
// [from, to), historyPart at a time, oldest first, each part with its end;
// fn returning false stops it.
func (s *Server) byDay(ctx context.Context, id vward.PatientID, from, to time.Time, fn func(rs []chartReading, end time.Time) (bool, error)) error {
	for part := from; part.Before(to); part = part.Add(historyPart) {
		end := part.Add(historyPart)
		if end.After(to) {
			end = to
		}
		rs, err := s.chartReadings(ctx, id, part, end)
		if err != nil {
			return err
		}
		if more, err := fn(rs, end); err != nil || !more {
			return err
		}
	}
	return nil
}

// chartSeriesLimit is the most readings of one kind from one device the
// charts read whole; a range with more is read thinned at the source
// (history.Store.Thinned), in thinBuckets windows: a month of a 1 Hz
// wearable is millions of readings, which must not be held in memory to
// draw 1500 pixels.
const chartSeriesLimit = thinAbove

// drawnReadings is chartReadings for drawing: whole, or thinned at the
// source when some series holds more than chartSeriesLimit readings in
// the range, when it returns the windows' width (0: whole).
func (s *Server) drawnReadings(ctx context.Context, id vward.PatientID, from, to time.Time) ([]chartReading, time.Duration, error) {
	rs, err := s.history.ReadingsOf(ctx, id, vward.ReadingKinds, from, to, chartSeriesLimit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("read the history of %s: %w", id, err)
	}
	type series struct {
		device vward.DeviceID
		kind   vward.ReadingKind
	}
	n := map[series]int{}
	var every time.Duration
	for _, r := range rs {
		if n[series{r.Device, r.Kind}]++; n[series{r.Device, r.Kind}] > chartSeriesLimit {
			every = max(to.Sub(from)/thinBuckets, time.Second)
			break
		}
	}
	if every > 0 {
		if rs, err = s.history.Thinned(ctx, id, from, to, every); err != nil {
			return nil, 0, fmt.Errorf("read the history of %s, thinned: %w", id, err)
		}
	}
	out, err := s.withEntries(ctx, id, rs, from, to)
	return out, every, err
}

// withEntries is rs, oldest first, with the entered readings as the
// entries' store says.
func (s *Server) withEntries(ctx context.Context, id vward.PatientID, rs []vward.Reading, from, to time.Time) ([]chartReading, error) {
	out := make([]chartReading, 0, len(rs))
	for _, r := range rs {
		if s.Observations == nil || !observations.Entered(r) {
			out = append(out, chartReading{Reading: r})
		}
	}
	if s.Observations == nil {
		return out, nil
	}
	es, err := s.Observations.Store().Measured(ctx, id, from, to)
	if err != nil {
		return nil, fmt.Errorf("read the entries of %s: %w", id, err)
	}
	for i := range es {
		for _, r := range es[i].Readings {
			out = append(out, chartReading{Reading: r, entry: &es[i]})
		}
	}
	slices.SortStableFunc(out, func(a, b chartReading) int { return a.At.Compare(b.At) })
	return out, nil
}

// chartPoint is one reading of GET /api/v1/patients/{id}/readings.
type chartPoint struct {
	Kind   vward.ReadingKind `json:"kind"`
	Value  float64           `json:"value"`
	At     time.Time         `json:"at"`
	Device vward.DeviceID    `json:"device"`
	// Source, EnteredBy and Entry say who entered an entered reading
	// (device "person:<source>"); EnteredInError that it no longer counts.
	Source         observations.Source `json:"source,omitempty"`
	EnteredBy      string              `json:"entered_by,omitempty"`
	Entry          string              `json:"entry,omitempty"`
	EnteredInError bool                `json:"entered_in_error,omitempty"`
	// Gap: no line to this reading from the kind's one before, which is
	// not close enough in time to be continuous with it (chartruns.go).
	Gap bool `json:"gap,omitempty"`
}

// chartKinds are the kinds with a chart of their own and NEWS2 bands;
// diastolic BP shares the systolic chart and is not scored.
var chartKinds = []news2.Parameter{news2.RespiratoryRate, news2.SpO2, news2.SystolicBP, news2.HeartRate, news2.Temperature}

// readings returns a patient's readings over a range (chartWindowOf),
// each marked where a gap comes before it, thinned when there are too many
// to draw (chartruns.go), with each scored kind's NEWS2 bands on the
// patient's SpO2 scale and how long a value counts.
func (s *Server) readings(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	row, ok := s.visiblePatient(r, id)
	if !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return
	}
	win, ok := s.chartWindowOf(w, r, id)
	if !ok {
		return
	}
	// An hour ahead: a device's clock may run fast.
	rs, every, err := s.drawnReadings(r.Context(), id, win.from, win.to.Add(time.Hour))
	if err != nil {
		s.log.Error("read the readings for the charts", "patient", id, "err", err)
		writeError(w, http.StatusBadGateway, "the reading history is unavailable")
		return
	}
	f := s.monitor.Freshness()
	// Thinned at the source, readings up to two windows apart may be one
	// run: at that range a shorter gap is not a pixel wide.
	markRuns(rs, f, 2*every)
	rs, thinned := thin(rs, win.from, win.to)
	thinned = thinned || every > 0
	out := make([]chartPoint, len(rs))
	for i, r := range rs {
		p := chartPoint{Kind: r.Kind, Value: r.Value, At: r.At, Device: r.Device, Gap: r.gap}
		if e := r.entry; e != nil {
			p.Source, p.EnteredBy, p.Entry, p.EnteredInError = e.Source, e.Author, e.Name(), e.Error != nil
		} else if observations.Entered(r.Reading) {
			p.Source = observations.Source(strings.TrimPrefix(string(r.Device), observations.DevicePrefix))
		}
		out[i] = p
	}
	scale := news2.Scale(row.SpO2Scale)
	bands := map[string][]news2.Band{}
	for _, p := range chartKinds {
		bands[p.String()] = news2.Bands(p, scale, false)
	}
	if scale == news2.Scale2 {
		bands["spo2_on_oxygen"] = news2.Bands(news2.SpO2, scale, true)
	}
	fresh := make(map[string]float64, news2.NumParameters)
	for p := range news2.NumParameters {
		fresh[p.String()] = f[p].Seconds()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"patient": id, "from": win.from, "to": win.to, "stay": win.stay, "capped": win.capped,
		"spo2_scale": row.SpO2Scale, "bands": bands, "freshness_seconds": fresh, "thinned": thinned, "readings": out,
	})
}

// scorePoint is one point of GET /api/v1/patients/{id}/scores: the NEWS2
// from At until the next point. Score is null when no parameter was
// current.
type scorePoint struct {
	At       time.Time `json:"at"`
	Score    *int      `json:"score"`
	Risk     string    `json:"risk,omitempty"`
	RedScore bool      `json:"red_score,omitempty"`
	Complete bool      `json:"complete"`
	Missing  []string  `json:"missing,omitempty"`
}

// scores returns a patient's NEWS2 over a range (chartWindowOf), scored
// from their readings as the monitor scores them (alerting.ScoreSeries):
// the devices' and the entries not marked in error, with the monitor's
// freshness and the patient's SpO2 scale as prescribed now.
func (s *Server) scores(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	row, ok := s.visiblePatient(r, id)
	if !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return
	}
	win, ok := s.chartWindowOf(w, r, id)
	if !ok {
		return
	}
	f := s.monitor.Freshness()
	// From a window earlier: the score at from is of the values current
	// then.
	scorer := alerting.NewSeriesScorer(news2.Scale(row.SpO2Scale), f, win.from, win.to)
	var counted []vward.Reading
	err := s.byDay(r.Context(), id, win.from.Add(-slices.Max(f[:])), win.to.Add(time.Nanosecond), func(rs []chartReading, _ time.Time) (bool, error) {
		counted = counted[:0]
		for _, r := range rs {
			if !r.inError() {
				counted = append(counted, r.Reading)
			}
		}
		scorer.Add(counted)
		return true, nil
	})
	if err != nil {
		s.log.Error("read the readings to score", "patient", id, "err", err)
		writeError(w, http.StatusBadGateway, "the reading history is unavailable")
		return
	}
	series := scorer.Finish()
	out := make([]scorePoint, len(series))
	for i, p := range series {
		out[i] = scorePoint{At: p.At}
		if p.Scored {
			sc := alerting.NewScore(p.Result)
			out[i].Score, out[i].Risk, out[i].RedScore, out[i].Complete = &sc.Score, sc.Risk, sc.RedScore, sc.Complete
			if len(sc.Missing) > 0 {
				out[i].Missing = sc.Missing
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"patient": id, "from": win.from, "to": win.to, "stay": win.stay, "capped": win.capped,
		"spo2_scale": row.SpO2Scale, "scores": out,
	})
}
