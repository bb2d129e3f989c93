// Package node wires one running vward: registry, ingest, alerting and the
// board, around a broker and a reading history. `vward serve`, `vward demo`
// and the end-to-end tests all start a Node, so what is tested is what runs.
package node

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/handover"
	"github.com/vward/vward/history"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/internal/buildinfo"
	"github.com/vward/vward/journal"
	"github.com/vward/vward/mqttsource"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/notes"
	"github.com/vward/vward/notify"
	"github.com/vward/vward/observations"
	"github.com/vward/vward/planstore"
	"github.com/vward/vward/questionnaires"
	"github.com/vward/vward/registrysync"
	"github.com/vward/vward/sqlitedb"
	"github.com/vward/vward/tokens"
	"github.com/vward/vward/web"
)

// Config is everything a node needs to start.
type Config struct {
	DataDir  string // SQLite file and demo credentials live here
	HTTPAddr string // host:port; port 0 picks a free one
	MQTT     mqttsource.Config
	Influx   *history.InfluxConfig // nil: bounded in-memory history
	// Journal, with InfluxDB, keeps readings on local disk between ingest
	// and InfluxDB, so that an outage of InfluxDB does not stall alerts;
	// its Dir defaults to DataDir/journal. nil: no journal, messages are
	// acknowledged only once InfluxDB has them.
	Journal *journal.Config
	// MemoryReadings bounds the in-memory history per patient.
	MemoryReadings int
	Ingest         ingest.Config
	// Alerting is the escalation policy, per ward, and the alert engine's
	// clock and tick (docs/alerts.md).
	Alerting alerting.Config
	// Notify is how alerts reach people: the board's public address for
	// links, retries, the night (docs/alerts.md, "Who is told when").
	// Channels and recipients are in the store (vward notify).
	Notify notify.Config
	// Auth says which reverse proxies to trust for the client's address.
	Auth web.AuthConfig
	Log  *slog.Logger
}

// Node is a started vward. Its parts are exported for wiring and tests.
type Node struct {
	cfg      Config
	log      *slog.Logger
	DB       *sql.DB
	Registry *devices.Registry
	Dead     *ingest.DeadLetterStore
	// History is where ingest writes and the board reads: the journal
	// in front of InfluxDB, InfluxDB alone, or the in-memory history.
	History history.Store
	// Journal is the journal, when there is one.
	Journal *journal.Journal
	influx  *history.Influx
	Monitor *alerting.Monitor
	Alerts  *alerting.Engine
	// Notify sends the alerts' notifications (webhook, email) and keeps
	// their delivery log.
	Notify *notify.Dispatcher
	// Observations are the observations people enter, and how they reach
	// the monitor and the history.
	Observations *observations.Service
	Notes        *notes.Store // the patients' notes and contact log
	// Questionnaires holds what patients and carers answered on their
	// devices' questionnaire topic.
	Questionnaires *questionnaires.Store
	CarePlans      *planstore.Store // the patients' care plans, versioned
	// Tokens are the machine clients' API tokens, for FHIR.
	Tokens *tokens.Store
	// Plans keeps the monitor's care plans in step with CarePlans.
	Plans     *planstore.Follower
	Handovers *handover.Service // SBARD handovers from alerts, and their outcomes
	Sync      *registrysync.Sync
	Hub       *web.Hub
	Auth      *web.Auth
	Pipeline  *ingest.Pipeline
	Source    *mqttsource.Source
	// Metrics is this node's Prometheus registry, served on /metrics. It
	// is not the global one, so a test may run several nodes.
	Metrics  *prometheus.Registry
	listener net.Listener
	// historyDown is why InfluxDB did not answer the start-up check, if
	// it did not.
	historyDown error
	ctx         context.Context
	cancel      context.CancelFunc
}

