package notify

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/sqlitedb"
)

// The notification settings and the delivery log (migrations owner
// "notify"). Times are Unix nanoseconds. A channel's config is JSON, with
// its secrets: the file is readable by its owner alone, as the rest of the
// store.
var migrations = []string{
	`CREATE TABLE notify_channels (
		name TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		config TEXT NOT NULL
	);
	-- Who a ward's tier of a queue tells, and over which channel.
	CREATE TABLE notify_routes (
		id INTEGER PRIMARY KEY,
		ward TEXT NOT NULL,
		queue TEXT NOT NULL CHECK (queue IN ('clinical', 'technical')),
		tier INTEGER NOT NULL CHECK (tier >= 0),
		target_kind TEXT NOT NULL CHECK (target_kind IN ('user', 'role', 'rota')),
		target TEXT NOT NULL,
		channel TEXT NOT NULL REFERENCES notify_channels(name),
		at_night INTEGER NOT NULL DEFAULT 1,
		UNIQUE (ward, queue, tier, target_kind, target, channel)
	);
	-- Where a channel reaches a user (an email address).
	CREATE TABLE notify_contacts (
		username TEXT NOT NULL,
		channel TEXT NOT NULL REFERENCES notify_channels(name) ON DELETE CASCADE,
		address TEXT NOT NULL,
		PRIMARY KEY (username, channel)
	);
	-- On-call rotas: who is on call from when to when. Overlapping shifts
	-- both count, so a handover tells both people.
	CREATE TABLE notify_shifts (
		id INTEGER PRIMARY KEY,
		rota TEXT NOT NULL,
		username TEXT NOT NULL,
		starts_at INTEGER NOT NULL,
		ends_at INTEGER NOT NULL CHECK (ends_at > starts_at)
	);
	CREATE INDEX notify_shifts_rota ON notify_shifts(rota, ends_at);
	-- One row per attempt to deliver a notification, and one when it was
	-- cancelled or given up.
	CREATE TABLE notify_deliveries (
		id INTEGER PRIMARY KEY,
		notification TEXT NOT NULL,
		alert_id INTEGER NOT NULL,
		alert_version INTEGER NOT NULL,
		ward TEXT NOT NULL,
		event TEXT NOT NULL,
		tier INTEGER NOT NULL,
		recipient TEXT NOT NULL,
		channel TEXT NOT NULL,
		attempt INTEGER NOT NULL,
		result TEXT NOT NULL,
		error TEXT NOT NULL DEFAULT '',
		started_at INTEGER NOT NULL,
		finished_at INTEGER NOT NULL
	);
	CREATE INDEX notify_deliveries_alert ON notify_deliveries(alert_id, id);
	CREATE INDEX notify_deliveries_notification ON notify_deliveries(notification, attempt);
	CREATE TABLE notify_audit (
		id INTEGER PRIMARY KEY,
		at INTEGER NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL,
		subject TEXT NOT NULL,
		detail TEXT NOT NULL DEFAULT ''
	);`,
}

// Store keeps channels, routes, contacts, rotas, the delivery log and the
// audit of changes to them, in the node's SQLite database.
type Store struct{ db *sql.DB }

// OpenStore migrates the notify tables in db.
func OpenStore(ctx context.Context, db *sql.DB) (*Store, error) {
	if err := sqlitedb.Migrate(ctx, db, "notify", migrations); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// audit records a change in the same transaction; who makes it comes from
// ctx (devices.WithActor), as the registry's changes do.
func audit(ctx context.Context, tx *sql.Tx, action, subject, detail string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO notify_audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)`,
		nanos(time.Now()), devices.ActorOf(ctx), action, subject, detail)
	if err != nil {
		return fmt.Errorf("record %s of %s: %w", action, subject, err)
	}
	return nil
}

// change runs f in a transaction with its audit record.
func (s *Store) change(ctx context.Context, action, subject, detail string, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, subject, err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	if err := audit(ctx, tx, action, subject, detail); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s %s: %w", action, subject, err)
	}
	return nil
}

// PutChannel adds or replaces a channel. A secret or password left empty
// keeps the one stored, so a change of URL need not repeat the key.
func (s *Store) PutChannel(ctx context.Context, c ChannelConfig) error {
	if old, err := s.Channel(ctx, c.Name); err == nil && old.Kind == c.Kind {
		if c.Secret == "" {
			c.Secret = old.Secret
		}
		if c.Password == "" {
			c.Password = old.Password
		}
	}
	if err := c.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode channel %s: %w", c.Name, err)
	}
	detail, _ := json.Marshal(c.View())
	return s.change(ctx, "notify.channel.put", "channel:"+c.Name, string(detail), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO notify_channels (name, kind, config) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, config = excluded.config`, c.Name, c.Kind, string(body))
		if err != nil {
			return fmt.Errorf("store channel %s: %w", c.Name, err)
		}
		return nil
	})
}

