package alerting

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/vward/vward"
)

// The board's NEWS2 trend (the sparkline) is kept in the alert store as it
// grows, so that a restart does not start every patient's day again: the
// monitor writes each patient's new points every TrendSaveEvery and when
// it stops, and a starting node reads the last day back (RestoreTrends)
// before it restores the readings. A crash loses at most TrendSaveEvery of
// points; the readings themselves are in the history.

// TrendSaveEvery is how often new trend points are written.
const TrendSaveEvery = time.Minute

// The points are kept a row per patient per hour, each point 20 hex
// digits (its time in Unix nanoseconds, its score, whether partial), new
// points appended to the hour's row: a day's trend for a whole fleet is
// then 24 short rows a patient, which a starting node reads in well under
// a second (docs/performance.md, "Cold start").
var trendMigrations = []string{
	`CREATE TABLE trend_hours (
		patient TEXT NOT NULL,
		hour INTEGER NOT NULL,
		points TEXT NOT NULL,
		PRIMARY KEY (patient, hour)
	) WITHOUT ROWID;
	CREATE INDEX trend_hours_hour ON trend_hours(hour);`,
}

// patientTrend is one patient's points to write.
type patientTrend struct {
	patient vward.PatientID
	points  []TrendPoint
}

const trendPointHex = 20 // 16 for the time, 2 for the score, 2 for partial

func appendTrendPoint(b []byte, p TrendPoint) []byte {
	partial := 0
	if p.Partial {
		partial = 1
	}
	return fmt.Appendf(b, "%016x%02x%02x", uint64(p.At.UnixNano()), uint8(p.Score), partial)
}

func parseTrendPoints(s string, since time.Time, into []TrendPoint) ([]TrendPoint, error) {
	if len(s)%trendPointHex != 0 {
		return into, fmt.Errorf("trend row of %d characters is not whole points", len(s))
	}
	for i := 0; i < len(s); i += trendPointHex {
		at, err1 := strconv.ParseUint(s[i:i+16], 16, 64)
		score, err2 := strconv.ParseUint(s[i+16:i+18], 16, 8)
		partial, err3 := strconv.ParseUint(s[i+18:i+20], 16, 8)
		if err := errors.Join(err1, err2, err3); err != nil {
			return into, fmt.Errorf("trend point %q: %w", s[i:i+trendPointHex], err)
		}
		p := TrendPoint{At: time.Unix(0, int64(at)).UTC(), Score: int(score), Partial: partial == 1}
		if !p.At.Before(since) {
			into = append(into, p)
		}
	}
	return into, nil
}

func hourOf(t time.Time) int64 { return t.Unix() / 3600 }

// saveTrends appends points to their hours' rows, and forgets hours older
// than trendSpan.
func (s *Store) saveTrends(ctx context.Context, ts []patientTrend, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save trends: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO trend_hours (patient, hour, points) VALUES (?, ?, ?)
		ON CONFLICT (patient, hour) DO UPDATE SET points = points || excluded.points`)
	if err != nil {
		return fmt.Errorf("save trends: %w", err)
	}
	defer stmt.Close()
	var b []byte
	for _, t := range ts {
		for i := 0; i < len(t.points); {
			hour := hourOf(t.points[i].At)
			b = b[:0]
			for ; i < len(t.points) && hourOf(t.points[i].At) == hour; i++ {
				b = appendTrendPoint(b, t.points[i])
			}
			if _, err := stmt.ExecContext(ctx, string(t.patient), hour, string(b)); err != nil {
				return fmt.Errorf("save the trend of %s: %w", t.patient, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM trend_hours WHERE hour < ?`, hourOf(now.Add(-trendSpan))); err != nil {
		return fmt.Errorf("forget old trend points: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save trends: %w", err)
	}
	return nil
}

// LoadTrends reads every patient's trend points since since, oldest first.
func (s *Store) LoadTrends(ctx context.Context, since time.Time) (map[vward.PatientID][]TrendPoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT patient, points FROM trend_hours WHERE hour >= ? ORDER BY patient, hour`, hourOf(since))
	if err != nil {
		return nil, fmt.Errorf("load trends: %w", err)
	}
	defer rows.Close()
	out := map[vward.PatientID][]TrendPoint{}
	var last vward.PatientID
	var points []TrendPoint
	for rows.Next() {
		var patient, hex string
		if err := rows.Scan(&patient, &hex); err != nil {
			return nil, fmt.Errorf("load trends: %w", err)
		}
		if id := vward.PatientID(patient); id != last {
			if len(points) > 0 {
				out[last] = points
			}
			last, points = id, nil
		}
		if points, err = parseTrendPoints(hex, since, points); err != nil {
			return nil, fmt.Errorf("load the trend of %s: %w", patient, err)
		}
	}
	if len(points) > 0 {
		out[last] = points
	}
	return out, rows.Err()
}

// RestoreTrends gives admitted patients their trend as it was kept
// (Store.LoadTrends), before Restore: the points restored come first, and
// the score Restore makes is added after them.
func (m *Monitor) RestoreTrends(ts map[vward.PatientID][]TrendPoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, points := range ts {
		p, ok := m.patients[id]
		if !ok || len(points) == 0 {
			continue
		}
		kept := p.trend.points
		p.trend.points = nil
		for _, pt := range points {
			p.trend.add(pt)
		}
		for _, pt := range kept {
			p.trend.add(pt)
		}
		p.trend.saved = points[len(points)-1].At
	}
}

// newTrendPointsLocked returns each patient's points not yet saved.
func (m *Monitor) newTrendPointsLocked() []patientTrend {
	var out []patientTrend
	for id, p := range m.patients {
		pts := p.trend.points
		i := len(pts)
		for i > 0 && pts[i-1].At.After(p.trend.saved) {
			i--
		}
		if i < len(pts) {
			out = append(out, patientTrend{patient: id, points: append([]TrendPoint(nil), pts[i:]...)})
		}
	}
	return out
}

// SaveTrends writes the trend points made since the last save.
func (m *Monitor) SaveTrends(ctx context.Context, s *Store) error {
	m.mu.Lock()
	ts := m.newTrendPointsLocked()
	m.mu.Unlock()
	if len(ts) == 0 {
		return nil
	}
	if err := s.saveTrends(ctx, ts, m.now()); err != nil {
		return err
	}
	m.mu.Lock()
	for _, t := range ts {
		if p, ok := m.patients[t.patient]; ok {
			if at := t.points[len(t.points)-1].At; at.After(p.trend.saved) {
				p.trend.saved = at
			}
		}
	}
	m.mu.Unlock()
	return nil
}

// KeepTrends saves the trend points every TrendSaveEvery until ctx ends,
// and once more then.
func (m *Monitor) KeepTrends(ctx context.Context, s *Store) error {
	t := time.NewTicker(TrendSaveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// A clean stop keeps everything: a last save, bounded.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := m.SaveTrends(sctx, s); err != nil {
				m.log.Warn("save the board's trends at stop; the last minute's points are lost", "err", err)
			}
			return nil
		case <-t.C:
			if err := m.SaveTrends(ctx, s); err != nil && ctx.Err() == nil {
				m.log.Warn("save the board's trends; retrying at the next save", "err", err)
			}
		}
	}
}
