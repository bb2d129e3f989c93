package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrMisconfigured marks an InfluxDB failure that waiting cannot mend: a
// refused token, a bucket, organisation, database or retention policy that
// does not exist. vward stops on it at start rather than holding every
// acknowledgement for ever; a failure without it (unreachable, timing out,
// overloaded) is weather, and retried.
var ErrMisconfigured = errors.New("influxdb is misconfigured")

// Validate checks what can be checked without InfluxDB: that the URL is an
// http(s) URL with a host, and that a bucket is named.
func (c InfluxConfig) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("InfluxDB URL %q: %w", c.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("InfluxDB URL %q: want http:// or https:// and the host, as in http://127.0.0.1:8086", u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("InfluxDB URL %q: no host; as in http://127.0.0.1:8086", u.Redacted())
	}
	if u.User != nil {
		return fmt.Errorf("InfluxDB URL %q: give credentials as the token, not in the URL", u.Redacted())
	}
	if strings.TrimSpace(c.Bucket) == "" {
		return errors.New("InfluxDB bucket is empty; name it (for InfluxDB 1.8, database/retention-policy such as vward/autogen)")
	}
	return nil
}

// VerifyTimeout bounds one Verify.
const VerifyTimeout = 10 * time.Second

// Verify checks that InfluxDB answers, accepts the token and has the bucket
// by writing an empty batch to it, which stores nothing: InfluxDB answers
// 204 only when the bucket exists and the token may write to it. An error
// wrapping ErrMisconfigured says what to fix; any other is transient.
func (i *Influx) Verify(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, VerifyTimeout)
	defer cancel()
	q := url.Values{"bucket": {i.cfg.Bucket}, "precision": {"ns"}}
	if i.cfg.Org != "" {
		q.Set("org", i.cfg.Org)
	}
	u := strings.TrimRight(i.cfg.URL, "/") + "/api/v2/write?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("\n"))
	if err != nil {
		return fmt.Errorf("%s: %w", i.Describe(), err)
	}
	if i.cfg.Token != "" {
		req.Header.Set("Authorization", "Token "+i.cfg.Token)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := i.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", i.Describe(), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return verdict(i.Describe(), resp.StatusCode, body)
}

// verdict sorts InfluxDB's answer to an empty write into fine, a
// configuration error and weather. InfluxDB 1.8 and 2.x differ in the
// codes: a missing retention policy is a 500 in 1.8.
func verdict(where string, code int, body []byte) error {
	msg := influxMessage(body)
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%w: %s refused the token (HTTP %d: %s); check --influx-token (for InfluxDB 1.8, user:password)", ErrMisconfigured, where, code, msg)
	case code == http.StatusNotFound:
		return fmt.Errorf("%w: %s: %s (HTTP 404); create it, or fix --influx-bucket and --influx-org", ErrMisconfigured, where, msg)
	case strings.Contains(msg, "retention policy not found"), strings.Contains(msg, "database not found"), strings.Contains(msg, "bucket not found"):
		return fmt.Errorf("%w: %s: %s (HTTP %d); create it, or fix --influx-bucket", ErrMisconfigured, where, msg, code)
	default:
		return fmt.Errorf("%s: HTTP %d: %s", where, code, msg)
	}
}

// influxMessage is the "message" (2.x) or "error" (1.8) of InfluxDB's JSON
// error body, or the body itself.
func influxMessage(body []byte) string {
	var e struct{ Message, Error string }
	if json.Unmarshal(body, &e) == nil {
		if e.Message != "" {
			return e.Message
		}
		if e.Error != "" {
			return e.Error
		}
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		return s
	}
	return "no message"
}