// RemoveChannel removes a channel and the routes and contacts that use it.
func (s *Store) RemoveChannel(ctx context.Context, name string) error {
	return s.change(ctx, "notify.channel.remove", "channel:"+name, "", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM notify_routes WHERE channel = ?`, name); err != nil {
			return fmt.Errorf("remove channel %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM notify_contacts WHERE channel = ?`, name); err != nil {
			return fmt.Errorf("remove channel %s: %w", name, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM notify_channels WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("remove channel %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return vward.Errorf(vward.ErrNotFound, "no channel %q", name)
		}
		return nil
	})
}

// Channel returns a channel's config, secrets included: for sending.
func (s *Store) Channel(ctx context.Context, name string) (ChannelConfig, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT config FROM notify_channels WHERE name = ?`, name).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return ChannelConfig{}, vward.Errorf(vward.ErrNotFound, "no channel %q", name)
	}
	if err != nil {
		return ChannelConfig{}, fmt.Errorf("read channel %s: %w", name, err)
	}
	var c ChannelConfig
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return ChannelConfig{}, fmt.Errorf("decode channel %s: %w", name, err)
	}
	return c, nil
}

// Channels lists the channels, secrets redacted.
func (s *Store) Channels(ctx context.Context) ([]ChannelView, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT config FROM notify_channels ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	defer rows.Close()
	out := []ChannelView{}
	for rows.Next() {
		var body string
		var c ChannelConfig
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("list channels: %w", err)
		}
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			return nil, fmt.Errorf("decode channel: %w", err)
		}
		out = append(out, c.View())
	}
	return out, rows.Err()
}

// Route says that a ward's tier of a queue tells a user, everyone of a
// role on the ward, or whoever a rota has on call, over a channel.
type Route struct {
	ID         int64          `json:"id"`
	Ward       vward.WardID   `json:"ward"`
	Queue      alerting.Queue `json:"queue"`
	Tier       int            `json:"tier"`
	TargetKind string         `json:"target_kind"` // user, role or rota
	Target     string         `json:"target"`
	Channel    string         `json:"channel"`
	// AtNight says the route is used at night too. Technical routes
	// default to false, so a device's battery never wakes a clinician
	// unless a ward says so; clinical routes are always used.
	AtNight bool `json:"at_night"`
}

func (r Route) validate() error {
	bad := func(format string, args ...any) error {
		return vward.Errorf(vward.ErrInvalid, "route: "+format, args...)
	}
	switch {
	case r.Ward == "":
		return bad("ward is missing")
	case r.Queue != alerting.Clinical && r.Queue != alerting.Technical:
		return bad("queue %q is not clinical or technical", r.Queue)
	case r.Tier < 0 || r.Tier > 9:
		return bad("tier must be 0 to 9, got %d", r.Tier)
	case r.Queue == alerting.Technical && r.Tier != 0:
		return bad("technical alerts never escalate: their routes are tier 0")
	case r.TargetKind != "user" && r.TargetKind != "role" && r.TargetKind != "rota":
		return bad("target kind %q is not user, role or rota", r.TargetKind)
	case r.Target == "":
		return bad("the %s to tell is missing", r.TargetKind)
	case r.TargetKind == "role" && r.Target != "admin" && r.Target != "clinician" && r.Target != "viewer":
		return bad("role %q is not admin, clinician or viewer", r.Target)
	case r.Channel == "":
		return bad("channel is missing")
	}
	return nil
}

// AddRoute adds a route; the channel must exist.
func (s *Store) AddRoute(ctx context.Context, r Route) (Route, error) {
	if err := r.validate(); err != nil {
		return Route{}, err
	}
	if _, err := s.Channel(ctx, r.Channel); err != nil {
		return Route{}, fmt.Errorf("route: %w", err)
	}
	detail, _ := json.Marshal(r)
	err := s.change(ctx, "notify.route.add", "ward:"+string(r.Ward), string(detail), func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notify_routes (ward, queue, tier, target_kind, target, channel, at_night) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.Ward, r.Queue, r.Tier, r.TargetKind, r.Target, r.Channel, r.AtNight)
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE") {
				return vward.Errorf(vward.ErrConflict, "route: ward %s tier %d of %s already tells %s %s over %s", r.Ward, r.Tier, r.Queue, r.TargetKind, r.Target, r.Channel)
			}
			return fmt.Errorf("add route: %w", err)
		}
		r.ID, _ = res.LastInsertId()
		return nil
	})
	return r, err
}

// RemoveRoute removes a route by id.
func (s *Store) RemoveRoute(ctx context.Context, id int64) error {
	return s.change(ctx, "notify.route.remove", fmt.Sprintf("route:%d", id), "", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM notify_routes WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("remove route %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return vward.Errorf(vward.ErrNotFound, "no route %d", id)
		}
		return nil
	})
}

// Routes lists routes, of one ward or (empty) every ward.
func (s *Store) Routes(ctx context.Context, ward vward.WardID) ([]Route, error) {
	q := `SELECT id, ward, queue, tier, target_kind, target, channel, at_night FROM notify_routes`
	var args []any
	if ward != "" {
		q += ` WHERE ward = ?`
		args = append(args, ward)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY ward, queue, tier, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	defer rows.Close()
	out := []Route{}
	for rows.Next() {
		var r Route
		if err := rows.Scan(&r.ID, &r.Ward, &r.Queue, &r.Tier, &r.TargetKind, &r.Target, &r.Channel, &r.AtNight); err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetContact sets where a channel reaches a user; an empty address removes it.
func (s *Store) SetContact(ctx context.Context, username, channel, address string) error {
	if username == "" {
		return vward.Errorf(vward.ErrInvalid, "contact: username is missing")
	}
	if _, err := s.Channel(ctx, channel); err != nil {
		return fmt.Errorf("contact: %w", err)
	}
	return s.change(ctx, "notify.contact.set", "user:"+username, channel+" "+address, func(tx *sql.Tx) error {
		var err error
		if address == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM notify_contacts WHERE username = ? AND channel = ?`, username, channel)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO notify_contacts (username, channel, address) VALUES (?, ?, ?)
				ON CONFLICT (username, channel) DO UPDATE SET address = excluded.address`, username, channel, address)
		}
		if err != nil {
			return fmt.Errorf("set contact of %s on %s: %w", username, channel, err)
		}
		return nil
	})
}

// contact returns a user's address on a channel, "" if none.
func (s *Store) contact(ctx context.Context, username, channel string) (string, error) {
	var a string
	err := s.db.QueryRowContext(ctx, `SELECT address FROM notify_contacts WHERE username = ? AND channel = ?`, username, channel).Scan(&a)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read contact of %s on %s: %w", username, channel, err)
	}
	return a, nil
}

// Shift is one person on call on a rota, from Start until End (the handover).
type Shift struct {
	ID    int64     `json:"id"`
	Rota  string    `json:"rota"`
	User  string    `json:"user"`
	Start time.Time `json:"starts_at"`
	End   time.Time `json:"ends_at"`
}

// AddShift puts a user on call on a rota.
func (s *Store) AddShift(ctx context.Context, sh Shift) (Shift, error) {
	switch {
	case sh.Rota == "":
		return Shift{}, vward.Errorf(vward.ErrInvalid, "shift: rota is missing")
	case sh.User == "":
		return Shift{}, vward.Errorf(vward.ErrInvalid, "shift on %s: user is missing", sh.Rota)
	case !sh.End.After(sh.Start):
		return Shift{}, vward.Errorf(vward.ErrInvalid, "shift on %s: it must end (%s) after it starts (%s)", sh.Rota, sh.End.Format(time.RFC3339), sh.Start.Format(time.RFC3339))
	}
	detail := fmt.Sprintf("%s on call %s to %s", sh.User, sh.Start.UTC().Format(time.RFC3339), sh.End.UTC().Format(time.RFC3339))
	err := s.change(ctx, "notify.shift.add", "rota:"+sh.Rota, detail, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notify_shifts (rota, username, starts_at, ends_at) VALUES (?, ?, ?, ?)`,
			sh.Rota, sh.User, nanos(sh.Start), nanos(sh.End))
		if err != nil {
			return fmt.Errorf("add shift: %w", err)
		}
		sh.ID, _ = res.LastInsertId()
		return nil
	})
	return sh, err
}

