package news2

import "math"

// Band is a range of a parameter's values, as rounded for the chart, that
// scores the same: Min and Max are the lowest and highest chart values in
// it, both inclusive, and the physiological range bounds the outer bands.
type Band struct {
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Score int     `json:"score"`
}

// Bands returns p's bands on the scale, lowest values first, for the
// patient on oxygen or on air (which changes only SpO2 on Scale 2). They are
// read off the scoring itself, value by value at the chart's resolution, so
// a chart shaded with them can never disagree with the score. Consciousness
// and supplemental oxygen are categories, not ranges: Bands returns nil.
func Bands(p Parameter, scale Scale, onOxygen bool) []Band {
	if !p.valid() || p == Consciousness || p == SupplementalOxygen {
		return nil
	}
	step := 1.0
	if p == Temperature {
		step = 0.1
	}
	r := p.Kind().PossibleRange()
	lo, hi := int(math.Ceil(r.Min/step-1e-9)), int(math.Floor(r.Max/step+1e-9))
	var out []Band
	for i := lo; i <= hi; i++ {
		// i/10 rather than i*0.1: the value is then the float64 nearest the
		// decimal, as a reading of it would be.
		v := float64(i)
		if step != 1 {
			v = float64(i) / 10
		}
		s := subscore(p, v, scale, onOxygen)
		if n := len(out); n > 0 && out[n-1].Score == s {
			out[n-1].Max = v
			continue
		}
		out = append(out, Band{Min: v, Max: v, Score: s})
	}
	return out
}