// Open opens the stores and builds every part, ready for Run. The HTTP
// listener is bound here so that URL is known before Run.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MemoryReadings <= 0 {
		cfg.MemoryReadings = 20000
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	db, err := sqlitedb.Open(filepath.Join(cfg.DataDir, "vward.db"))
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Log, DB: db, Metrics: prometheus.NewRegistry()}
	n.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	n.ctx, n.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*Node, error) {
		n.Close()
		return nil, err
	}
	if n.Registry, err = devices.Open(ctx, db); err != nil {
		return fail(err)
	}
	if n.Dead, err = ingest.OpenDeadLetters(ctx, db); err != nil {
		return fail(err)
	}
	if cfg.Influx != nil {
		if err := cfg.Influx.Validate(); err != nil {
			return fail(err)
		}
		n.influx = history.NewInflux(*cfg.Influx)
		n.History = n.influx
		if cfg.Journal != nil {
			jc := *cfg.Journal
			if jc.Dir == "" {
				jc.Dir = filepath.Join(cfg.DataDir, "journal")
			}
			if n.Journal, err = journal.Open(ctx, jc, n.influx, journal.NewMetrics(n.Metrics), cfg.Log); err != nil {
				return fail(err)
			}
			n.History = n.Journal
		}
	} else {
		n.History = history.NewMemory(cfg.MemoryReadings)
	}
	if n.Auth, err = web.NewAuth(ctx, db, n.Registry, cfg.Auth, cfg.Log); err != nil {
		return fail(err)
	}
	n.Hub = web.NewHub(cfg.Log)
	// The engine tells the board and the notification inbox of each
	// alert change; neither blocks it.
	inbox := notify.NewInbox(0)
	if n.Alerts, err = alerting.OpenEngine(ctx, db, cfg.Alerting, publishers{n.Hub, inbox}, cfg.Log); err != nil {
		return fail(err)
	}
	notifications, err := notify.OpenStore(ctx, db)
	if err != nil {
		return fail(err)
	}
	n.Notify = notify.NewDispatcher(cfg.Notify, inbox, notifications, n.Alerts.Store(), n.Registry, n.Alerts, notify.NewMetrics(n.Metrics), cfg.Log)
	n.Monitor = alerting.NewMonitor(news2.DefaultFreshness(), n.Hub, n.Alerts, cfg.Log)
	entries, err := observations.Open(ctx, db, n.Registry)
	if err != nil {
		return fail(err)
	}
	n.Observations = observations.NewService(entries, n.History, n.Monitor, cfg.Log)
	if n.Notes, err = notes.Open(ctx, db, n.Registry); err != nil {
		return fail(err)
	}
	if n.Questionnaires, err = questionnaires.Open(ctx, db); err != nil {
		return fail(err)
	}
	if n.CarePlans, err = planstore.Open(ctx, db, n.Registry); err != nil {
		return fail(err)
	}
	if n.Tokens, err = tokens.Open(ctx, db); err != nil {
		return fail(err)
	}
	handovers, err := handover.Open(ctx, db)
	if err != nil {
		return fail(err)
	}
	n.Handovers = handover.NewService(handover.Deps{
		Store: handovers, Alerts: n.Alerts, Registry: n.Registry,
		Sets:   handover.NewLiveSets(n.Monitor, entries, n.Alerts.Store()),
		Notes:  handover.NotesOf(n.Notes),
		Policy: n.Alerts.Config().PolicyFor,
	})
	n.Metrics.MustRegister(n.Alerts.Collector(), n.Hub.Collector(), n.Registry.Collector())
	n.Sync = registrysync.New(n.Registry, n.Monitor, cfg.Log)
	n.Plans = planstore.NewFollower(n.CarePlans, n.Monitor, planReadings{n.History, n.Observations}, cfg.Log)
	// The pipeline tells devices why it refused their messages through the
	// broker connection, which feeds the pipeline: a channel between them
	// lets each be built without the other.
	notices := make(chan ingest.Rejection, rejectionNotices)
	n.Pipeline = ingest.NewPipeline(cfg.Ingest, n.History, n.Registry, n.Monitor, n.Dead, n.Questionnaires, notices, ingest.NewMetrics(n.Metrics), cfg.Log)
	n.Source = mqttsource.NewSource(cfg.MQTT, n.Pipeline, notices, mqttsource.NewMetrics(n.Metrics), cfg.Log)
	if n.listener, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return fail(fmt.Errorf("listen for http on %s: %w", cfg.HTTPAddr, err))
	}
	if err := n.LoadPatients(ctx); err != nil {
		return fail(err)
	}
	// After the patients: the monitor takes a plan only for a patient it has.
	if err := n.Plans.All(ctx); err != nil {
		return fail(err)
	}
	if n.historyDown, err = n.verifyHistory(ctx); err != nil {
		return fail(err)
	}
	return n, nil
}

