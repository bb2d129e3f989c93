package bench

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/internal/services"
)

// Outage is a run's history outage: the self-started influxd frozen, and
// what vward and its board did meanwhile and after.
type Outage struct {
	// StartS and EndS are the freeze and the thaw, in seconds from the
	// first publish.
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	// LatencyMS is publish→board of the messages due during the outage.
	LatencyMS Percentiles `json:"latency_ms"`
	// Published is how many messages were due during the outage, Stored
	// how many of them InfluxDB held at the end (the run's verification).
	Published int64 `json:"published"`
	Stored    int64 `json:"stored"`
	// Acknowledged is how many messages vward stored and acknowledged
	// while InfluxDB was frozen: into its journal, or none without one.
	Acknowledged int64 `json:"acknowledged"`
	// Backlog names the metric the backlog figures are of: the journal's
	// messages, or without a journal ingest's messages in flight.
	Backlog           string  `json:"backlog"`
	BacklogBeforeMsgs float64 `json:"backlog_before_msgs"`
	PeakBacklogMsgs   float64 `json:"peak_backlog_msgs"`
	PeakBacklogBytes  float64 `json:"peak_backlog_bytes,omitempty"`
	// Drained says the backlog came back to its level before the outage
	// (the largest of the last scrapes before the freeze) within the run;
	// DrainS is how long after the thaw that took.
	Drained bool    `json:"drained"`
	DrainS  float64 `json:"drain_s"`
	// DrainMsgsPerS is the rate messages reached InfluxDB while draining,
	// PublishMsgsPerS the run's publish rate, DrainVsPublish their ratio.
	DrainMsgsPerS   float64 `json:"drain_msgs_per_s"`
	PublishMsgsPerS float64 `json:"publish_msgs_per_s"`
	DrainVsPublish  float64 `json:"drain_vs_publish"`
}

// JournalStats is vward's journal over a run, scraped from its /metrics
// once a second: peaks are of those scrapes, counts and durations
// from the first publish until the journal was empty.
type JournalStats struct {
	BacklogPeakMsgs  float64 `json:"backlog_peak_msgs"`
	BacklogPeakBytes float64 `json:"backlog_peak_bytes"`
	BacklogEndMsgs   float64 `json:"backlog_end_msgs"`
	OldestAgePeakS   float64 `json:"oldest_age_peak_s"`
	MaxBytes         float64 `json:"max_bytes"`
	// Full says a scrape found the journal full, or it refused a write.
	Full          bool    `json:"full"`
	AppendedMsgs  float64 `json:"appended_msgs"`
	ForwardedMsgs float64 `json:"forwarded_msgs"`
	// ForwardedMsgsPerS is ForwardedMsgs over the time from the first
	// publish until the journal was empty.
	ForwardedMsgsPerS float64 `json:"forwarded_msgs_per_s"`
	// AppendMS is the write and fsync of one batch, ForwardMS a write to
	// InfluxDB, from their histograms' buckets.
	AppendMS          HistogramMS `json:"append_ms"`
	ForwardMS         HistogramMS `json:"forward_ms"`
	RefusedWrites     float64     `json:"refused_writes"`
	ForwardFailures   float64     `json:"forward_failures"`
	UnreadableEntries float64     `json:"unreadable_entries"`
}

// HistogramMS is a duration histogram's summary in milliseconds,
// interpolated within buckets, and how many observations it had.
type HistogramMS struct {
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Count int64   `json:"count"`
}

// vward's metrics the bench reads.
const (
	mStored          = "vward_ingest_messages_stored_total"
	mInFlight        = "vward_ingest_messages_in_flight"
	mJournalMessages = "vward_journal_messages"
	mJournalBytes    = "vward_journal_bytes"
	mJournalMax      = "vward_journal_max_bytes"
	mJournalFull     = "vward_journal_full"
	mJournalOldest   = "vward_journal_oldest_age_seconds"
	mAppended        = "vward_journal_appended_messages_total"
	mForwarded       = "vward_journal_forwarded_messages_total"
	mRefused         = "vward_journal_refused_writes_total"
	mUnreadable      = "vward_journal_unreadable_entries_total"
	mForwardFailures = "vward_journal_forward_failures_total"
	mAppendDuration  = "vward_journal_append_duration_seconds"
	mForwardDuration = "vward_journal_forward_duration_seconds"
)

