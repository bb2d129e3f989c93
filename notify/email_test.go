package notify_test

import (
	"context"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"

	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/notify"
)

func (r *rig) email(t *testing.T, name string, s *testenv.SMTP, password string) {
	t.Helper()
	c := notify.ChannelConfig{Name: name, Kind: notify.KindEmail, Host: s.Host, Port: s.Port, Username: s.Username,
		Password: password, From: "vward@example.nhs.uk", CAFile: s.CAFile}
	if err := r.store.PutChannel(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// An alert reaches a user by email through a real SMTP server, over
// STARTTLS and signed in; the mail carries the least patient data its
// channel allows, and the link.
func TestEmailOverStartTLSAndAuth(t *testing.T) {
	smtp := testenv.StartSMTP(t)
	r := newRig(t)
	r.email(t, "mail", smtp, smtp.Password)
	r.route(t, notify.Route{Tier: 0, TargetKind: "user", Target: "alice", Channel: "mail"})
	r.route(t, notify.Route{Tier: 0, TargetKind: "user", Target: "bob", Channel: "mail"}) // no address
	if err := r.store.SetContact(context.Background(), "alice", "mail", "alice@example.nhs.uk"); err != nil {
		t.Fatal(err)
	}
	r.dispatch(t, notify.Config{BoardURL: "https://vward.example"})
	r.high()
	a := r.openAlert(t)

	m := smtp.WaitMessages(t, 1)[0]
	if !m.TLS || m.User != smtp.Username || len(m.To) != 1 || m.To[0] != "alice@example.nhs.uk" || m.From != "vward@example.nhs.uk" {
		t.Errorf("message envelope: tls %v, user %q, from %q, to %v", m.TLS, m.User, m.From, m.To)
	}
	msg, err := mail.ReadMessage(strings.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if !strings.Contains(subject, "Raised A.L.") || !strings.Contains(subject, "NEWS2 8, high risk") {
		t.Errorf("subject = %q", subject)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	if body := string(b); !strings.Contains(body, "https://vward.example/#patient/p1") || strings.Contains(body, "Lovelace") {
		t.Errorf("body (initials only, with the link):\n%s", body)
	}
	ds := r.waitDeliveries(t, a.ID, "alice sent, bob given up", func(ds []notify.Delivery) bool {
		return count(ds, "alice", notify.ResultSent) == 1 && count(ds, "bob", notify.ResultGaveUp) == 1
	})
	for _, d := range ds {
		if d.Recipient == "bob" && !strings.Contains(d.Error, "no address for bob") {
			t.Errorf("bob's delivery says %q", d.Error)
		}
	}
}

// A relay that refuses the password is a permanent failure: one attempt,
// given up, saying why.
func TestEmailWrongPasswordIsPermanent(t *testing.T) {
	smtp := testenv.StartSMTP(t)
	r := newRig(t)
	r.email(t, "mail", smtp, "not-the-password")
	r.route(t, notify.Route{Tier: 0, TargetKind: "user", Target: "alice", Channel: "mail"})
	if err := r.store.SetContact(context.Background(), "alice", "mail", "alice@example.nhs.uk"); err != nil {
		t.Fatal(err)
	}
	r.dispatch(t, notify.Config{})
	r.high()
	a := r.openAlert(t)
	ds := r.waitDeliveries(t, a.ID, "given up", func(ds []notify.Delivery) bool { return count(ds, "alice", notify.ResultGaveUp) == 1 })
	if len(ds) != 1 || !strings.Contains(ds[0].Error, "AUTH") {
		t.Errorf("delivery log = %+v", ds)
	}
	if n := len(smtp.Messages(t)); n != 0 {
		t.Errorf("%d messages accepted with a wrong password", n)
	}
}
