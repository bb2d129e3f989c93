package handover

import (
	"strings"
	"testing"
	"time"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
)

var at = time.Date(2026, 12, 4, 3, 40, 0, 0, time.UTC)

// setOf builds a set from values measured ago before at.
func setOf(scale news2.Scale, ago time.Duration, vals map[news2.Parameter]float64) news2.Set {
	s := news2.Set{Scale: scale}
	for p, v := range vals {
		s.Update(p, v, at.Add(-ago))
	}
	return s
}

func evidence(set news2.Set) Evidence {
	var src [news2.NumParameters]string
	for p := range news2.NumParameters {
		src[p] = "device ox-1"
	}
	src[news2.Consciousness] = "telephone, entered by alice (obs-3)"
	return Evidence{
		Patient: devices.Patient{ID: "p1", Ward: "w1", Name: "Ada Whitfield", NHSNumber: "9434765919", Status: devices.StatusAdmitted,
			Admitted: at.Add(-50 * time.Hour), ExpectedEnd: "2026-12-07",
			Contacts: []devices.Contact{{Name: "Jo Whitfield", Role: "daughter", Phone: "07700 900123"}}},
		Ward:   devices.Ward{ID: "w1", Name: "Frailty East", Pathway: "frailty"},
		Alert:  alerting.Alert{ID: 12, Patient: "p1", Ward: "w1", Condition: alerting.News2, Risk: news2.High, Score: 8, State: alerting.Raised, RaisedAt: at.Add(-20 * time.Minute), TierName: "ward clinician"},
		Policy: alerting.DefaultPolicy(), Set: set, Sources: src,
		Trend: []alerting.TrendPoint{
			{At: at.Add(-8 * time.Hour), Score: 1}, // before the window
			{At: at.Add(-5 * time.Hour), Score: 2}, {At: at.Add(-4 * time.Hour), Score: 2},
			{At: at.Add(-2 * time.Hour), Score: 5}, {At: at.Add(-20 * time.Minute), Score: 8},
		},
		Destination: Emergency, Note: "daughter with her", By: "nurse", At: at,
	}
}

// withNotes adds n notes, newest first, the newest written over two lines.
func withNotes(ev Evidence, n int) Evidence {
	for i := range n {
		ev.Notes = append(ev.Notes, NoteLine{ID: "note-" + string(rune('a'+i)), At: at.Add(-time.Duration(i+1) * time.Hour), Author: "alice", Kind: "phone call", Text: "no answer"})
	}
	ev.Notes[0].Text = "daughter says\nmore breathless since lunch"
	return ev
}

var sick = map[news2.Parameter]float64{
	news2.RespiratoryRate: 22, news2.SpO2: 93, news2.SupplementalOxygen: 0, news2.SystolicBP: 105,
	news2.HeartRate: 115, news2.Consciousness: 0, news2.Temperature: 38.3,
}

