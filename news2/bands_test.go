package news2

import (
	"reflect"
	"testing"
)

// The bands as the RCP chart prints them (docs/news2.md), bounded by the
// physiological ranges.
func TestBands(t *testing.T) {
	tests := []struct {
		name     string
		p        Parameter
		scale    Scale
		onOxygen bool
		want     []Band
	}{
		{"respiratory rate", RespiratoryRate, Scale1, false, []Band{{0, 8, 3}, {9, 11, 1}, {12, 20, 0}, {21, 24, 2}, {25, 80, 3}}},
		{"spo2 scale 1", SpO2, Scale1, false, []Band{{0, 91, 3}, {92, 93, 2}, {94, 95, 1}, {96, 100, 0}}},
		{"spo2 scale 1 on oxygen", SpO2, Scale1, true, []Band{{0, 91, 3}, {92, 93, 2}, {94, 95, 1}, {96, 100, 0}}},
		{"spo2 scale 2 on air", SpO2, Scale2, false, []Band{{0, 83, 3}, {84, 85, 2}, {86, 87, 1}, {88, 100, 0}}},
		{"spo2 scale 2 on oxygen", SpO2, Scale2, true, []Band{{0, 83, 3}, {84, 85, 2}, {86, 87, 1}, {88, 92, 0}, {93, 94, 1}, {95, 96, 2}, {97, 100, 3}}},
		{"systolic", SystolicBP, Scale1, false, []Band{{20, 90, 3}, {91, 100, 2}, {101, 110, 1}, {111, 219, 0}, {220, 300, 3}}},
		{"pulse", HeartRate, Scale1, false, []Band{{0, 40, 3}, {41, 50, 1}, {51, 90, 0}, {91, 110, 1}, {111, 130, 2}, {131, 300, 3}}},
		{"temperature", Temperature, Scale1, false, []Band{{25, 35, 3}, {35.1, 36, 1}, {36.1, 38, 0}, {38.1, 39, 1}, {39.1, 45, 2}}},
		{"consciousness has none", Consciousness, Scale1, false, nil},
		{"oxygen has none", SupplementalOxygen, Scale1, false, nil},
		{"not a parameter", NumParameters, Scale1, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Bands(tt.p, tt.scale, tt.onOxygen); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Bands(%v, %v, %v) = %v, want %v", tt.p, tt.scale, tt.onOxygen, got, tt.want)
			}
		})
	}
}
