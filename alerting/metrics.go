package alerting

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// conditions and openStates are the label values of the engine's metrics,
// each series exported from the start, at 0, so a dashboard or a rule
// never meets a series that is missing because nothing happened yet.
var (
	conditions = [...]Condition{News2, Overdue, DeviceOffline, BatteryLow, ChannelFailing, CarePlan, Concern}
	openStates = [...]State{Raised, Acknowledged, Shelved, Cleared}
	allStates  = [...]State{Raised, Acknowledged, Shelved, Cleared, Resolved}
)

func conditionIndex(c Condition) int {
	for i, x := range conditions {
		if x == c {
			return i
		}
	}
	return -1
}

func stateIndex(s State) int {
	for i, x := range allStates {
		if x == s {
			return i
		}
	}
	return -1
}

// engineCounts are the engine's counters, kept as atomics where the
// transition happens and read when /metrics is scraped.
type engineCounts struct {
	transitions [len(conditions)][len(allStates)]atomic.Int64
	escalations [len(conditions)]atomic.Int64
}

// counted records a stored change of a: the state it is in now, and any
// escalations among its audit entries.
func (c *engineCounts) counted(a *Alert, eff Effect) {
	ci, si := conditionIndex(a.Condition), stateIndex(a.State)
	if ci < 0 || si < 0 {
		return
	}
	c.transitions[ci][si].Add(1)
	for _, e := range eff.Audit {
		if e.Action == ActEscalated {
			c.escalations[ci].Add(1)
		}
	}
}

const transitionsHelp = "Alert changes stored, by condition and the state the alert is in after the change (a raise, an upgrade, an escalation or a reminder of a raised alert count under raised)."

var (
	openDesc = prometheus.NewDesc("vward_alerts_open",
		"Alerts not yet resolved, by condition and state.", []string{"condition", "state"}, nil)
	transitionsDesc = prometheus.NewDesc("vward_alert_transitions_total", transitionsHelp, []string{"condition", "to"}, nil)
	escalationsDesc = prometheus.NewDesc("vward_alert_escalations_total",
		"Clinical alerts escalated to the next tier for want of an acknowledgement, by condition.", []string{"condition"}, nil)
)

// Collector returns the engine's metrics for a Prometheus registry.
func (e *Engine) Collector() prometheus.Collector { return engineCollector{e} }

type engineCollector struct{ e *Engine }

func (engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- openDesc
	ch <- transitionsDesc
	ch <- escalationsDesc
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	var open [len(conditions)][len(openStates)]int
	c.e.mu.Lock()
	for _, a := range c.e.open {
		ci := conditionIndex(a.Condition)
		for si, s := range openStates {
			if ci >= 0 && a.State == s {
				open[ci][si]++
			}
		}
	}
	c.e.mu.Unlock()
	for ci, cond := range conditions {
		for si, s := range openStates {
			ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(open[ci][si]), string(cond), string(s))
		}
		for si, s := range allStates {
			ch <- prometheus.MustNewConstMetric(transitionsDesc, prometheus.CounterValue, float64(c.e.counts.transitions[ci][si].Load()), string(cond), string(s))
		}
		ch <- prometheus.MustNewConstMetric(escalationsDesc, prometheus.CounterValue, float64(c.e.counts.escalations[ci].Load()), string(cond))
	}
}
