package burden

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
)

type fakeAlerts struct {
	b        alerting.Burden
	from, to time.Time
}

func (f *fakeAlerts) AlarmBurden(_ context.Context, _ vward.WardID, from, to time.Time) (alerting.Burden, error) {
	f.from, f.to = from, to
	return f.b, nil
}

type fakeStays []devices.StayDays

func (fakeStays) Ward(_ context.Context, id vward.WardID) (devices.Ward, error) {
	if id != "w1" {
		return devices.Ward{}, vward.Errorf(vward.ErrNotFound, "ward %s not found", id)
	}
	return devices.Ward{ID: id, Name: "Respiratory"}, nil
}

func (f fakeStays) StayDays(context.Context, vward.WardID, time.Time, time.Time) ([]devices.StayDays, error) {
	return f, nil
}

func TestBuild(t *testing.T) {
	loc := time.FixedZone("here", 3600)
	now := time.Date(2026, 11, 24, 15, 0, 0, 0, loc)
	burden := alerting.Burden{
		Raised:      map[alerting.Condition]int{alerting.News2: 3, alerting.Overdue: 1, alerting.BatteryLow: 2},
		News2Raised: map[news2.Risk]int{news2.High: 1, news2.Medium: 2},
		Cleared:     map[alerting.Condition]int{alerting.News2: 1},
		Patients: []alerting.PatientAlerts{
			{Patient: "p1", Alerts: 4, ByCondition: map[alerting.Condition]int{alerting.News2: 3, alerting.Overdue: 1}},
			{Patient: "p2", Alerts: 2, ByCondition: map[alerting.Condition]int{alerting.BatteryLow: 2}},
		},
	}
	f := func(p float64) *float64 { return &p }
	for _, c := range []struct {
		name        string
		stays       fakeStays
		top         int
		rate, news2 *float64 // all alerts, high news2 alerts
		tops        int
	}{
		{name: "one patient-day", stays: fakeStays{{Patient: "p1", Name: "Ada", Days: 1}}, top: 10, rate: f(6), news2: f(1), tops: 2},
		{name: "paused days apart", stays: fakeStays{{Patient: "p1", Name: "Ada", Days: 2, PausedDays: 3}, {Patient: "p2", Name: "Bea", Days: 2}}, top: 10, rate: f(1.5), news2: f(0.25), tops: 2},
		{name: "top one", stays: fakeStays{{Patient: "p1", Name: "Ada", Days: 3}}, top: 1, rate: f(2), news2: f(0.333), tops: 1},
		{name: "no patient-days", stays: fakeStays{{Patient: "p1", Name: "Ada", PausedDays: 7}}, top: 10, tops: 2},
		{name: "less than a patient-day", stays: fakeStays{{Patient: "p1", Name: "Ada", Days: 0.5}}, top: 10, tops: 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			fa := &fakeAlerts{b: burden}
			rep, err := Build(context.Background(), fa, c.stays, "w1", 7, c.top, now, loc)
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(2026, 11, 18, 0, 0, 0, 0, loc); !rep.From.Equal(want) || !fa.from.Equal(want) || !fa.to.Equal(now) {
				t.Errorf("window %s–%s (asked %s–%s), want from %s", rep.From, rep.At, fa.from, fa.to, want)
			}
			if rep.Alerts != 6 || rep.ClearedUnacknowledged != 1 || rep.Patients != len(c.stays) || rep.WardName != "Respiratory" {
				t.Errorf("alerts %d, cleared %d, patients %d, ward %q", rep.Alerts, rep.ClearedUnacknowledged, rep.Patients, rep.WardName)
			}
			same := func(what string, got, want *float64) {
				t.Helper()
				if (got == nil) != (want == nil) || got != nil && *got != *want {
					t.Errorf("%s per patient-day = %v, want %v", what, deref(got), deref(want))
				}
			}
			same("alerts", rep.PerPatientDay, c.rate)
			same("high news2 alerts", rep.News2ByRisk[0].PerPatientDay, c.news2)
			if *rep.News2ByRisk[0].Risk != news2.High || rep.News2ByRisk[1].Alerts != 2 || rep.News2ByRisk[2].Alerts != 0 {
				t.Errorf("news2 by risk = %+v", rep.News2ByRisk)
			}
			if q := rep.ByQueue; q[0].Queue != alerting.Clinical || q[0].Alerts != 4 || q[1].Queue != alerting.Technical || q[1].Alerts != 2 {
				t.Errorf("by queue = %+v", q)
			}
			if bc := rep.ByCondition; len(bc) != len(alerting.Conditions) || bc[0].Condition != alerting.News2 || bc[0].Alerts != 3 || *bc[0].ClearedUnacknowledged != 1 {
				t.Errorf("by condition = %+v", bc)
			}
			if len(rep.TopPatients) != c.tops || rep.TopPatients[0].Patient != "p1" || rep.TopPatients[0].Name != "Ada" || rep.TopPatients[0].ByCondition[alerting.News2] != 3 {
				t.Errorf("top patients = %+v", rep.TopPatients)
			}
		})
	}
	for _, bad := range []struct{ days, top int }{{0, 10}, {91, 10}, {7, 0}, {7, 101}} {
		if _, err := Build(context.Background(), &fakeAlerts{}, fakeStays{}, "w1", bad.days, bad.top, now, loc); !errors.Is(err, vward.ErrInvalid) {
			t.Errorf("days %d top %d: %v, want ErrInvalid", bad.days, bad.top, err)
		}
	}
	if _, err := Build(context.Background(), &fakeAlerts{}, fakeStays{}, "w9", 7, 10, now, loc); !errors.Is(err, vward.ErrNotFound) {
		t.Errorf("unknown ward: %v, want ErrNotFound", err)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