// publishers tells each of several publishers of every event.
type publishers []alerting.Publisher

func (ps publishers) Publish(e alerting.Event) {
	for _, p := range ps {
		p.Publish(e)
	}
}

// LoadPatients tells the monitor of every patient on a ward, so that the
// board lists them before their first reading, and of what changed since
// it last did (registrysync). Run does it again whenever another process
// changes the registry.
func (n *Node) LoadPatients(ctx context.Context) error { return n.Sync.All(ctx) }

// rejectionNotices is how many rejection notices may wait for the broker
// connection: room for a burst of refused messages. Beyond it notices are
// dropped, never waited for; the dead letters keep every rejection.
const rejectionNotices = 1024

// RestoreLookback is how far back a starting node reads each admitted
// patient's latest readings from the history: a day, so that a patient on
// 12-hourly spot checks is shown with their last set (scored as stale as
// it is) rather than an empty row.
const RestoreLookback = 24 * time.Hour

// RestoreTimeout bounds the start-up read of the history: with InfluxDB
// unreachable vward starts with empty rows and says so in the log, rather
// than not starting at all.
const RestoreTimeout = 30 * time.Second

// restore rebuilds the board and the scores from the history and assesses
// every patient (Monitor.Restore) before ingest takes its first message.
func (n *Node) restore(ctx context.Context) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, RestoreTimeout)
	defer cancel()
	// The trends are read from SQLite while InfluxDB answers, and go in
	// first: the scores the readings make are added after them.
	type loaded struct {
		ts  map[vward.PatientID][]alerting.TrendPoint
		err error
	}
	trends := make(chan loaded, 1)
	go func() {
		ts, err := n.Alerts.Store().LoadTrends(ctx, began.Add(-RestoreLookback))
		trends <- loaded{ts, err}
	}()
	rs, err := n.History.Latest(ctx, began.Add(-RestoreLookback), began.Add(time.Minute))
	// The entries' store, not the history, says which entered readings count.
	rs = n.Observations.Restore(ctx, rs, began.Add(-RestoreLookback))
	if t := <-trends; t.err != nil {
		n.log.Error("restore the board's trends: they start again from now", "err", t.err)
	} else {
		n.Monitor.RestoreTrends(t.ts)
	}
	// From SQLite, not the history: a concern does not wait on InfluxDB.
	n.restoreConcerns(ctx, began.Add(-RestoreLookback))
	if err != nil {
		if len(rs) == 0 {
			n.log.Error("restore the board from the history: rows stay empty until each patient's next reading", "err", err)
			return
		}
		n.log.Error("restore the board from the history: rows show only what the journal held", "readings", len(rs), "err", err)
	}
	n.Monitor.Restore(rs)
	n.log.Info("board restored from the history", "readings", len(rs), "took", time.Since(began).Round(time.Millisecond))
}

// planReadings is where the rules of a care plan read their readings back
// from (planstore.History): the history, with the readings entered by
// people as the observation entries say, those in error left out.
type planReadings struct {
	history      history.Store
	observations *observations.Service
}

func (p planReadings) CarePlanReadings(ctx context.Context, id vward.PatientID, kinds []vward.ReadingKind, from, to time.Time) ([]vward.Reading, error) {
	rs, err := p.history.ReadingsOf(ctx, id, kinds, from, to, alerting.MaxCarePlanWindow)
	if err != nil {
		return nil, err
	}
	rs = slices.DeleteFunc(p.observations.RestoreOf(ctx, id, rs, from), func(r vward.Reading) bool {
		return !slices.Contains(kinds, r.Kind) || !r.At.Before(to)
	})
	slices.SortStableFunc(rs, func(a, b vward.Reading) int { return a.At.Compare(b.At) })
	return rs, nil
}

// RegistryWatchInterval is how often a running node checks whether another
// process (the vward wards|patients|devices|users commands) changed the
// registry.
const RegistryWatchInterval = 2 * time.Second

// URL is the board's address.
func (n *Node) URL() string { return "http://" + n.listener.Addr().String() }

