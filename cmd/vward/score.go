package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// maxScoreLine bounds the memory one input line can take; a longer line is
// reported and skipped rather than ending the run.
const maxScoreLine = 1 << 20

// The help's example, kept here so that a test can hold the help to what the
// command really prints.
const (
	scoreExampleIn  = `{"respiratory_rate":22,"spo2":95,"supplemental_oxygen":false,"systolic_bp":118,"heart_rate":96,"consciousness":"A","temperature":38.05}`
	scoreExampleOut = `{"score":5,"risk":"medium","red_score":false,"complete":true,"missing":[],` +
		`"subscores":{"respiratory_rate":2,"spo2":1,"supplemental_oxygen":0,"systolic_bp":0,"heart_rate":1,"consciousness":0,"temperature":1},` +
		`"monitoring":"hourly","response":"Urgent response: registered nurse to inform the medical team caring for the patient immediately and request urgent assessment by a clinician or team with core competencies in the care of acutely ill patients; care in an environment with monitoring facilities."}`
)

func newScoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "score",
		Short: "Score NEWS2 observation sets read as JSON lines",
		Long: `Score reads NEWS2 observation sets from standard input, one JSON object per
line, and writes one JSON object per line to standard output, in the same
order. Blank lines are skipped.

Input fields — each may be absent (or null), which makes the set partial:

  respiratory_rate     breaths/min
  spo2                 %
  spo2_scale           1 or 2; default 1. Scale 2 only when prescribed (target 88–92%)
  supplemental_oxygen  true or false
  systolic_bp          mmHg
  heart_rate           beats/min
  consciousness        "A", "C", "V", "P" or "U" (C is new confusion)
  temperature          °C

Any other field is an error. Values must be physiologically possible
(e.g. spo2 0–100, temperature 25–45 °C) and are rounded to the chart's
resolution before scoring: whole numbers, temperature to 0.1 °C, half-up.

Output fields:

  score       aggregate NEWS2, 0–20
  risk        "low", "low-medium" (a 3 in one parameter), "medium" or "high"
  red_score   whether any parameter scored 3
  complete    whether all seven parameters were present
  missing     names of the absent parameters ([] when complete)
  subscores   score of each present parameter, by name
  monitoring  minimum monitoring frequency
  response    the RCP clinical response for the score

A partial set (complete false) is scored on what is present: it is the least
the full score could be, never a full NEWS2. On Scale 2 an SpO2 of 93% or more
with supplemental_oxygen absent scores as on air.

A line that cannot be scored gives {"error": "line N: ..."} naming the field
and the problem, and scoring carries on with the next line; the exit status
is then 1. Lines longer than 1 MiB are such errors.

Example:

  $ echo '` + scoreExampleIn + `' | vward score
  ` + scoreExampleOut,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			failed, err := runScore(cmd.InOrStdin(), cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("score: %d input line(s) could not be scored; see the error lines in the output", failed)
			}
			return nil
		},
	}
}

type scoreOutput struct {
	Score      int               `json:"score"`
	Risk       news2.Risk        `json:"risk"`
	RedScore   bool              `json:"red_score"`
	Complete   bool              `json:"complete"`
	Missing    []news2.Parameter `json:"missing"`
	Subscores  subscores         `json:"subscores"`
	Monitoring string            `json:"monitoring"`
	Response   string            `json:"response"`
}

func newScoreOutput(r news2.Result) scoreOutput {
	return scoreOutput{
		Score:      r.Score,
		Risk:       r.Risk,
		RedScore:   r.RedScore,
		Complete:   r.Complete,
		Missing:    r.Missing(),
		Subscores:  subscores{r},
		Monitoring: r.Monitoring(),
		Response:   r.Response(),
	}
}

type scoreError struct {
	Error string `json:"error"`
}

// subscores writes a result's present subscores as a JSON object in chart
// order, which reads better than a map's alphabetical order.
type subscores struct{ r news2.Result }

func (s subscores) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for p := range news2.NumParameters {
		if !s.r.Has(p) {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, p.String()...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, int64(s.r.Subscores[p]), 10)
	}
	return append(b, '}'), nil
}

