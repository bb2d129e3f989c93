package alerting

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// MaxShelveReasons bounds the shelve reasons a burden lists; the rest are
// counted together.
const MaxShelveReasons = 20

// Burden is what a ward's alerts asked of its clinicians over a window, from
// the audit: the alert figures of the alarm burden report (package burden
// sets them against the patient-days).
type Burden struct {
	// Raised counts the alerts raised in the window by condition, and
	// News2Raised the news2 ones by their risk when raised.
	Raised      map[Condition]int
	News2Raised map[news2.Risk]int
	// Cleared counts, by condition, the times an alert returned to normal
	// before anyone acknowledged it.
	Cleared   map[Condition]int
	Reraised  int
	Upgraded  int
	Reminders int
	// Escalations counts, by tier, the alerts that reached it in the window.
	Escalations []TierReached
	Shelves     Shelves
	// TimeToAcknowledge is of the clinical alerts acknowledged in the
	// window, highest risk first, as ResponseTimes reports it.
	TimeToAcknowledge []ResponseTime
	// Patients is every patient an alert was raised for, most alerts first.
	Patients []PatientAlerts
}

// TierReached is how many alerts were escalated to one tier.
type TierReached struct {
	Tier   int    `json:"tier"`
	Name   string `json:"tier_name,omitempty"`
	Alerts int    `json:"alerts"`
}

// Shelves are the shelves made in a window: how many, for how long in all,
// and why, most common reason first.
type Shelves struct {
	Count          int            `json:"count"`
	ShelvedSeconds float64        `json:"shelved_seconds"`
	Reasons        []ShelveReason `json:"reasons"`
	// OtherShelves counts the shelves whose reasons are beyond the first
	// MaxShelveReasons.
	OtherShelves int `json:"other_shelves"`
}

// ShelveReason is one exact reason text, how often it was given and how
// long the alerts it silenced stayed shelved.
type ShelveReason struct {
	Reason         string  `json:"reason"`
	Count          int     `json:"count"`
	ShelvedSeconds float64 `json:"shelved_seconds"`
}

// PatientAlerts is how many alerts one patient raised, by condition.
type PatientAlerts struct {
	Patient     vward.PatientID   `json:"patient"`
	Alerts      int               `json:"alerts"`
	ByCondition map[Condition]int `json:"by_condition"`
}