// Run serves until ctx ends. Shutdown order matters for zero loss: intake
// stops, the pipeline flushes and acknowledges what it stored, and only then
// does the broker connection close.
func (n *Node) Run(ctx context.Context) error {
	defer n.cancel()
	checks := []web.Check{
		{Name: "broker", Run: func(context.Context) error { return n.Source.Check() }},
		n.historyCheck(),
	}
	if n.Journal != nil {
		checks = append(checks, web.Check{Name: "journal", Run: func(ctx context.Context) error {
			if err := n.Journal.Ping(ctx); err != nil {
				return err
			}
			if err := n.Pipeline.StoreError(); err != nil {
				return fmt.Errorf("writes failing: %w", err)
			}
			return nil
		}})
	}
	srv := web.NewServer(n.ctx, web.Deps{
		Auth: n.Auth, Monitor: n.Monitor, History: n.History, Hub: n.Hub,
		Wards: n.Registry, Registry: n.Registry, Checks: checks, Status: n.Status, Log: n.log,
		Ops: web.Ops{Rejections: n.Dead, Metrics: n.Metrics, Registerer: n.Metrics}, Alerts: n.Alerts, Sync: n.Sync,
		Observations: n.Observations, Notes: n.Notes, Questionnaires: n.Questionnaires, CarePlans: n.CarePlans, CarePlanSync: n.Plans, Handovers: n.Handovers,
		Notify: n.Notify, Tokens: n.Tokens,
	})
	g, gctx := errgroup.WithContext(ctx)
	if n.historyDown != nil {
		g.Go(func() error { return n.awaitHistory(gctx, n.historyDown) })
	}
	// The engine's writer first: restoring may raise alerts, and their
	// writes queue for it.
	g.Go(func() error { return n.Alerts.Run(gctx) })
	g.Go(func() error { return n.Notify.Run(gctx) })
	n.restore(gctx)
	if n.Journal != nil {
		g.Go(func() error { return n.Journal.Run(gctx) })
	}
	g.Go(func() error { return n.Pipeline.Run(gctx) })
	g.Go(func() error { return n.Source.Run(gctx) })
	g.Go(func() error { return n.Monitor.Run(gctx, 30*time.Second) })
	g.Go(func() error { return n.Monitor.KeepTrends(gctx, n.Alerts.Store()) })
	// The CLI writes the registry from other processes; see docs/registry.md.
	g.Go(func() error { return n.Sync.Run(gctx, RegistryWatchInterval) })
	// Observations entered with the CLI reach the monitor and the history
	// here: only this process writes the history (docs/observations.md).
	g.Go(func() error { return n.Observations.Run(gctx, RegistryWatchInterval) })
	// Care plans the CLI changes reach the monitor here (docs/alerts.md#care-plan-rules).
	g.Go(func() error { return n.Plans.Run(gctx, RegistryWatchInterval) })
	g.Go(func() error {
		err := web.Serve(gctx, n.listener, srv.Handler())
		n.cancel() // end the board streams
		return err
	})
	n.log.Info("vward running", "board", n.URL(), "broker", n.Source.String(), "history", n.History.Describe())
	return g.Wait()
}

