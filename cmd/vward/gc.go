package main

import (
	"os"
	"runtime/debug"
)

// serveGCPercent is vward serve's garbage collector target when GOGC is not
// set: the heap may grow to three times what is live between collections
// instead of Go's two. On a small node that vward shares with its broker
// and InfluxDB, CPU is what runs out first at high rates, and collecting
// half as often gives back about a tenth of vward's CPU for some 30 % more
// memory (docs/design/go-runtime-settings.md). GOGC, when set,
// wins, as it does for any Go program.
const serveGCPercent = 200

// tuneGC applies serveGCPercent unless the operator set GOGC, and returns the
// percentage now in force.
func tuneGC() int {
	if _, set := os.LookupEnv("GOGC"); set {
		old := debug.SetGCPercent(100) // read it back without changing it
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(serveGCPercent)
	return serveGCPercent
}
