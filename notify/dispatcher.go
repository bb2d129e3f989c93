package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
)

// Config tunes the dispatcher; zero fields take the defaults.
type Config struct {
	// BoardURL is the board's public address, for the links in
	// notifications (https://vward.example.nhs.uk); empty: no link.
	BoardURL string
	// MaxAttempts bounds the attempts per notification (default 5);
	// Backoff is the wait after the first failure (default 2 s), doubling
	// up to MaxBackoff (default 1 min).
	MaxAttempts int
	Backoff     time.Duration
	MaxBackoff  time.Duration
	// Concurrency bounds the sends in progress at once (default 8).
	Concurrency int
	// NightStart and NightEnd are the night, as times of day in Location
	// (default 22:00 to 07:00, local time): technical routes not marked
	// at_night are not used then.
	NightStart, NightEnd time.Duration
	Location             *time.Location
	// FailingAfter is how many notifications in a row a channel must give
	// up on before it counts as failing (default 3).
	FailingAfter int
	// Tick is how often the dispatcher looks for technical notifications
	// held overnight and retries a failed recomputation (default 30 s).
	Tick time.Duration
	// Clock is the dispatcher's clock; nil is time.Now.
	Clock func() time.Time
}

func (c Config) withDefaults() Config {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = 2 * time.Second
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = max(time.Minute, c.Backoff)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.NightStart == 0 && c.NightEnd == 0 {
		c.NightStart, c.NightEnd = 22*time.Hour, 7*time.Hour
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.FailingAfter <= 0 {
		c.FailingAfter = 3
	}
	if c.Tick <= 0 {
		c.Tick = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Night reports whether t falls in the configured night.
func (c Config) Night(t time.Time) bool {
	t = t.In(c.Location)
	tod := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
	if c.NightStart <= c.NightEnd {
		return tod >= c.NightStart && tod < c.NightEnd
	}
	return tod >= c.NightStart || tod < c.NightEnd
}

// AlertSource is what the dispatcher reads of the alerts (alerting.Store):
// the open alerts and their audit, to recompute what is owed at a start.
type AlertSource interface {
	List(ctx context.Context, f alerting.Filter) ([]alerting.Alert, error)
	Get(ctx context.Context, id int64) (alerting.Alert, []alerting.AuditEntry, error)
}

// Directory is what the dispatcher reads of the registry (devices.Registry):
// a patient's name, for the initials, and the clinicians, for roles.
type Directory interface {
	Patient(ctx context.Context, id vward.PatientID) (devices.Patient, error)
	Clinicians(ctx context.Context) ([]devices.Clinician, error)
}

// ChannelReporter is told when a channel starts failing a ward (it gave up
// on FailingAfter notifications in a row) and when it delivers again: the
// alert engine raises and resolves a technical alert for it.
type ChannelReporter interface {
	ChannelFailing(ward vward.WardID, channel string, failing bool, reason string)
}

// Dispatcher sends each alert event of its Inbox to the recipients the
// alert's ward names for its tier, over their channels, retrying with
// backoff, and keeps the delivery log.
type Dispatcher struct {
	cfg      Config
	inbox    *Inbox
	store    *Store
	alerts   AlertSource
	dir      Directory
	reporter ChannelReporter
	m        *Metrics
	log      *slog.Logger
	client   *http.Client
	sem      chan struct{}

	wg     sync.WaitGroup
	mu     sync.Mutex
	health map[healthKey]*health
	held   map[int64]heldAlert // technical alerts whose routes wait for the morning
}

type heldAlert struct {
	alert  alerting.Alert
	change string
}

type healthKey struct {
	ward    vward.WardID
	channel string
}

type health struct {
	gaveUp  int // notifications given up in a row
	failing bool
}

// NewDispatcher builds a dispatcher. reporter may be nil; m may be nil.
func NewDispatcher(cfg Config, inbox *Inbox, store *Store, alerts AlertSource, dir Directory, reporter ChannelReporter, m *Metrics, log *slog.Logger) *Dispatcher {
	if m == nil {
		m = NewMetrics(nil)
	}
	cfg = cfg.withDefaults()
	m.pending = inbox.Pending
	return &Dispatcher{
		cfg: cfg, inbox: inbox, store: store, alerts: alerts, dir: dir, reporter: reporter, m: m,
		log:    log.With("component", "notify"),
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		sem:    make(chan struct{}, cfg.Concurrency), health: make(map[healthKey]*health), held: make(map[int64]heldAlert),
	}
}

// Store returns the dispatcher's store.
func (d *Dispatcher) Store() *Store { return d.store }

// Run dispatches until ctx ends, then waits for the sends in progress to
// stop. It first recomputes what the open alerts are owed, so a restart
// forgets no unacknowledged alert's notification.
func (d *Dispatcher) Run(ctx context.Context) error {
	if cs, err := d.store.Channels(ctx); err == nil {
		for _, c := range cs {
			d.m.exportChannel(c.Name)
		}
	}
	d.recompute(ctx)
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return nil
		case e := <-d.inbox.events:
			d.handle(ctx, e)
		case <-d.inbox.wake:
		case <-t.C:
			d.morning(ctx)
		}
		if d.inbox.overrun.Swap(false) {
			d.log.Warn("notification queue was full: recomputing from the open alerts")
			d.recompute(ctx)
		}
	}
}

func (d *Dispatcher) handle(ctx context.Context, e alerting.Event) {
	a := *e.Alert
	if stops(e.Change) {
		d.inbox.forget(a.ID, a.Version)
		return
	}
	if d.inbox.stoppedSince(a.ID, a.Version) != nil || d.settled(ctx, a.ID) {
		return
	}
	d.dispatch(ctx, a, e.Change)
}

// settled reports whether the stored alert no longer needs anyone told:
// acknowledged, shelved or resolved since the event, which a queue
// overflow may have kept from the inbox. The engine stores a change before
// it publishes it, so the store is never behind the event.
func (d *Dispatcher) settled(ctx context.Context, id int64) bool {
	cur, _, err := d.alerts.Get(ctx, id)
	if err != nil {
		return false // tell rather than not: the delivery log keeps it honest
	}
	return cur.State == alerting.Acknowledged || cur.State == alerting.Shelved || cur.State == alerting.Resolved
}

// morning sends, once the night is over, what technical routes held
// overnight, for the alerts still raised.
func (d *Dispatcher) morning(ctx context.Context) {
	if d.cfg.Night(d.cfg.Clock()) {
		return
	}
	d.mu.Lock()
	held := d.held
	d.held = make(map[int64]heldAlert)
	d.mu.Unlock()
	for id, h := range held {
		cur, _, err := d.alerts.Get(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("read a held technical alert", "alert", id, "err", err)
			}
			continue
		}
		if cur.State != alerting.Raised || d.inbox.stoppedSince(id, h.alert.Version) != nil {
			continue
		}
		d.dispatch(ctx, h.alert, h.change)
	}
}

