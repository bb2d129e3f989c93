package buildinfo

import (
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCollectorSaysWhichBuild(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "vward_build_info" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one vward_build_info", mfs)
	}
	m := mfs[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if m.GetGauge().GetValue() != 1 || labels["goversion"] != runtime.Version() || labels["version"] == "" {
		t.Errorf("vward_build_info = %v %v, want 1 with this build's version and %s", m.GetGauge().GetValue(), labels, runtime.Version())
	}
	if _, ok := labels["revision"]; !ok {
		t.Errorf("no revision label: %v", labels)
	}
}
