package simulator

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vward/vward"
)

// NotificationExpectation is a notification vward should deliver about a
// scenario patient's alert: at escalation tier Tier, to Recipient, over
// Channel, within Within of the alert being raised. Within is measured on
// vward's own clock (the alert's raised_at and the delivery log's times),
// which runs in real time whatever the scenario's speed: an escalation
// after a 10-minute acknowledgement timeout takes 10 real minutes.
type NotificationExpectation struct {
	Patient vward.PatientID `json:"patient"`
	// Condition is the alert's condition (default news2).
	Condition string `json:"condition,omitempty"`
	Tier      int    `json:"tier"`
	// Recipient is the username told; Channel the channel's name. Empty
	// matches any.
	Recipient string   `json:"recipient,omitempty"`
	Channel   string   `json:"channel,omitempty"`
	Within    Duration `json:"within"`
	Note      string   `json:"note,omitempty"`
}

func (n NotificationExpectation) condition() string {
	if n.Condition == "" {
		return "news2"
	}
	return n.Condition
}

func (n NotificationExpectation) check(p *Plan) error {
	if _, ok := p.byID[n.Patient]; !ok {
		return fmt.Errorf("no patient %q in the scenario", n.Patient)
	}
	if n.Tier < 0 || n.Tier > 9 {
		return fmt.Errorf("tier %d is not 0 to 9", n.Tier)
	}
	if n.Within <= 0 {
		return fmt.Errorf("within must be a positive duration such as \"1m\"")
	}
	return nil
}

// what names the expected notification for the report.
func (n NotificationExpectation) what() string {
	s := fmt.Sprintf("%s %s tier %d", n.Patient, n.condition(), n.Tier)
	if n.Recipient != "" {
		s += " to " + n.Recipient
	}
	if n.Channel != "" {
		s += " over " + n.Channel
	}
	return s
}

// NotificationResult is the outcome of one notification expectation.
type NotificationResult struct {
	Status      Status
	Expectation *NotificationExpectation
	// After is how long after the alert was raised it was delivered.
	After  time.Duration
	Detail string
}

// restAlert and restDelivery are the parts of the alert API's answers
// (docs/alerts.md) the check reads.
type restAlert struct {
	ID        int64     `json:"id"`
	Patient   string    `json:"patient"`
	Condition string    `json:"condition"`
	RaisedAt  time.Time `json:"raised_at"`
}

type restDelivery struct {
	Tier       int       `json:"tier"`
	Recipient  string    `json:"recipient"`
	Channel    string    `json:"channel"`
	Attempt    int       `json:"attempt"`
	Result     string    `json:"result"`
	Error      string    `json:"error"`
	FinishedAt time.Time `json:"finished_at"`
}

// Getter reads a JSON answer of the board's REST API
// (boardclient.Stream.Get).
type Getter func(ctx context.Context, path string, v any) error

// CheckNotifications reads the delivery logs of the expected patients'
// alerts until every notification expectation is met, or until the
// longest Within has passed since from (the end of the run), and judges
// them.
func CheckNotifications(ctx context.Context, get Getter, expects []NotificationExpectation, from time.Time) []NotificationResult {
	if len(expects) == 0 {
		return nil
	}
	var longest time.Duration
	for _, e := range expects {
		longest = max(longest, e.Within.D())
	}
	deadline := from.Add(longest + 5*time.Second)
	for {
		rs := judgeNotifications(ctx, get, expects)
		done := true
		for _, r := range rs {
			done = done && r.Status == OK
		}
		if done || !time.Now().Before(deadline) || ctx.Err() != nil {
			return rs
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func judgeNotifications(ctx context.Context, get Getter, expects []NotificationExpectation) []NotificationResult {
	alerts := map[vward.PatientID][]restAlert{}
	logs := map[int64][]restDelivery{}
	out := make([]NotificationResult, 0, len(expects))
	for i := range expects {
		e := &expects[i]
		res := NotificationResult{Status: Missing, Expectation: e}
		as, ok := alerts[e.Patient]
		if !ok {
			var body struct{ Alerts []restAlert }
			if err := get(ctx, "/api/v1/alerts?patient="+url.QueryEscape(string(e.Patient))+"&limit=100", &body); err != nil {
				res.Detail = err.Error()
				out = append(out, res)
				continue
			}
			as = body.Alerts
			alerts[e.Patient] = as
		}
		var tried []string
		for _, a := range as {
			if a.Condition != e.condition() {
				continue
			}
			ds, ok := logs[a.ID]
			if !ok {
				var body struct{ Notifications []restDelivery }
				if err := get(ctx, fmt.Sprintf("/api/v1/alerts/%d/notifications", a.ID), &body); err != nil {
					res.Detail = err.Error()
					continue
				}
				ds = body.Notifications
				logs[a.ID] = ds
			}
			for _, d := range ds {
				if d.Tier != e.Tier || e.Recipient != "" && d.Recipient != e.Recipient || e.Channel != "" && d.Channel != e.Channel {
					continue
				}
				if d.Result != "sent" {
					tried = append(tried, fmt.Sprintf("%s by %s attempt %d: %s %s", d.Recipient, d.Channel, d.Attempt, d.Result, d.Error))
					continue
				}
				after := d.FinishedAt.Sub(a.RaisedAt)
				if res.Status == OK && after >= res.After {
					continue
				}
				res.After, res.Detail = after, fmt.Sprintf("alert %d, %s by %s", a.ID, d.Recipient, d.Channel)
				res.Status = OK
				if after > e.Within.D() {
					res.Status = Late
				}
			}
		}
		if res.Status == Missing {
			switch {
			case len(tried) > 0:
				res.Detail = "not delivered: " + strings.Join(tried, "; ")
			case res.Detail == "":
				res.Detail = "not in any delivery log"
			}
		}
		out = append(out, res)
	}
	return out
}

func (r NotificationResult) line() string {
	e := r.Expectation
	switch r.Status {
	case Skipped:
		return fmt.Sprintf("  %-11s notification %s (within %s): a dry run has no alert engine\n", r.Status, e.what(), fmtDur(e.Within.D()))
	case Missing:
		return fmt.Sprintf("  %-11s notification %s (within %s): %s\n", r.Status, e.what(), fmtDur(e.Within.D()), r.Detail)
	}
	return fmt.Sprintf("  %-11s notification %s delivered %s after the raise (within %s): %s\n", r.Status, e.what(), fmtDur(r.After.Round(time.Second)), fmtDur(e.Within.D()), r.Detail)
}