// pagingActions are the changes recompute re-sends when their
// notifications did not all finish.
var pagingActions = map[string]bool{
	alerting.ActRaised: true, alerting.ActUpgraded: true, alerting.ActReraised: true,
	alerting.ActEscalated: true, alerting.ActReminded: true, alerting.ActUnshelved: true,
}

// recompute sends what the open alerts are owed: for each unacknowledged
// alert whose last change was told to people, every notification of that
// change not yet sent, given up or cancelled in the delivery log.
func (d *Dispatcher) recompute(ctx context.Context) {
	d.inbox.forgetStops()
	for _, state := range []alerting.State{alerting.Raised, alerting.Cleared} {
		as, err := d.alerts.List(ctx, alerting.Filter{State: string(state)})
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("recompute notifications: list open alerts", "err", err)
				d.inbox.overrun.Store(true) // try again at the next tick
			}
			return
		}
		for i := len(as) - 1; i >= 0; i-- { // oldest first
			a := as[i]
			_, audit, err := d.alerts.Get(ctx, a.ID)
			if err != nil || len(audit) == 0 {
				continue
			}
			change := audit[len(audit)-1].Action
			if !pagingActions[change] || !notifies(&a, change, a.Queue == alerting.Clinical) {
				continue
			}
			if d.inbox.stoppedSince(a.ID, a.Version) != nil {
				continue
			}
			d.dispatch(ctx, a, change)
		}
	}
}

// target is one recipient on one channel, or why a route reaches nobody.
type target struct {
	recipient, address, channel string
	unresolved                  error
}

