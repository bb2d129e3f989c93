package devices

import (
	"strings"
)

// ValidNHSNumber checks an NHS number: ten digits, the last a modulus 11
// check digit over the first nine. It accepts the digits run together or
// written 3-3-4 with spaces or hyphens ("943 476 5919", "943-476-5919"),
// as people copy them from letters and records. The error says what is
// wrong, without repeating the number, so that it may be shown or logged.
func ValidNHSNumber(s string) error {
	_, err := NormalizeNHSNumber(s)
	return err
}

// NormalizeNHSNumber validates an NHS number as ValidNHSNumber does and
// returns its ten digits, the form the registry stores.
func NormalizeNHSNumber(s string) (string, error) {
	s = strings.TrimSpace(s)
	digits, err := nhsDigits(s)
	if err != nil {
		return "", err
	}
	sum := 0
	for i := 0; i < 9; i++ {
		sum += int(digits[i]-'0') * (10 - i)
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	if check == 10 {
		return "", invalidf("NHS number is not valid: its first nine digits give a check digit of 10, which no NHS number has")
	}
	if got := int(digits[9] - '0'); got != check {
		return "", invalidf("NHS number is not valid: the check digit (the last digit) is %d but the first nine digits need %d; look for a mistyped digit", got, check)
	}
	return digits, nil
}

// nhsDigits strips the separators of the 3-3-4 form and insists on ten
// digits.
func nhsDigits(s string) (string, error) {
	if s == "" {
		return "", invalidf("NHS number is empty")
	}
	var b strings.Builder
	var sep rune
	groups := []int{0}
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
			groups[len(groups)-1]++
		case c == ' ' || c == '-':
			if sep != 0 && c != sep {
				return "", invalidf("NHS number mixes spaces and hyphens; write it as 10 digits or 3-3-4, e.g. 943 476 5919")
			}
			sep = c
			groups = append(groups, 0)
		default:
			return "", invalidf("NHS number may contain only digits, with spaces or hyphens between groups of 3, 3 and 4 (e.g. 943 476 5919); found %q", c)
		}
	}
	digits := b.String()
	if len(digits) != 10 {
		return "", invalidf("NHS number must have 10 digits, not %d", len(digits))
	}
	if len(groups) > 1 && !(len(groups) == 3 && groups[0] == 3 && groups[1] == 3 && groups[2] == 4) {
		return "", invalidf("NHS number is grouped wrongly; write it as 10 digits or 3-3-4, e.g. 943 476 5919")
	}
	return digits, nil
}