// AlarmBurden reads the alert figures of a ward over [from, to] from the
// audit. A shelve counts in the window it was made, for as long as it
// lasted (up to to, for one still in force).
func (s *Store) AlarmBurden(ctx context.Context, ward vward.WardID, from, to time.Time) (Burden, error) {
	b := Burden{Raised: map[Condition]int{}, News2Raised: map[news2.Risk]int{}, Cleared: map[Condition]int{}}
	fail := func(err error) (Burden, error) {
		return Burden{}, fmt.Errorf("read the alarm burden of ward %s: %w", ward, err)
	}
	// The end of a shelve is the alert's next entry that leaves the
	// shelved state (a handover on a shelved alert leaves it shelved).
	// The bodies are read only for the entries that need them.
	rows, err := s.db.QueryContext(ctx, `SELECT au.action, au.at, au.risk, au.response_ms, al.patient, al.condition,
			CASE au.action WHEN 'escalated' THEN COALESCE(json_extract(au.body, '$.tier'), 0) ELSE 0 END,
			CASE au.action WHEN 'shelved' THEN COALESCE(json_extract(au.body, '$.reason'), '') ELSE '' END,
			CASE au.action WHEN 'escalated' THEN COALESCE(json_extract(al.body, '$.tier'), 0) ELSE 0 END,
			CASE au.action WHEN 'escalated' THEN COALESCE(json_extract(al.body, '$.tier_name'), '') ELSE '' END,
			CASE au.action WHEN 'shelved' THEN COALESCE(json_extract(al.body, '$.shelved_until'), '') ELSE '' END,
			CASE au.action WHEN 'shelved' THEN (SELECT nx.at FROM alert_audit nx WHERE nx.alert_id = au.alert_id AND nx.id > au.id
				AND COALESCE(json_extract(nx.body, '$.to'), '') <> 'shelved' ORDER BY nx.id LIMIT 1) END
		FROM alert_audit au JOIN alerts al ON al.id = au.alert_id
		WHERE au.ward = ? AND au.at >= ? AND au.at <= ?
			AND au.action IN ('raised', 'reraised', 'upgraded', 'escalated', 'reminded', 'acknowledged', 'shelved', 'cleared')`,
		ward, nanos(from), nanos(to))
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	patients := map[vward.PatientID]*PatientAlerts{}
	tiers := map[int]*TierReached{}
	reasons := map[string]*ShelveReason{}
	var acks map[news2.Risk][]float64
	for rows.Next() {
		var (
			action, risk, reason, tierName, shelvedUntil string
			at                                           int64
			resp, end                                    sql.NullInt64
			patient                                      vward.PatientID
			cond                                         Condition
			tier, alertTier                              int
			r                                            news2.Risk
		)
		if err := rows.Scan(&action, &at, &risk, &resp, &patient, &cond, &tier, &reason, &alertTier, &tierName, &shelvedUntil, &end); err != nil {
			return fail(err)
		}
		if err := r.UnmarshalText([]byte(risk)); err != nil {
			return fail(err)
		}
		switch action {
		case ActRaised:
			b.Raised[cond]++
			if cond == News2 {
				b.News2Raised[r]++
			}
			p := patients[patient]
			if p == nil {
				p = &PatientAlerts{Patient: patient, ByCondition: map[Condition]int{}}
				patients[patient] = p
			}
			p.Alerts++
			p.ByCondition[cond]++
		case ActReraised:
			b.Reraised++
		case ActUpgraded:
			b.Upgraded++
		case ActReminded:
			b.Reminders++
		case ActCleared:
			b.Cleared[cond]++
		case ActEscalated:
			t := tiers[tier]
			if t == nil {
				t = &TierReached{Tier: tier}
				tiers[tier] = t
			}
			t.Alerts++
			// An alert's tier never goes down, so one still at this tier
			// names it as the ward's policy did.
			if alertTier == tier && tierName != "" {
				t.Name = tierName
			}
		case ActAcknowledged:
			if resp.Valid && cond.Queue() == Clinical {
				if acks == nil {
					acks = map[news2.Risk][]float64{}
				}
				acks[r] = append(acks[r], float64(resp.Int64)/1000)
			}
		case ActShelved:
			start, stop := time.Unix(0, at), to
			switch {
			case end.Valid:
				stop = time.Unix(0, end.Int64)
			case shelvedUntil != "":
				// Still shelved as stored: to the shelve's end, if that came
				// before to with nobody running to record it.
				if u, err := time.Parse(time.RFC3339Nano, shelvedUntil); err == nil && u.Before(stop) {
					stop = u
				}
			}
			if stop.After(to) {
				stop = to
			}
			d := max(stop.Sub(start).Seconds(), 0)
			sr := reasons[reason]
			if sr == nil {
				sr = &ShelveReason{Reason: reason}
				reasons[reason] = sr
			}
			sr.Count++
			sr.ShelvedSeconds += d
			b.Shelves.Count++
			b.Shelves.ShelvedSeconds += d
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	// Tiers 1 and 2 are always said, reached or not.
	defaults := DefaultPolicy().Tiers
	for tier := 1; tier <= 2; tier++ {
		if tiers[tier] == nil {
			tiers[tier] = &TierReached{Tier: tier}
		}
	}
	for _, t := range tiers {
		if t.Name == "" && t.Tier < len(defaults) {
			t.Name = defaults[t.Tier]
		}
		b.Escalations = append(b.Escalations, *t)
	}
	slices.SortFunc(b.Escalations, func(x, y TierReached) int { return x.Tier - y.Tier })
	for _, sr := range reasons {
		b.Shelves.Reasons = append(b.Shelves.Reasons, *sr)
	}
	slices.SortFunc(b.Shelves.Reasons, func(x, y ShelveReason) int {
		return cmp.Or(y.Count-x.Count, cmp.Compare(y.ShelvedSeconds, x.ShelvedSeconds), cmp.Compare(x.Reason, y.Reason))
	})
	if len(b.Shelves.Reasons) > MaxShelveReasons {
		for _, sr := range b.Shelves.Reasons[MaxShelveReasons:] {
			b.Shelves.OtherShelves += sr.Count
		}
		b.Shelves.Reasons = b.Shelves.Reasons[:MaxShelveReasons]
	}
	if b.Shelves.Reasons == nil {
		b.Shelves.Reasons = []ShelveReason{}
	}
	samples := make(map[responseGroup][]float64, len(acks))
	for r, xs := range acks {
		samples[responseGroup{ward: ward, risk: r}] = xs
	}
	b.TimeToAcknowledge = summariseResponses(samples)
	b.Patients = []PatientAlerts{}
	for _, p := range patients {
		b.Patients = append(b.Patients, *p)
	}
	slices.SortFunc(b.Patients, func(x, y PatientAlerts) int {
		return cmp.Or(y.Alerts-x.Alerts, cmp.Compare(x.Patient, y.Patient))
	})
	return b, nil
}