// targets returns whom the alert's ward names for its tier and queue now,
// whether the ward names anyone for the queue at all, and whether a
// technical route was held for the night.
func (d *Dispatcher) targets(ctx context.Context, a alerting.Alert, now time.Time) (out []target, configured, held bool, err error) {
	routes, err := d.store.Routes(ctx, a.Ward)
	if err != nil {
		return nil, false, false, err
	}
	for _, r := range routes {
		configured = configured || r.Queue == a.Queue
	}
	night := d.cfg.Night(now)
	seen := map[[2]string]bool{}
	add := func(user, channel string) error {
		if seen[[2]string{user, channel}] {
			return nil
		}
		seen[[2]string{user, channel}] = true
		addr, err := d.store.contact(ctx, user, channel)
		if err != nil {
			return err
		}
		out = append(out, target{recipient: user, address: addr, channel: channel})
		return nil
	}
	var clinicians []devices.Clinician
	for _, r := range routes {
		if r.Queue != a.Queue || r.Tier != a.Tier {
			continue
		}
		if a.Queue == alerting.Technical && night && !r.AtNight {
			held = true // a device's trouble waits for the morning unless the ward says otherwise
			continue
		}
		switch r.TargetKind {
		case "user":
			if err := add(r.Target, r.Channel); err != nil {
				return nil, configured, held, err
			}
		case "role":
			if clinicians == nil {
				if clinicians, err = d.dir.Clinicians(ctx); err != nil {
					return nil, configured, held, fmt.Errorf("list clinicians for role %s: %w", r.Target, err)
				}
			}
			n := 0
			for _, c := range clinicians {
				if c.Role == r.Target && (c.Role == "admin" || sees(c, a.Ward)) {
					n++
					if err := add(c.Username, r.Channel); err != nil {
						return nil, configured, held, err
					}
				}
			}
			if n == 0 {
				out = append(out, target{recipient: "role:" + r.Target, channel: r.Channel,
					unresolved: fmt.Errorf("nobody has role %s on ward %s", r.Target, a.Ward)})
			}
		case "rota":
			users, err := d.store.onCall(ctx, r.Target, now)
			if err != nil {
				return nil, configured, held, err
			}
			if len(users) == 0 {
				out = append(out, target{recipient: "rota:" + r.Target, channel: r.Channel,
					unresolved: fmt.Errorf("nobody on call on rota %s at %s", r.Target, now.UTC().Format(time.RFC3339))})
			}
			for _, u := range users {
				if err := add(u, r.Channel); err != nil {
					return nil, configured, held, err
				}
			}
		}
	}
	return out, configured, held, nil
}

func sees(c devices.Clinician, w vward.WardID) bool {
	for _, x := range c.Wards {
		if x == w {
			return true
		}
	}
	return false
}

// dispatch starts the delivery of an alert change to each of its targets.
func (d *Dispatcher) dispatch(ctx context.Context, a alerting.Alert, change string) {
	now := d.cfg.Clock()
	targets, configured, held, err := d.targets(ctx, a, now)
	if held {
		d.mu.Lock()
		d.held[a.ID] = heldAlert{alert: a, change: change}
		d.mu.Unlock()
	}
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("find recipients", "alert", a.ID, "ward", a.Ward, "err", err)
			d.inbox.overrun.Store(true) // recompute at the next tick
		}
		return
	}
	if len(targets) == 0 {
		if configured && !held {
			targets = []target{{recipient: "", channel: "", unresolved: fmt.Errorf("ward %s names nobody for tier %d (%s) of the %s queue", a.Ward, a.Tier, a.TierName, a.Queue)}}
		} else {
			d.log.Debug("no notification routes for the ward's queue", "ward", a.Ward, "queue", a.Queue, "alert", a.ID)
			return
		}
	}
	var patient devices.Patient
	if a.Patient != "" {
		if p, err := d.dir.Patient(ctx, a.Patient); err == nil {
			patient = p
		}
	}
	for _, t := range targets {
		id := notificationID(a.ID, a.Version, t.channel, t.recipient)
		sctx, cancel := context.WithCancelCause(ctx)
		if !d.inbox.track(a.ID, a.Version, id, cancel) {
			cancel(nil)
			continue // stopped meanwhile, or being delivered already
		}
		release := func() {
			d.inbox.untrack(a.ID, id)
			cancel(nil)
		}
		// Read once tracked: a delivery of the same notification that has
		// just ended logged its result before it let go.
		attempts, done, err := d.store.progress(ctx, id)
		if err != nil {
			d.log.Error("read the delivery log", "notification", id, "err", err)
			release()
			continue
		}
		if done {
			release()
			continue
		}
		if t.unresolved != nil {
			d.record(ctx, Delivery{Notification: id, AlertID: a.ID, AlertVersion: a.Version, Ward: a.Ward, Event: change, Tier: a.Tier,
				Recipient: t.recipient, Channel: t.channel, Attempt: attempts, Result: ResultGaveUp, Error: t.unresolved.Error(), StartedAt: now, FinishedAt: now})
			if t.channel != "" {
				d.m.undelivered(t.channel)
			}
			d.log.Warn("notification reaches nobody", "alert", a.ID, "ward", a.Ward, "tier", a.Tier, "err", t.unresolved)
			release()
			continue
		}
		cfg, err := d.store.Channel(ctx, t.channel)
		var ch Channel
		if err == nil {
			ch, err = cfg.build(d.client)
		}
		if err != nil {
			d.record(ctx, Delivery{Notification: id, AlertID: a.ID, AlertVersion: a.Version, Ward: a.Ward, Event: change, Tier: a.Tier,
				Recipient: t.recipient, Channel: t.channel, Attempt: attempts, Result: ResultGaveUp, Error: err.Error(), StartedAt: now, FinishedAt: now})
			d.m.undelivered(t.channel)
			release()
			continue
		}
		n := d.notification(a, change, id, t, cfg.Detail, patient, now)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer release()
			d.deliver(sctx, ch, n, attempts+1)
		}()
	}
}

