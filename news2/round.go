package news2

import "math"

// Round rounds a raw value to the resolution of the RCP chart: temperature to
// 0.1 °C, every other parameter to a whole number. Ties go up (towards +∞).
//
// The tie is judged on the value as a person reads it — the shortest decimal
// that denotes the float64 — not on its binary expansion: 38.05 is stored as
// 38.04999…, yet a thermometer showing 38.05 is half-way and rounds to 38.1,
// which scores 1 where 38.0 would score 0. NaN, infinities and magnitudes the
// chart never meets (beyond 10¹³) are returned unchanged.
func Round(p Parameter, v float64) float64 {
	if p == Temperature {
		return roundTenth(v)
	}
	return roundWhole(v)
}

// wholeLimit bounds the magnitudes roundWhole works on: below 2⁵¹, f+0.5 is
// exact, and above it every float64 is a whole number already.
const wholeLimit = 1 << 51

func roundWhole(v float64) float64 {
	if !(math.Abs(v) < wholeLimit) {
		return v
	}
	// Half-way points are exact in binary, so a plain comparison is the
	// decimal rule; math.Floor(v+0.5) is not, as v+0.5 itself rounds.
	f := math.Floor(v)
	if v >= f+0.5 {
		return f + 1
	}
	return f
}

// tenthLimit keeps every tenth and half-tenth below it at 15 significant
// digits or fewer, where distinct decimals are distinct float64s; that is what
// makes comparing v with the float64 of a decimal midpoint equivalent to
// comparing their decimals.
const tenthLimit = 1e13

func roundTenth(v float64) float64 {
	if !(math.Abs(v) < tenthLimit) {
		return v
	}
	// j is the answer in tenths: the j with halfAbove(j-1) <= v < halfAbove(j).
	// v*10 is itself rounded, so the first guess may be a tenth out either way.
	j := math.Round(v * 10)
	for v >= halfAbove(j) {
		j++
	}
	for v < halfAbove(j-1) {
		j--
	}
	return j / 10
}

// halfAbove returns the float64 nearest to the decimal (j+0.5)/10, the tie
// between tenths j and j+1. 2j+1 and 20 are exact and IEEE division rounds
// correctly, so this is the same float64 strconv would parse from "38.05".
func halfAbove(j float64) float64 { return (2*j + 1) / 20 }
