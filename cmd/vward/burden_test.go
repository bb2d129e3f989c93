package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/burden"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/sqlitedb"
)

// acknowledge acknowledges an alert in the data dir, as a clinician on the
// board would.
func acknowledge(t *testing.T, dir string, id int64) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(dir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, err := alerting.OpenEngine(ctx, db, alerting.Config{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Acknowledge(ctx, id, "nurse.khan", ""); err != nil {
		t.Fatal(err)
	}
}

// admitDaysAgo admits a patient whose stay began days ago.
func admitDaysAgo(t *testing.T, dir string, p vward.PatientID, w vward.WardID, name string, days int) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(dir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Admit(ctx, devices.Patient{ID: p, Ward: w, Name: name, Admitted: time.Now().Add(-time.Duration(days) * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// The alarm burden from the command line: a raised-and-acknowledged alert
// in the table and in JSON; a bad --days or an unknown ward is refused.
func TestWardsAlarmBurdenCLI(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir
	mustCLI(t, "wards", "add", "resp", "--name", "Respiratory", dd)
	admitDaysAgo(t, dir, "p1", "resp", "Ada Whitfield", 4)
	acknowledge(t, dir, raiseHigh(t, dir, "p1", "resp"))

	out := mustCLI(t, "wards", "alarm-burden", "resp", dd)
	for _, want := range []string{
		"Alarm burden, ward resp: Respiratory, last 7 days",
		"1 stay, 4.00 patient-days monitored",
		"clinical 1 (0.25 per patient-day)",
		"high 1 (0.25 per patient-day)",
		"tier 1 (senior clinician) 0",
		"TIME TO ACKNOWLEDGE",
		"RAISED MOST",
		"Ada Whitfield",
		"news2 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "\n  high ") {
		t.Errorf("no time to acknowledge at high risk:\n%s", out)
	}

	var rep burden.Report
	jsonInto(t, mustCLI(t, "wards", "alarm-burden", "resp", "--days", "30", "--json", dd), &rep)
	if rep.Days != 30 || rep.Alerts != 1 || len(rep.TimeToAcknowledge) != 1 || rep.TimeToAcknowledge[0].Count != 1 || rep.TopPatients[0].Patient != "p1" {
		t.Errorf("JSON report = %+v", rep)
	}
	if msg := failCLI(t, "", "wards", "alarm-burden", "resp", "--days", "0", dd); !strings.Contains(msg, "days=0") {
		t.Errorf("--days 0: %s", msg)
	}
	if msg := failCLI(t, "", "wards", "alarm-burden", "nope", dd); !strings.Contains(msg, "nope") {
		t.Errorf("unknown ward: %s", msg)
	}
}
