package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
)

// CarePlanCondition is the alert condition of a care plan rule that holds.
const CarePlanCondition = "care_plan"

// CarePlanSpec is a scenario patient's care plan (docs/careplans.md): a
// pathway template's copy, or a plan in careplan's format. Exactly one.
type CarePlanSpec struct {
	Template string          `json:"template,omitempty"`
	Plan     json.RawMessage `json:"plan,omitempty"`
}

// resolve reads the plan as vward will, so that a plan vward would refuse
// fails the scenario's load rather than its run.
func (c *CarePlanSpec) resolve() (*careplan.Plan, error) {
	switch {
	case c.Template != "" && len(c.Plan) > 0:
		return nil, errors.New("care_plan: give a template or a plan, not both")
	case c.Template != "":
		p, err := careplan.Template(c.Template)
		if err != nil {
			return nil, fmt.Errorf("care_plan: template %q: not one of %v", c.Template, careplan.TemplateNames())
		}
		return p, nil
	case len(c.Plan) > 0:
		p, err := careplan.Parse(c.Plan)
		if err != nil {
			return nil, fmt.Errorf("care_plan: plan: %w", err)
		}
		return p, nil
	}
	return nil, errors.New(`care_plan: give a template (like "heart_failure") or a plan`)
}

func (c *CarePlanSpec) check() error {
	_, err := c.resolve()
	return err
}

// carePlanBody is the body of PUT /api/v1/patients/{id}/careplan.
type carePlanBody struct {
	Template string          `json:"template,omitempty"`
	Plan     json.RawMessage `json:"plan,omitempty"`
	Reason   string          `json:"reason"`
}

// PutCarePlans puts each scenario patient's care plan with put, a signed-in
// clinician's PUT to the board's REST API (boardclient.Stream.Put), with
// the scenario named as the reason: the plan is a new version each time,
// audited like any other.
func PutCarePlans(ctx context.Context, put func(ctx context.Context, path string, body, v any) error, plan *Plan) error {
	for _, p := range plan.Patients {
		if p.CarePlan == nil {
			continue
		}
		body := carePlanBody{Template: p.CarePlan.Template, Plan: p.CarePlan.Plan, Reason: "scenario " + plan.Scenario.Name}
		if err := put(ctx, "/api/v1/patients/"+string(p.ID)+"/careplan", body, nil); err != nil {
			return fmt.Errorf("care plan of %s: %w", p.ID, err)
		}
	}
	return nil
}

// HasCarePlans reports whether any patient of the plan has a care plan.
func (p *Plan) HasCarePlans() bool {
	for _, pp := range p.Patients {
		if pp.CarePlan != nil {
			return true
		}
	}
	return false
}

// carePlanJudge plays vward's care plan rules in a dry run: each rule
// that comes to hold raises one alert of its risk, which stays, as the
// alert stays until a clinician deals with it.
type carePlanJudge struct {
	plans    map[vward.PatientID]*careplan.Plan
	readings map[vward.PatientID][]vward.Reading
	raised   map[vward.PatientID]map[string]bool
	eval     careplan.Evaluator
	findings []careplan.Finding
}

func newCarePlanJudge(plan *Plan) *carePlanJudge {
	j := &carePlanJudge{plans: map[vward.PatientID]*careplan.Plan{}, readings: map[vward.PatientID][]vward.Reading{}, raised: map[vward.PatientID]map[string]bool{}}
	for _, p := range plan.Patients {
		if p.CarePlan == nil {
			continue
		}
		cp, err := p.CarePlan.resolve()
		if err != nil {
			continue // Plan refuses the scenario first
		}
		j.plans[p.ID] = cp
		j.raised[p.ID] = map[string]bool{}
	}
	return j
}

// add takes a message's readings, delivered at scenario time at (wall
// time due), and returns an alert observation for each rule that now
// holds for the first time.
func (j *carePlanJudge) add(patient vward.PatientID, rs []vward.Reading, at time.Duration, due time.Time, into []Observation) []Observation {
	cp := j.plans[patient]
	if cp == nil || len(rs) == 0 {
		return into
	}
	j.readings[patient] = append(j.readings[patient], rs...)
	j.findings = j.eval.Evaluate(cp, j.readings[patient], due, j.findings[:0])
	for i, f := range j.findings {
		if f.State != careplan.Holds || j.raised[patient][f.Rule] {
			continue
		}
		j.raised[patient][f.Rule] = true
		risk, _ := ParseRisk(string(cp.Rules[i].Risk))
		into = append(into, Observation{
			Source: FromAlert, Patient: patient, Risk: risk, Condition: CarePlanCondition, At: at,
			Detail: findingText(cp.Rules[i], f),
		})
	}
	return into
}

// findingText says what held, as the alert's evidence names it.
func findingText(r careplan.Rule, f careplan.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rule %s: %s %s", r.ID, r.Kind, strconv.FormatFloat(f.Latest.Value, 'f', -1, 64))
	if r.Type == careplan.Change {
		fmt.Fprintf(&b, ", %+.1f from %s", f.Amount, strconv.FormatFloat(f.Reference.Value, 'f', -1, 64))
	}
	return b.String()
}
