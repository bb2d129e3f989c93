package notify_test

import (
	"testing"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/notify"
)

// A care_plan notification names its rule and the rule's risk, not a
// NEWS2 score it does not have.
func TestCarePlanSubject(t *testing.T) {
	n := notify.Notification{Event: "raised", Ward: "w1", Patient: &notify.PatientRef{ID: "p1", Initials: "AL"},
		Condition: alerting.CarePlan, Rule: "af-hr-above-100", Risk: "medium", TierName: "ward clinician"}
	if got, want := n.Subject(), "[vward w1] Raised AL: care plan rule af-hr-above-100, medium risk (ward clinician)"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
}

// A concern's notification says a person reported it, with no NEWS2
// score it does not have.
func TestConcernSubject(t *testing.T) {
	n := notify.Notification{Event: "raised", Ward: "w1", Patient: &notify.PatientRef{ID: "p1", Initials: "AL"},
		Condition: alerting.Concern, Risk: "medium", TierName: "ward clinician"}
	if got, want := n.Subject(), "[vward w1] Raised AL: concern reported by the patient or carer, medium risk (ward clinician)"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
}

// The overdue alert of a measurement the care plan expects names it.
func TestExpectedOverdueSubject(t *testing.T) {
	n := notify.Notification{Event: "raised", Ward: "w1", Patient: &notify.PatientRef{ID: "p1", Initials: "AL"},
		Condition: alerting.Overdue, Rule: alerting.ExpectedRule("weight"), Risk: "low", TierName: "ward clinician"}
	if got, want := n.Subject(), "[vward w1] Raised AL: weight overdue, as the care plan expects (ward clinician)"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
}
