package careplan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vward/vward"
)

// Bounds on a plan, so that a plan can never make evaluation or display
// unbounded. docs/careplans.md lists them.
const (
	MaxPlanBytes       = 64 << 10
	MaxRules           = 32
	maxIDLen           = 64
	maxNameLen         = 120
	maxBasisLen        = 1000
	maxPersonLen       = 100
	maxTextLen         = 4000
	maxSets            = 20
	maxMinReadings     = 1000
	maxProblems        = 20
	defaultMinReadings = 3
)

// Problem is one thing wrong with a plan: the field, named by its path
// ("rules[2].window"), and what is wrong with it.
type Problem struct {
	Field   string
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// InvalidError lists what is wrong with a plan, in document order. It
// matches vward.ErrInvalid, so the web layer answers it as a bad request.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString("invalid care plan: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Is makes errors.Is(err, vward.ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == vward.ErrInvalid }

// problems collects Problems, at most maxProblems of them.
type problems struct {
	list  []Problem
	extra int
}

func (ps *problems) add(field, format string, args ...any) {
	if len(ps.list) == maxProblems {
		ps.extra++
		return
	}
	ps.list = append(ps.list, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := ps.list
	if ps.extra > 0 {
		list = append(list, Problem{Message: fmt.Sprintf("and %d more problems", ps.extra)})
	}
	return &InvalidError{Problems: list}
}

// The plan as JSON. Pointers tell a field left out from one given as
// zero: a field a rule's type does not use is refused, not ignored.
type planJSON struct {
	Version        *int              `json:"version"`
	Name           *string           `json:"name"`
	Template       *string           `json:"template,omitempty"`
	Note           *string           `json:"note,omitempty"`
	Expected       []json.RawMessage `json:"expected"`
	Rules          []json.RawMessage `json:"rules"`
	EscalationPlan json.RawMessage   `json:"escalation_plan,omitempty"`
}

type expectationJSON struct {
	Kind  *string `json:"kind"`
	Every *string `json:"every"`
	By    *string `json:"by,omitempty"`
}

type ruleJSON struct {
	ID        *string       `json:"id"`
	Name      *string       `json:"name"`
	Risk      *string       `json:"risk"`
	Type      *string       `json:"type"`
	Kind      *string       `json:"kind"`
	Op        *string       `json:"op,omitempty"`
	Value     *float64      `json:"value,omitempty"`
	Within    *string       `json:"within,omitempty"`
	For       *string       `json:"for,omitempty"`
	Sets      *int          `json:"sets,omitempty"`
	Direction *string       `json:"direction,omitempty"`
	Window    *string       `json:"window,omitempty"`
	Percent   *bool         `json:"percent,omitempty"`
	Baseline  *baselineJSON `json:"baseline,omitempty"`
	Basis     *string       `json:"basis,omitempty"`
}

type baselineJSON struct {
	Value         *float64 `json:"value,omitempty"`
	SetBy         *string  `json:"set_by,omitempty"`
	SetAt         *string  `json:"set_at,omitempty"`
	MedianOf      *string  `json:"median_of,omitempty"`
	ExcludingLast *string  `json:"excluding_last,omitempty"`
	MinReadings   *int     `json:"min_readings,omitempty"`
}

type escalationJSON struct {
	Ceiling   *string `json:"ceiling"`
	Text      *string `json:"text"`
	DecidedBy *string `json:"decided_by"`
	DecidedAt *string `json:"decided_at"`
	ReviewBy  *string `json:"review_by,omitempty"`
}

// shape is the keys an object may have, and the shapes of the objects
// under them, for the exact key check.
type shape struct {
	keys  map[string]*shape // nil value: a key whose value is no object
	items *shape            // the shape of an array's elements
}

var (
	baselineShape   = &shape{keys: keysOf(baselineJSON{}, nil)}
	ruleShape       = &shape{keys: keysOf(ruleJSON{}, map[string]*shape{"baseline": baselineShape})}
	expectedShape   = &shape{keys: keysOf(expectationJSON{}, nil)}
	escalationShape = &shape{keys: keysOf(escalationJSON{}, nil)}
	planShape       = &shape{keys: keysOf(planJSON{}, map[string]*shape{
		"expected":        {items: expectedShape},
		"rules":           {items: ruleShape},
		"escalation_plan": escalationShape,
	})}
)

// keysOf lists a wire struct's JSON keys, so that the key check and the
// decoder cannot disagree.
func keysOf(v any, nested map[string]*shape) map[string]*shape {
	t := reflect.TypeOf(v)
	keys := make(map[string]*shape, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		keys[name] = nested[name]
	}
	return keys
}

// Parse reads a plan from JSON and validates it. It refuses unknown fields,
// a field given twice or in another case, and every value out of bounds,
// naming each field: an *InvalidError lists every problem found.
func Parse(data []byte) (*Plan, error) {
	var ps problems
	switch {
	case len(data) > MaxPlanBytes:
		ps.add("", "the plan is %d bytes, more than the %d allowed", len(data), MaxPlanBytes)
		return nil, ps.err()
	case !utf8.Valid(data):
		ps.add("", "the plan is not UTF-8")
		return nil, ps.err()
	}
	if err := checkKeys(data, &ps); err != nil {
		ps.add("", "%v", err)
		return nil, ps.err()
	}
	if len(ps.list) > 0 {
		return nil, ps.err()
	}
	var w planJSON
	if err := json.Unmarshal(data, &w); err != nil {
		ps.add(typeField("", err), "%s", typeProblem(err))
		return nil, ps.err()
	}
	p := &Plan{}
	p.Version = derefInt(w.Version)
	switch {
	case w.Version == nil:
		ps.add("version", "required: the plan format's version, %d", FormatVersion)
	case *w.Version != FormatVersion:
		ps.add("version", "want %d, the only plan format this vward reads, not %d", FormatVersion, *w.Version)
		return nil, ps.err()
	}
	p.Name = text(&ps, "name", w.Name, maxNameLen, true)
	if w.Template != nil {
		p.Template = *w.Template
		if _, ok := templateFiles[p.Template]; !ok {
			ps.add("template", "%q is not a template vward ships (one of %s)", p.Template, strings.Join(TemplateNames(), ", "))
		}
	}
	p.Note = text(&ps, "note", w.Note, maxTextLen, false)
	parseExpected(&ps, p, w.Expected)
	if len(w.Rules) > MaxRules {
		ps.add("rules", "%d rules, more than the %d a plan may have", len(w.Rules), MaxRules)
	} else {
		ids := make(map[string]int, len(w.Rules))
		for i, raw := range w.Rules {
			field := fmt.Sprintf("rules[%d]", i)
			var rj ruleJSON
			if err := json.Unmarshal(raw, &rj); err != nil {
				ps.add(typeField(field, err), "%s", typeProblem(err))
				continue
			}
			r := parseRule(&ps, field, rj)
			if j, dup := ids[r.ID]; dup && r.ID != "" {
				ps.add(field+".id", "%q is the id of rules[%d] too", r.ID, j)
			}
			ids[r.ID] = i
			p.Rules = append(p.Rules, r)
		}
	}
	if len(w.EscalationPlan) > 0 && string(w.EscalationPlan) != "null" {
		var ej escalationJSON
		if err := json.Unmarshal(w.EscalationPlan, &ej); err != nil {
			ps.add(typeField("escalation_plan", err), "%s", typeProblem(err))
		} else {
			p.Escalation = parseEscalation(&ps, ej)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// checkKeys walks the document's objects and reports, by path, every key
// the format does not have, spelt in another case, or given twice:
// encoding/json would match the first case-insensitively and let the last
// of a repeated key win silently.
func checkKeys(data []byte, ps *problems) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walk(dec, "", planShape, ps, true); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: more data after the plan's object")
	}
	return nil
}

func walk(dec *json.Decoder, path string, sh *shape, ps *problems, root bool) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	d, isDelim := tok.(json.Delim)
	if root && (!isDelim || d != '{') {
		return errors.New("the plan must be a JSON object")
	}
	if !isDelim {
		return nil
	}
	switch d {
	case '{':
		seen := make(map[string]bool)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return jsonError(err)
			}
			key := tok.(string)
			field := joinPath(path, key)
			var sub *shape
			known := false
			if sh != nil && sh.keys != nil {
				sub, known = sh.keys[key]
				switch {
				case seen[key]:
					ps.add(field, "given more than once")
				case !known:
					ps.add(field, "unknown field%s", didYouMean(key, sh.keys))
				}
				seen[key] = true
			}
			if err := walk(dec, field, sub, ps, false); err != nil {
				return err
			}
		}
	case '[':
		var items *shape
		if sh != nil {
			items = sh.items
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, fmt.Sprintf("%s[%d]", path, i), items, ps, false); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return jsonError(err)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func didYouMean(key string, keys map[string]*shape) string {
	for k := range keys {
		if strings.EqualFold(k, key) {
			return fmt.Sprintf(" (field names are exact: %q)", k)
		}
	}
	return ""
}

func jsonError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: the plan ends too soon")
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// typeField and typeProblem word a json.UnmarshalTypeError ("rules[2].value:
// want a number, not a string").
func typeField(prefix string, err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return joinPath(prefix, te.Field)
	}
	return prefix
}

func typeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	t := te.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	want := "a " + t.String()
	switch t.Kind() {
	case reflect.String:
		want = "a string"
	case reflect.Float64:
		want = "a number"
	case reflect.Int:
		want = "a whole number"
	case reflect.Bool:
		want = "true or false"
	case reflect.Slice:
		want = "a list"
	case reflect.Struct:
		want = "an object"
	}
	return fmt.Sprintf("want %s, not %s", want, te.Value)
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// text checks a free-text field: present (if required), not blank, no
// control characters, at most max characters.
func text(ps *problems, field string, s *string, most int, required bool) string {
	if s == nil {
		if required {
			ps.add(field, "required")
		}
		return ""
	}
	v := strings.TrimSpace(*s)
	switch {
	case v == "":
		ps.add(field, "must not be blank")
	case utf8.RuneCountInString(v) > most:
		ps.add(field, "%d characters, more than the %d allowed", utf8.RuneCountInString(v), most)
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		ps.add(field, "contains a control character")
	}
	return v
}

// duration checks a duration field against [min, max].
func duration(ps *problems, field string, s *string, least, most time.Duration) time.Duration {
	if s == nil {
		ps.add(field, "required: a duration from %s to %s", formatDuration(least), formatDuration(most))
		return 0
	}
	d, err := parseDuration(*s)
	if err != nil || d < least || d > most {
		ps.add(field, "want a duration from %s to %s, not %q", formatDuration(least), formatDuration(most), *s)
		return 0
	}
	return d
}

func timestamp(ps *problems, field string, s *string) time.Time {
	if s == nil {
		ps.add(field, "required: an RFC 3339 time such as 2026-11-23T10:15:00Z")
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		ps.add(field, "%q is not an RFC 3339 time such as 2026-11-23T10:15:00Z", *s)
		return time.Time{}
	}
	return t
}

func parseExpected(ps *problems, p *Plan, items []json.RawMessage) {
	if len(items) > len(kinds) {
		ps.add("expected", "%d expected measurements, more than the %d kinds there are", len(items), len(kinds))
		return
	}
	seen := make(map[vward.ReadingKind]int, len(items))
	for i, raw := range items {
		field := fmt.Sprintf("expected[%d]", i)
		var ej expectationJSON
		if err := json.Unmarshal(raw, &ej); err != nil {
			ps.add(typeField(field, err), "%s", typeProblem(err))
			continue
		}
		e := Expectation{}
		ki, ok := kindField(ps, field+".kind", ej.Kind, func(k KindInfo) bool { return !k.Event() }, "a kind that is measured (an event is not expected)")
		if ok {
			e.Kind = ki.Kind
			if j, dup := seen[e.Kind]; dup {
				ps.add(field+".kind", "%s is expected by expected[%d] already", e.Kind, j)
			}
			seen[e.Kind] = i
		}
		if ej.By == nil {
			e.Every = duration(ps, field+".every", ej.Every, 15*time.Minute, 7*day)
		} else {
			e.Every = duration(ps, field+".every", ej.Every, day, 7*day)
			if e.Every%day != 0 {
				ps.add(field+".every", "want whole days with a deadline (by), not %q", *ej.Every)
			}
			e.By = clock(ps, field+".by", *ej.By)
		}
		p.Expected = append(p.Expected, e)
	}
}

// clock reads a local time of day, "HH:MM", as the time since midnight.
func clock(ps *problems, field, s string) time.Duration {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 || (t.Hour() == 0 && t.Minute() == 0) {
		ps.add(field, "want a time of day from 00:01 to 23:59 as HH:MM, not %q", s)
		return 0
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
}

func kindField(ps *problems, field string, s *string, keep func(KindInfo) bool, what string) (KindInfo, bool) {
	if s == nil {
		ps.add(field, "required: %s (one of %s)", what, kindNames(keep))
		return KindInfo{}, false
	}
	ki, ok := Kind(vward.ReadingKind(*s))
	if !ok || !keep(ki) {
		ps.add(field, "%q is not %s (one of %s)", *s, what, kindNames(keep))
		return KindInfo{}, false
	}
	return ki, true
}

func parseRule(ps *problems, field string, rj ruleJSON) Rule {
	r := Rule{}
	if rj.ID == nil {
		ps.add(field+".id", "required")
	} else {
		r.ID = *rj.ID
		if !validID(r.ID) {
			ps.add(field+".id", "want 1 to %d of a-z, 0-9, - and _, beginning with a letter or digit, not %q", maxIDLen, r.ID)
		}
	}
	r.Name = text(ps, field+".name", rj.Name, maxNameLen, true)
	r.Basis = text(ps, field+".basis", rj.Basis, maxBasisLen, false)
	switch {
	case rj.Risk == nil:
		ps.add(field+".risk", "required: the risk of the alert the rule raises (one of %s)", joinRisks())
	case !validRisk(Risk(*rj.Risk)):
		ps.add(field+".risk", "%q is not one of %s", *rj.Risk, joinRisks())
	default:
		r.Risk = Risk(*rj.Risk)
	}
	if rj.Type == nil {
		ps.add(field+".type", "required: one of threshold, sustained, change, deviation")
		return r
	}
	r.Type = RuleType(*rj.Type)
	keep := func(k KindInfo) bool { return k.Numeric() }
	what := "a numeric kind"
	switch r.Type {
	case Threshold:
		keep = func(k KindInfo) bool { return k.Numeric() || k.Event() }
		what = "a numeric kind or an event"
	case Sustained, Change, Deviation:
	default:
		ps.add(field+".type", "%q is not one of threshold, sustained, change, deviation", *rj.Type)
		return r
	}
	ki, kindOK := kindField(ps, field+".kind", rj.Kind, keep, what)
	r.Kind = ki.Kind

	// used names the fields of this type; any other given is refused.
	used := map[string]bool{}
	use := func(names ...string) {
		for _, n := range names {
			used[n] = true
		}
	}
	switch r.Type {
	case Threshold:
		use("within")
		if ki.Event() {
			r.Within = duration(ps, field+".within", rj.Within, time.Minute, 14*day)
			break
		}
		use("op", "value")
		if rj.Within != nil {
			r.Within = duration(ps, field+".within", rj.Within, time.Minute, 14*day)
		}
		r.Op, r.Value = threshold(ps, field, rj, ki, kindOK)
	case Sustained:
		use("op", "value", "for", "sets")
		r.Op, r.Value = threshold(ps, field, rj, ki, kindOK)
		switch {
		case (rj.For == nil) == (rj.Sets == nil):
			ps.add(field+".for", "give exactly one of for (a duration from 1m to 24h) and sets (%d to %d readings)", 2, maxSets)
		case rj.For != nil:
			r.For = duration(ps, field+".for", rj.For, time.Minute, day)
		case *rj.Sets < 2 || *rj.Sets > maxSets:
			ps.add(field+".sets", "want a whole number of readings from 2 to %d, not %d", maxSets, *rj.Sets)
		default:
			r.Sets = *rj.Sets
		}
	case Change:
		use("op", "value", "direction", "window")
		r.Direction = direction(ps, field, rj.Direction)
		r.Op, r.Value = amount(ps, field, rj, ki, kindOK, false)
		r.Window = duration(ps, field+".window", rj.Window, time.Hour, 14*day)
	case Deviation:
		use("op", "value", "direction", "percent", "baseline")
		r.Direction = direction(ps, field, rj.Direction)
		r.Percent = rj.Percent != nil && *rj.Percent
		r.Op, r.Value = amount(ps, field, rj, ki, kindOK, r.Percent)
		r.Baseline = baseline(ps, field+".baseline", rj.Baseline, ki, kindOK)
	}
	given := map[string]bool{
		"op": rj.Op != nil, "value": rj.Value != nil, "within": rj.Within != nil, "for": rj.For != nil,
		"sets": rj.Sets != nil, "direction": rj.Direction != nil, "window": rj.Window != nil,
		"percent": rj.Percent != nil, "baseline": rj.Baseline != nil,
	}
	for _, name := range []string{"op", "value", "within", "for", "sets", "direction", "window", "percent", "baseline"} {
		if given[name] && !used[name] {
			if ki.Event() && r.Type == Threshold {
				ps.add(field+"."+name, "not used for %s, an event: the rule holds while one was recorded in the last within", ki.Kind)
			} else {
				ps.add(field+"."+name, "not used by a %s rule", r.Type)
			}
		}
	}
	return r
}

func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return false
		}
	}
	return true
}

