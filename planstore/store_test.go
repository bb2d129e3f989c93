package planstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/planstore"
	"github.com/vward/vward/sqlitedb"
)

type fixture struct {
	ctx   context.Context
	reg   *devices.Registry
	store *planstore.Store
	exec  func(q string, args ...any) error
}

func open(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.AddWard(ctx, devices.Ward{ID: "w1", Name: "w1"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []devices.Patient{{ID: "p1", Ward: "w1", Name: "Ada"}, {ID: "p2", Ward: "w1", Name: "Bea"}} {
		if err := reg.Admit(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	store, err := planstore.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	// Opening twice migrates once.
	if _, err := planstore.Open(ctx, db, reg); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) error { _, err := db.ExecContext(ctx, q, args...); return err }
	return fixture{devices.WithActor(ctx, "dr.patel"), reg, store, exec}
}

const smallPlan = `{"version": 1, "name": "Watch SpO2",
	"expected": [{"kind": "spo2", "every": "4h"}],
	"rules": [{"id": "low-spo2", "name": "SpO2 92% or less", "risk": "medium", "type": "threshold", "kind": "spo2", "op": "<=", "value": 92}]}`

const ceilingPlan = `{"version": 1, "name": "Watch SpO2",
	"escalation_plan": {"ceiling": "no_critical_care", "text": "For admission, not for intubation.", "decided_by": "dr.patel",
		"decided_at": "2026-11-20T15:30:00Z", "review_by": "2027-02-20T00:00:00Z"}}`

func TestPutRefusals(t *testing.T) {
	f := open(t)
	if err := f.reg.Discharge(f.ctx, "p2", "recovered", "well", time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		patient vward.PatientID
		plan    string
		reason  string
		kind    error
		says    []string
	}{
		{"no reason", "p1", smallPlan, "", vward.ErrInvalid, []string{"reason is required"}},
		{"blank reason", "p1", smallPlan, " \n\t", vward.ErrInvalid, []string{"reason is required"}},
		{"long reason", "p1", smallPlan, strings.Repeat("é", planstore.MaxReason+1), vward.ErrInvalid, []string{"reason is 1001 characters long; at most 1000"}},
		{"control character", "p1", smallPlan, "new\x07plan", vward.ErrInvalid, []string{"control character (U+0007) at character 4"}},
		{"not JSON", "p1", `{"version": 1,`, "start", vward.ErrInvalid, []string{"invalid care plan"}},
		{"unknown field", "p1", `{"version": 1, "name": "x", "extra": 1}`, "start", vward.ErrInvalid, []string{"extra: unknown field"}},
		{"fields named", "p1", `{"version": 1, "name": "x", "rules": [{"id": "r", "name": "r", "risk": "medium", "type": "threshold", "kind": "wieght", "op": "<", "value": 1}],
			"escalation_plan": {"ceiling": "full_escalation", "text": "for everything"}}`,
			"start", vward.ErrInvalid, []string{"rules[0].kind", "escalation_plan.decided_by"}},
		{"newer format", "p1", `{"version": 2, "name": "x"}`, "start", vward.ErrInvalid, []string{"version"}},
		{"unknown patient", "p9", smallPlan, "start", vward.ErrNotFound, []string{"p9"}},
		{"discharged patient", "p2", smallPlan, "start", vward.ErrConflict, []string{"discharged"}},
	} {
		_, err := f.store.Put(f.ctx, c.patient, []byte(c.plan), c.reason)
		if !errors.Is(err, c.kind) {
			t.Errorf("%s: %v, want %v", c.name, err, c.kind)
			continue
		}
		for _, s := range c.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %v, want it to say %q", c.name, err, s)
			}
		}
	}
	// An invalid plan's problems come as careplan's list, each naming its field.
	_, err := f.store.Put(f.ctx, "p1", []byte(`{"version": 1, "name": "", "expected": [{"kind": "spo2", "every": "1m"}]}`), "start")
	ps := planstore.Problems(err)
	if len(ps) != 2 || ps[0].Field != "name" || ps[1].Field != "expected[0].every" {
		t.Errorf("problems: %+v (%v)", ps, err)
	}
	if planstore.Problems(errors.New("other")) != nil {
		t.Error("Problems of another error is not nil")
	}
	// Nothing refused was written, nor audited.
	if vs, err := f.store.History(f.ctx, "p1"); err != nil || len(vs) != 0 {
		t.Errorf("history after refusals: %v %v", vs, err)
	}
	audit, err := f.reg.PatientAudit(f.ctx, "p1", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range audit {
		if strings.HasPrefix(e.Action, "careplan.") {
			t.Errorf("a refused plan was audited: %+v", e)
		}
	}
}

func TestVersions(t *testing.T) {
	f := open(t)
	if _, err := f.store.Current(f.ctx, "p1"); !errors.Is(err, vward.ErrNotFound) {
		t.Fatalf("current before any plan: %v, want not found", err)
	}
	steps := []struct {
		name    string
		do      func() (planstore.Version, error)
		version int
		current string // the current plan's name after it, "" for none
		action  string
		detail  string
	}{
		{"from a template", func() (planstore.Version, error) {
			return f.store.PutTemplate(f.ctx, "p1", "heart_failure", "  admitted with decompensated heart failure ")
		}, 1, "Heart failure", "careplan.set", `care plan version 1: "Heart failure" from template heart_failure, 4 expected measurements, 4 rules`},
		{"adjusted", func() (planstore.Version, error) {
			return f.store.Put(f.ctx, "p1", []byte(smallPlan), "heart failure team: SpO2 only")
		}, 2, "Watch SpO2", "careplan.set", `care plan version 2: "Watch SpO2", 1 expected measurements, 1 rules, no treatment escalation plan`},
		{"ended", func() (planstore.Version, error) {
			return f.store.End(f.ctx, "p1", "monitoring no longer needed")
		}, 3, "", "careplan.end", "care plan version 3: ended"},
		{"started again", func() (planstore.Version, error) {
			return f.store.Put(f.ctx, "p1", []byte(smallPlan), "worse again")
		}, 4, "Watch SpO2", "careplan.set", "care plan version 4"},
		{"with a ceiling of care", func() (planstore.Version, error) {
			return f.store.Put(f.ctx, "p1", []byte(ceilingPlan), "ReSPECT conversation")
		}, 5, "Watch SpO2", "careplan.set", "ceiling of care no_critical_care decided by dr.patel"},
	}
	for _, st := range steps {
		v, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if v.Number != st.version || v.Author != "dr.patel" || v.Ward != "w1" || v.At.IsZero() || strings.TrimSpace(v.Reason) != v.Reason {
			t.Errorf("%s: version %+v", st.name, v)
		}
		cur, err := f.store.Current(f.ctx, "p1")
		switch {
		case st.current == "" && !errors.Is(err, vward.ErrNotFound):
			t.Errorf("%s: current %+v, %v; want none", st.name, cur, err)
		case st.current != "" && (err != nil || cur.Plan.Name != st.current || cur.Number != st.version):
			t.Errorf("%s: current %+v, %v; want %q version %d", st.name, cur, err, st.current, st.version)
		}
		audit, err := f.reg.PatientAudit(f.ctx, "p1", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(audit) != 1 || audit[0].Action != st.action || audit[0].Actor != "dr.patel" || audit[0].Reason != v.Reason ||
			!strings.Contains(audit[0].Detail, st.detail) {
			t.Errorf("%s: audit %+v, want %s saying %q", st.name, audit, st.action, st.detail)
		}
	}
	vs, err := f.store.History(f.ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 5 || vs[0].Number != 5 || vs[4].Number != 1 || !vs[2].Ended() || vs[4].Plan.Template != "heart_failure" {
		t.Errorf("history: %+v", vs)
	}
	// The plan read back is the plan put.
	tmpl, _ := careplan.Template("heart_failure")
	if len(vs[4].Plan.Rules) != len(tmpl.Rules) || vs[4].Plan.Rules[0] != tmpl.Rules[0] || vs[4].Plan.Note != tmpl.Note {
		t.Errorf("plan read back differs from the template: %+v", vs[4].Plan)
	}
	want := careplan.EscalationPlan{Ceiling: careplan.NoCriticalCare, Text: "For admission, not for intubation.", DecidedBy: "dr.patel",
		DecidedAt: time.Date(2026, 11, 20, 15, 30, 0, 0, time.UTC), ReviewBy: time.Date(2027, 2, 20, 0, 0, 0, 0, time.UTC)}
	if e := vs[0].Plan.Escalation; e == nil || e.Ceiling != want.Ceiling || e.Text != want.Text || e.DecidedBy != want.DecidedBy ||
		!e.DecidedAt.Equal(want.DecidedAt) || !e.ReviewBy.Equal(want.ReviewBy) {
		t.Errorf("escalation plan read back: %+v, want %+v", e, want)
	}
	// Since gives the versions written from a time, newest first, bounded.
	if got, err := f.store.Since(f.ctx, "p1", vs[1].At, 10); err != nil || len(got) != 2 || got[0].Number != 5 || got[1].Number != 4 {
		t.Errorf("since version 4: %+v, %v", got, err)
	}
	if got, err := f.store.Since(f.ctx, "p1", time.Time{}, 2); err != nil || len(got) != 2 || got[1].Number != 4 {
		t.Errorf("since ever, at most 2: %+v, %v", got, err)
	}
	// Another patient's plans are their own.
	if vs, err := f.store.History(f.ctx, "p2"); err != nil || len(vs) != 0 {
		t.Errorf("p2's history: %v %v", vs, err)
	}
}

func TestEndRefusals(t *testing.T) {
	f := open(t)
	for _, c := range []struct {
		name    string
		patient vward.PatientID
		reason  string
		kind    error
		says    string
	}{
		{"no plan yet", "p1", "done", vward.ErrNotFound, "no current care plan to end"},
		{"no reason", "p1", "", vward.ErrInvalid, "reason is required"},
		{"unknown patient", "p9", "done", vward.ErrNotFound, "p9"},
	} {
		if _, err := f.store.End(f.ctx, c.patient, c.reason); !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %v saying %q", c.name, err, c.kind, c.says)
		}
	}
	if _, err := f.store.Put(f.ctx, "p1", []byte(smallPlan), "start"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.End(f.ctx, "p1", "done"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.End(f.ctx, "p1", "again"); !errors.Is(err, vward.ErrNotFound) {
		t.Errorf("ending an ended plan: %v, want not found", err)
	}
	// A discharged patient's plan may still be closed.
	if _, err := f.store.Put(f.ctx, "p2", []byte(smallPlan), "start"); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Discharge(f.ctx, "p2", "recovered", "well", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.End(f.ctx, "p2", "discharged"); err != nil {
		t.Errorf("ending a discharged patient's plan: %v", err)
	}
	if _, err := f.store.PutTemplate(f.ctx, "p1", "no_such", "start"); !errors.Is(err, vward.ErrNotFound) || !strings.Contains(err.Error(), "heart_failure") {
		t.Errorf("unknown template: %v", err)
	}
}

// The versions are kept as written whatever code runs against the file.
func TestVersionsNeverChange(t *testing.T) {
	f := open(t)
	if _, err := f.store.Put(f.ctx, "p1", []byte(smallPlan), "start"); err != nil {
		t.Fatal(err)
	}
	for q, says := range map[string]string{
		`UPDATE care_plan_versions SET reason = 'x'`:                      "never changed",
		`DELETE FROM care_plan_versions`:                                  "never removed",
		`INSERT INTO care_plan_versions SELECT * FROM care_plan_versions`: "UNIQUE",
	} {
		if err := f.exec(q); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v, want it refused saying %q", q, err, says)
		}
	}
}

// A change made from an older version than the newest is refused, naming
// who changed the plan since; one made from the newest is written.
func TestChangeFromAnOlderVersion(t *testing.T) {
	f := open(t)
	for _, c := range []struct {
		name    string
		actor   string
		change  planstore.Change
		version int    // written, or 0
		says    string // the conflict, when refused
	}{
		{"the first from version 1, before any", "dr.patel", planstore.Change{Plan: []byte(smallPlan), Reason: "start", Base: 1}, 0, "which has no care plan yet"},
		{"the first", "dr.patel", planstore.Change{Template: "frailty", Reason: "start"}, 1, ""},
		{"from the newest", "nurse.khan", planstore.Change{Plan: []byte(smallPlan), Reason: "adjusted", Base: 1}, 2, ""},
		{"from an older one", "dr.patel", planstore.Change{Plan: []byte(ceilingPlan), Reason: "TEP", Base: 1}, 0, "version 2 by nurse.khan is the newest"},
		{"from a later one", "dr.patel", planstore.Change{Plan: []byte(ceilingPlan), Reason: "TEP", Base: 3}, 0, "version 2 by nurse.khan is the newest"},
		{"without a base", "dr.patel", planstore.Change{Plan: []byte(ceilingPlan), Reason: "TEP"}, 3, ""},
	} {
		v, err := f.store.Set(devices.WithActor(f.ctx, c.actor), "p1", c.change)
		switch {
		case c.version != 0 && (err != nil || v.Number != c.version || v.Author != c.actor):
			t.Errorf("%s: %+v, %v; want version %d by %s", c.name, v, err, c.version, c.actor)
		case c.version == 0 && (!errors.Is(err, vward.ErrConflict) || !strings.Contains(err.Error(), c.says)):
			t.Errorf("%s: %v, want a conflict saying %q", c.name, err, c.says)
		}
	}
	for name, c := range map[string]planstore.Change{
		"both":    {Plan: []byte(smallPlan), Template: "frailty", Reason: "x"},
		"neither": {Reason: "x"},
	} {
		if _, err := f.store.Set(f.ctx, "p1", c); !errors.Is(err, vward.ErrInvalid) {
			t.Errorf("%s a plan and a template: %v, want invalid", name, err)
		}
	}
}
