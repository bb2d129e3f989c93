package news2

import "time"

// Freshness is how long each parameter's latest value stays current, either
// side of the time a set is scored at. Wards may differ, so callers pass it
// in; DefaultFreshness gives the product's default.
type Freshness [NumParameters]time.Duration

// DefaultFreshness returns one hour for every parameter. A NEWS2 is a set of
// observations taken together, and an hour is the most frequent spot-check
// schedule NEWS2 asks for short of continuous monitoring, so a value older
// than that belongs to an earlier round. A stale normal value would make a set
// look complete while telling nothing about now; leaving it out labels the
// score partial and names what is missing. A ward whose oxygen status or
// consciousness is recorded less often can lengthen those windows knowingly.
func DefaultFreshness() Freshness {
	var f Freshness
	for p := range f {
		f[p] = time.Hour
	}
	return f
}

// Set assembles an observation set from readings that arrive separately,
// late, out of order or twice: it keeps, per parameter, the value with the
// latest measurement time. The zero Set is empty and scores on Scale 1.
type Set struct {
	// Scale is the SpO2 scale prescribed for the patient.
	Scale Scale

	values  [NumParameters]float64
	at      [NumParameters]time.Time
	present ParamSet
}

// Update offers a reading of p measured at the given time and reports whether
// it changed the set. A reading measured before the one held never replaces
// it, so a buffered reading delivered late cannot roll the patient back. A
// redelivery — same time, same value — changes nothing. A different value at
// the same measurement time replaces the held one, as the same series and
// timestamp overwrite in the reading store, so the score agrees with the
// stored history.
func (s *Set) Update(p Parameter, v float64, at time.Time) bool {
	if !p.valid() {
		return false
	}
	if s.present.Has(p) {
		held, heldAt := s.values[p], s.at[p]
		if at.Before(heldAt) {
			return false
		}
		if at.Equal(heldAt) && sameValue(v, held) {
			return false
		}
	}
	s.values[p] = v
	s.at[p] = at
	s.present = s.present.with(p)
	return true
}

// sameValue is == except that NaN equals NaN, so that a redelivered NaN is a
// no-op like any other redelivery.
func sameValue(a, b float64) bool { return a == b || a != a && b != b }

// Forget drops the held value of p, so that a value entered in error stops
// counting; the caller offers the patient's earlier values again with Update.
func (s *Set) Forget(p Parameter) {
	if !p.valid() {
		return
	}
	s.values[p], s.at[p] = 0, time.Time{}
	s.present = s.present.without(p)
}

// Latest returns the held value of p and its measurement time.
func (s *Set) Latest(p Parameter) (v float64, at time.Time, ok bool) {
	if !s.present.Has(p) {
		return 0, time.Time{}, false
	}
	return s.values[p], s.at[p], true
}

// LatestAt returns the latest measurement time of any held value, or the zero
// time for an empty set.
func (s *Set) LatestAt() time.Time {
	var latest time.Time
	for p := range NumParameters {
		if s.present.Has(p) && s.at[p].After(latest) {
			latest = s.at[p]
		}
	}
	return latest
}

// Observations returns the values current at now: those measured within their
// freshness window of now, on either side. Future times are admitted within
// the window because device clocks drift; the window bounds how far, so one
// bad clock cannot hold a value current indefinitely. A zero window admits
// only a value measured exactly at now; a negative one admits nothing. Pass the wall clock to score the patient as they are
// now, or a reading's measurement time to score a late batch as it was.
func (s *Set) Observations(now time.Time, f Freshness) Observations {
	o := Observations{Scale: s.Scale}
	for p := range NumParameters {
		if !s.present.Has(p) || f[p] < 0 {
			continue
		}
		at := s.at[p]
		if at.Before(now.Add(-f[p])) || at.After(now.Add(f[p])) {
			continue
		}
		o.Set(p, s.values[p])
	}
	return o
}
