package alerting

import (
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
)

// A streaming device's set that would raise a NEWS2 alert is held for
// Policy.StreamConfirm: a one-second SpO2 dip on a wearable raises
// nothing, a two-minute one raises; a spot check's or a person's set
// raises at once.
func TestStreamConfirm(t *testing.T) {
	const wearable = vward.DeviceID("wear-p1")
	spo2 := func(dev vward.DeviceID, v float64, at time.Time) []vward.Reading {
		return []vward.Reading{{Device: dev, Patient: "p1", Ward: "w1", MsgID: at.Format(time.RFC3339Nano), Kind: vward.SpO2, Value: v, At: at}}
	}
	// stream sends one SpO2 a second from the wearable from at, the
	// engine's clock following and its timers checked after each.
	stream := func(r *rig, at time.Time, values ...float64) time.Time {
		for _, v := range values {
			r.clock.Set(at)
			r.monitor.Observe(spo2(wearable, v, at))
			r.engine.Tick()
			at = at.Add(time.Second)
		}
		return at
	}
	repeat := func(v float64, n int) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	// Each case starts from a full normal set (NEWS2 0) at t0 and the
	// wearable streaming 97 % for ten seconds; SpO2 85 % scores 3, a red
	// score: low-medium.
	tests := []struct {
		name    string
		confirm time.Duration
		run     func(r *rig, at time.Time)
		raised  bool
		held    bool // the raise's reason says it was held to confirm
	}{
		{"a one-second dip", 0, func(r *rig, at time.Time) {
			at = stream(r, at, 85)
			at = stream(r, at, repeat(97, 90)...)
			r.clock.Set(at.Add(5 * time.Minute))
			r.engine.Tick()
		}, false, false},
		{"a dip of 20 s, shorter than the hold", 0, func(r *rig, at time.Time) {
			at = stream(r, at, repeat(85, 20)...)
			stream(r, at, repeat(97, 60)...)
		}, false, false},
		{"a two-minute dip", 0, func(r *rig, at time.Time) {
			stream(r, at, repeat(85, 120)...)
		}, true, true},
		{"the stream stops mid-dip", 0, func(r *rig, at time.Time) {
			at = stream(r, at, 85, 86)
			for range 40 {
				at = at.Add(time.Second)
				r.clock.Set(at)
				r.engine.Tick()
			}
		}, true, true},
		{"a spot check raises at once", 0, func(r *rig, at time.Time) {
			r.clock.Set(at)
			r.monitor.Observe(spo2("spot-ox", 85, at))
		}, true, false},
		{"a person's entries a moment apart raise at once", 0, func(r *rig, at time.Time) {
			r.clock.Set(at)
			r.monitor.Observe(spo2("person:telephone", 96, at))
			r.clock.Set(at.Add(10 * time.Second))
			r.monitor.Observe(spo2("person:telephone", 85, at.Add(10*time.Second)))
		}, true, false},
		{"no hold when the ward turns it off", NoStreamConfirm, func(r *rig, at time.Time) {
			stream(r, at, 85)
		}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: t0}
			r := newRig(t, dbPath(t), clk, Config{Policy: Policy{StreamConfirm: tc.confirm}})
			r.observe(normal, t0)
			at := stream(r, t0.Add(time.Second), repeat(97, 10)...)
			if n := len(r.clinical(t)); n != 0 {
				t.Fatalf("%d alerts before the dip", n)
			}
			tc.run(r, at)
			open := r.clinical(t)
			if got := len(open) == 1; got != tc.raised || len(open) > 1 {
				t.Fatalf("open alerts %+v, want raised %v", open, tc.raised)
			}
			if !tc.raised {
				return
			}
			a := open[0]
			if a.Condition != News2 {
				t.Errorf("raised %s, want news2", a.Condition)
			}
			if held := strings.Contains(a.Reason, "held"); held != tc.held {
				t.Errorf("reason %q: says held %v, want %v", a.Reason, held, tc.held)
			}
			if tc.held {
				// Raised no earlier than the hold after the dip began, and
				// at most a tick after it.
				began := at
				if d := a.RaisedAt.Sub(began); d < 30*time.Second || d > 32*time.Second {
					t.Errorf("raised %s after the dip began, want the 30 s hold", d)
				}
			}
		})
	}
}

// The hold is bounded: a ward cannot set it beyond MaxStreamConfirm.
func TestStreamConfirmBounded(t *testing.T) {
	for _, tc := range []struct{ set, want time.Duration }{
		{0, 30 * time.Second},
		{10 * time.Second, 10 * time.Second},
		{time.Minute, time.Minute},
		{10 * time.Minute, MaxStreamConfirm},
		{NoStreamConfirm, NoStreamConfirm},
	} {
		if got := (Policy{StreamConfirm: tc.set}).over(DefaultPolicy()).StreamConfirm; got != tc.want {
			t.Errorf("StreamConfirm %s: effective %s, want %s", tc.set, got, tc.want)
		}
	}
}