// runScore scores each line of in and writes a result or an error for it to
// out. failed counts the lines that could not be scored; err is reserved for
// failures to read or write, which end the run.
func runScore(in io.Reader, out io.Writer) (failed int, err error) {
	r := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	var buf []byte
	for n := 1; ; n++ {
		line, tooLong, rerr := readLine(r, buf[:0], maxScoreLine)
		buf = line
		if rerr != nil && rerr != io.EOF {
			return failed, fmt.Errorf("read input line %d: %w", n, rerr)
		}
		if rerr == io.EOF && len(line) == 0 && !tooLong {
			break
		}
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a byte order mark from Windows tools
		}
		if tooLong || len(bytes.TrimSpace(line)) > 0 {
			var v any
			res, err := scoreLine(line, tooLong)
			if err != nil {
				failed++
				v = scoreError{fmt.Sprintf("line %d: %v", n, err)}
			} else {
				v = newScoreOutput(res)
			}
			if err := enc.Encode(v); err != nil {
				return failed, fmt.Errorf("write result of line %d: %w", n, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		// Flush before a read that may block, so that a caller feeding
		// lines one at a time through a pipe sees each answer.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return failed, fmt.Errorf("write output: %w", err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return failed, fmt.Errorf("write output: %w", err)
	}
	return failed, nil
}

// readLine reads one line without its line ending into buf. A line longer
// than max is read to its end but not kept, and reported as tooLong. err is
// io.EOF with the last line when it has no line ending.
func readLine(r *bufio.Reader, buf []byte, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong && len(buf)+len(chunk) <= max+len("\r\n") {
			buf = append(buf, chunk...)
		} else {
			tooLong = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		if len(buf) > max {
			tooLong = true
		}
		return buf, tooLong, err
	}
}

// scoreLine decodes one input line into observations, validates and scores
// them. It walks the object token by token rather than unmarshalling into a
// struct because encoding/json matches field names case-insensitively and lets
// a repeated field silently win; clinical input should have neither.
func scoreLine(line []byte, tooLong bool) (news2.Result, error) {
	if tooLong {
		return news2.Result{}, fmt.Errorf("longer than %d bytes", maxScoreLine)
	}
	var o news2.Observations
	dec := json.NewDecoder(bytes.NewReader(line))
	tok, err := dec.Token()
	if err != nil {
		return news2.Result{}, jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return news2.Result{}, errors.New("not a JSON object")
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return news2.Result{}, jsonError(err)
		}
		key, _ := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return news2.Result{}, jsonError(err)
		}
		if seen[key] {
			return news2.Result{}, fmt.Errorf("field %q appears more than once", key)
		}
		seen[key] = true
		if err := setField(&o, key, raw); err != nil {
			return news2.Result{}, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return news2.Result{}, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return news2.Result{}, errors.New("unexpected data after the JSON object")
	}
	if err := o.Validate(); err != nil {
		return news2.Result{}, err
	}
	return news2.Score(o), nil
}

func jsonError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("invalid JSON: the line ends inside the object")
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// setField records one input field. A null is an absent parameter.
func setField(o *news2.Observations, key string, raw json.RawMessage) error {
	if string(raw) == "null" {
		switch key {
		case "spo2_scale", "supplemental_oxygen", "consciousness":
			return nil
		}
		if _, ok := news2.ParameterOf(vward.ReadingKind(key)); ok {
			return nil
		}
		return fmt.Errorf("unknown field %q", key)
	}
	switch key {
	case "spo2_scale":
		v, err := number(key, raw)
		if err != nil {
			return err
		}
		if v != 1 && v != 2 {
			return fmt.Errorf("spo2_scale %s is not 1 or 2", raw)
		}
		o.Scale = news2.Scale(v)
	case "supplemental_oxygen":
		if kind := jsonKind(raw); kind != "true or false" {
			return fmt.Errorf("supplemental_oxygen: want true or false, got %s", kind)
		}
		oxygen := 0.0
		if raw[0] == 't' { // the decoder has checked it is JSON, so 't' is true
			oxygen = 1
		}
		o.Set(news2.SupplementalOxygen, oxygen)
	case "consciousness":
		if kind := jsonKind(raw); kind != "a string" {
			return fmt.Errorf("consciousness: want one of \"A\", \"C\", \"V\", \"P\", \"U\", got %s", kind)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("consciousness: %w", err)
		}
		l, err := vward.ParseLevel(s)
		if err != nil {
			return err
		}
		o.Set(news2.Consciousness, float64(l))
	default:
		p, ok := news2.ParameterOf(vward.ReadingKind(key))
		if !ok {
			return fmt.Errorf("unknown field %q", key)
		}
		v, err := number(key, raw)
		if err != nil {
			return err
		}
		o.Set(p, v)
	}
	return nil
}

func number(key string, raw json.RawMessage) (float64, error) {
	if jsonKind(raw) != "a number" {
		return 0, fmt.Errorf("%s: want a number, got %s", key, jsonKind(raw))
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %s is out of range", key, raw)
	}
	return v, nil
}

// jsonKind names the kind of a JSON value for error messages.
func jsonKind(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "a string"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a number"
}
