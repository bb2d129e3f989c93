package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/sqlitedb"
)

// The alert state and audit trail. Each row keeps the whole record as JSON
// in body, and beside it the columns that queries filter on. Times are Unix
// nanoseconds, so that a deadline read back is the deadline written.
var migrations = []string{
	`CREATE TABLE alerts (
		id INTEGER PRIMARY KEY,
		patient TEXT NOT NULL,
		ward TEXT NOT NULL,
		condition TEXT NOT NULL,
		device TEXT NOT NULL DEFAULT '',
		state TEXT NOT NULL,
		risk TEXT NOT NULL,
		raised_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		evidence_at INTEGER NOT NULL DEFAULT 0,
		body TEXT NOT NULL
	);
	-- One open alert per patient per condition (per device), whatever the code does.
	CREATE UNIQUE INDEX alerts_one_open ON alerts(patient, condition, device) WHERE state <> 'resolved';
	CREATE INDEX alerts_ward_state ON alerts(ward, state);
	CREATE INDEX alerts_patient ON alerts(patient);
	CREATE TABLE alert_audit (
		id INTEGER PRIMARY KEY,
		alert_id INTEGER NOT NULL REFERENCES alerts(id),
		ward TEXT NOT NULL,
		at INTEGER NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL,
		risk TEXT NOT NULL,
		response_ms INTEGER,
		body TEXT NOT NULL
	);
	CREATE INDEX alert_audit_alert ON alert_audit(alert_id, id);
	CREATE INDEX alert_audit_action ON alert_audit(action, ward, at);
	-- When each patient's last complete-enough set was measured, so that the
	-- overdue check survives a restart.
	CREATE TABLE alert_watch (
		patient TEXT PRIMARY KEY,
		ward TEXT NOT NULL,
		last_set_at INTEGER NOT NULL,
		interval_ns INTEGER NOT NULL,
		risk TEXT NOT NULL DEFAULT 'low'
	);`,
	// Alerts of no patient (a notification channel failing a ward) are
	// one open per ward and channel.
	`ALTER TABLE alerts ADD COLUMN channel TEXT NOT NULL DEFAULT '';
	DROP INDEX alerts_one_open;
	CREATE UNIQUE INDEX alerts_one_open ON alerts(patient, condition, device, channel, (CASE WHEN patient = '' THEN ward ELSE '' END)) WHERE state <> 'resolved';`,
	// A care_plan alert is one open per patient and rule.
	`ALTER TABLE alerts ADD COLUMN rule TEXT NOT NULL DEFAULT '';
	DROP INDEX alerts_one_open;
	CREATE UNIQUE INDEX alerts_one_open ON alerts(patient, condition, device, channel, rule, (CASE WHEN patient = '' THEN ward ELSE '' END)) WHERE state <> 'resolved';`,
	// When each measurement a care plan expects was last made, so that its
	// overdue check survives a restart as NEWS2's does (alert_watch).
	`CREATE TABLE alert_expected (
		patient TEXT NOT NULL,
		kind TEXT NOT NULL,
		last_at INTEGER NOT NULL,
		PRIMARY KEY (patient, kind)
	);`,
}

// Store keeps alerts and their audit trail in SQLite.
type Store struct{ db *sql.DB }

