package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The notification check reads the alert API's answers: a delivery within
// the window is OK, a later one LATE, one never sent MISSING with what the
// log says, and one of another tier or recipient does not count.
func TestJudgeNotifications(t *testing.T) {
	raised := time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC)
	answers := map[string]string{
		"/api/v1/alerts?patient=p1&limit=100": `{"alerts":[{"id":7,"patient":"p1","condition":"news2","raised_at":"` + raised.Format(time.RFC3339) + `"}]}`,
		"/api/v1/alerts?patient=p2&limit=100": `{"alerts":[]}`,
		"/api/v1/alerts/7/notifications": `{"notifications":[
			{"tier":0,"recipient":"nurse","channel":"pager","attempt":1,"result":"sent","finished_at":"` + raised.Add(2*time.Second).Format(time.RFC3339) + `"},
			{"tier":1,"recipient":"doctor","channel":"pager","attempt":1,"result":"sent","finished_at":"` + raised.Add(3*time.Minute).Format(time.RFC3339) + `"},
			{"tier":2,"recipient":"spa","channel":"mail","attempt":5,"result":"gave_up","error":"connection refused","finished_at":"` + raised.Add(30*time.Minute).Format(time.RFC3339) + `"}]}`,
	}
	get := func(_ context.Context, path string, v any) error {
		b, ok := answers[path]
		if !ok {
			return fmt.Errorf("no answer for %s", path)
		}
		return json.Unmarshal([]byte(b), v)
	}
	mins := func(m int) Duration { return Duration(time.Duration(m) * time.Minute) }
	for _, c := range []struct {
		e      NotificationExpectation
		status Status
		detail string
	}{
		{NotificationExpectation{Patient: "p1", Tier: 0, Recipient: "nurse", Channel: "pager", Within: mins(1)}, OK, "nurse by pager"},
		{NotificationExpectation{Patient: "p1", Tier: 0, Within: mins(1)}, OK, "nurse by pager"},
		{NotificationExpectation{Patient: "p1", Tier: 1, Recipient: "doctor", Within: mins(2)}, Late, "doctor"},
		{NotificationExpectation{Patient: "p1", Tier: 1, Recipient: "nurse", Within: mins(20)}, Missing, "not in any delivery log"},
		{NotificationExpectation{Patient: "p1", Tier: 2, Within: mins(60)}, Missing, "gave_up connection refused"},
		{NotificationExpectation{Patient: "p1", Condition: "overdue", Tier: 0, Within: mins(60)}, Missing, "not in any delivery log"},
		{NotificationExpectation{Patient: "p2", Tier: 0, Within: mins(1)}, Missing, "not in any delivery log"},
	} {
		got := judgeNotifications(context.Background(), get, []NotificationExpectation{c.e})[0]
		if got.Status != c.status || !strings.Contains(got.Detail, c.detail) {
			t.Errorf("%s: %s (%s), want %s (%s)", c.e.what(), got.Status, got.Detail, c.status, c.detail)
		}
	}
}
