package node_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/sqlitedb"
	"github.com/vward/vward/web"
)

// boardState is what a clinician sees after a restart must equal what
// they saw before: each patient's vitals and score, and the open alerts.
type boardState struct {
	Rows   map[vward.PatientID]string
	Alerts []string
}

func readBoardState(t *testing.T, s *session) boardState {
	t.Helper()
	var snap struct {
		Patients []web.PatientView `json:"patients"`
	}
	if code := s.do("GET", "/api/v1/patients", nil, &snap); code != 200 {
		t.Fatalf("GET /api/v1/patients: %d", code)
	}
	st := boardState{Rows: map[vward.PatientID]string{}}
	for _, p := range snap.Patients {
		var b strings.Builder
		kinds := make([]string, 0, len(p.Vitals))
		for k := range p.Vitals {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			v := p.Vitals[k]
			fmt.Fprintf(&b, "%s=%s@%s ", k, v.Display, v.At.UTC().Format(time.RFC3339))
		}
		if p.News2 != nil {
			fmt.Fprintf(&b, "news2=%d %s complete=%v", p.News2.Score, p.News2.Risk, p.News2.Complete)
		}
		st.Rows[p.Patient] = b.String()
	}
	var as struct {
		Alerts []alerting.Alert `json:"alerts"`
	}
	if code := s.do("GET", "/api/v1/alerts?state=open", nil, &as); code != 200 {
		t.Fatalf("GET /api/v1/alerts: %d", code)
	}
	for _, a := range as.Alerts {
		if a.Condition == alerting.News2 {
			st.Alerts = append(st.Alerts, fmt.Sprintf("%d %s %s %s", a.ID, a.Patient, a.Risk, a.State))
		}
	}
	sort.Strings(st.Alerts)
	return st
}

// A clean restart and a SIGKILL leave the board as it was, and a high-risk
// set stored just before a SIGKILL has its alert open after the restart.
func TestRestartKeepsBoardAndAlerts(t *testing.T) {
	t.Parallel()
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	const n = 5
	v := seededVward(t, broker, influx, n)

	// Patients 0–3 with sets from normal to high; patient 4 stays quiet.
	at := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	sets := [][]any{
		{12, 97, 120, 70, "A", 37.0},  // NEWS2 0
		{22, 94, 105, 95, "A", 37.0},  // 5, medium
		{22, 93, 105, 115, "A", 38.3}, // 8, high
		{16, 97, 120, 70, "C", 37.0},  // 3 in consciousness: low-medium
	}
	for i, s := range sets {
		msg := vitalsMessage(fmt.Sprintf("m%d", i), at.Add(time.Duration(i)*time.Second), s[0].(int), s[1].(int), s[2].(int), s[3].(int), s[4].(string), s[5].(float64))
		if err := publishOnce(broker.URL, vward.ReadingsTopic(vward.DeviceID(fmt.Sprintf("d%d", i))), msg); err != nil {
			t.Fatal(err)
		}
	}
	s := signIn(t, v.url, nurse)
	want := waitBoardState(t, s, "the first sets", func(st boardState) bool { return len(st.Alerts) == 3 })
	if len(want.Rows) != n || want.Rows["p4"] != "" {
		t.Fatalf("before any restart the rows are %v", want.Rows)
	}

	trendOf := func(s *session, p vward.PatientID) []alerting.TrendPoint {
		t.Helper()
		var row web.PatientView
		if code := s.do("GET", "/api/v1/patients/"+string(p), nil, &row); code != 200 {
			t.Fatalf("GET patient %s: %d", p, code)
		}
		return row.Trend
	}
	trend := trendOf(s, "p2")
	if len(trend) == 0 {
		t.Fatal("p2 has no trend before the restart")
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		v.stop(t, sig)
		v.start(t)
		s := signIn(t, v.url, nurse)
		got := readBoardState(t, s)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after a restart by %v the board is\n%+v\nwant as before\n%+v", sig, got, want)
		}
		// A clean stop saves the sparkline; it is read back whole.
		if after := trendOf(s, "p2"); sig == syscall.SIGTERM && (len(after) < len(trend) || !reflect.DeepEqual(after[:len(trend)], trend)) {
			t.Errorf("p2's trend after a restart by %v is %+v, want it to begin with %+v", sig, after, trend)
		}
	}

	// A high-risk set stored, then SIGKILL at once: whether or not its
	// alert reached SQLite, it is open after the restart.
	msg := vitalsMessage("m-last", at.Add(time.Minute), 26, 90, 88, 135, "A", 39.5) // NEWS2 14
	if err := publishOnce(broker.URL, vward.ReadingsTopic("d4"), msg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rows := influx.Query(t, fmt.Sprintf(`from(bucket: %q) |> range(start: -1h)
			|> filter(fn: (r) => r.patient == "p4" and r._field == "heart_rate")`, influx.Bucket))
		if len(rows) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("p4's set never reached InfluxDB")
		}
		time.Sleep(time.Millisecond)
	}
	v.stop(t, syscall.SIGKILL)
	v.start(t)
	got := waitBoardState(t, signIn(t, v.url, nurse), "after SIGKILL", func(st boardState) bool { return len(st.Alerts) == 4 })
	if !strings.Contains(got.Rows["p4"], "news2=14 high") {
		t.Errorf("p4's row after the restart is %q, want NEWS2 14", got.Rows["p4"])
	}
	found := false
	for _, a := range got.Alerts {
		found = found || strings.Contains(a, " p4 high ")
	}
	if !found {
		t.Errorf("open alerts after SIGKILL are %v, want one for p4", got.Alerts)
	}
}

