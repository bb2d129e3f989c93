package simulator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/boardclient"
)

// RunOptions say where and how to run a scenario.
type RunOptions struct {
	MQTTURL string
	// Credentials are device secrets by device id; a device without one
	// connects with its id as username and no password (an anonymous
	// broker).
	Credentials map[vward.DeviceID]string
	// Speed overrides the scenario's speed when above 0.
	Speed float64
	// Board, when set, is watched and the scenario's expectations checked.
	Board *boardclient.Login
	// Ramp, Rate: see FleetConfig.
	Ramp time.Duration
	Rate float64
	// Grace is how long the board is still watched after the last step,
	// for the last readings to reach it (default 3s).
	Grace time.Duration
	// DrainTimeout bounds the wait for the last PUBACKs (default 30s).
	DrainTimeout time.Duration
	// ConnectTimeout bounds the wait for every device to connect (see
	// FleetConfig).
	ConnectTimeout time.Duration
	// Origin pins the clock's origin (scenario time 0) for a reproducible
	// run; by default it is the moment the fleet is connected. It must not
	// be earlier than that.
	Origin time.Time
	// Progress, when set, receives the fleet's progress lines.
	Progress io.Writer
	Log      *slog.Logger
}

// RunScenario plays a scenario against a broker — and, with Board set,
// puts the patients' care plans as the clinician and checks what vward's
// board showed against the scenario's expectations — and reports. It is
// what `vward replay FILE --expect` runs. An error means the run could not
// be set up (a bad scenario, the board refused the clinician or a care
// plan); what went wrong during the run is in the report's Problems.
func RunScenario(ctx context.Context, sc *Scenario, o RunOptions) (*Report, error) {
	plan, err := sc.Plan()
	if err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Grace <= 0 {
		o.Grace = 3 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	var ids []Identity
	for _, d := range plan.Devices() {
		ids = append(ids, Identity{Device: d.ID, Password: o.Credentials[d.ID]})
	}
	var watch *BoardWatch
	if o.Board != nil {
		if watch, err = WatchBoard(ctx, *o.Board, o.Log); err != nil {
			return nil, err
		}
		defer watch.Close()
		// Before any reading, so that the rules judge every one of them.
		if err := PutCarePlans(ctx, watch.stream.Put, plan); err != nil {
			return nil, err
		}
	} else if plan.HasCarePlans() {
		o.Log.Warn("the scenario's care plans are put with a clinician's session, which only --expect opens; they are not set", "scenario", sc.Name)
	}
	fleet, err := NewFleet(FleetConfig{BrokerURL: o.MQTTURL, Ramp: o.Ramp, Rate: o.Rate, ConnectTimeout: o.ConnectTimeout, Log: o.Log}, ids)
	if err != nil {
		return nil, err
	}
	defer fleet.Close()
	rep := &Report{Scenario: sc.Name}
	if err := fleet.Connect(ctx); err != nil {
		rep.Problems = append(rep.Problems, err.Error())
		return rep, nil
	}
	origin := o.Origin
	if origin.IsZero() || origin.Before(time.Now()) {
		origin = time.Now()
	}
	clock := sc.NewClock(origin, o.Speed)
	streams := plan.Streams(clock)
	var ds []DeviceSteps
	for _, s := range streams {
		ds = append(ds, DeviceSteps{Device: s.Device(), Steps: s})
	}
	pctx, stopProgress := context.WithCancel(ctx)
	progressDone := make(chan struct{})
	if o.Progress != nil {
		go func() {
			defer close(progressDone)
			(&Progress{W: o.Progress, Fleet: fleet}).Run(pctx)
		}()
	} else {
		close(progressDone)
	}
	playErr := fleet.Play(ctx, clock, ds)
	unacked, offline := fleet.Drain(ctx, o.DrainTimeout)
	stopProgress()
	<-progressDone
	if playErr != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the run stopped early: %v", playErr))
	}
	if unacked > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d messages were never acknowledged by the broker within %s", unacked, o.DrainTimeout))
	}
	if r := fleet.Refusals(); len(r) > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the broker refused %d devices: %s", len(r), firstFew(r)))
	}
	if watch != nil {
		select {
		case <-ctx.Done():
		case <-time.After(o.Grace):
		}
		checked := Evaluate(plan, watch.Observations(clock))
		checked.Notifications = CheckNotifications(ctx, watch.stream.Get, sc.Notifications, time.Now())
		checked.Problems = rep.Problems
		rep = checked
		rows, alerts := watch.Counts()
		rep.Notes = append(rep.Notes, fmt.Sprintf("board: %s patient updates and %s alert events while watching", group(int64(rows)), group(int64(alerts))))
		if n := watch.Reconnects(); n > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the board stream dropped and was reopened %d time(s)", n))
		}
	}
	s := &fleet.Stats
	rep.Notes = append(rep.Notes, fmt.Sprintf("fleet: %d devices, %s messages published (%s backfilled, %s duplicates, %s malformed), %s acknowledged, %s resent after reconnects, %s errors; clock %s at %g× from %s",
		len(ids), group(s.Published.Load()), group(s.Backfilled.Load()), group(s.Duplicates.Load()), group(s.Malformed.Load()),
		group(s.Acked.Load()), group(s.Resent.Load()), group(s.Errors()), clock.Mode, clock.Speed, clock.Origin.UTC().Format(time.RFC3339)))
	var dropped, stranded, died int
	for _, st := range streams {
		dropped += st.Stats.Dropped
		stranded += st.Stats.Stranded
		if st.Stats.Died {
			died++
		}
	}
	if dropped+stranded+died+offline > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("devices: %d messages lost to full offline buffers, %d still buffered offline at the end, %d unsent on devices left offline, %d devices ran flat", dropped, stranded, offline, died))
	}
	return rep, nil
}
