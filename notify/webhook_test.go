package notify_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/vward/vward/notify"
)

// A receiver that fails twice gets the third attempt with the same
// idempotency key, each attempt signed so that the documented check passes,
// and the delivery log has the three attempts.
func TestWebhookRetriesWithTheSameIdempotencyKey(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	r.webhook(t, "pager", rc.URL)
	r.route(t, notify.Route{Tier: 0, TargetKind: "user", Target: "alice", Channel: "pager"})
	r.dispatch(t, notify.Config{BoardURL: "https://vward.example"})

	r.high()
	a := r.openAlert(t)
	got := rc.waitFor(t, 3)
	for i, g := range got {
		if g.key == "" || g.key != got[0].key || g.n.ID != g.key {
			t.Errorf("attempt %d: idempotency key %q, body id %q; want both %q", i+1, g.key, g.n.ID, got[0].key)
		}
		if g.verifyErr != nil {
			t.Errorf("attempt %d: signature check: %v", i+1, g.verifyErr)
		}
	}
	n := got[2].n
	if n.Schema != notify.SchemaVersion || n.AlertID != a.ID || n.Ward != "w1" || n.Risk != "high" || n.Tier != 0 ||
		n.Recipient != "alice" || n.Event != "raised" || n.Patient == nil || n.Patient.Initials != "A.L." || n.Patient.Name != "" {
		t.Errorf("notification = %+v, patient %+v", n, n.Patient)
	}
	if n.Link != "https://vward.example/#patient/p1" {
		t.Errorf("link = %q", n.Link)
	}
	ds := r.waitDeliveries(t, a.ID, "two failures and a send", func(ds []notify.Delivery) bool { return count(ds, "alice", notify.ResultSent) == 1 })
	if len(ds) != 3 || ds[0].Result != notify.ResultFailed || ds[1].Result != notify.ResultFailed || ds[2].Attempt != 3 {
		t.Errorf("delivery log = %+v", ds)
	}
	if ds[0].Error == "" {
		t.Error("a failed attempt's error is not logged")
	}
}

// A forged body or signature, and a request replayed after the window, are
// refused by the documented check; the genuine one passes.
func TestVerifySignature(t *testing.T) {
	key := []byte(secret)
	signed := time.Unix(1_800_000_000, 0)
	body := []byte(`{"schema":"vward.notification.v1","id":"a1.v1.pager.alice"}`)
	ts := "1800000000"
	sig := notify.Sign(key, signed, body)
	for _, c := range []struct {
		name    string
		key     []byte
		ts, sig string
		body    []byte
		now     time.Time
		want    error
	}{
		{"genuine", key, ts, sig, body, signed.Add(time.Second), nil},
		{"genuine, receiver clock a little behind", key, ts, sig, body, signed.Add(-time.Minute), nil},
		{"body changed", key, ts, sig, []byte(`{"schema":"vward.notification.v1","id":"a1.v1.pager.mallory"}`), signed, notify.ErrSignatureForged},
		{"signed with another key", []byte("another-secret-of-some-length"), ts, sig, body, signed, notify.ErrSignatureForged},
		{"timestamp changed", key, "1800000001", sig, body, signed, notify.ErrSignatureForged},
		{"not v1", key, ts, "v0=" + sig[3:], body, signed, notify.ErrSignatureForged},
		{"replayed after the window", key, ts, sig, body, signed.Add(notify.ReplayWindow + time.Second), notify.ErrSignatureStale},
		{"no signature", key, ts, "", body, signed, notify.ErrSignatureMissing},
		{"no timestamp", key, "", sig, body, signed, notify.ErrSignatureMissing},
	} {
		err := notify.VerifySignature(c.key, c.ts, c.sig, c.body, c.now, notify.ReplayWindow)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

// A receiver that refuses the body (4xx) is not retried.
func TestWebhookClientErrorIsPermanent(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t, func(int) int { return http.StatusBadRequest })
	r.webhook(t, "pager", rc.URL)
	r.route(t, notify.Route{Tier: 0, TargetKind: "user", Target: "alice", Channel: "pager"})
	r.dispatch(t, notify.Config{})
	r.high()
	a := r.openAlert(t)
	ds := r.waitDeliveries(t, a.ID, "given up", func(ds []notify.Delivery) bool { return count(ds, "alice", notify.ResultGaveUp) == 1 })
	if len(ds) != 1 || ds[0].Attempt != 1 || len(rc.requests()) != 1 {
		t.Errorf("delivery log = %+v, requests %d; want one attempt given up", ds, len(rc.requests()))
	}
}

func TestInitials(t *testing.T) {
	for in, want := range map[string]string{
		"Ada Lovelace": "A.L.", "  mary-jane  o'neill ": "M.J.O.", "Ødegaard": "Ø.", "": "", "Dr. J. Smith": "D.J.S.",
	} {
		if got := notify.Initials(in); got != want {
			t.Errorf("Initials(%q) = %q, want %q", in, got, want)
		}
	}
}
