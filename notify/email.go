package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"time"
)

// Email sends each notification as a plain-text mail through an SMTP relay,
// upgrading the connection with STARTTLS and signing in with AUTH PLAIN.
type Email struct {
	cfg     ChannelConfig
	tls     *tls.Config
	timeout time.Duration
}

func newEmail(c ChannelConfig) (*Email, error) {
	e := &Email{cfg: c, timeout: c.Timeout.Duration(20 * time.Second), tls: &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("channel %s: read ca_file: %w", c.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("channel %s: ca_file %s holds no PEM certificate", c.Name, c.CAFile)
		}
		e.tls.RootCAs = pool
	}
	return e, nil
}

// Name implements Channel.
func (e *Email) Name() string { return e.cfg.Name }

// Send implements Channel: one SMTP session, within the channel's timeout.
// A 5xx answer is permanent; a relay without STARTTLS is refused, so that
// neither the password nor the patient's details cross the network in clear.
func (e *Email) Send(ctx context.Context, n Notification) error {
	if n.Address == "" {
		return Permanent(fmt.Errorf("email %s: no address for %s (vward notify contacts set)", e.cfg.Name, n.Recipient))
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	addr := net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.cfg.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("email %s: connect to %s: %w", e.cfg.Name, addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, e.cfg.Host)
	if err != nil {
		return e.fail("greeting", err)
	}
	defer c.Close()
	if err := c.Hello("vward"); err != nil {
		return e.fail("EHLO", err)
	}
	if !e.cfg.Plaintext {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return Permanent(fmt.Errorf("email %s: the relay %s does not offer STARTTLS", e.cfg.Name, addr))
		}
		if err := c.StartTLS(e.tls); err != nil {
			return e.fail("STARTTLS", err)
		}
	}
	if e.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, e.cfg.Host)); err != nil {
			return e.fail("AUTH", err)
		}
	}
	if err := c.Mail(e.cfg.From); err != nil {
		return e.fail("MAIL FROM", err)
	}
	if err := c.Rcpt(n.Address); err != nil {
		return e.fail("RCPT TO "+n.Address, err)
	}
	w, err := c.Data()
	if err != nil {
		return e.fail("DATA", err)
	}
	if _, err := w.Write(message(e.cfg.From, n)); err != nil {
		return e.fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return e.fail("DATA", err)
	}
	if err := c.Quit(); err != nil {
		return e.fail("QUIT", err)
	}
	return nil
}

// fail wraps an SMTP error; the relay's 5xx answers are permanent.
func (e *Email) fail(step string, err error) error {
	err = fmt.Errorf("email %s: %s: %w", e.cfg.Name, step, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return Permanent(err)
	}
	return err
}

// message renders the mail: a subject line and the text, quoted-printable
// so that any name survives any relay. Message-ID is the idempotency key.
func message(from string, n Notification) []byte {
	var b bytes.Buffer
	at := n.SentAt
	if at.IsZero() {
		at = time.Now()
	}
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", n.Address)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", n.Subject()))
	fmt.Fprintf(&b, "Date: %s\r\n", at.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@vward>\r\n", n.ID)
	fmt.Fprintf(&b, "X-Vward-Alert: %d\r\n", n.AlertID)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	q := quotedprintable.NewWriter(&b)
	_, _ = q.Write(bytes.ReplaceAll([]byte(n.Text()), []byte("\n"), []byte("\r\n")))
	_ = q.Close()
	return b.Bytes()
}
