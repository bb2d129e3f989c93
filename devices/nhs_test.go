package devices_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
)

func TestNHSNumberValid(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"9434765919", "9434765919"},
		{"943 476 5919", "9434765919"},
		{"943-476-5919", "9434765919"},
		{"  943 476 5919 ", "9434765919"},
		{"4000000020", "4000000020"}, // 4·10 + 2·2 = 44 = 4·11: 11 − 0 gives check digit 0
		{"400 000 0020", "4000000020"},
		{"9990000018", "9990000018"},
	} {
		got, err := devices.NormalizeNHSNumber(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeNHSNumber(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if err := devices.ValidNHSNumber(tc.in); err != nil {
			t.Errorf("ValidNHSNumber(%q) = %v, want nil", tc.in, err)
		}
	}
}

func TestNHSNumberInvalid(t *testing.T) {
	for _, tc := range []struct{ in, why string }{
		{"9434765918", "check digit (the last digit) is 8 but the first nine digits need 9"},
		{"943 476 5910", "check digit (the last digit) is 0 but the first nine digits need 9"},
		// 1234567890: the weighted sum 1·10+2·9+…+9·2 = 210, 210 mod 11 = 1,
		// 11 − 1 = 10: no number with these first nine digits is valid.
		{"1234567890", "check digit of 10"},
		{"123456789", "must have 10 digits, not 9"},
		{"94347659190", "must have 10 digits, not 11"},
		{"", "empty"},
		{"943476591X", `only digits`},
		{"abc def ghij", `only digits`},
		{"943.476.5919", `only digits`},
		{"9434 765 919", "grouped wrongly"},
		{"94 347 659 19", "grouped wrongly"},
		{"943 476-5919", "mixes spaces and hyphens"},
	} {
		err := devices.ValidNHSNumber(tc.in)
		if err == nil {
			t.Errorf("ValidNHSNumber(%q) = nil, want an error saying %q", tc.in, tc.why)
			continue
		}
		if !strings.Contains(err.Error(), tc.why) {
			t.Errorf("ValidNHSNumber(%q) = %q, want it to say %q", tc.in, err, tc.why)
		}
		if !errors.Is(err, vward.ErrInvalid) {
			t.Errorf("ValidNHSNumber(%q) error is not ErrInvalid", tc.in)
		}
		// The error may be logged: it must not repeat the number.
		if d := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, tc.in); len(d) >= 9 && strings.Contains(err.Error(), d) {
			t.Errorf("ValidNHSNumber(%q) error %q repeats the number", tc.in, err)
		}
	}
}