func TestBuild(t *testing.T) {
	partial := map[news2.Parameter]float64{news2.SpO2: 91, news2.HeartRate: 118}
	tests := []struct {
		name string
		ev   Evidence
		// score is the NEWS2 now, -1 for none.
		score          int
		complete       bool
		missing, stale []string
		scored         int // measurements with a sub-score
		want, wantNot  []string
		response       string
	}{
		{
			name: "complete high set", ev: evidence(setOf(news2.Scale1, 2*time.Minute, sick)), score: 8, complete: true, scored: 7,
			missing: []string{}, stale: []string{},
			want: []string{
				"SBARD handover: Ada Whitfield to 999 emergency ambulance",
				"Patient: Ada Whitfield, NHS number 943 476 5919 (p1), on Frailty East (w1)",
				"Alert 12: NEWS2 high risk (score 8), raised Fri 4 Dec 03:20 (20 min ago); raised, not acknowledged",
				"NEWS2 now: 8, high risk (complete set)",
				"Clinical response (NEWS2): Emergency response",
				"Virtual ward: Frailty East, frailty pathway",
				"On the ward since Wed 2 Dec 01:40 (2 days ago); expected end 2026-12-07",
				"SpO₂ scale: Scale 1",
				"ward clinician → senior clinician → single point of access; the alert is at tier 1, ward clinician",
				"Escalation contacts: Jo Whitfield (daughter) 07700 900123",
				"Respiratory rate:      22 /min    [2]  Fri 4 Dec 03:38 (2 min ago), device ox-1",
				"Consciousness (ACVPU): A          [0]  Fri 4 Dec 03:38 (2 min ago), telephone, entered by alice (obs-3)",
				"Air or oxygen:         air",
				"NEWS2 over the last 6 hours: 2 at Thu 3 Dec 22:40 → 5 at Fri 4 Dec 01:40 → 8 at Fri 4 Dec 03:20; rising, 2 to 8.",
				"Handed over to: 999 emergency ambulance",
				"Asked: An emergency ambulance",
				"Note: daughter with her",
				"Handed over by nurse at Fri 4 Dec 03:40.",
			},
			wantNot:  []string{"PARTIAL", "Not measured", "Too old", "Recent notes"},
			response: "Emergency response",
		},
		{
			name: "notes quoted, at most ten", ev: withNotes(evidence(setOf(news2.Scale1, 2*time.Minute, sick)), 12), score: 8, complete: true, scored: 7,
			missing: []string{}, stale: []string{},
			want: []string{
				"Recent notes (last 24 hours, newest first):",
				"  Fri 4 Dec 02:40 (phone call, alice): daughter says more breathless since lunch",
				"  Thu 3 Dec 18:40 (phone call, alice): no answer",
				"  … and 2 earlier, in the patient's notes",
			},
			wantNot:  []string{"Thu 3 Dec 16:40"},
			response: "Emergency response",
		},
		{
			name: "partial set, with a stale value", score: 5, scored: 2,
			ev: func() Evidence {
				s := setOf(news2.Scale1, 5*time.Minute, partial)
				s.Update(news2.Temperature, 38.4, at.Add(-3*time.Hour))
				return evidence(s)
			}(),
			missing: []string{"respiratory_rate", "supplemental_oxygen", "systolic_bp", "consciousness"}, stale: []string{"temperature"},
			want: []string{
				"NEWS2 now: PARTIAL, at least 5, medium risk; red score in SpO₂; missing or stale: respiratory rate, air or oxygen, systolic BP, consciousness (ACVPU), temperature",
				"Temperature:           38.4 °C    [not scored: older than 1 h]  Fri 4 Dec 00:40 (3 h ago)",
				"Not measured: respiratory rate, air or oxygen, systolic BP, consciousness (ACVPU)",
				"Too old to score: temperature",
				"Clinical response (NEWS2): Urgent response",
			},
			response: "Urgent response",
		},
		{
			name: "no score: nothing current", score: -1, ev: func() Evidence {
				ev := evidence(setOf(news2.Scale1, 2*time.Hour, partial))
				ev.Trend, ev.Patient.Contacts, ev.Patient.NHSNumber = nil, nil, ""
				return ev
			}(),
			missing: []string{"respiratory_rate", "supplemental_oxygen", "systolic_bp", "consciousness", "temperature"}, stale: []string{"spo2", "heart_rate"},
			want: []string{
				"Patient: Ada Whitfield (p1)",
				"NEWS2 now: no current observations to score",
				"No current observation: take a full set of observations now.",
				"No NEWS2 recorded in the last 6 hours.",
				"Escalation contacts: none held",
			},
			wantNot:  []string{"NHS number"},
			response: "No current observation",
		},
		{
			name: "nothing held at all", score: -1, ev: evidence(news2.Set{}),
			missing: []string{"respiratory_rate", "spo2", "supplemental_oxygen", "systolic_bp", "heart_rate", "consciousness", "temperature"}, stale: []string{},
			want:     []string{"No observations held for the patient."},
			response: "No current observation",
		},
		{
			name: "Scale 2 on oxygen", score: 2, complete: true, scored: 7,
			ev: evidence(setOf(news2.Scale2, time.Minute, map[news2.Parameter]float64{
				news2.RespiratoryRate: 18, news2.SpO2: 90, news2.SupplementalOxygen: 1, news2.SystolicBP: 130,
				news2.HeartRate: 80, news2.Consciousness: 0, news2.Temperature: 37.0,
			})),
			missing: []string{}, stale: []string{},
			want: []string{
				"SpO₂ scale: Scale 2, prescribed (target 88–92 %)",
				"SpO₂:                  90 %       [0]",
				"Air or oxygen:         on oxygen  [2]",
				"NEWS2 now: 2, low risk (complete set)",
			},
			response: "Registered nurse to assess",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Build(tc.ev)
			if tc.score < 0 {
				if s.Situation.News2 != nil {
					t.Errorf("news2 = %+v, want none", s.Situation.News2)
				}
			} else if n := s.Situation.News2; n == nil || n.Score != tc.score || n.Complete != tc.complete {
				t.Errorf("news2 = %+v, want score %d complete %v", n, tc.score, tc.complete)
			}
			if strings.Join(s.Assessment.Missing, ",") != strings.Join(tc.missing, ",") {
				t.Errorf("missing = %v, want %v", s.Assessment.Missing, tc.missing)
			}
			if strings.Join(s.Assessment.Stale, ",") != strings.Join(tc.stale, ",") {
				t.Errorf("stale = %v, want %v", s.Assessment.Stale, tc.stale)
			}
			scored := 0
			for _, m := range s.Assessment.Observations {
				if m.Subscore != nil {
					scored++
				}
				if m.Stale == (m.Subscore != nil) {
					t.Errorf("%s: stale %v with sub-score %v", m.Parameter, m.Stale, m.Subscore)
				}
			}
			if scored != tc.scored {
				t.Errorf("%d measurements scored, want %d", scored, tc.scored)
			}
			if !strings.HasPrefix(s.Situation.Response, tc.response) || s.Recommendation.Response != s.Situation.Response {
				t.Errorf("response = %q, recommendation's %q; want %q…", s.Situation.Response, s.Recommendation.Response, tc.response)
			}
			if s.Recommendation.Destination != Emergency || s.Decision.By != "nurse" || !s.Decision.At.Equal(at) {
				t.Errorf("recommendation %+v, decision %+v", s.Recommendation, s.Decision)
			}
			for _, w := range tc.want {
				if !strings.Contains(s.Text, w) {
					t.Errorf("the text lacks %q:\n%s", w, s.Text)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(s.Text, w) {
					t.Errorf("the text has %q:\n%s", w, s.Text)
				}
			}
		})
	}
}

