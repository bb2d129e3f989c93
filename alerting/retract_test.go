package alerting

import (
	"log/slog"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// Retracting a reading held in the set brings the newest earlier value of
// its kind back; one a newer reading replaced changes nothing; a kind with
// no earlier value goes missing.
func TestRetract(t *testing.T) {
	m := NewMonitor(news2.DefaultFreshness(), nil, nil, slog.New(slog.DiscardHandler))
	m.Admit(PatientInfo{ID: "p1", Ward: "w1"})
	now := time.Now()
	device := vward.Reading{Device: "rr-1", Patient: "p1", Kind: vward.RespiratoryRate, Value: 16, At: now.Add(-20 * time.Minute)}
	wrong := []vward.Reading{
		{Device: "person:telephone", Patient: "p1", Kind: vward.RespiratoryRate, Value: 30, At: now.Add(-time.Minute)},
		{Device: "person:telephone", Patient: "p1", Kind: vward.Consciousness, Value: float64(vward.Voice), At: now.Add(-time.Minute)},
	}
	m.Observe([]vward.Reading{device})
	m.Observe(wrong)
	row, _ := m.Patient("p1")
	if row.Result.Subscores[news2.RespiratoryRate] != 3 || row.Result.Subscores[news2.Consciousness] != 3 {
		t.Fatalf("with the entry: %+v", row.Result)
	}
	// The caller passes the other readings, which may include unrelated kinds.
	earlier := []vward.Reading{device, {Device: "ox-1", Patient: "p1", Kind: vward.SpO2, Value: 90, At: now.Add(-30 * time.Minute)}}
	if !m.Retract("p1", wrong, earlier, "entered in error") {
		t.Fatal("Retract changed nothing")
	}
	row, _ = m.Patient("p1")
	if v := row.Vitals[vward.RespiratoryRate.Index()]; v.Value != 16 || v.Device != "rr-1" {
		t.Errorf("respiratory rate after the retraction: %+v, want the device's 16", v)
	}
	if v := row.Vitals[vward.Consciousness.Index()]; v.Kind != "" {
		t.Errorf("consciousness after the retraction: %+v, want none", v)
	}
	if v := row.Vitals[vward.SpO2.Index()]; v.Kind != "" {
		t.Errorf("an unrelated kind was added: %+v", v)
	}
	if row.Result.Has(news2.Consciousness) || row.Result.Subscores[news2.RespiratoryRate] != 0 || !row.LastSeen.Equal(device.At) {
		t.Errorf("after the retraction: %+v, last seen %v", row.Result, row.LastSeen)
	}

	// A reading a newer one replaced is not held: nothing changes.
	newer := vward.Reading{Device: "rr-1", Patient: "p1", Kind: vward.RespiratoryRate, Value: 18, At: now}
	m.Observe([]vward.Reading{{Device: "person:carer", Patient: "p1", Kind: vward.RespiratoryRate, Value: 25, At: now.Add(-time.Second)}})
	m.Observe([]vward.Reading{newer})
	stale := []vward.Reading{{Device: "person:carer", Patient: "p1", Kind: vward.RespiratoryRate, Value: 25, At: now.Add(-time.Second)}}
	if m.Retract("p1", stale, []vward.Reading{device}, "entered in error") {
		t.Error("Retract of a superseded reading changed the set")
	}
	if row, _ = m.Patient("p1"); row.Vitals[vward.RespiratoryRate.Index()].Value != 18 {
		t.Errorf("respiratory rate %+v, want the newer 18", row.Vitals[vward.RespiratoryRate.Index()])
	}
	if m.Retract("p9", stale, nil, "") {
		t.Error("Retract of an unknown patient changed something")
	}
}
