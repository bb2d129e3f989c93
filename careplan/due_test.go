package careplan

import (
	"testing"
	"time"
	_ "time/tzdata" // Europe/London for the clock-change case, on any machine

	"github.com/vward/vward"
)

func TestDue(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	plus2 := time.FixedZone("UTC+2", 2*3600)
	mon := func(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, time.UTC) } // a Monday
	fourHourly := Expectation{Kind: vward.SpO2, Every: 4 * time.Hour}
	daily10 := Expectation{Kind: Weight, Every: day, By: 10 * time.Hour}
	twoDaily10 := Expectation{Kind: Weight, Every: 2 * day, By: 10 * time.Hour}
	cases := []struct {
		name    string
		e       Expectation
		start   time.Time
		last    time.Time // zero: never measured
		loc     *time.Location
		want    time.Time
		overdue []time.Time // times at which it is overdue
		notYet  []time.Time // and is not
	}{
		{name: "never measured: an interval from the start", e: fourHourly, start: mon(8, 0), want: mon(12, 0),
			notYet: []time.Time{mon(12, 0)}, overdue: []time.Time{mon(12, 0).Add(time.Second)}},
		{name: "an interval from the last", e: fourHourly, start: mon(8, 0), last: mon(9, 0), want: mon(13, 0),
			notYet: []time.Time{mon(12, 59)}, overdue: []time.Time{mon(13, 1)}},
		{name: "a measurement from before the start", e: fourHourly, start: mon(8, 0), last: mon(5, 0), want: mon(12, 0)},
		{name: "by 10:00, started before it: due today", e: daily10, start: mon(9, 0), want: mon(10, 0),
			notYet: []time.Time{mon(10, 0)}, overdue: []time.Time{mon(10, 1)}},
		{name: "by 10:00, started after it: due tomorrow", e: daily10, start: mon(11, 0), want: mon(10, 0).Add(day)},
		{name: "weighed before the plan started, the same day", e: daily10, start: mon(9, 0), last: mon(8, 0), want: mon(10, 0).Add(day),
			notYet: []time.Time{mon(10, 1)}},
		{name: "weighed late covers the day", e: daily10, start: mon(6, 0), last: mon(10, 30), want: mon(10, 0).Add(day)},
		{name: "weighed at night covers that day", e: daily10, start: mon(6, 0), last: mon(23, 30), want: mon(10, 0).Add(day)},
		{name: "weighed days ago", e: daily10, start: mon(6, 0).Add(-5 * day), last: mon(9, 0).Add(-3 * day), want: mon(10, 0).Add(-2 * day),
			overdue: []time.Time{mon(9, 0)}},
		{name: "every second day", e: twoDaily10, start: mon(6, 0), last: mon(9, 0), want: mon(10, 0).Add(2 * day),
			notYet: []time.Time{mon(10, 0).Add(day + time.Hour)}},
		{name: "the ward's day, not UTC's", e: daily10, start: mon(6, 0), last: mon(23, 30), loc: plus2,
			want: time.Date(2026, 11, 25, 10, 0, 0, 0, plus2)},
		{name: "10:00 on the day the clocks go forward", e: daily10, loc: london,
			start: time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), last: time.Date(2026, 3, 28, 9, 0, 0, 0, time.UTC),
			want: time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &Plan{Expected: []Expectation{c.e}}
			last := map[vward.ReadingKind]time.Time{}
			if !c.last.IsZero() {
				last[c.e.Kind] = c.last
			}
			ds := p.Due(c.start, c.start, last, c.loc, nil)
			if len(ds) != 1 {
				t.Fatalf("%d dues", len(ds))
			}
			if d := ds[0]; !d.At.Equal(c.want) || d.Kind != c.e.Kind || !d.Last.Equal(c.last) {
				t.Fatalf("due %v (last %v), want %v", d.At, d.Last, c.want)
			}
			for _, at := range c.overdue {
				if d := p.Due(at, c.start, last, c.loc, nil)[0]; !d.Overdue {
					t.Errorf("not overdue at %v (due %v)", at, d.At)
				}
			}
			for _, at := range c.notYet {
				if d := p.Due(at, c.start, last, c.loc, nil)[0]; d.Overdue {
					t.Errorf("overdue at %v (due %v)", at, d.At)
				}
			}
		})
	}
}

func TestDueEveryExpectation(t *testing.T) {
	p, err := Template("heart_failure")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	last := map[vward.ReadingKind]time.Time{vward.SpO2: start.Add(time.Hour), vward.HeartRate: start.Add(-2 * day)}
	ds := p.Due(start.Add(25*time.Hour), start, last, nil, make([]Due, 0, 8))
	if len(ds) != len(p.Expected) {
		t.Fatalf("%d dues for %d expectations", len(ds), len(p.Expected))
	}
	want := map[vward.ReadingKind]bool{Weight: true, vward.SpO2: false, vward.HeartRate: true, vward.SystolicBP: true}
	for _, d := range ds {
		if d.Overdue != want[d.Kind] {
			t.Errorf("%s: overdue %v at +25h, due %v", d.Kind, d.Overdue, d.At)
		}
	}
}