// outageDefaults checks the outage flags: the bench can only freeze an
// influxd it started, and the outage has to end while the fleet publishes.
func (c *Config) outageDefaults() error {
	if c.HistoryOutage < 0 || c.HistoryOutageAfter < 0 {
		return vward.Errorf(vward.ErrInvalid, "--history-outage %v after %v: want durations of 0 or more", c.HistoryOutage, c.HistoryOutageAfter)
	}
	if c.HistoryOutage == 0 {
		if c.HistoryOutageAfter > 0 {
			return vward.Errorf(vward.ErrInvalid, "--history-outage-after %v without --history-outage", c.HistoryOutageAfter)
		}
		return nil
	}
	if c.MQTTURL != "" {
		return vward.Errorf(vward.ErrInvalid, "--history-outage freezes the InfluxDB the bench starts itself; it cannot be used with --mqtt-url")
	}
	if c.HistoryOutageAfter == 0 {
		c.HistoryOutageAfter = min(30*time.Second, c.Duration/5)
	}
	if c.HistoryOutageAfter+c.HistoryOutage > c.Duration {
		return vward.Errorf(vward.ErrInvalid, "--history-outage %v after %v ends after --duration %v: want the outage to end while the fleet publishes",
			c.HistoryOutage, c.HistoryOutageAfter, c.Duration)
	}
	return nil
}

// monitor scrapes vward's /metrics through a run: the journal's peaks,
// and, when the run has an outage, it freezes and thaws influxd on time
// and follows the backlog until it drains.
type monitor struct {
	base     string
	every    time.Duration
	log      *slog.Logger
	progress func(string, ...any)
	start    time.Time

	// The outage, when planned: influxd is frozen from freezeAt to thawAt.
	influxd          *services.Process
	freezeAt, thawAt time.Time
	board            *board
	frozen           bool

	// What the scrapes found; read once run has returned.
	first, last                  scrape
	journal                      bool
	peakMsgs, peakBytes, peakAge float64
	full                         bool
	recent                       []float64 // the backlog at the last scrapes before the freeze
	out                          outageTrack
	err                          error
}

// outageTrack is the outage as it happened.
type outageTrack struct {
	frozenAt, thawedAt, drainedAt time.Time
	level                         float64 // the backlog before the freeze
	peakMsgs, peakBytes           float64
	atFreeze, atThaw, atDrain     scrape
}

// newMonitor takes the first scrape, the baseline of the run's counts.
func newMonitor(ctx context.Context, base string, start time.Time, log *slog.Logger, progress func(string, ...any)) (*monitor, error) {
	first, err := scrapeMetrics(ctx, base)
	if err != nil {
		return nil, err
	}
	return &monitor{base: base, every: time.Second, log: log, progress: progress, start: start,
		first: first, last: first, journal: first.has(mJournalMessages)}, nil
}

// planOutage has run freeze influxd after warm-up for d, counting the
// board's latency of messages due meanwhile apart.
func (m *monitor) planOutage(influxd *services.Process, b *board, after, d time.Duration) {
	m.influxd, m.board = influxd, b
	m.freezeAt = m.start.Add(after)
	m.thawAt = m.freezeAt.Add(d)
}

// backlogName is the metric the outage's backlog is read from.
func (m *monitor) backlogName() string {
	if m.journal {
		return mJournalMessages
	}
	return mInFlight
}

// forwardedName counts messages that reached InfluxDB.
func (m *monitor) forwardedName() string {
	if m.journal {
		return mForwarded
	}
	return mStored
}

// run scrapes until stop is closed (then once more) or ctx ends. However
// it returns, a frozen influxd is thawed first.
func (m *monitor) run(ctx context.Context, stop <-chan struct{}) {
	defer m.thaw()
	tick := time.NewTicker(m.every)
	defer tick.Stop()
	var freeze, thaw <-chan time.Time
	var freezeT, thawT *time.Timer
	defer func() {
		for _, t := range []*time.Timer{freezeT, thawT} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	if m.influxd != nil {
		freezeT = time.NewTimer(time.Until(m.freezeAt))
		freeze = freezeT.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			m.sample(ctx)
			return
		case <-tick.C:
			m.sample(ctx)
		case <-freeze:
			freeze = nil
			m.sample(ctx)
			m.out.level = 0
			for _, v := range m.recent {
				m.out.level = max(m.out.level, v)
			}
			if err := m.influxd.Signal(syscall.SIGSTOP); err != nil {
				m.err = fmt.Errorf("freeze influxd: %w", err)
				return
			}
			m.frozen = true
			m.out.frozenAt, m.out.atFreeze = time.Now(), m.last
			m.board.outage(m.out.frozenAt, time.Time{})
			m.progress("outage: influxd frozen %.1fs into publishing (backlog %.0f before) for %s…",
				m.out.frozenAt.Sub(m.start).Seconds(), m.out.level, m.thawAt.Sub(m.freezeAt))
			thawT = time.NewTimer(time.Until(m.thawAt))
			thaw = thawT.C
		case <-thaw:
			thaw = nil
			if m.thaw(); m.err != nil {
				return
			}
			m.out.thawedAt = time.Now()
			m.board.outage(m.out.frozenAt, m.out.thawedAt)
			m.sample(ctx)
			m.out.atThaw = m.last
			m.progress("outage: influxd thawed; backlog %.0f", m.last.value(m.backlogName()))
		}
	}
}

// thaw resumes a frozen influxd.
func (m *monitor) thaw() {
	if !m.frozen {
		return
	}
	if err := m.influxd.Signal(syscall.SIGCONT); err != nil && m.err == nil {
		m.err = fmt.Errorf("thaw influxd: %w", err)
	}
	m.frozen = false
}

