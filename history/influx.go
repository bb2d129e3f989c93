package history

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"

	"github.com/vward/vward"
)

// Measurement is the InfluxDB measurement that holds every reading: one
// point per device, patient and measurement time, with a float field per
// reading kind ("spo2", "heart_rate", …) and the message's msg_id as a
// string field. Its series are keyed by device, patient and ward, so a
// redelivered message (same series, same measurement time) overwrites its
// first copy.
//
// Why a point per message rather than per reading: InfluxDB's cost is per
// point and per string field far more than per float field. A message of
// four readings written as four points, each carrying msg_id, cost influxd
// about three times the CPU of one point with four fields
// (docs/design/influxdb-point-per-message.md), and influxd shares vward's machine.
const Measurement = "reading"

// InfluxConfig says how to reach InfluxDB. For InfluxDB 1.8 the bucket is
// "database/retention-policy" and the token "user:password" or empty.
type InfluxConfig struct {
	URL, Token, Org, Bucket string
}

// Influx is the production history.
type Influx struct {
	cfg    InfluxConfig
	client influxdb2.Client
	write  api.WriteAPIBlocking
	query  api.QueryAPI
	http   *http.Client // Verify's own requests
}

// NewInflux connects lazily: nothing is sent until the first call.
func NewInflux(cfg InfluxConfig) *Influx {
	opts := influxdb2.DefaultOptions().
		SetHTTPRequestTimeout(30).
		SetPrecision(time.Nanosecond)
	c := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	return &Influx{
		cfg:    cfg,
		client: c,
		write:  c.WriteAPIBlocking(cfg.Org, cfg.Bucket),
		query:  c.QueryAPI(cfg.Org),
		http:   &http.Client{Timeout: VerifyTimeout},
	}
}

// Close releases the HTTP client.
func (i *Influx) Close() { i.client.Close() }

// Describe implements Store.
func (i *Influx) Describe() string { return "InfluxDB " + i.cfg.URL + " bucket " + i.cfg.Bucket }

// Ping implements Store.
func (i *Influx) Ping(ctx context.Context) error {
	ok, err := i.client.Ping(ctx)
	if err != nil {
		return fmt.Errorf("ping influxdb %s: %w", i.cfg.URL, err)
	}
	if !ok {
		return fmt.Errorf("ping influxdb %s: not ready", i.cfg.URL)
	}
	return nil
}

// WriteReadings implements Store with one blocking batch write: it returns
// nil only when InfluxDB answered 204, so the caller may acknowledge.
func (i *Influx) WriteReadings(ctx context.Context, rs []vward.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	var b strings.Builder
	b.Grow(len(rs) * 50)
	AppendLines(&b, rs)
	if err := i.write.WriteRecord(ctx, b.String()); err != nil {
		return fmt.Errorf("write %d readings to influxdb: %w", len(rs), err)
	}
	return nil
}

// AppendLines writes rs as InfluxDB line protocol, a newline-terminated line
// per point. Consecutive readings of one message measured at one time by one
// device for one patient (what a message usually is) share a point, a field
// per kind; a kind repeated there starts a new line at the same time, which
// InfluxDB merges, the later value winning as for any rewrite. Each value is
// a float whatever the kind (booleans 0/1, consciousness as its ACVPU
// level), so a field keeps one type; msg_id rides along as a string field
// for tracing and loss checks.
func AppendLines(b *strings.Builder, rs []vward.Reading) {
	for len(rs) > 0 {
		n := 1
		for n < len(rs) && samePoint(rs[0], rs[n]) && !hasKind(rs[:n], rs[n].Kind) {
			n++
		}
		appendPoint(b, rs[:n])
		rs = rs[n:]
	}
}

func samePoint(a, b vward.Reading) bool {
	return a.Device == b.Device && a.Patient == b.Patient && a.Ward == b.Ward && a.MsgID == b.MsgID && a.At.Equal(b.At)
}

func hasKind(rs []vward.Reading, k vward.ReadingKind) bool {
	for _, r := range rs {
		if r.Kind == k {
			return true
		}
	}
	return false
}

// appendPoint writes one line for readings that share a point.
func appendPoint(b *strings.Builder, rs []vward.Reading) {
	r := rs[0]
	b.WriteString(Measurement)
	b.WriteString(",device=")
	escapeTag(b, string(r.Device))
	b.WriteString(",patient=")
	escapeTag(b, string(r.Patient))
	if r.Ward != "" {
		b.WriteString(",ward=")
		escapeTag(b, string(r.Ward))
	}
	var num [32]byte
	for i, f := range rs {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteByte(',')
		}
		escapeTag(b, string(f.Kind))
		b.WriteByte('=')
		b.Write(strconv.AppendFloat(num[:0], f.Value, 'g', -1, 64))
	}
	b.WriteString(`,msg_id="`)
	for _, c := range []byte(r.MsgID) {
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteString(`" `)
	b.Write(strconv.AppendInt(num[:0], r.At.UnixNano(), 10))
	b.WriteByte('\n')
}

