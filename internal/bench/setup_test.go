package bench

import (
	"slices"
	"testing"

	"github.com/vward/vward"
)

func TestWards(t *testing.T) {
	for _, tc := range []struct {
		devices, wards, boardWards int
		ids                        []vward.WardID
		boardPatients              int
	}{
		{devices: 10, wards: 0, ids: []vward.WardID{"bench"}, boardPatients: 10},
		{devices: 10, wards: 1, boardWards: 1, ids: []vward.WardID{"bench"}, boardPatients: 10},
		{devices: 10, wards: 3, boardWards: 0, ids: []vward.WardID{"bench-001", "bench-002", "bench-003"}, boardPatients: 10},
		// Patients 0, 3, 6, 9 are in ward 1; 1, 4, 7 in ward 2.
		{devices: 10, wards: 3, boardWards: 1, ids: []vward.WardID{"bench-001", "bench-002", "bench-003"}, boardPatients: 4},
		{devices: 10, wards: 3, boardWards: 2, ids: []vward.WardID{"bench-001", "bench-002", "bench-003"}, boardPatients: 7},
		{devices: 2, wards: 5, boardWards: 4, ids: []vward.WardID{"bench-001", "bench-002", "bench-003", "bench-004", "bench-005"}, boardPatients: 2},
		{devices: 12700, wards: 318, boardWards: 32, boardPatients: 32 * 40},
	} {
		c := Config{Rate: 1, Devices: tc.devices, Wards: tc.wards, BoardWards: tc.boardWards}
		if err := c.defaults(); err != nil {
			t.Fatal(err)
		}
		if ids := c.wardIDs(); tc.ids != nil && !slices.Equal(ids, tc.ids) {
			t.Errorf("%+v: wards %q, want %q", tc, ids, tc.ids)
		}
		// Count as seed assigns: patient i in ward i mod Wards.
		counted := 0
		for i := range tc.devices {
			if i%c.Wards < c.BoardWards {
				counted++
			}
		}
		if got := c.boardPatients(); got != tc.boardPatients || got != counted {
			t.Errorf("%+v: boardPatients %d, want %d (counted %d)", tc, got, tc.boardPatients, counted)
		}
	}
}
