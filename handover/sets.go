package handover

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
)

// Entries is what the sources read of the observations people entered
// (observations.Store), to name who entered a value; nil names none.
type Entries interface {
	Entry(ctx context.Context, id int64) (observations.Entry, error)
	Since(ctx context.Context, patient vward.PatientID, from time.Time) ([]observations.Entry, error)
}

// LiveSets reads the patient's set as the running node holds it now: the
// monitor's latest value of each parameter with the device or person that
// measured it, and the NEWS2 trend the board shows.
type LiveSets struct {
	monitor  *alerting.Monitor
	entries  Entries
	fallback SetSource
}

// NewLiveSets reads sets from the monitor. A patient the monitor does not
// hold (discharged since the alert) is assessed from the alert's evidence.
func NewLiveSets(m *alerting.Monitor, entries Entries, trends *alerting.Store) *LiveSets {
	return &LiveSets{monitor: m, entries: entries, fallback: NewAlertEvidence(entries, trends)}
}

// Observed implements SetSource.
func (l *LiveSets) Observed(ctx context.Context, a alerting.Alert, audit []alerting.AuditEntry) (Observed, error) {
	row, ok := l.monitor.Patient(a.Patient)
	if !ok {
		return l.fallback.Observed(ctx, a, audit)
	}
	o := Observed{Freshness: l.monitor.Freshness(), Trend: row.Trend}
	o.Set.Scale = news2.Scale(row.SpO2Scale)
	for p := range news2.NumParameters {
		r := row.Vitals[p.Kind().Index()]
		if r.Kind == "" {
			continue
		}
		o.Set.Update(p, r.Value, r.At)
		o.Sources[p] = l.source(ctx, r)
	}
	return o, nil
}

// source names who measured a reading: its device, or the person who
// entered it and how.
func (l *LiveSets) source(ctx context.Context, r vward.Reading) string {
	if !observations.Entered(r) {
		return "device " + string(r.Device)
	}
	how := strings.ReplaceAll(strings.TrimPrefix(string(r.Device), observations.DevicePrefix), "_", " ")
	if l.entries != nil {
		if id, err := observations.ParseName(r.MsgID); err == nil {
			if e, err := l.entries.Entry(ctx, id); err == nil {
				return fmt.Sprintf("%s, entered by %s (%s)", how, e.Author, e.Name())
			}
		}
	}
	return how + ", entered by a person"
}

// AlertEvidence reads the set from the alert's own audit: the observation
// set behind its latest change, with the trend kept in the store. It is
// what another process (the command line) has of a patient without the
// running node's monitor.
type AlertEvidence struct {
	entries Entries
	trends  *alerting.Store
}

// NewAlertEvidence reads sets from alert audits; entries and trends may
// be nil.
func NewAlertEvidence(entries Entries, trends *alerting.Store) *AlertEvidence {
	return &AlertEvidence{entries: entries, trends: trends}
}

// setEvidence is the observation set an alert's audit keeps
// (alerting's setEvidence).
type setEvidence struct {
	Scale  int `json:"spo2_scale"`
	Values map[string]struct {
		Value float64   `json:"value"`
		At    time.Time `json:"at"`
	} `json:"values"`
}

// Observed implements SetSource.
func (e *AlertEvidence) Observed(ctx context.Context, a alerting.Alert, audit []alerting.AuditEntry) (Observed, error) {
	o := Observed{Freshness: news2.DefaultFreshness()}
	for i := len(audit) - 1; i >= 0; i-- {
		var ev setEvidence
		if len(audit[i].Observations) == 0 || json.Unmarshal(audit[i].Observations, &ev) != nil || ev.Scale == 0 {
			continue
		}
		o.Set.Scale = news2.Scale(ev.Scale)
		var oldest time.Time
		for p := range news2.NumParameters {
			v, ok := ev.Values[p.String()]
			if !ok {
				continue
			}
			o.Set.Update(p, v.Value, v.At)
			o.Sources[p] = "a device"
			if oldest.IsZero() || v.At.Before(oldest) {
				oldest = v.At
			}
		}
		if e.entries != nil && !oldest.IsZero() {
			es, err := e.entries.Since(ctx, a.Patient, oldest)
			if err != nil {
				return Observed{}, err
			}
			for _, en := range es {
				for _, r := range en.Readings {
					p, ok := news2.ParameterOf(r.Kind)
					if v, at, held := o.Set.Latest(p); ok && held && at.Equal(r.At) && v == r.Value {
						o.Sources[p] = fmt.Sprintf("%s, entered by %s (%s)", strings.ReplaceAll(string(en.Source), "_", " "), en.Author, en.Name())
					}
				}
			}
		}
		break
	}
	if e.trends != nil {
		ts, err := e.trends.LoadTrends(ctx, time.Now().Add(-TrendWindow))
		if err != nil {
			return Observed{}, err
		}
		o.Trend = ts[a.Patient]
	}
	return o, nil
}