// escapeTag escapes a tag value or field key.
func escapeTag(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ',', '=', ' ', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n', '\r':
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
}

// Readings implements Store with a Flux query.
func (i *Influx) Readings(ctx context.Context, p vward.PatientID, from, to time.Time) ([]vward.Reading, error) {
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.patient == %q and r._field != "msg_id")
  |> keep(columns: ["_time", "_value", "_field", "device", "patient", "ward"])`,
		i.cfg.Bucket, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), Measurement, string(p))
	out, err := i.queryReadings(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("readings of %s: %w", p, err)
	}
	return out, nil
}

// ReadingsOf implements Store: tail() keeps the newest limit points of
// each series and field, so a streaming wearable's day is not read whole.
func (i *Influx) ReadingsOf(ctx context.Context, p vward.PatientID, kinds []vward.ReadingKind, from, to time.Time, limit int) ([]vward.Reading, error) {
	if len(kinds) == 0 || limit <= 0 {
		return nil, nil
	}
	fields := make([]string, len(kinds))
	for j, k := range kinds {
		fields[j] = fmt.Sprintf("r._field == %q", string(k))
	}
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.patient == %q)
  |> filter(fn: (r) => %s)
  |> tail(n: %d)
  |> keep(columns: ["_time", "_value", "_field", "device", "patient", "ward"])`,
		i.cfg.Bucket, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), Measurement, string(p),
		strings.Join(fields, " or "), limit)
	out, err := i.queryReadings(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("readings of %s (%v): %w", p, kinds, err)
	}
	return out, nil
}

// Thinned implements Store with one Flux query: four selectors over the
// same windows, whose rows keep their own times, so InfluxDB sends at most
// four rows a window of each series and field.
func (i *Influx) Thinned(ctx context.Context, p vward.PatientID, from, to time.Time, every time.Duration) ([]vward.Reading, error) {
	every = max(every, time.Second)
	flux := fmt.Sprintf(`data = from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.patient == %q and r._field != "msg_id")
  |> window(every: %ds)
union(tables: [data |> first(), data |> min(), data |> max(), data |> last()])
  |> keep(columns: ["_time", "_value", "_field", "device", "patient", "ward"])`,
		i.cfg.Bucket, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), Measurement, string(p),
		int64(every/time.Second))
	out, err := i.queryReadings(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("thinned readings of %s: %w", p, err)
	}
	return dedupe(out), nil
}

// Earliest implements Store: first() reads the start of each series.
func (i *Influx) Earliest(ctx context.Context, p vward.PatientID) (time.Time, bool, error) {
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: 0)
  |> filter(fn: (r) => r._measurement == %q and r.patient == %q and r._field != "msg_id")
  |> first()
  |> keep(columns: ["_time", "_value", "_field", "device", "patient", "ward"])`, i.cfg.Bucket, Measurement, string(p))
	rs, err := i.queryReadings(ctx, flux)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("the earliest reading of %s: %w", p, err)
	}
	if len(rs) == 0 {
		return time.Time{}, false, nil
	}
	return rs[0].At, true, nil // oldest first
}

// dedupe drops the repeats of readings sorted by time: a window's first
// reading is often its lowest or highest too.
func dedupe(rs []vward.Reading) []vward.Reading {
	type key struct {
		device vward.DeviceID
		kind   vward.ReadingKind
	}
	out := rs[:0]
	var at time.Time
	seen := map[key]bool{}
	for _, r := range rs {
		if !r.At.Equal(at) {
			at = r.At
			clear(seen)
		}
		k := key{r.Device, r.Kind}
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

// Latest implements Store with one Flux query: last() keeps the newest
// point of each series (device, patient, ward) and field, so the answer is
// a few rows a patient, not their whole window.
func (i *Influx) Latest(ctx context.Context, from, to time.Time) ([]vward.Reading, error) {
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r._field != "msg_id")
  |> last()
  |> keep(columns: ["_time", "_value", "_field", "device", "patient", "ward"])`,
		i.cfg.Bucket, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), Measurement)
	out, err := i.queryReadings(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("latest readings of every patient: %w", err)
	}
	return out, nil
}

// queryReadings runs a Flux query whose rows keep _time, _value, _field,
// device, patient and ward, and returns them as readings, oldest first.
func (i *Influx) queryReadings(ctx context.Context, flux string) ([]vward.Reading, error) {
	res, err := i.query.Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("query influxdb: %w", err)
	}
	defer res.Close()
	var out []vward.Reading
	for res.Next() {
		rec := res.Record()
		v, _ := rec.Value().(float64)
		dev, _ := rec.ValueByKey("device").(string)
		patient, _ := rec.ValueByKey("patient").(string)
		ward, _ := rec.ValueByKey("ward").(string)
		out = append(out, vward.Reading{
			Patient: vward.PatientID(patient), Device: vward.DeviceID(dev), Ward: vward.WardID(ward),
			Kind: vward.ReadingKind(rec.Field()), Value: v, At: rec.Time(),
		})
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("read influxdb's answer: %w", err)
	}
	sortByTime(out)
	return out, nil
}
