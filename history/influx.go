package history

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"

	"github.com/vward/vward"
)

// Measurement is the InfluxDB measurement that holds every reading. Its
// series are keyed by patient, kind, ward and device, so a redelivered
// reading (same series, same measurement time) overwrites its first copy.
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
	b.Grow(len(rs) * 120)
	for _, r := range rs {
		AppendLine(&b, r)
	}
	if err := i.write.WriteRecord(ctx, b.String()); err != nil {
		return fmt.Errorf("write %d readings to influxdb: %w", len(rs), err)
	}
	return nil
}

// AppendLine writes r as one line of InfluxDB line protocol, newline-terminated.
// The value is a float field whatever the kind (booleans 0/1, consciousness
// as its ACVPU level) so that one field type holds every series; msg_id rides
// along as a string field for tracing and loss checks.
func AppendLine(b *strings.Builder, r vward.Reading) {
	b.WriteString(Measurement)
	b.WriteString(",device=")
	escapeTag(b, string(r.Device))
	b.WriteString(",kind=")
	escapeTag(b, string(r.Kind))
	b.WriteString(",patient=")
	escapeTag(b, string(r.Patient))
	if r.Ward != "" {
		b.WriteString(",ward=")
		escapeTag(b, string(r.Ward))
	}
	b.WriteString(" value=")
	var num [32]byte
	b.Write(strconv.AppendFloat(num[:0], r.Value, 'g', -1, 64))
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
  |> filter(fn: (r) => r._measurement == %q and r.patient == %q and r._field == "value")
  |> keep(columns: ["_time", "_value", "kind", "device", "ward"])`,
		i.cfg.Bucket, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), Measurement, string(p))
	res, err := i.query.Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("query readings of %s: %w", p, err)
	}
	defer res.Close()
	var out []vward.Reading
	for res.Next() {
		rec := res.Record()
		v, _ := rec.Value().(float64)
		kind, _ := rec.ValueByKey("kind").(string)
		dev, _ := rec.ValueByKey("device").(string)
		ward, _ := rec.ValueByKey("ward").(string)
		out = append(out, vward.Reading{
			Patient: p, Device: vward.DeviceID(dev), Ward: vward.WardID(ward),
			Kind: vward.ReadingKind(kind), Value: v, At: rec.Time(),
		})
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("read readings of %s: %w", p, err)
	}
	sortByTime(out)
	return out, nil
}
