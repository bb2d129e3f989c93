package demo

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
	"github.com/vward/vward/simulator"
)

// NurseActor is who the virtual nurse's entries are entered by, in the
// entries and the audit: plainly not a person.
const NurseActor = "nurse.demo (simulated)"

// Rows are the board's rows (alerting.Monitor).
type Rows interface {
	Snapshot(sees func(vward.WardID) bool) []alerting.Row
}

// Entries take observations entered by a person (observations.Service).
type Entries interface {
	Enter(ctx context.Context, patient vward.PatientID, in observations.Input) (observations.Entry, error)
}

// Nurse is the demo's virtual nurse. No device measures consciousness or
// oxygen, and only some patients wear a respiratory patch, so the devices
// alone leave every NEWS2 partial; she telephones one patient at a time and
// enters what a call gives: ACVPU, on oxygen or air, and the breathing rate
// she counts when no device measures it. She calls the patient who has
// gone longest without a full score among those a call would complete (the
// others wait for their devices, or for a visit), the sickest first when
// that is a tie. Her entries go through the observations service, so they
// are stored, audited and shown as any entry is.
type Nurse struct {
	rows    Rows
	entries Entries
	plan    *simulator.Plan
	origin  time.Time
	every   time.Duration
	patched map[vward.PatientID]bool // wears a respiratory patch
	rng     *rand.Rand
	log     *slog.Logger
	now     func() time.Time

	called map[vward.PatientID]time.Time
}

// NewNurse builds the virtual nurse of the seeded ward, whose patients'
// state she reads from the demo's scenario on a clock starting at origin,
// as the fleet's (Fleet). She calls every s.Options.NurseEvery.
func NewNurse(s Seeded, rows Rows, entries Entries, origin time.Time, log *slog.Logger) (*Nurse, error) {
	if s.Options.NurseEvery <= 0 {
		return nil, fmt.Errorf("the virtual nurse needs a time between calls above 0, not %s", s.Options.NurseEvery)
	}
	plan, err := Scenario(s).Plan()
	if err != nil {
		return nil, fmt.Errorf("plan the demo ward: %w", err)
	}
	n := &Nurse{
		rows: rows, entries: entries, plan: plan, origin: origin, every: s.Options.NurseEvery,
		patched: map[vward.PatientID]bool{},
		rng:     rand.New(rand.NewPCG(s.Options.Seed, 27)),
		log:     log.With("component", "demo-nurse"), now: time.Now,
		called: map[vward.PatientID]time.Time{},
	}
	for _, d := range s.Devices {
		if d.Kind == simulator.Wearable {
			n.patched[d.Patient] = true
		}
	}
	return n, nil
}

// byTelephone is what a telephone call can give: what the patient or a
// carer answers, and the breathing rate the nurse counts.
var byTelephone = []news2.Parameter{news2.RespiratoryRate, news2.SupplementalOxygen, news2.Consciousness}

// Run enters the ward's earlier round, then makes a call every interval
// until ctx ends.
func (n *Nurse) Run(ctx context.Context) error {
	n.earlierRound(ctx)
	t := time.NewTicker(n.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			n.Call(ctx)
		}
	}
}

// earlierRound enters, for every patient, the telephone call of a round
// two to five hours before the demo began, as a ward that has been running
// has: the board shows since when each answer is stale, and the nurse
// starts with whoever was called first.
func (n *Nurse) earlierRound(ctx context.Context) {
	for _, p := range n.plan.Patients {
		at := n.origin.Add(-2*time.Hour - time.Duration(n.rng.Int64N(int64(3*time.Hour)))).Truncate(time.Minute)
		ask := byTelephone
		if n.patched[p.ID] {
			ask = byTelephone[1:]
		}
		if e, said, err := n.enter(ctx, p, ask, at); err == nil {
			n.log.Debug("the earlier round", "patient", p.ID, "entry", e.Name(), "measured", e.MeasuredAt, "said", said)
		} else if ctx.Err() == nil {
			n.log.Warn("the virtual nurse could not enter the earlier round", "patient", p.ID, "err", err)
		}
	}
}