// notification builds what a target is told, with as much of the patient
// as the channel's detail allows.
func (d *Dispatcher) notification(a alerting.Alert, change, id string, t target, detail Detail, p devices.Patient, now time.Time) Notification {
	n := Notification{
		Schema: SchemaVersion, ID: id, AlertID: a.ID, AlertVersion: a.Version, Event: change,
		Ward: a.Ward, Device: a.Device, Rule: a.Rule, Condition: a.Condition, Queue: a.Queue, Risk: a.Risk.String(), Score: a.Score,
		State: a.State, Tier: a.Tier, TierName: a.TierName, Reason: a.Reason,
		Recipient: t.recipient, Address: t.address, Channel: t.channel, EvidenceAt: a.EvidenceAt, At: a.UpdatedAt,
	}
	if !a.EvidenceAt.IsZero() && now.After(a.EvidenceAt) {
		n.EvidenceAgeSeconds = int64(now.Sub(a.EvidenceAt) / time.Second)
	}
	if detail == "" {
		detail = DetailInitials
	}
	if a.Patient != "" && detail != DetailNone {
		n.Patient = &PatientRef{ID: a.Patient}
		switch detail {
		case DetailInitials:
			n.Patient.Initials = Initials(p.Name)
		case DetailName:
			n.Patient.Name = p.Name
		}
	}
	if d.cfg.BoardURL != "" {
		n.Link = d.cfg.BoardURL + "/"
		if n.Patient != nil {
			n.Link += "#patient/" + url.PathEscape(string(a.Patient))
		}
	}
	return n
}

