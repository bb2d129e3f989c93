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
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/internal/sqlitedb"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/web"
)

// Config is everything a node needs to start.
type Config struct {
	DataDir  string // SQLite file and demo credentials live here
	HTTPAddr string // host:port; port 0 picks a free one
	MQTT     ingest.MQTTConfig
	Influx   *history.InfluxConfig // nil: bounded in-memory history
	// MemoryReadings bounds the in-memory history per patient.
	MemoryReadings int
	Ingest         ingest.Config
	Log            *slog.Logger
}

// Node is a started vward. Its parts are exported for wiring and tests.
type Node struct {
	cfg      Config
	log      *slog.Logger
	DB       *sql.DB
	Registry *devices.Registry
	Dead     *ingest.DeadLetterStore
	History  history.Store
	Monitor  *alerting.Monitor
	Hub      *web.Hub
	Auth     *web.Auth
	Pipeline *ingest.Pipeline
	Source   *ingest.Source
	listener net.Listener
	ctx      context.Context
	cancel   context.CancelFunc
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
	n := &Node{cfg: cfg, log: cfg.Log, DB: db}
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
		n.History = history.NewInflux(*cfg.Influx)
	} else {
		n.History = history.NewMemory(cfg.MemoryReadings)
	}
	if n.Auth, err = web.NewAuth(ctx, db, n.Registry, cfg.Log); err != nil {
		return fail(err)
	}
	n.Hub = web.NewHub(cfg.Log)
	n.Monitor = alerting.NewMonitor(news2.DefaultFreshness(), n.Hub, cfg.Log)
	n.Pipeline = ingest.NewPipeline(cfg.Ingest, n.History, n.Registry, n.Monitor, n.Dead, nil, cfg.Log)
	n.Source = ingest.NewSource(cfg.MQTT, n.Pipeline, cfg.Log)
	if n.listener, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return fail(fmt.Errorf("listen for http on %s: %w", cfg.HTTPAddr, err))
	}
	if err := n.LoadPatients(ctx); err != nil {
		return fail(err)
	}
	return n, nil
}

// LoadPatients tells the monitor of every admitted patient, so that the board
// lists them before their first reading.
func (n *Node) LoadPatients(ctx context.Context) error {
	ps, err := n.Registry.Patients(ctx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		n.Monitor.Admit(alerting.PatientInfo{ID: p.ID, Ward: p.Ward, Name: p.Name, SpO2Scale: p.SpO2Scale})
	}
	return nil
}

// URL is the board's address.
func (n *Node) URL() string { return "http://" + n.listener.Addr().String() }

// Run serves until ctx ends. Shutdown order matters for zero loss: intake
// stops, the pipeline flushes and acknowledges what it stored, and only then
// does the broker connection close.
func (n *Node) Run(ctx context.Context) error {
	defer n.cancel()
	checks := []web.Check{
		{Name: "broker", Run: func(context.Context) error {
			if !n.Source.Connected() {
				return errors.New("not connected to the broker")
			}
			return nil
		}},
		{Name: "history", Run: n.History.Ping},
	}
	srv := web.NewServer(n.ctx, n.Auth, n.Monitor, n.History, n.Hub, checks, n.log)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.Pipeline.Run(gctx) })
	g.Go(func() error { return n.Source.Run(gctx) })
	g.Go(func() error { return n.Monitor.Run(gctx, 30*time.Second) })
	g.Go(func() error {
		err := web.Serve(gctx, n.listener, srv.Handler())
		n.cancel() // end the board streams
		return err
	})
	n.log.Info("vward running", "board", n.URL(), "broker", n.Source.String(), "history", n.History.Describe())
	return g.Wait()
}

// Close releases the stores. Call it after Run returns.
func (n *Node) Close() {
	n.cancel()
	if n.listener != nil {
		n.listener.Close()
	}
	if c, ok := n.History.(interface{ Close() }); ok {
		c.Close()
	}
	if n.DB != nil {
		n.DB.Close()
	}
}
