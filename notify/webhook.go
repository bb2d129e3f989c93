package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The webhook's headers (docs/webhooks.md).
const (
	HeaderTimestamp   = "X-Vward-Timestamp" // Unix seconds when the attempt was signed
	HeaderSignature   = "X-Vward-Signature" // "v1=" + hex HMAC-SHA256(secret, timestamp + "." + body)
	HeaderIdempotency = "Idempotency-Key"   // Notification.ID, the same on every attempt
	HeaderSchema      = "X-Vward-Schema"    // SchemaVersion
)

// ReplayWindow is how far a signed timestamp may be from the receiver's
// clock before VerifySignature refuses the request as a replay.
const ReplayWindow = 5 * time.Minute

// Webhook posts each notification as JSON to one endpoint, signed with the
// endpoint's secret.
type Webhook struct {
	name    string
	url     string
	secret  []byte
	timeout time.Duration
	client  *http.Client
}

// Name implements Channel.
func (w *Webhook) Name() string { return w.name }

// Sign returns the signature header's value for body signed at ts.
func Sign(secret []byte, ts time.Time, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Send implements Channel: one POST, within the endpoint's timeout. A 2xx
// answer is delivery; 4xx other than 408 and 429 is permanent (the
// receiver refuses this body, and would refuse it again).
func (w *Webhook) Send(ctx context.Context, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return Permanent(fmt.Errorf("encode notification %s: %w", n.ID, err))
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook %s: %w", w.name, err))
	}
	// The signature's time is the wall clock's, whatever clock the
	// dispatcher keeps: it is what the receiver's replay window checks.
	ts := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vward-notify/1")
	req.Header.Set(HeaderSchema, SchemaVersion)
	req.Header.Set(HeaderIdempotency, n.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("webhook %s: no answer within %s", w.name, w.timeout)
		}
		return fmt.Errorf("webhook %s: %w", w.name, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("webhook %s: answered %s", w.name, resp.Status)
	if body := strings.TrimSpace(string(snippet)); body != "" {
		err = fmt.Errorf("%w: %s", err, body)
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return Permanent(err)
	}
	return err
}

// Errors of VerifySignature.
var (
	ErrSignatureMissing = errors.New("no timestamp or signature header")
	ErrSignatureStale   = errors.New("timestamp outside the replay window")
	ErrSignatureForged  = errors.New("signature does not match the body")
)

// VerifySignature is the receiver's check of a webhook request (copy it, or
// import it): the signature must be HMAC-SHA256 over "timestamp.body" with
// the endpoint's secret, and the timestamp within window of now. A request
// replayed later than the window is refused; within it, the receiver drops
// one whose Idempotency-Key it has already seen.
func VerifySignature(secret []byte, timestamp, signature string, body []byte, now time.Time, window time.Duration) error {
	if timestamp == "" || signature == "" {
		return ErrSignatureMissing
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrSignatureMissing, timestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return fmt.Errorf("%w: signed %s from now", ErrSignatureStale, d.Round(time.Second))
	}
	got, ok := strings.CutPrefix(signature, "v1=")
	if !ok {
		return fmt.Errorf("%w: not a v1 signature", ErrSignatureForged)
	}
	sig, err := hex.DecodeString(got)
	if err != nil || !hmac.Equal(sig, mac(secret, timestamp, body)) {
		return ErrSignatureForged
	}
	return nil
}