// deliver makes the attempts of one notification, from attempt first,
// logging each, until it is sent, given up, or cancelled by a stop. A
// shutdown leaves it as it is: the next start carries on from the log.
func (d *Dispatcher) deliver(ctx context.Context, ch Channel, n Notification, first int) {
	row := Delivery{Notification: n.ID, AlertID: n.AlertID, AlertVersion: n.AlertVersion, Ward: n.Ward, Event: n.Event,
		Tier: n.Tier, Recipient: n.Recipient, Channel: n.Channel}
	cancelled := func(attempt int) {
		if why := context.Cause(ctx); errors.Is(why, errStopped) {
			r := row
			r.Attempt, r.Result, r.Error = attempt, ResultCancelled, why.Error()
			r.StartedAt, r.FinishedAt = d.cfg.Clock(), d.cfg.Clock()
			d.record(ctx, r)
			d.m.cancelledCount(n.Channel)
		}
	}
	for attempt := first; ; attempt++ {
		if ctx.Err() != nil {
			cancelled(attempt - 1)
			return
		}
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			cancelled(attempt - 1)
			return
		}
		n.SentAt = d.cfg.Clock()
		began := time.Now()
		err := ch.Send(ctx, n)
		<-d.sem
		d.m.observe(n.Channel, time.Since(began))
		if err != nil && ctx.Err() != nil {
			cancelled(attempt)
			return
		}
		r := row
		r.Attempt, r.StartedAt, r.FinishedAt = attempt, n.SentAt, d.cfg.Clock()
		if err == nil {
			r.Result = ResultSent
			d.record(ctx, r)
			d.m.sentCount(n.Channel)
			d.log.Info("notification sent", "notification", n.ID, "alert", n.AlertID, "recipient", n.Recipient, "channel", n.Channel, "attempt", attempt)
			d.healthy(n.Ward, n.Channel)
			return
		}
		d.m.failedCount(n.Channel)
		last := IsPermanent(err) || attempt >= d.cfg.MaxAttempts
		r.Result, r.Error = ResultFailed, err.Error()
		if last {
			r.Result = ResultGaveUp
		}
		d.record(ctx, r)
		if last {
			d.m.undelivered(n.Channel)
			d.log.Error("notification not delivered", "notification", n.ID, "alert", n.AlertID, "recipient", n.Recipient, "channel", n.Channel, "attempts", attempt, "err", err)
			d.gaveUp(n.Ward, n.Channel, err)
			return
		}
		d.log.Warn("notification attempt failed", "notification", n.ID, "channel", n.Channel, "attempt", attempt, "err", err)
		wait := d.cfg.Backoff << (attempt - first)
		if wait > d.cfg.MaxBackoff || wait <= 0 {
			wait = d.cfg.MaxBackoff
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			cancelled(attempt)
			return
		}
	}
}

// record writes a delivery row, even when the send's context was cancelled.
func (d *Dispatcher) record(ctx context.Context, r Delivery) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.store.logDelivery(ctx, r); err != nil {
		d.log.Error("write the delivery log", "err", err)
	}
}

// healthy and gaveUp track whether a channel keeps failing a ward. The
// first delivery since the start is reported too: the alert of a channel
// that failed before a restart resolves when it delivers again.
func (d *Dispatcher) healthy(w vward.WardID, channel string) {
	d.mu.Lock()
	k := healthKey{w, channel}
	h := d.health[k]
	report := h == nil || h.failing
	if h == nil {
		h = &health{}
		d.health[k] = h
	}
	h.gaveUp, h.failing = 0, false
	d.mu.Unlock()
	if report && d.reporter != nil {
		d.reporter.ChannelFailing(w, channel, false, "delivered again")
	}
}

func (d *Dispatcher) gaveUp(w vward.WardID, channel string, err error) {
	d.mu.Lock()
	k := healthKey{w, channel}
	h := d.health[k]
	if h == nil {
		h = &health{}
		d.health[k] = h
	}
	h.gaveUp++
	report := h.gaveUp >= d.cfg.FailingAfter && !h.failing
	if report {
		h.failing = true
	}
	n := h.gaveUp
	d.mu.Unlock()
	if report && d.reporter != nil {
		d.reporter.ChannelFailing(w, channel, true, fmt.Sprintf("gave up on %d notifications in a row; last: %v", n, err))
	}
}

// TestSend sends one test notification over a channel to a recipient (a
// username, whose contact on the channel is used), once, and says how it
// went. It is audited, and not in any alert's delivery log.
func (d *Dispatcher) TestSend(ctx context.Context, channel, recipient string) error {
	cfg, err := d.store.Channel(ctx, channel)
	if err != nil {
		return err
	}
	ch, err := cfg.build(d.client)
	if err != nil {
		return err
	}
	addr, err := d.store.contact(ctx, recipient, channel)
	if err != nil {
		return err
	}
	now := d.cfg.Clock()
	n := Notification{
		Schema: SchemaVersion, ID: fmt.Sprintf("test.%d.%s.%s", now.UnixNano(), channel, recipient), Event: "test",
		Ward: "", Condition: "test", Risk: "low", Reason: "a test of the channel; no patient is involved",
		Recipient: recipient, Address: addr, Channel: channel, At: now, SentAt: now, TierName: "test",
	}
	if d.cfg.BoardURL != "" {
		n.Link = d.cfg.BoardURL + "/"
	}
	sendErr := ch.Send(ctx, n)
	result := "sent"
	if sendErr != nil {
		result = "failed: " + sendErr.Error()
	}
	if err := d.store.change(ctx, "notify.test_send", "channel:"+channel, recipient+": "+result, func(*sql.Tx) error { return nil }); err != nil {
		return err
	}
	return sendErr
}
