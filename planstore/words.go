package planstore

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vward/vward/careplan"
)

// The plan in words, for the patient view and the CLI: what each rule
// watches and how often each measurement is expected, so that nobody has
// to read the plan's JSON at 3 a.m.

var opWords = map[careplan.Op]string{
	careplan.Below: "below", careplan.AtMost: "at or below", careplan.Above: "above", careplan.AtLeast: "at or above",
}

// amountWords says how large a change or deviation must be.
var amountWords = map[careplan.Op]string{careplan.Above: "more than", careplan.AtLeast: "at least"}

// Condition says when a rule holds: "spo2 below 94 %, on 2 readings
// running".
func Condition(r careplan.Rule) string {
	ki, _ := careplan.Kind(r.Kind)
	kind := strings.ReplaceAll(string(r.Kind), "_", " ")
	val := func(v float64) string {
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if ki.Unit != "" {
			s += " " + ki.Unit
		}
		return s
	}
	switch r.Type {
	case careplan.Threshold:
		if ki.Event() {
			return fmt.Sprintf("a %s recorded in the last %s", kind, Duration(r.Within))
		}
		s := fmt.Sprintf("%s %s %s", kind, opWords[r.Op], val(r.Value))
		if r.Within != 0 {
			s += fmt.Sprintf(", measured in the last %s", Duration(r.Within))
		}
		return s
	case careplan.Sustained:
		s := fmt.Sprintf("%s %s %s", kind, opWords[r.Op], val(r.Value))
		if r.Sets != 0 {
			return s + fmt.Sprintf(", on %d readings running", r.Sets)
		}
		return s + fmt.Sprintf(", throughout %s", Duration(r.For))
	case careplan.Change:
		word := "up"
		if r.Direction == careplan.Fall {
			word = "down"
		}
		from := "the lowest"
		if r.Direction == careplan.Fall {
			from = "the highest"
		}
		return fmt.Sprintf("%s %s %s %s from %s within %s", kind, word, amountWords[r.Op], val(r.Value), from, Duration(r.Window))
	case careplan.Deviation:
		amount := val(r.Value)
		if ki.Unit == "%" {
			// SpO2 in its own unit: percentage points, not a
			// percentage of the baseline.
			amount = strconv.FormatFloat(r.Value, 'f', -1, 64) + " points"
		}
		if r.Percent {
			amount = strconv.FormatFloat(r.Value, 'f', -1, 64) + "%"
		}
		side := "above"
		if r.Direction == careplan.Fall {
			side = "below"
		}
		b := r.Baseline
		base := fmt.Sprintf("the usual %s set by %s", val(b.Value), b.SetBy)
		if !b.Clinical() {
			base = fmt.Sprintf("the median of %s", Duration(b.MedianOf))
			if b.ExcludingLast != 0 {
				base += fmt.Sprintf(" ending %s before the latest reading", Duration(b.ExcludingLast))
			}
		}
		return fmt.Sprintf("%s %s %s %s, against %s", kind, amountWords[r.Op], amount, side, base)
	}
	return string(r.Type)
}

// Expectation says how often a measurement is expected: "weight every 1d
// by 10:00".
func Expectation(e careplan.Expectation) string {
	s := strings.ReplaceAll(string(e.Kind), "_", " ") + " every " + Duration(e.Every)
	if e.By != 0 {
		s += fmt.Sprintf(" by %02d:%02d", int(e.By.Hours()), int(e.By.Minutes())%60)
	}
	return s
}

// Duration writes a duration as plans do, in days where whole: "3d",
// "1d12h", "4h", "90m" as "1h30m".
func Duration(d time.Duration) string {
	if d <= 0 || d%time.Minute != 0 {
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := d / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.size
		}
	}
	return b.String()
}
