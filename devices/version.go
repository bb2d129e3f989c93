package devices

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// missCheckEvery bounds how often a refused device or an unattributable
// reading makes the registry ask SQLite whether it changed: a device
// hammering a wrong secret costs one small query a second, not one a try.
const missCheckEvery = time.Second

// Version returns the registry's change counter as stored now. Every write
// to wards, patients, devices or bindings, by any process, increments it.
func (r *Registry) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := r.db.QueryRowContext(ctx, `SELECT version FROM registry_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read registry version: %w", err)
	}
	return v, nil
}

func (r *Registry) loadedVersion() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.version
}

// Refresh reloads the caches if the stored version differs from the one
// they were loaded at, and reports whether it did.
func (r *Registry) Refresh(ctx context.Context) (bool, error) {
	v, err := r.Version(ctx)
	if err != nil {
		return false, err
	}
	if v == r.loadedVersion() {
		return false, nil
	}
	if err := r.reload(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// refreshOnMiss refreshes at most once per missCheckEvery, and reports
// whether the caches changed. It is called on the broker's and ingest's
// paths, which carry no context, so it bounds its own wait.
func (r *Registry) refreshOnMiss() bool {
	now := time.Now().UnixNano()
	last := r.lastMissCheck.Load()
	if now-last < int64(missCheckEvery) || !r.lastMissCheck.CompareAndSwap(last, now) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	changed, err := r.Refresh(ctx)
	return err == nil && changed
}

// Watch checks every interval whether another process changed the registry,
// reloads the caches if so, and then calls changed (which may be nil), until
// ctx ends. changed is also called when a refresh on a miss, or a write by
// this process, moved the version on since the last call, so that a node can
// re-read patients for its monitor after any change. Errors are logged and
// retried on the next tick: a locked or briefly unreadable file must not
// stop the node.
func (r *Registry) Watch(ctx context.Context, every time.Duration, log *slog.Logger, changed func()) error {
	if every <= 0 {
		every = 2 * time.Second
	}
	seen := r.loadedVersion()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := r.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if log != nil {
				log.Warn("check registry for changes", "component", "registry", "err", err)
			}
			continue
		}
		if v := r.loadedVersion(); v != seen {
			seen = v
			if changed != nil {
				changed()
			}
		}
	}
}
