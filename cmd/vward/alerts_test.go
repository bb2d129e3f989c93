package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/sqlitedb"
)

// raiseHigh raises a high NEWS2 alert for patient p of ward w in the data
// dir, as a running node would, and returns its id.
func raiseHigh(t *testing.T, dir string, p vward.PatientID, w vward.WardID) int64 {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(dir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := alerting.OpenEngine(ctx, db, alerting.Config{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	m := alerting.NewMonitor(news2.DefaultFreshness(), nil, e, log)
	m.Admit(alerting.PatientInfo{ID: p, Ward: w})
	at := time.Now().Add(-2 * time.Minute)
	var rs []vward.Reading
	for k, v := range map[vward.ReadingKind]float64{vward.RespiratoryRate: 22, vward.SpO2: 93, vward.SupplementalOxygen: 0, vward.SystolicBP: 105,
		vward.HeartRate: 115, vward.Consciousness: 0, vward.Temperature: 38.3} {
		rs = append(rs, vward.Reading{Device: "ox-1", Patient: p, Ward: w, Kind: k, Value: v, At: at})
	}
	m.Observe(rs)
	as, err := e.Alerts(ctx, alerting.Filter{State: "open", Patient: p})
	if err != nil || len(as) != 1 {
		t.Fatalf("alerts: %+v %v", as, err)
	}
	return as[0].ID
}

// A nurse hands a patient over to 999 from the command line, records the
// outcome once, and the ward report counts it.
func TestAlertsHandoverCLI(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir
	mustCLI(t, "wards", "add", "resp", "--name", "Respiratory", dd)
	mustCLI(t, "patients", "admit", "p1", "--ward", "resp", "--nhs", "943 476 5919", "--name", "Ada Whitfield",
		"--contact", "Jo Whitfield|daughter|07700 900123", dd)
	id := raiseHigh(t, dir, "p1", "resp")
	alert := strconv.FormatInt(id, 10)

	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"alerts", "handover", alert, "--to", "a&e"}, `destination "a&e" is not one of gp, single_point_of_access, urgent_community_response, 999`},
		{[]string{"alerts", "handover", alert}, `required flag(s) "to" not set`},
		{[]string{"alerts", "handover", "99", "--to", "gp"}, "no such alert"},
		{[]string{"alerts", "handover", "twelve", "--to", "gp"}, `no alert "twelve"`},
	} {
		if msg := failCLI(t, "", append(c.args, dd)...); !strings.Contains(msg, c.says) {
			t.Errorf("%v: %s, want it to say %q", c.args, msg, c.says)
		}
	}

	out := mustCLI(t, "alerts", "handover", alert, "--to", "999", "--note", "daughter with her", "--actor", "nurse.khan", dd)
	for _, want := range []string{
		"SBARD handover: Ada Whitfield to 999 emergency ambulance",
		"NHS number 943 476 5919",
		"NEWS2 now: 8, high risk (complete set)",
		"Respiratory rate:      22 /min    [2]",
		"Escalation contacts: Jo Whitfield (daughter) 07700 900123",
		"Note: daughter with her",
		"Handed over by nurse.khan",
		"handover 1 recorded; when you know what came of it: vward alerts outcome 1 --outcome seen_at_home|conveyed|admitted|no_further_action",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("handover printed no %q:\n%s", want, out)
		}
	}
	if msg := failCLI(t, "", "alerts", "outcome", "1", "--outcome", "home", dd); !strings.Contains(msg, `outcome "home" is not one of`) {
		t.Errorf("a bad outcome: %s", msg)
	}
	out = mustCLI(t, "alerts", "outcome", "1", "--outcome", "admitted", "--actor", "nurse.khan", dd)
	if !strings.Contains(out, "handover 1 (alert "+alert+", p1, to 999 emergency ambulance): admitted to hospital, recorded by nurse.khan") {
		t.Errorf("outcome printed:\n%s", out)
	}
	if msg := failCLI(t, "", "alerts", "outcome", "1", "--outcome", "conveyed", dd); !strings.Contains(msg, "already has its outcome: admitted, recorded by nurse.khan") {
		t.Errorf("a second outcome: %s", msg)
	}
	audit := mustCLI(t, "patients", "audit", "p1", dd)
	for _, want := range []string{"patient.handover", "patient.handover_outcome", "nurse.khan"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the patient's audit has no %q:\n%s", want, audit)
		}
	}
	mustCLI(t, "alerts", "handover", alert, "--to", "gp", dd)
	out = mustCLI(t, "wards", "report", "resp", dd)
	if !strings.Contains(out, "Step-up:           2 handovers: gp 1, 999 1; admitted to hospital 1, awaiting outcome 1") {
		t.Errorf("the report's step-up:\n%s", out)
	}
	var rep struct {
		StepUp struct {
			Handovers int            `json:"handovers"`
			By        map[string]int `json:"by_destination"`
			Awaiting  int            `json:"awaiting_outcome"`
		} `json:"step_up"`
	}
	jsonInto(t, mustCLI(t, "wards", "report", "resp", "--json", dd), &rep)
	if rep.StepUp.Handovers != 2 || rep.StepUp.By["999"] != 1 || rep.StepUp.Awaiting != 1 {
		t.Errorf("report --json step_up: %+v", rep.StepUp)
	}
}