// sample scrapes once; a failed scrape is logged and skipped, as a busy
// vward may be slow to answer.
func (m *monitor) sample(ctx context.Context) {
	s, err := scrapeMetrics(ctx, m.base)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("bench: scrape vward's metrics", "err", err)
		}
		return
	}
	m.last = s
	if m.journal {
		m.peakMsgs = max(m.peakMsgs, s.value(mJournalMessages))
		m.peakBytes = max(m.peakBytes, s.value(mJournalBytes))
		m.peakAge = max(m.peakAge, s.value(mJournalOldest))
		m.full = m.full || s.value(mJournalFull) > 0
	}
	backlog := s.value(m.backlogName())
	switch o := &m.out; {
	case m.influxd == nil:
	case o.frozenAt.IsZero():
		// The level the drain has to come back to: what the backlog is in
		// the steady state, over the last four scrapes before the freeze.
		if m.recent = append(m.recent, backlog); len(m.recent) > 4 {
			m.recent = m.recent[1:]
		}
	case o.drainedAt.IsZero():
		o.peakMsgs = max(o.peakMsgs, backlog)
		if m.journal {
			o.peakBytes = max(o.peakBytes, s.value(mJournalBytes))
		}
		if !o.thawedAt.IsZero() && s.at.After(o.thawedAt) && backlog <= o.level {
			o.drainedAt, o.atDrain = s.at, s
			m.progress("outage: backlog drained %.1fs after the thaw", s.at.Sub(o.thawedAt).Seconds())
		}
	}
}

// outage is the run's outage, but for the messages due during it, which
// the verification counts.
func (m *monitor) outage(publishRate float64) *Outage {
	o := m.out
	if m.influxd == nil || o.frozenAt.IsZero() {
		return nil
	}
	res := &Outage{
		StartS:            round(o.frozenAt.Sub(m.start).Seconds(), 2),
		LatencyMS:         m.board.outageLatencies().percentiles(),
		Backlog:           m.backlogName(),
		BacklogBeforeMsgs: o.level,
		PeakBacklogMsgs:   o.peakMsgs,
		PeakBacklogBytes:  o.peakBytes,
		PublishMsgsPerS:   publishRate,
	}
	if o.thawedAt.IsZero() {
		return res
	}
	res.EndS = round(o.thawedAt.Sub(m.start).Seconds(), 2)
	res.Acknowledged = int64(o.atThaw.value(mStored) - o.atFreeze.value(mStored))
	if o.drainedAt.IsZero() {
		return res
	}
	res.Drained = true
	drain := o.drainedAt.Sub(o.thawedAt).Seconds()
	res.DrainS = round(drain, 2)
	if drain > 0 {
		res.DrainMsgsPerS = round((o.atDrain.value(m.forwardedName())-o.atThaw.value(m.forwardedName()))/drain, 1)
	}
	if publishRate > 0 {
		res.DrainVsPublish = round(res.DrainMsgsPerS/publishRate, 2)
	}
	return res
}

// journalStats is the journal over the run up to the last scrape, which
// span (from the first publish until the journal was empty) covers; nil
// without a journal.
func (m *monitor) journalStats(span time.Duration) *JournalStats {
	if !m.journal {
		return nil
	}
	first, last := m.first, m.last
	delta := func(name string) float64 { return last.value(name) - first.value(name) }
	hist := func(name string) HistogramMS {
		before, after := first.histogram(name), last.histogram(name)
		return HistogramMS{
			P50:   round(1000*histogramQuantile(0.50, before, after), 2),
			P99:   round(1000*histogramQuantile(0.99, before, after), 2),
			Count: histogramCount(before, after),
		}
	}
	j := &JournalStats{
		BacklogPeakMsgs:   m.peakMsgs,
		BacklogPeakBytes:  m.peakBytes,
		BacklogEndMsgs:    last.value(mJournalMessages),
		OldestAgePeakS:    round(m.peakAge, 2),
		MaxBytes:          last.value(mJournalMax),
		AppendedMsgs:      delta(mAppended),
		ForwardedMsgs:     delta(mForwarded),
		AppendMS:          hist(mAppendDuration),
		ForwardMS:         hist(mForwardDuration),
		RefusedWrites:     delta(mRefused),
		ForwardFailures:   delta(mForwardFailures),
		UnreadableEntries: delta(mUnreadable),
	}
	j.Full = m.full || j.RefusedWrites > 0
	if span > 0 {
		j.ForwardedMsgsPerS = round(j.ForwardedMsgs/span.Seconds(), 1)
	}
	return j
}

// inOutage says whether a message due at t was due while influxd was
// frozen.
func (m *monitor) inOutage(t time.Time) bool {
	o := m.out
	if o.frozenAt.IsZero() || t.Before(o.frozenAt) {
		return false
	}
	return o.thawedAt.IsZero() || t.Before(o.thawedAt)
}
