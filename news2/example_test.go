package news2_test

import (
	"fmt"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

func ExampleScore() {
	var o news2.Observations
	o.Set(news2.RespiratoryRate, 22)
	o.Set(news2.SpO2, 95)
	o.Set(news2.SupplementalOxygen, 0)
	o.Set(news2.SystolicBP, 118)
	o.Set(news2.HeartRate, 96)
	o.Set(news2.Consciousness, float64(vward.Alert))
	o.Set(news2.Temperature, 38.05) // rounds to 38.1, which scores 1
	if err := o.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	r := news2.Score(o)
	fmt.Println(r.Score, r.Risk, r.Complete, r.Monitoring())
	// Output: 5 medium true hourly
}

func ExampleSet() {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s := news2.Set{Scale: news2.Scale2}
	s.Update(news2.SpO2, 97, t0)
	s.Update(news2.SupplementalOxygen, 1, t0)
	s.Update(news2.HeartRate, 88, t0.Add(time.Minute))
	s.Update(news2.SpO2, 90, t0.Add(-time.Minute)) // buffered, delivered late: ignored

	r := news2.Score(s.Observations(t0.Add(5*time.Minute), news2.DefaultFreshness()))
	fmt.Println(r.Score, r.Risk, r.RedScore, r.Missing())
	// Output: 5 medium true [respiratory_rate systolic_bp consciousness temperature]
}
