package alerting

import (
	"reflect"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// A row says which parameters its NEWS2 lacks for a full score, and when
// each was last measured: never, stale (older than its freshness window),
// or taken out again by an entered-in-error mark; a fresh value is not
// needed.
func TestRowNeeds(t *testing.T) {
	at := func(ago time.Duration) time.Time { return t0.Add(-ago) }
	rd := func(kind vward.ReadingKind, v float64, ago time.Duration) vward.Reading {
		return vward.Reading{Device: "d1", Patient: "p1", Ward: "w1", Kind: kind, Value: v, At: at(ago)}
	}
	byPhone := func(kind vward.ReadingKind, v float64, ago time.Duration) vward.Reading {
		r := rd(kind, v, ago)
		r.Device = "person:telephone"
		return r
	}
	// What an oximeter, a cuff and a thermometer send, a minute ago.
	devices := []vward.Reading{
		rd(vward.SpO2, 97, time.Minute), rd(vward.HeartRate, 72, time.Minute),
		rd(vward.SystolicBP, 128, time.Minute), rd(vward.DiastolicBP, 80, time.Minute),
		rd(vward.Temperature, 36.8, time.Minute),
	}
	phone := []vward.Reading{
		byPhone(vward.RespiratoryRate, 16, 2*time.Minute), byPhone(vward.Consciousness, 0, 2*time.Minute),
		byPhone(vward.SupplementalOxygen, 0, 2*time.Minute),
	}
	type need struct {
		p   news2.Parameter
		ago time.Duration // -1: never measured
	}
	never := time.Duration(-1)
	for _, tc := range []struct {
		name     string
		readings []vward.Reading
		wrong    []vward.Reading // marked entered in error after
		earlier  []vward.Reading // what the retraction offers instead
		want     []need
	}{
		{name: "nothing measured", want: []need{
			{news2.RespiratoryRate, never}, {news2.SpO2, never}, {news2.SupplementalOxygen, never},
			{news2.SystolicBP, never}, {news2.HeartRate, never}, {news2.Consciousness, never}, {news2.Temperature, never}}},
		{name: "devices only: the telephone questions never asked", readings: devices, want: []need{
			{news2.RespiratoryRate, never}, {news2.SupplementalOxygen, never}, {news2.Consciousness, never}}},
		{name: "a fresh telephone set completes it", readings: append(devices[:len(devices):len(devices)], phone...), want: nil},
		{name: "the telephone set of this morning is stale",
			readings: append(devices[:len(devices):len(devices)],
				byPhone(vward.RespiratoryRate, 16, 3*time.Hour), byPhone(vward.Consciousness, 0, 3*time.Hour),
				byPhone(vward.SupplementalOxygen, 0, 3*time.Hour)),
			want: []need{{news2.RespiratoryRate, 3 * time.Hour}, {news2.SupplementalOxygen, 3 * time.Hour}, {news2.Consciousness, 3 * time.Hour}}},
		{name: "just inside the window is fresh, just outside is stale",
			readings: append(devices[:len(devices):len(devices)],
				byPhone(vward.RespiratoryRate, 16, 59*time.Minute), byPhone(vward.Consciousness, 0, 61*time.Minute),
				byPhone(vward.SupplementalOxygen, 0, time.Minute)),
			want: []need{{news2.Consciousness, 61 * time.Minute}}},
		{name: "everything stale: no score, every parameter needed with its time",
			readings: []vward.Reading{rd(vward.SpO2, 97, 2*time.Hour), rd(vward.HeartRate, 72, 2*time.Hour)},
			want: []need{
				{news2.RespiratoryRate, never}, {news2.SpO2, 2 * time.Hour}, {news2.SupplementalOxygen, never},
				{news2.SystolicBP, never}, {news2.HeartRate, 2 * time.Hour}, {news2.Consciousness, never}, {news2.Temperature, never}}},
		{name: "entered in error, nothing earlier: needed, never measured",
			readings: append(devices[:len(devices):len(devices)], phone...), wrong: phone,
			want: []need{{news2.RespiratoryRate, never}, {news2.SupplementalOxygen, never}, {news2.Consciousness, never}}},
		{name: "entered in error: the earlier, stale value is the last one",
			readings: append(devices[:len(devices):len(devices)], phone...), wrong: phone,
			earlier: []vward.Reading{byPhone(vward.Consciousness, 0, 5*time.Hour)},
			want:    []need{{news2.RespiratoryRate, never}, {news2.SupplementalOxygen, never}, {news2.Consciousness, 5 * time.Hour}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMonitor(news2.DefaultFreshness(), nil, nil, quiet)
			m.now = func() time.Time { return t0 }
			m.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "One"})
			if len(tc.readings) > 0 {
				m.Observe(tc.readings)
			}
			if len(tc.wrong) > 0 && !m.Retract("p1", tc.wrong, tc.earlier, "entered in error") {
				t.Fatal("the retraction changed nothing")
			}
			row, _ := m.Patient("p1")
			want := []Need{}
			for _, n := range tc.want {
				w := Need{Parameter: n.p}
				if n.ago >= 0 {
					w.LastAt = at(n.ago)
				}
				want = append(want, w)
			}
			got := row.Needs()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("needs %+v\nwant  %+v", got, want)
			}
			// What is needed is what the score is missing, in its order.
			var missing []string
			if row.Scored {
				missing = NewScore(row.Result).Missing
			} else {
				for p := range news2.NumParameters {
					missing = append(missing, p.String())
				}
			}
			var names []string
			for _, n := range got {
				names = append(names, n.Parameter.String())
			}
			if !reflect.DeepEqual(names, missing) && len(names)+len(missing) > 0 {
				t.Errorf("needs %v, but the score is missing %v", names, missing)
			}
			if complete := len(got) == 0; complete != row.Result.Complete {
				t.Errorf("needs nothing: %v, complete: %v", complete, row.Result.Complete)
			}
		})
	}
}