func validRisk(r Risk) bool {
	for _, k := range Risks {
		if r == k {
			return true
		}
	}
	return false
}

func joinRisks() string {
	names := make([]string, len(Risks))
	for i, r := range Risks {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

func direction(ps *problems, field string, s *string) Direction {
	switch {
	case s == nil:
		ps.add(field+".direction", "required: rise or fall")
	case *s != string(Rise) && *s != string(Fall):
		ps.add(field+".direction", "%q is not rise or fall", *s)
	default:
		return Direction(*s)
	}
	return ""
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// threshold checks a threshold's op and value: the value must be one the
// kind can take, and the comparison must be able both to hold and not to.
func threshold(ps *problems, field string, rj ruleJSON, ki KindInfo, kindOK bool) (Op, float64) {
	var op Op
	switch {
	case rj.Op == nil:
		ps.add(field+".op", "required: one of <, <=, >, >=")
	case !validOp(Op(*rj.Op)):
		ps.add(field+".op", "%q is not one of <, <=, >, >=", *rj.Op)
	default:
		op = Op(*rj.Op)
	}
	if rj.Value == nil {
		ps.add(field+".value", "required: a number")
		return op, 0
	}
	v := *rj.Value
	if !kindOK {
		return op, v
	}
	rng := ki.Range
	if !rng.Contains(v) {
		ps.add(field+".value", "%s is outside %s's possible %s–%s", num(v), ki.Kind, num(rng.Min), num(rng.Max))
		return op, v
	}
	never := op == Below && v <= rng.Min || op == Above && v >= rng.Max
	always := op == AtLeast && v <= rng.Min || op == AtMost && v >= rng.Max
	switch {
	case op != "" && never:
		ps.add(field+".value", "%s %s %s can never hold: %s is %s–%s", ki.Kind, op, num(v), ki.Kind, num(rng.Min), num(rng.Max))
	case op != "" && always:
		ps.add(field+".value", "%s %s %s always holds: %s is %s–%s", ki.Kind, op, num(v), ki.Kind, num(rng.Min), num(rng.Max))
	}
	return op, v
}

func validOp(op Op) bool { return op == Below || op == AtMost || op == Above || op == AtLeast }

// amount checks how large a change or deviation must be: more than (>)
// or at least (>=) a positive value no larger than the kind's span (or
// 100 percent).
func amount(ps *problems, field string, rj ruleJSON, ki KindInfo, kindOK, percent bool) (Op, float64) {
	var op Op
	switch {
	case rj.Op == nil:
		ps.add(field+".op", "required: > (more than) or >= (at least)")
	case *rj.Op != string(Above) && *rj.Op != string(AtLeast):
		ps.add(field+".op", "%q is not > (more than) or >= (at least): the direction says which way", *rj.Op)
	default:
		op = Op(*rj.Op)
	}
	if rj.Value == nil {
		ps.add(field+".value", "required: a positive number")
		return op, 0
	}
	v := *rj.Value
	if !kindOK {
		return op, v
	}
	most, unit := ki.Range.Max-ki.Range.Min, ki.Unit
	if percent {
		most, unit = 100, "%"
	}
	if !(v > 0 && v <= most) {
		ps.add(field+".value", "want more than 0 and at most %s%s, not %s", num(most), unitSuffix(unit), num(v))
	}
	return op, v
}

func unitSuffix(unit string) string {
	if unit == "" || unit == "%" || strings.HasPrefix(unit, "/") {
		return unit
	}
	return " " + unit
}

func baseline(ps *problems, field string, bj *baselineJSON, ki KindInfo, kindOK bool) Baseline {
	var b Baseline
	if bj == nil {
		ps.add(field, "required: a value set by a clinician (value, set_by, set_at) or a median (median_of, excluding_last, min_readings)")
		return b
	}
	clinical := bj.Value != nil || bj.SetBy != nil || bj.SetAt != nil
	median := bj.MedianOf != nil || bj.ExcludingLast != nil || bj.MinReadings != nil
	switch {
	case clinical && median:
		ps.add(field, "give either a value set by a clinician (value, set_by, set_at) or a median (median_of, excluding_last, min_readings), not both")
	case clinical:
		if bj.Value == nil {
			ps.add(field+".value", "required: the patient's usual value")
		} else {
			b.Value = *bj.Value
			if kindOK && !ki.Range.Contains(b.Value) {
				ps.add(field+".value", "%s is outside %s's possible %s–%s", num(b.Value), ki.Kind, num(ki.Range.Min), num(ki.Range.Max))
			}
		}
		b.SetBy = text(ps, field+".set_by", bj.SetBy, maxPersonLen, true)
		b.SetAt = timestamp(ps, field+".set_at", bj.SetAt)
	default:
		b.MedianOf = duration(ps, field+".median_of", bj.MedianOf, time.Hour, 14*day)
		if bj.ExcludingLast != nil {
			if d, err := parseDuration(*bj.ExcludingLast); err != nil || d > 7*day {
				ps.add(field+".excluding_last", "want a duration from 0s to 7d, not %q", *bj.ExcludingLast)
			} else {
				b.ExcludingLast = d
			}
		}
		b.MinReadings = defaultMinReadings
		if bj.MinReadings != nil {
			if n := *bj.MinReadings; n < 1 || n > maxMinReadings {
				ps.add(field+".min_readings", "want a whole number from 1 to %d, not %d", maxMinReadings, n)
			} else {
				b.MinReadings = n
			}
		}
	}
	return b
}

func parseEscalation(ps *problems, ej escalationJSON) *EscalationPlan {
	const field = "escalation_plan"
	e := &EscalationPlan{}
	names := make([]string, len(Ceilings))
	for i, c := range Ceilings {
		names[i] = string(c)
	}
	switch {
	case ej.Ceiling == nil:
		ps.add(field+".ceiling", "required: one of %s", strings.Join(names, ", "))
	default:
		for _, c := range Ceilings {
			if *ej.Ceiling == string(c) {
				e.Ceiling = c
			}
		}
		if e.Ceiling == "" {
			ps.add(field+".ceiling", "%q is not one of %s", *ej.Ceiling, strings.Join(names, ", "))
		}
	}
	e.Text = text(ps, field+".text", ej.Text, maxTextLen, true)
	e.DecidedBy = text(ps, field+".decided_by", ej.DecidedBy, maxPersonLen, true)
	e.DecidedAt = timestamp(ps, field+".decided_at", ej.DecidedAt)
	if ej.ReviewBy != nil {
		e.ReviewBy = timestamp(ps, field+".review_by", ej.ReviewBy)
		if !e.ReviewBy.IsZero() && !e.DecidedAt.IsZero() && !e.ReviewBy.After(e.DecidedAt) {
			ps.add(field+".review_by", "must be after decided_at")
		}
	}
	return e
}

// MarshalJSON writes the plan in the format Parse reads: Parse of the
// output gives the same plan back.
func (p *Plan) MarshalJSON() ([]byte, error) {
	w := planJSON{Version: &p.Version, Name: &p.Name, Expected: []json.RawMessage{}, Rules: []json.RawMessage{}}
	if p.Template != "" {
		w.Template = &p.Template
	}
	if p.Note != "" {
		w.Note = &p.Note
	}
	for _, e := range p.Expected {
		ej := expectationJSON{Kind: ptr(string(e.Kind)), Every: ptr(formatDuration(e.Every))}
		if e.By != 0 {
			ej.By = ptr(fmt.Sprintf("%02d:%02d", int(e.By.Hours()), int(e.By.Minutes())%60))
		}
		raw, err := json.Marshal(ej)
		if err != nil {
			return nil, fmt.Errorf("marshal care plan expectation %s: %w", e.Kind, err)
		}
		w.Expected = append(w.Expected, raw)
	}
	for _, r := range p.Rules {
		raw, err := json.Marshal(r.wire())
		if err != nil {
			return nil, fmt.Errorf("marshal care plan rule %s: %w", r.ID, err)
		}
		w.Rules = append(w.Rules, raw)
	}
	if e := p.Escalation; e != nil {
		ej := escalationJSON{Ceiling: ptr(string(e.Ceiling)), Text: &e.Text, DecidedBy: &e.DecidedBy,
			DecidedAt: ptr(e.DecidedAt.Format(time.RFC3339Nano))}
		if !e.ReviewBy.IsZero() {
			ej.ReviewBy = ptr(e.ReviewBy.Format(time.RFC3339Nano))
		}
		raw, err := json.Marshal(ej)
		if err != nil {
			return nil, fmt.Errorf("marshal care plan escalation plan: %w", err)
		}
		w.EscalationPlan = raw
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads a plan as Parse does, so that a plan inside another
// document is validated all the same.
func (p *Plan) UnmarshalJSON(data []byte) error {
	q, err := Parse(data)
	if err != nil {
		return err
	}
	*p = *q
	return nil
}

func (r Rule) wire() ruleJSON {
	w := ruleJSON{ID: ptr(r.ID), Name: ptr(r.Name), Risk: ptr(string(r.Risk)), Type: ptr(string(r.Type)), Kind: ptr(string(r.Kind))}
	if r.Basis != "" {
		w.Basis = ptr(r.Basis)
	}
	ki, _ := Kind(r.Kind)
	if !(r.Type == Threshold && ki.Event()) {
		w.Op, w.Value = ptr(string(r.Op)), ptr(r.Value)
	}
	if r.Within != 0 {
		w.Within = ptr(formatDuration(r.Within))
	}
	switch r.Type {
	case Sustained:
		if r.For != 0 {
			w.For = ptr(formatDuration(r.For))
		} else {
			w.Sets = ptr(r.Sets)
		}
	case Change:
		w.Direction, w.Window = ptr(string(r.Direction)), ptr(formatDuration(r.Window))
	case Deviation:
		w.Direction = ptr(string(r.Direction))
		if r.Percent {
			w.Percent = ptr(true)
		}
		b := r.Baseline
		if b.Clinical() {
			w.Baseline = &baselineJSON{Value: ptr(b.Value), SetBy: ptr(b.SetBy), SetAt: ptr(b.SetAt.Format(time.RFC3339Nano))}
		} else {
			w.Baseline = &baselineJSON{MedianOf: ptr(formatDuration(b.MedianOf)), MinReadings: ptr(b.MinReadings)}
			if b.ExcludingLast != 0 {
				w.Baseline.ExcludingLast = ptr(formatDuration(b.ExcludingLast))
			}
		}
	}
	return w
}

func ptr[T any](v T) *T { return &v }
