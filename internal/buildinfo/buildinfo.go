// Package buildinfo says which vward this is: the module version, the
// commit it was built from and the Go that built it, for `vward version`
// and the vward_build_info metric.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Info is what the binary knows of its own build.
type Info struct {
	Version   string // the module's version: "(devel)" for a build from a checkout
	Revision  string // the commit, "+dirty" if built with uncommitted changes; "" unknown
	Time      string // the commit's time (RFC 3339); "" unknown
	GoVersion string
}

// Read returns this binary's build information.
func Read() Info {
	i := Info{Version: "(devel)", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if bi.Main.Version != "" {
		i.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && i.Revision != "" {
		i.Revision += "+dirty"
	}
	return i
}

// String is the one line `vward --version` prints.
func (i Info) String() string {
	s := i.Version
	if i.Revision != "" {
		s += " (" + i.Revision
		if i.Time != "" {
			s += ", " + i.Time
		}
		s += ")"
	}
	return s + " " + i.GoVersion
}

// Collector is the vward_build_info gauge: always 1, its labels the build.
func Collector() prometheus.Collector {
	i := Read()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "vward_build_info",
		Help:        "Which vward is running: always 1, with the build as labels.",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}