// RemoveShift removes a shift by id.
func (s *Store) RemoveShift(ctx context.Context, id int64) error {
	return s.change(ctx, "notify.shift.remove", fmt.Sprintf("shift:%d", id), "", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM notify_shifts WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("remove shift %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return vward.Errorf(vward.ErrNotFound, "no shift %d", id)
		}
		return nil
	})
}

// Shifts lists a rota's shifts (every rota's for "") that end after since.
func (s *Store) Shifts(ctx context.Context, rota string, since time.Time) ([]Shift, error) {
	q := `SELECT id, rota, username, starts_at, ends_at FROM notify_shifts WHERE ends_at > ?`
	args := []any{nanos(since)}
	if rota != "" {
		q += ` AND rota = ?`
		args = append(args, rota)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY rota, starts_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list shifts: %w", err)
	}
	defer rows.Close()
	out := []Shift{}
	for rows.Next() {
		var sh Shift
		var a, b int64
		if err := rows.Scan(&sh.ID, &sh.Rota, &sh.User, &a, &b); err != nil {
			return nil, fmt.Errorf("list shifts: %w", err)
		}
		sh.Start, sh.End = fromNanos(a), fromNanos(b)
		out = append(out, sh)
	}
	return out, rows.Err()
}

// onCall returns who a rota has on call at t.
func (s *Store) onCall(ctx context.Context, rota string, t time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT username FROM notify_shifts WHERE rota = ? AND starts_at <= ? AND ends_at > ? ORDER BY username`,
		rota, nanos(t), nanos(t))
	if err != nil {
		return nil, fmt.Errorf("who is on call on %s: %w", rota, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("who is on call on %s: %w", rota, err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Results of a delivery attempt.
const (
	ResultSent      = "sent"
	ResultFailed    = "failed"    // this attempt failed; another follows
	ResultGaveUp    = "gave_up"   // the last attempt failed, or the error was permanent
	ResultCancelled = "cancelled" // the alert was acknowledged (or shelved, resolved) first
)

// Delivery is one row of an alert's delivery log.
type Delivery struct {
	ID           int64        `json:"id"`
	Notification string       `json:"notification"`
	AlertID      int64        `json:"alert_id"`
	AlertVersion int          `json:"alert_version"`
	Ward         vward.WardID `json:"ward"`
	Event        string       `json:"event"`
	Tier         int          `json:"tier"`
	Recipient    string       `json:"recipient"`
	Channel      string       `json:"channel"`
	Attempt      int          `json:"attempt"`
	Result       string       `json:"result"`
	Error        string       `json:"error,omitempty"`
	StartedAt    time.Time    `json:"started_at"`
	FinishedAt   time.Time    `json:"finished_at"`
}

func (s *Store) logDelivery(ctx context.Context, d Delivery) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO notify_deliveries
		(notification, alert_id, alert_version, ward, event, tier, recipient, channel, attempt, result, error, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.Notification, d.AlertID, d.AlertVersion, d.Ward, d.Event, d.Tier, d.Recipient, d.Channel, d.Attempt, d.Result, d.Error,
		nanos(d.StartedAt), nanos(d.FinishedAt))
	if err != nil {
		return fmt.Errorf("log delivery of %s: %w", d.Notification, err)
	}
	return nil
}

// progress returns how far a notification got: the last attempt made, and
// whether it is over (sent, given up or cancelled).
func (s *Store) progress(ctx context.Context, notification string) (attempts int, done bool, err error) {
	var result string
	err = s.db.QueryRowContext(ctx, `SELECT attempt, result FROM notify_deliveries WHERE notification = ? ORDER BY id DESC LIMIT 1`, notification).Scan(&attempts, &result)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read delivery log of %s: %w", notification, err)
	}
	return attempts, result != ResultFailed, nil
}

// Deliveries returns an alert's delivery log, oldest first.
func (s *Store) Deliveries(ctx context.Context, alert int64) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, notification, alert_id, alert_version, ward, event, tier, recipient, channel, attempt, result, error, started_at, finished_at
		FROM notify_deliveries WHERE alert_id = ? ORDER BY id`, alert)
	if err != nil {
		return nil, fmt.Errorf("read delivery log of alert %d: %w", alert, err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		var a, b int64
		if err := rows.Scan(&d.ID, &d.Notification, &d.AlertID, &d.AlertVersion, &d.Ward, &d.Event, &d.Tier, &d.Recipient, &d.Channel,
			&d.Attempt, &d.Result, &d.Error, &a, &b); err != nil {
			return nil, fmt.Errorf("read delivery log of alert %d: %w", alert, err)
		}
		d.StartedAt, d.FinishedAt = fromNanos(a), fromNanos(b)
		out = append(out, d)
	}
	return out, rows.Err()
}

// AuditEntry is one recorded change of the notification settings.
type AuditEntry struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Subject string    `json:"subject"`
	Detail  string    `json:"detail,omitempty"`
}

// Audit returns the newest changes of the settings, newest first.
func (s *Store) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor, action, subject, detail FROM notify_audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read notify audit: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Detail); err != nil {
			return nil, fmt.Errorf("read notify audit: %w", err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
