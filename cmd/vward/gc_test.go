package main

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	debug.SetGCPercent(before)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	t.Run("GOGC unset: serve's own target", func(t *testing.T) {
		t.Setenv("GOGC", "") // restored after the test
		os.Unsetenv("GOGC")
		debug.SetGCPercent(100)
		if got := tuneGC(); got != serveGCPercent {
			t.Errorf("tuneGC() = %d, want %d", got, serveGCPercent)
		}
		if now := debug.SetGCPercent(100); now != serveGCPercent {
			t.Errorf("runtime GC percent = %d, want %d", now, serveGCPercent)
		}
	})
	t.Run("GOGC set: the operator's wins", func(t *testing.T) {
		t.Setenv("GOGC", "150")
		debug.SetGCPercent(150) // as the runtime would have read it at start
		if got := tuneGC(); got != 150 {
			t.Errorf("tuneGC() = %d, want 150", got)
		}
		if now := debug.SetGCPercent(100); now != 150 {
			t.Errorf("runtime GC percent = %d, want 150 (left alone)", now)
		}
	})
}