// Call telephones the patient who has gone longest without a full NEWS2,
// of those a call would complete, and enters what they said; it reports
// whom, or "" when nobody needs a call.
func (n *Nurse) Call(ctx context.Context) vward.PatientID {
	now := n.now()
	type candidate struct {
		row   *alerting.Row
		needs []alerting.Need
		since time.Time // the oldest needed value; zero: one never measured
	}
	var due []candidate
	rows := n.rows.Snapshot(func(w vward.WardID) bool { return w == Ward })
	for i := range rows {
		r := &rows[i]
		needs := r.Needs()
		if len(needs) == 0 || now.Sub(n.called[r.Patient]) < 2*n.every {
			continue
		}
		c := candidate{row: r, needs: needs, since: now}
		for _, nd := range needs {
			if !slices.Contains(byTelephone, nd.Parameter) {
				c = candidate{}
				break
			}
			if nd.LastAt.Before(c.since) {
				c.since = nd.LastAt
			}
		}
		if c.row != nil {
			due = append(due, c)
		}
	}
	if len(due) == 0 {
		return ""
	}
	best := slices.MinFunc(due, func(a, b candidate) int {
		return cmp.Or(a.since.Compare(b.since), cmp.Compare(b.row.Result.Score, a.row.Result.Score), cmp.Compare(a.row.Patient, b.row.Patient))
	})
	p, ok := n.plan.Patient(best.row.Patient)
	if !ok {
		return ""
	}
	n.called[p.ID] = now
	ask := make([]news2.Parameter, 0, len(byTelephone))
	for _, nd := range best.needs {
		ask = append(ask, nd.Parameter)
	}
	// A call asks both questions, whatever was still current.
	for _, q := range byTelephone[1:] {
		if !slices.Contains(ask, q) {
			ask = append(ask, q)
		}
	}
	e, said, err := n.enter(ctx, p, ask, now)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("the virtual nurse could not enter a telephone call", "patient", p.ID, "err", err)
		}
		return ""
	}
	n.log.Info("the virtual nurse telephoned", "patient", p.ID, "name", p.Name, "entry", e.Name(), "said", said)
	return p.ID
}

// enter enters, as a telephone call, what the patient's state at t
// answers to ask, and says what in words.
func (n *Nurse) enter(ctx context.Context, p *simulator.PlanPatient, ask []news2.Parameter, at time.Time) (observations.Entry, string, error) {
	v := p.Model.Truth(at.Sub(n.origin))
	in := observations.Input{Source: string(observations.Telephone), Readings: map[string]json.RawMessage{}}
	if at.Before(n.now().Add(-time.Minute)) {
		in.MeasuredAt = at.UTC().Format(time.RFC3339)
	}
	var said []string
	for _, q := range ask {
		var raw string
		switch q {
		case news2.RespiratoryRate:
			// Counted over a minute on the telephone: within a breath or two.
			rr := math.Max(4, math.Round(v.RespiratoryRate+n.rng.NormFloat64()))
			raw = strconv.FormatFloat(rr, 'f', -1, 64)
			said = append(said, "resp rate "+raw)
		case news2.SupplementalOxygen:
			raw = strconv.FormatBool(v.OnOxygen)
			said = append(said, map[bool]string{true: "on oxygen", false: "on air"}[v.OnOxygen])
		case news2.Consciousness:
			raw = strconv.Quote(v.Consciousness.String())
			said = append(said, "ACVPU "+v.Consciousness.String())
		default:
			continue
		}
		in.Readings[q.String()] = json.RawMessage(raw)
	}
	e, err := n.entries.Enter(devices.WithActor(ctx, NurseActor), p.ID, in)
	return e, strings.Join(said, ", "), err
}