// seededVward starts `vward serve`, with args beyond the usual, on a
// registry of ward w1 with patients p0… wearing devices d0…, and the nurse;
// it is killed at the test's end.
func seededVward(t *testing.T, broker *testenv.Mosquitto, influx *testenv.Influx, n int, args ...string) *vwardProcess {
	t.Helper()
	bin := buildVward(t)
	dataDir := t.TempDir()
	db, err := sqlitedb.Open(filepath.Join(dataDir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := reg.AddWard(ctx, devices.Ward{ID: ward, Name: "Respiratory"}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		p, d := vward.PatientID(fmt.Sprintf("p%d", i)), vward.DeviceID(fmt.Sprintf("d%d", i))
		if err := reg.Admit(ctx, devices.Patient{ID: p, Ward: ward, Name: "Patient " + string(p), Admitted: time.Now().Add(-24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.AddDevice(ctx, d, "monitor"); err != nil {
			t.Fatal(err)
		}
		if err := reg.Assign(ctx, d, p, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.AddClinician(ctx, devices.Clinician{Username: nurse, Role: "clinician", Wards: []vward.WardID{ward}}, password); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	v := newVwardProcess(t, bin, dataDir, broker, influx, "vward-restart")
	v.args = append(v.args, args...)
	t.Cleanup(func() { v.stop(t, syscall.SIGKILL) })
	v.start(t)
	return v
}

// SIGTERM while InfluxDB is down exits within the flush timeout (10 s):
// with the journal, which holds the message and forwards it after the next
// start, and without it, when the message is held unacknowledged and left
// to the broker to redeliver.
func TestStopWithInfluxDownIsBounded(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
	}{{"journal", nil}, {"no journal", []string{"--no-journal"}}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
			v := seededVward(t, broker, influx, 1, c.args...)
			influx.Stop(t)
			if err := publishOnce(broker.URL, vward.ReadingsTopic("d0"), vitalsMessage("held", time.Now(), 16, 97, 120, 70, "A", 37.0)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // vward has it and cannot store it in InfluxDB
			began := time.Now()
			cmd, done := v.cmd, v.done
			v.cmd = nil
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
				t.Logf("vward exited %v after SIGTERM with InfluxDB down", time.Since(began).Round(time.Millisecond))
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("vward still running 20 s after SIGTERM with InfluxDB down")
			}
		})
	}
}

func waitBoardState(t *testing.T, s *session, what string, ok func(boardState) bool) boardState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := readBoardState(t, s)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the board is %+v", what, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A clinician's change of SpO2 scale over REST rescores the patient and
// raises the alert within seconds, with no new reading.
func TestScaleChangeRaisesWithoutAReading(t *testing.T) {
	t.Parallel()
	s := start(t)
	nurseS := signIn(t, s.node.URL(), nurse)
	if code := nurseS.do("POST", "/api/v1/patients/p1/spo2-scale", map[string]any{"scale": 2, "reason": "COPD, target 88-92 %"}, nil); code != 200 {
		t.Fatalf("set scale 2: %d", code)
	}
	// SpO2 88 % on air: 0 on Scale 2, 3 (a red score) on Scale 1.
	publish(t, s.broker.URL, "dev-ox-1", vward.ReadingsTopic(device), vitalsMessage("m1", time.Now(), 16, 88, 120, 70, "A", 37.0))
	st := waitBoardState(t, nurseS, "on Scale 2", func(st boardState) bool { return strings.Contains(st.Rows[patient], "news2=0 ") })
	if len(st.Alerts) != 0 {
		t.Fatalf("on Scale 2 the alerts are %v, want none", st.Alerts)
	}
	if code := nurseS.do("POST", "/api/v1/patients/p1/spo2-scale", map[string]any{"scale": 1, "reason": "no longer retaining CO2"}, nil); code != 200 {
		t.Fatalf("set scale 1: %d", code)
	}
	st = waitBoardState(t, nurseS, "moved to Scale 1", func(st boardState) bool { return len(st.Alerts) == 1 })
	if !strings.Contains(st.Rows[patient], "news2=3 low-medium") || !strings.Contains(st.Alerts[0], " low-medium raised") {
		t.Errorf("after the move to Scale 1: row %q, alerts %v; want NEWS2 3 and a raised low-medium alert", st.Rows[patient], st.Alerts)
	}
}