// historyCheck is /readyz's check of the history. Behind the journal an
// unreachable InfluxDB degrades the node rather than unreadying it: the
// journal keeps the readings and alerts stay live.
func (n *Node) historyCheck() web.Check {
	if n.Journal == nil {
		return web.Check{Name: "history", Run: func(ctx context.Context) error {
			if err := n.History.Ping(ctx); err != nil {
				return err
			}
			// Reachable is not enough: say so while writes fail.
			if err := n.Pipeline.StoreError(); err != nil {
				return fmt.Errorf("%s: writes failing: %w", n.History.Describe(), err)
			}
			return nil
		}}
	}
	return web.Check{Name: "history", Degrades: true, Run: func(ctx context.Context) error {
		st := n.Journal.State()
		err := st.HistoryErr
		if err == nil {
			err = n.influx.Ping(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s behind (%d messages in the journal); alerts are live: %w", st.Behind(time.Now()).Round(time.Second), st.Messages, err)
		}
		return nil
	}}
}

// HistoryDelayedAfter is how far behind the history may fall before the
// board says it is delayed; forwarding normally keeps within a second.
const HistoryDelayedAfter = 30 * time.Second

// Status is what the board tells clinicians of vward itself.
func (n *Node) Status() web.SystemStatus {
	if n.Journal == nil {
		if n.Pipeline.StoreError() != nil {
			return web.SystemStatus{History: web.HistoryStalled,
				Message: "History unavailable: new readings are waiting at the broker and alerts may be delayed until it is back."}
		}
		return web.SystemStatus{History: web.HistoryOK}
	}
	st := n.Journal.State()
	behind := st.Behind(time.Now())
	switch {
	case st.Full:
		return web.SystemStatus{History: web.HistoryStalled, BehindSeconds: behind.Seconds(),
			Message: fmt.Sprintf("History %s behind and vward's journal is full: new readings are waiting at the broker and alerts can stall until the history catches up.", minutes(behind))}
	case st.HistoryErr != nil || behind >= HistoryDelayedAfter:
		return web.SystemStatus{History: web.HistoryDelayed, BehindSeconds: behind.Seconds(),
			Message: fmt.Sprintf("History delayed (%s behind); alerts are live.", minutes(behind))}
	}
	return web.SystemStatus{History: web.HistoryOK}
}

// minutes says a lag as a person reads it at a glance.
func minutes(d time.Duration) string {
	switch m := int(d.Round(time.Minute) / time.Minute); {
	case d < time.Minute:
		return "under a minute"
	case m == 1:
		return "1 min"
	default:
		return fmt.Sprintf("%d min", m)
	}
}

// verifyHistory checks InfluxDB before anything starts: a configuration
// error (token refused, bucket missing) stops the node with what to fix; a
// transient failure is returned for Run's awaitHistory to keep checking
// while the node runs, holding acknowledgements as for any outage.
func (n *Node) verifyHistory(ctx context.Context) (transient error, err error) {
	in := n.influx
	if in == nil {
		return nil, nil
	}
	switch err := in.Verify(ctx); {
	case err == nil:
		return nil, nil
	case errors.Is(err, history.ErrMisconfigured):
		return nil, err
	default:
		if n.Journal != nil {
			n.log.Warn("history unreachable at start; running, the journal keeps readings until it answers", "err", err)
		} else {
			n.log.Warn("history unreachable at start; running, holding acknowledgements until it answers", "err", err)
		}
		return err, nil
	}
}

// awaitHistory repeats the start-up check until InfluxDB answers, logging
// each new cause and the same one at most once a minute, and stops the node
// if InfluxDB, once it answers, says it is misconfigured.
func (n *Node) awaitHistory(ctx context.Context, last error) error {
	in := n.influx
	said := time.Now()
	for wait := time.Second; ; wait = min(2*wait, 15*time.Second) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		err := in.Verify(ctx)
		switch {
		case err == nil:
			n.log.Info("history reachable", "history", in.Describe())
			return nil
		case errors.Is(err, history.ErrMisconfigured):
			return err
		case ctx.Err() != nil:
			return nil
		case err.Error() != last.Error() || time.Since(said) >= time.Minute:
			n.log.Warn("history still unreachable", "err", err, "journal", n.Journal != nil)
			last, said = err, time.Now()
		}
	}
}

// Close releases the stores. Call it after Run returns.
func (n *Node) Close() {
	n.cancel()
	if n.listener != nil {
		n.listener.Close()
	}
	if n.Journal != nil {
		n.Journal.Close()
	}
	if n.influx != nil {
		n.influx.Close()
	}
	if n.DB != nil {
		n.DB.Close()
	}
}

// restoreConcerns assesses each admitted patient's latest questionnaire
// again, as restore does their readings: one kept and acknowledged just
// before a crash, whose concern alert was not yet stored, raises it now.
// The engine's watermarks keep a concern already raised, cleared or
// resolved from being raised again.
func (n *Node) restoreConcerns(ctx context.Context, since time.Time) {
	qs, err := n.Questionnaires.Latest(ctx, since)
	if err != nil {
		n.log.Error("restore concerns from the questionnaires: a concern kept just before a stop may be missing", "err", err)
		return
	}
	for _, q := range qs {
		if _, admitted := n.Monitor.Patient(q.Patient); admitted {
			n.Monitor.ObserveQuestionnaire(q)
		}
	}
}
