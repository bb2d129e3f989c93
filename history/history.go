// Package history keeps every stored reading: InfluxDB in production, a
// bounded in-memory history when the demo runs without one. Ingest writes
// through it and acknowledges a reading to the broker only after a write
// returns nil; the board reads trends back from it.
package history

import (
	"context"
	"time"

	"github.com/vward/vward"
)

// Store is what ingest and the board need of a history.
type Store interface {
	// WriteReadings returns nil only once every reading is durably kept.
	// Writing the same reading twice (a broker redelivery) keeps one copy.
	WriteReadings(ctx context.Context, rs []vward.Reading) error
	// Readings returns a patient's readings measured in [from, to), oldest first.
	Readings(ctx context.Context, p vward.PatientID, from, to time.Time) ([]vward.Reading, error)
	// ReadingsOf returns a patient's readings of the kinds measured in
	// [from, to), oldest first, at most the newest limit of each kind from
	// each device: what a care plan's rules read back after a restart.
	ReadingsOf(ctx context.Context, p vward.PatientID, kinds []vward.ReadingKind, from, to time.Time, limit int) ([]vward.Reading, error)
	// Thinned returns a patient's readings measured in [from, to), oldest
	// first, thinned: of each kind from each device, in each window of
	// every (from from), only the first, lowest, highest and last. What a
	// chart of a long range asks for, so that a month of a 1 Hz wearable
	// is a few thousand readings, not millions.
	Thinned(ctx context.Context, p vward.PatientID, from, to time.Time, every time.Duration) ([]vward.Reading, error)
	// Earliest returns when a patient's oldest reading was measured, false
	// when the history holds none: where a read of all their history
	// begins, a part at a time.
	Earliest(ctx context.Context, p vward.PatientID) (time.Time, bool, error)
	// Latest returns every patient's newest reading of each kind measured
	// in [from, to), in one query however many patients there are: what a
	// restarted vward rebuilds the board and the scores from. With an
	// error it may still return the readings it could read.
	Latest(ctx context.Context, from, to time.Time) ([]vward.Reading, error)
	// Ping reports whether the store can take writes now.
	Ping(ctx context.Context) error
	// Describe says where readings go, for the board and the logs.
	Describe() string
}