// OpenStore migrates the alert tables (owner "alerting") in db.
func OpenStore(ctx context.Context, db *sql.DB) (*Store, error) {
	if err := sqlitedb.Migrate(ctx, db, "alerting", migrations); err != nil {
		return nil, err
	}
	if err := sqlitedb.Migrate(ctx, db, "alerting-trends", trendMigrations); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// watchRow is a patient's persisted overdue baseline.
type watchRow struct {
	Patient   vward.PatientID
	Ward      vward.WardID
	LastSetAt time.Time
	Interval  time.Duration
	Risk      news2.Risk
}

// measuredRow is when a measurement a patient's care plan expects was
// last made, as persisted.
type measuredRow struct {
	Patient vward.PatientID
	Kind    vward.ReadingKind
	At      time.Time // zero: none any more
	// Retracted: the latest was entered in error, and At, earlier, is
	// the latest now.
	Retracted bool
}

// writeAll stores transitions in one transaction, all or none: each its
// alert, its audit entries (their IDs are filled in) and a watch row, any
// of which may be absent. One commit (one fsync) for many is what lets a
// start with thousands of patients, each a new watch row, keep up with
// ingest.
func (s *Store) writeAll(ctx context.Context, ws []write) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin alert write: %w", err)
	}
	defer tx.Rollback()
	for i := range ws {
		if err := writeTx(ctx, tx, ws[i].alert, ws[i].audit, ws[i].watch); err != nil {
			return err
		}
		if m := ws[i].measured; m != nil {
			q := `INSERT INTO alert_expected (patient, kind, last_at) VALUES (?, ?, ?)
				ON CONFLICT(patient, kind) DO UPDATE SET last_at = MAX(last_at, excluded.last_at)`
			if m.Retracted {
				q = `INSERT OR REPLACE INTO alert_expected (patient, kind, last_at) VALUES (?, ?, ?)`
			}
			if _, err := tx.ExecContext(ctx, q, m.Patient, m.Kind, nanos(m.At)); err != nil {
				return fmt.Errorf("write the last %s of %s: %w", m.Kind, m.Patient, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit alert write: %w", err)
	}
	return nil
}

func writeTx(ctx context.Context, tx *sql.Tx, a *Alert, audit []AuditEntry, w *watchRow) error {
	if a != nil {
		body, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode alert %d: %w", a.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (id, patient, ward, condition, device, channel, rule, state, risk, raised_at, updated_at, evidence_at, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET ward = excluded.ward, state = excluded.state, risk = excluded.risk,
				updated_at = excluded.updated_at, evidence_at = excluded.evidence_at, body = excluded.body`,
			a.ID, a.Patient, a.Ward, a.Condition, a.Device, a.Channel, a.Rule, a.State, a.Risk.String(),
			nanos(a.RaisedAt), nanos(a.UpdatedAt), nanos(a.EvidenceAt), body); err != nil {
			return fmt.Errorf("write alert %d: %w", a.ID, err)
		}
	}
	for i := range audit {
		if err := AppendAudit(ctx, tx, &audit[i]); err != nil {
			return err
		}
	}
	if w != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_watch (patient, ward, last_set_at, interval_ns, risk) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(patient) DO UPDATE SET ward = excluded.ward, last_set_at = excluded.last_set_at,
				interval_ns = excluded.interval_ns, risk = excluded.risk`,
			w.Patient, w.Ward, nanos(w.LastSetAt), int64(w.Interval), w.Risk.String()); err != nil {
			return fmt.Errorf("write overdue watch of %s: %w", w.Patient, err)
		}
	}
	return nil
}

// AppendAudit writes one audit entry of an alert in tx and fills in its ID.
// Other packages record their clinical actions on an alert this way (a
// handover), in the same transaction as their own record of it.
func AppendAudit(ctx context.Context, tx *sql.Tx, e *AuditEntry) error {
	var resp sql.NullInt64
	if e.ResponseSeconds != nil {
		resp = sql.NullInt64{Int64: int64(math.Round(*e.ResponseSeconds * 1000)), Valid: true}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO alert_audit (alert_id, ward, at, actor, action, risk, response_ms, body) VALUES (?, ?, ?, ?, ?, ?, ?, '')`,
		e.AlertID, e.Ward, nanos(e.At), e.Actor, e.Action, e.Risk.String(), resp)
	if err != nil {
		return fmt.Errorf("write audit of alert %d: %w", e.AlertID, err)
	}
	if e.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("write audit of alert %d: %w", e.AlertID, err)
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit of alert %d: %w", e.AlertID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE alert_audit SET body = ? WHERE id = ?`, body, e.ID); err != nil {
		return fmt.Errorf("write audit of alert %d: %w", e.AlertID, err)
	}
	return nil
}

// Filter selects alerts.
type Filter struct {
	// State is "open" (anything not resolved), a State, or empty for all.
	State string
	// Wards limits the alerts to these wards; nil means every ward.
	Wards     []vward.WardID
	Patient   vward.PatientID
	Condition Condition
	Queue     Queue
	// Limit caps the result, newest first; default and maximum 1000.
	Limit int
}

// List returns the alerts the filter selects, most recently changed first.
func (s *Store) List(ctx context.Context, f Filter) ([]Alert, error) {
	var where []string
	var args []any
	switch f.State {
	case "":
	case "open":
		where = append(where, "state <> 'resolved'")
	default:
		where = append(where, "state = ?")
		args = append(args, f.State)
	}
	if f.Wards != nil {
		if len(f.Wards) == 0 {
			return []Alert{}, nil
		}
		where = append(where, "ward IN (?"+strings.Repeat(",?", len(f.Wards)-1)+")")
		for _, w := range f.Wards {
			args = append(args, w)
		}
	}
	if f.Patient != "" {
		where = append(where, "patient = ?")
		args = append(args, f.Patient)
	}
	if f.Condition != "" {
		where = append(where, "condition = ?")
		args = append(args, f.Condition)
	}
	switch f.Queue {
	case Clinical:
		where = append(where, "condition IN ('news2', 'overdue', 'care_plan', 'concern')")
	case Technical:
		where = append(where, "condition IN ('device_offline', 'battery_low', 'channel_failing')")
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	q := "SELECT body FROM alerts"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY updated_at DESC, id DESC LIMIT ?"
	args = append(args, f.Limit)
	return s.query(ctx, q, args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Alert, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	out := []Alert{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		var a Alert
		if err := json.Unmarshal(body, &a); err != nil {
			return nil, fmt.Errorf("decode alert: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Get returns one alert and its audit trail, oldest first.
func (s *Store) Get(ctx context.Context, id int64) (Alert, []AuditEntry, error) {
	as, err := s.query(ctx, "SELECT body FROM alerts WHERE id = ?", id)
	if err != nil {
		return Alert{}, nil, err
	}
	if len(as) == 0 {
		return Alert{}, nil, errNoSuchAlert
	}
	rows, err := s.db.QueryContext(ctx, "SELECT body FROM alert_audit WHERE alert_id = ? ORDER BY id", id)
	if err != nil {
		return Alert{}, nil, fmt.Errorf("read audit of alert %d: %w", id, err)
	}
	defer rows.Close()
	audit := []AuditEntry{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return Alert{}, nil, fmt.Errorf("read audit of alert %d: %w", id, err)
		}
		var e AuditEntry
		if err := json.Unmarshal(body, &e); err != nil {
			return Alert{}, nil, fmt.Errorf("decode audit of alert %d: %w", id, err)
		}
		audit = append(audit, e)
	}
	return as[0], audit, rows.Err()
}

// PatientAudit returns the audit entries of a patient's alerts made at or
// after since, newest first, at most limit: the alert events of the
// patient's timeline.
func (s *Store) PatientAudit(ctx context.Context, patient vward.PatientID, since time.Time, limit int) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT aa.body FROM alert_audit aa JOIN alerts a ON a.id = aa.alert_id
		WHERE a.patient = ? AND aa.at >= ? ORDER BY aa.at DESC, aa.id DESC LIMIT ?`, patient, nanos(since), limit)
	if err != nil {
		return nil, fmt.Errorf("read the alert audit of %s: %w", patient, err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("read the alert audit of %s: %w", patient, err)
		}
		var e AuditEntry
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, fmt.Errorf("decode the alert audit of %s: %w", patient, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the alert audit of %s: %w", patient, err)
	}
	return out, nil
}

// loaded is what a starting engine reads back.
type loaded struct {
	open       []Alert
	watches    []watchRow
	measured   map[vward.PatientID]map[vward.ReadingKind]time.Time // care plans' expected measurements, last made
	watermarks map[Key]time.Time                                   // newest evidence per key, resolved alerts included
	maxID      int64
}

func (s *Store) load(ctx context.Context) (loaded, error) {
	var l loaded
	var err error
	if l.open, err = s.query(ctx, "SELECT body FROM alerts WHERE state <> 'resolved' ORDER BY id"); err != nil {
		return l, err
	}
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM alerts").Scan(&l.maxID); err != nil {
		return l, fmt.Errorf("read alert ids: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT patient, condition, device, rule, MAX(evidence_at) FROM alerts GROUP BY patient, condition, device, rule")
	if err != nil {
		return l, fmt.Errorf("read alert watermarks: %w", err)
	}
	l.watermarks = make(map[Key]time.Time)
	for rows.Next() {
		var k Key
		var ns int64
		if err := rows.Scan(&k.Patient, &k.Condition, &k.Device, &k.Rule, &ns); err != nil {
			rows.Close()
			return l, fmt.Errorf("read alert watermarks: %w", err)
		}
		if ns != 0 {
			l.watermarks[k] = time.Unix(0, ns).UTC()
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return l, fmt.Errorf("read alert watermarks: %w", err)
	}
	rows, err = s.db.QueryContext(ctx, "SELECT patient, ward, last_set_at, interval_ns, risk FROM alert_watch")
	if err != nil {
		return l, fmt.Errorf("read overdue watches: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w watchRow
		var at, iv int64
		var risk string
		if err := rows.Scan(&w.Patient, &w.Ward, &at, &iv, &risk); err != nil {
			return l, fmt.Errorf("read overdue watches: %w", err)
		}
		_ = w.Risk.UnmarshalText([]byte(risk))
		w.LastSetAt, w.Interval = time.Unix(0, at).UTC(), time.Duration(iv)
		l.watches = append(l.watches, w)
	}
	if err := rows.Err(); err != nil {
		return l, fmt.Errorf("read overdue watches: %w", err)
	}
	rows.Close()
	if l.measured, err = s.loadMeasured(ctx); err != nil {
		return l, err
	}
	return l, nil
}

func (s *Store) loadMeasured(ctx context.Context) (map[vward.PatientID]map[vward.ReadingKind]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT patient, kind, last_at FROM alert_expected")
	if err != nil {
		return nil, fmt.Errorf("read care plans' last measurements: %w", err)
	}
	defer rows.Close()
	out := make(map[vward.PatientID]map[vward.ReadingKind]time.Time)
	for rows.Next() {
		var m measuredRow
		var at int64
		if err := rows.Scan(&m.Patient, &m.Kind, &at); err != nil {
			return nil, fmt.Errorf("read care plans' last measurements: %w", err)
		}
		if at == 0 {
			continue // none any more: the only one was entered in error
		}
		if out[m.Patient] == nil {
			out[m.Patient] = make(map[vward.ReadingKind]time.Time)
		}
		out[m.Patient][m.Kind] = time.Unix(0, at).UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read care plans' last measurements: %w", err)
	}
	return out, nil
}

// ResponseTime is the time to acknowledge clinical alerts of one risk in one
// ward.
type ResponseTime struct {
	Ward          vward.WardID `json:"ward"`
	Risk          news2.Risk   `json:"risk"`
	Count         int          `json:"count"`
	MeanSeconds   float64      `json:"mean_seconds"`
	MedianSeconds float64      `json:"median_seconds"`
	P90Seconds    float64      `json:"p90_seconds"`
	MaxSeconds    float64      `json:"max_seconds"`
}

// ResponseTimes returns the time to acknowledge clinical alerts acknowledged
// since the given time, by ward and risk (highest risk first). wards nil
// means every ward. Each acknowledgement counts from the start of its
// unacknowledged period: raising, re-raising, or an upgrade after an earlier
// acknowledgement.
func (s *Store) ResponseTimes(ctx context.Context, wards []vward.WardID, since time.Time) ([]ResponseTime, error) {
	q := `SELECT au.ward, au.risk, au.response_ms FROM alert_audit au JOIN alerts al ON al.id = au.alert_id
		WHERE au.action = 'acknowledged' AND au.response_ms IS NOT NULL AND al.condition IN ('news2', 'overdue', 'care_plan', 'concern') AND au.at >= ?`
	args := []any{nanos(since)}
	if wards != nil {
		if len(wards) == 0 {
			return []ResponseTime{}, nil
		}
		q += " AND au.ward IN (?" + strings.Repeat(",?", len(wards)-1) + ")"
		for _, w := range wards {
			args = append(args, w)
		}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read response times: %w", err)
	}
	defer rows.Close()
	samples := map[responseGroup][]float64{}
	for rows.Next() {
		var g responseGroup
		var risk string
		var ms int64
		if err := rows.Scan(&g.ward, &risk, &ms); err != nil {
			return nil, fmt.Errorf("read response times: %w", err)
		}
		if err := g.risk.UnmarshalText([]byte(risk)); err != nil {
			return nil, fmt.Errorf("read response times: %w", err)
		}
		samples[g] = append(samples[g], float64(ms)/1000)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read response times: %w", err)
	}
	return summariseResponses(samples), nil
}

// responseGroup is one row of a response-time report.
type responseGroup struct {
	ward vward.WardID
	risk news2.Risk
}

// summariseResponses turns times to acknowledge, in seconds, into report
// rows by ward and risk (highest risk first). It sorts the samples.
func summariseResponses(samples map[responseGroup][]float64) []ResponseTime {
	out := []ResponseTime{}
	for g, xs := range samples {
		slices.Sort(xs)
		sum := 0.0
		for _, x := range xs {
			sum += x
		}
		out = append(out, ResponseTime{
			Ward: g.ward, Risk: g.risk, Count: len(xs), MeanSeconds: sum / float64(len(xs)),
			MedianSeconds: quantile(xs, 0.5), P90Seconds: quantile(xs, 0.9), MaxSeconds: xs[len(xs)-1],
		})
	}
	slices.SortFunc(out, func(a, b ResponseTime) int {
		if a.Ward != b.Ward {
			return strings.Compare(string(a.Ward), string(b.Ward))
		}
		return int(b.Risk) - int(a.Risk)
	})
	return out
}

// quantile interpolates linearly between the closest ranks of sorted xs.
func quantile(xs []float64, q float64) float64 {
	pos := q * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(xs)-1)
	return xs[lo] + (xs[hi]-xs[lo])*(pos-float64(lo))
}
