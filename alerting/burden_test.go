package alerting

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/sqlitedb"
)

// step is one audit entry of a synthetic alert history, minutes after t0.
type step struct {
	alert   int64
	min     float64
	action  string
	from    State
	to      State
	risk    news2.Risk
	tier    int
	reason  string
	respSec float64 // on an acknowledgement
}

// alertOf is the stored alert a history's steps belong to, as it ended.
type alertOf struct {
	id        int64
	patient   vward.PatientID
	ward      vward.WardID
	condition Condition
	state     State
	tier      int
	tierName  string
	shelvedTo float64 // minutes after t0 the stored shelve ends; 0 for none
}

func minAfter(min float64) time.Time { return t0.Add(time.Duration(min * float64(time.Minute))) }

// writeHistory stores the alerts and their audit entries as the engine
// would have.
func writeHistory(t *testing.T, s *Store, alerts []alertOf, steps []step) {
	t.Helper()
	var ws []write
	for _, a := range alerts {
		al := Alert{ID: a.id, Patient: a.patient, Ward: a.ward, Condition: a.condition, Queue: a.condition.Queue(),
			State: a.state, Tier: a.tier, TierName: a.tierName, RaisedAt: t0, UpdatedAt: t0}
		if a.shelvedTo != 0 {
			al.ShelvedUntil = minAfter(a.shelvedTo)
		}
		ws = append(ws, write{alert: &al})
	}
	for _, st := range steps {
		var ward vward.WardID
		for _, a := range alerts {
			if a.id == st.alert {
				ward = a.ward
			}
		}
		e := AuditEntry{AlertID: st.alert, Ward: ward, At: minAfter(st.min), Actor: System, Action: st.action,
			From: st.from, To: st.to, Risk: st.risk, Tier: st.tier, Reason: st.reason}
		if st.action == ActAcknowledged {
			r := st.respSec
			e.ResponseSeconds = &r
		}
		ws = append(ws, write{audit: []AuditEntry{e}})
	}
	if err := s.writeAll(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
}

func TestAlarmBurden(t *testing.T) {
	none := Burden{
		Raised: map[Condition]int{}, News2Raised: map[news2.Risk]int{}, Cleared: map[Condition]int{},
		Escalations:       []TierReached{{Tier: 1, Name: "senior clinician"}, {Tier: 2, Name: "single point of access"}},
		Shelves:           Shelves{Reasons: []ShelveReason{}},
		TimeToAcknowledge: []ResponseTime{},
		Patients:          []PatientAlerts{},
	}
	with := func(f func(b *Burden)) Burden {
		b := none
		b.Raised, b.News2Raised, b.Cleared = map[Condition]int{}, map[news2.Risk]int{}, map[Condition]int{}
		b.Escalations = append([]TierReached{}, none.Escalations...)
		f(&b)
		return b
	}
	// The window is t0 to t0 + 24 h.
	for _, c := range []struct {
		name   string
		alerts []alertOf
		steps  []step
		want   Burden
	}{
		{name: "no alerts", want: none},
		{
			name:   "raised and acknowledged",
			alerts: []alertOf{{id: 1, patient: "p1", ward: "w1", condition: News2, state: Acknowledged}},
			steps: []step{
				{alert: 1, min: 10, action: ActRaised, to: Raised, risk: news2.High},
				{alert: 1, min: 12, action: ActAcknowledged, from: Raised, to: Acknowledged, risk: news2.High, respSec: 120},
			},
			want: with(func(b *Burden) {
				b.Raised[News2] = 1
				b.News2Raised[news2.High] = 1
				b.TimeToAcknowledge = []ResponseTime{{Ward: "w1", Risk: news2.High, Count: 1, MeanSeconds: 120, MedianSeconds: 120, P90Seconds: 120, MaxSeconds: 120}}
				b.Patients = []PatientAlerts{{Patient: "p1", Alerts: 1, ByCondition: map[Condition]int{News2: 1}}}
			}),
		},
		{
			name: "before the window, another ward, a device's acknowledgement",
			alerts: []alertOf{
				{id: 1, patient: "p1", ward: "w1", condition: News2, state: Raised},
				{id: 2, patient: "p2", ward: "w2", condition: News2, state: Raised},
				{id: 3, patient: "p1", ward: "w1", condition: BatteryLow, state: Acknowledged},
			},
			steps: []step{
				{alert: 1, min: -10, action: ActRaised, to: Raised, risk: news2.Medium},
				{alert: 1, min: 5, action: ActUpgraded, from: Raised, to: Raised, risk: news2.High},
				{alert: 2, min: 5, action: ActRaised, to: Raised, risk: news2.High},
				{alert: 3, min: 5, action: ActRaised, to: Raised, risk: news2.Low},
				{alert: 3, min: 6, action: ActAcknowledged, from: Raised, to: Acknowledged, risk: news2.Low, respSec: 60},
			},
			want: with(func(b *Burden) {
				b.Raised[BatteryLow] = 1
				b.Upgraded = 1
				b.Patients = []PatientAlerts{{Patient: "p1", Alerts: 1, ByCondition: map[Condition]int{BatteryLow: 1}}}
			}),
		},
		{
			name:   "a concern counts as a clinical alert of its own condition, acknowledged in time",
			alerts: []alertOf{{id: 1, patient: "p1", ward: "w1", condition: Concern, state: Resolved}},
			steps: []step{
				{alert: 1, min: 20, action: ActRaised, to: Raised, risk: news2.Medium},
				{alert: 1, min: 30, action: ActAcknowledged, from: Raised, to: Acknowledged, risk: news2.Medium, respSec: 600},
				{alert: 1, min: 90, action: ActResolved, from: Acknowledged, to: Resolved, risk: news2.Medium},
			},
			want: with(func(b *Burden) {
				b.Raised[Concern] = 1
				b.TimeToAcknowledge = []ResponseTime{{Ward: "w1", Risk: news2.Medium, Count: 1, MeanSeconds: 600, MedianSeconds: 600, P90Seconds: 600, MaxSeconds: 600}}
				b.Patients = []PatientAlerts{{Patient: "p1", Alerts: 1, ByCondition: map[Condition]int{Concern: 1}}}
			}),
		},
		{
			name:   "a care plan alert counts as a clinical alert of its own condition",
			alerts: []alertOf{{id: 1, patient: "p1", ward: "w1", condition: CarePlan, state: Resolved}},
			steps: []step{
				{alert: 1, min: 10, action: ActRaised, to: Raised, risk: news2.Medium},
				{alert: 1, min: 15, action: ActAcknowledged, from: Raised, to: Acknowledged, risk: news2.Medium, respSec: 300},
				{alert: 1, min: 60, action: ActCleared, from: Acknowledged, to: Resolved, risk: news2.Medium},
			},
			want: with(func(b *Burden) {
				b.Raised[CarePlan] = 1
				b.Cleared[CarePlan] = 1
				b.TimeToAcknowledge = []ResponseTime{{Ward: "w1", Risk: news2.Medium, Count: 1, MeanSeconds: 300, MedianSeconds: 300, P90Seconds: 300, MaxSeconds: 300}}
				b.Patients = []PatientAlerts{{Patient: "p1", Alerts: 1, ByCondition: map[Condition]int{CarePlan: 1}}}
			}),
		},
		{
			name: "escalations and reminders",
			alerts: []alertOf{
				{id: 1, patient: "p1", ward: "w1", condition: News2, state: Raised, tier: 2, tierName: "on-call GP"},
				{id: 2, patient: "p2", ward: "w1", condition: Overdue, state: Raised, tier: 1, tierName: "senior clinician"},
			},
			steps: []step{
				{alert: 1, min: 0, action: ActRaised, to: Raised, risk: news2.High},
				{alert: 1, min: 10, action: ActEscalated, from: Raised, to: Raised, risk: news2.High, tier: 1},
				{alert: 1, min: 20, action: ActEscalated, from: Raised, to: Raised, risk: news2.High, tier: 2},
				{alert: 1, min: 25, action: ActReminded, from: Raised, to: Raised, risk: news2.High, tier: 2},
				{alert: 2, min: 0, action: ActRaised, to: Raised, risk: news2.Low},
				{alert: 2, min: 240, action: ActEscalated, from: Raised, to: Raised, risk: news2.Low, tier: 1},
				{alert: 2, min: 300, action: ActReminded, from: Raised, to: Raised, risk: news2.Low, tier: 1},
			},
			want: with(func(b *Burden) {
				b.Raised[News2], b.Raised[Overdue] = 1, 1
				b.News2Raised[news2.High] = 1
				b.Escalations = []TierReached{{Tier: 1, Name: "senior clinician", Alerts: 2}, {Tier: 2, Name: "on-call GP", Alerts: 1}}
				b.Reminders = 2
				b.Patients = []PatientAlerts{
					{Patient: "p1", Alerts: 1, ByCondition: map[Condition]int{News2: 1}},
					{Patient: "p2", Alerts: 1, ByCondition: map[Condition]int{Overdue: 1}},
				}
			}),
		},
		{
			name: "shelves: ended, acknowledged, still in force",
			alerts: []alertOf{
				{id: 1, patient: "p1", ward: "w1", condition: News2, state: Acknowledged},
				{id: 2, patient: "p2", ward: "w1", condition: News2, state: Shelved, shelvedTo: 24*60 + 60},
			},
			steps: []step{
				{alert: 1, min: 0, action: ActRaised, to: Raised, risk: news2.LowMedium},
				{alert: 1, min: 5, action: ActShelved, from: Raised, to: Shelved, risk: news2.LowMedium, reason: "known chronic hypoxia"},
				{alert: 1, min: 10, action: ActHandover, from: Shelved, to: Shelved, risk: news2.LowMedium},
				{alert: 1, min: 35, action: ActUnshelved, from: Shelved, to: Raised, risk: news2.LowMedium},
				{alert: 1, min: 40, action: ActShelved, from: Raised, to: Shelved, risk: news2.LowMedium, reason: "known chronic hypoxia"},
				{alert: 1, min: 50, action: ActAcknowledged, from: Shelved, to: Acknowledged, risk: news2.LowMedium, respSec: 50 * 60},
				{alert: 2, min: 0, action: ActRaised, to: Raised, risk: news2.Medium},
				{alert: 2, min: 24*60 - 60, action: ActShelved, from: Raised, to: Shelved, risk: news2.Medium, reason: "GP visiting"},
			},
			want: with(func(b *Burden) {
				b.Raised[News2] = 2
				b.News2Raised[news2.LowMedium], b.News2Raised[news2.Medium] = 1, 1
				b.Shelves = Shelves{Count: 3, ShelvedSeconds: 40*60 + 60*60, Reasons: []ShelveReason{
					{Reason: "known chronic hypoxia", Count: 2, ShelvedSeconds: 40 * 60},
					{Reason: "GP visiting", Count: 1, ShelvedSeconds: 60 * 60},
				}}
				b.TimeToAcknowledge = []ResponseTime{{Ward: "w1", Risk: news2.LowMedium, Count: 1, MeanSeconds: 3000, MedianSeconds: 3000, P90Seconds: 3000, MaxSeconds: 3000}}
				b.Patients = []PatientAlerts{
					{Patient: "p1", Alerts: 1, ByCondition: map[Condition]int{News2: 1}},
					{Patient: "p2", Alerts: 1, ByCondition: map[Condition]int{News2: 1}},
				}
			}),
		},
		{
			name: "cleared without acknowledgement, raised again, most alerts first",
			alerts: []alertOf{
				{id: 1, patient: "p9", ward: "w1", condition: News2, state: Cleared},
				{id: 2, patient: "p1", ward: "w1", condition: DeviceOffline, state: Resolved},
				{id: 3, patient: "p9", ward: "w1", condition: Overdue, state: Resolved},
			},
			steps: []step{
				{alert: 1, min: 0, action: ActRaised, to: Raised, risk: news2.Medium},
				{alert: 1, min: 90, action: ActCleared, from: Raised, to: Cleared, risk: news2.Medium},
				{alert: 1, min: 100, action: ActReraised, from: Cleared, to: Raised, risk: news2.Medium},
				{alert: 1, min: 200, action: ActCleared, from: Raised, to: Cleared, risk: news2.Medium},
				{alert: 2, min: 0, action: ActRaised, to: Raised, risk: news2.Low},
				{alert: 2, min: 30, action: ActResolved, from: Raised, to: Resolved, risk: news2.Low},
				{alert: 3, min: 0, action: ActRaised, to: Raised, risk: news2.Low},
				{alert: 3, min: 60, action: ActCleared, from: Raised, to: Cleared, risk: news2.Low},
				{alert: 3, min: 70, action: ActAcknowledged, from: Cleared, to: Resolved, risk: news2.Low, respSec: 70 * 60},
			},
			want: with(func(b *Burden) {
				b.Raised[News2], b.Raised[Overdue], b.Raised[DeviceOffline] = 1, 1, 1
				b.News2Raised[news2.Medium] = 1
				b.Cleared[News2], b.Cleared[Overdue] = 2, 1
				b.Reraised = 1
				b.TimeToAcknowledge = []ResponseTime{{Ward: "w1", Risk: news2.Low, Count: 1, MeanSeconds: 4200, MedianSeconds: 4200, P90Seconds: 4200, MaxSeconds: 4200}}
				b.Patients = []PatientAlerts{
					{Patient: "p9", Alerts: 2, ByCondition: map[Condition]int{News2: 1, Overdue: 1}},
					{Patient: "p1", Alerts: 1, ByCondition: map[Condition]int{DeviceOffline: 1}},
				}
			}),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, err := sqlitedb.Open(dbPath(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			s, err := OpenStore(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			writeHistory(t, s, c.alerts, c.steps)
			got, err := s.AlarmBurden(context.Background(), "w1", t0, t0.Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("burden =\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}

// Only the first MaxShelveReasons reasons are listed; the rest are counted.
func TestAlarmBurdenBoundsShelveReasons(t *testing.T) {
	db, err := sqlitedb.Open(dbPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := OpenStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	alerts := []alertOf{{id: 1, patient: "p1", ward: "w1", condition: News2, state: Raised}}
	steps := []step{{alert: 1, min: 0, action: ActRaised, to: Raised, risk: news2.High}}
	for i := range MaxShelveReasons + 5 {
		m := float64(2 * i)
		steps = append(steps,
			step{alert: 1, min: m + 1, action: ActShelved, from: Raised, to: Shelved, risk: news2.High, reason: string(rune('A' + i))},
			step{alert: 1, min: m + 2, action: ActUnshelved, from: Shelved, to: Raised, risk: news2.High})
	}
	// "A" twice: the most common first.
	steps = append(steps, step{alert: 1, min: 500, action: ActShelved, from: Raised, to: Shelved, risk: news2.High, reason: "A"},
		step{alert: 1, min: 501, action: ActUnshelved, from: Shelved, to: Raised, risk: news2.High})
	writeHistory(t, s, alerts, steps)
	b, err := s.AlarmBurden(context.Background(), "w1", t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Shelves.Reasons) != MaxShelveReasons || b.Shelves.Reasons[0] != (ShelveReason{Reason: "A", Count: 2, ShelvedSeconds: 120}) ||
		b.Shelves.OtherShelves != 5 || b.Shelves.Count != MaxShelveReasons+6 {
		t.Errorf("shelves = %+v", b.Shelves)
	}
}