func TestTrendWords(t *testing.T) {
	p := func(h float64, score int, partial bool) alerting.TrendPoint {
		return alerting.TrendPoint{At: at.Add(time.Duration(-h * float64(time.Hour))), Score: score, Partial: partial}
	}
	tests := []struct {
		name string
		ps   []alerting.TrendPoint
		want string
	}{
		{"none", nil, "No NEWS2 recorded in the last 6 hours."},
		{"one", []alerting.TrendPoint{p(1, 3, false)}, "NEWS2 over the last 6 hours: 3 at Fri 4 Dec 02:40; unchanged."},
		{"steady", []alerting.TrendPoint{p(3, 1, false), p(2, 1, false), p(1, 1, false)}, "1 at Fri 4 Dec 00:40 → still 1 at Fri 4 Dec 02:40; unchanged."},
		{"falling, partial", []alerting.TrendPoint{p(3, 6, true), p(2, 6, false), p(1, 2, false)}, "6 at Fri 4 Dec 00:40 (partial) → 6 at Fri 4 Dec 01:40 → 2 at Fri 4 Dec 02:40; falling, 6 to 2."},
	}
	for _, tc := range tests {
		if got := trendWords(tc.ps, time.UTC); !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s: %q, want …%q", tc.name, got, tc.want)
		}
	}
}

func TestParseDestinationAndOutcome(t *testing.T) {
	for _, d := range Destinations {
		if got, err := ParseDestination(string(d)); err != nil || got != d {
			t.Errorf("ParseDestination(%q) = %q, %v", d, got, err)
		}
	}
	if _, err := ParseDestination("a&e"); err == nil || !strings.Contains(err.Error(), `destination "a&e" is not one of gp, single_point_of_access, urgent_community_response, 999`) {
		t.Errorf("ParseDestination(a&e): %v", err)
	}
	if _, err := ParseOutcome("died"); err == nil || !strings.Contains(err.Error(), "seen_at_home, conveyed, admitted, no_further_action") {
		t.Errorf("ParseOutcome(died): %v", err)
	}
	if _, err := ParseOutcome(""); err == nil || !strings.Contains(err.Error(), "outcome is required") {
		t.Errorf("ParseOutcome(''): %v", err)
	}
}
