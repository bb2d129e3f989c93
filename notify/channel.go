package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/vward/vward"
)

// Channel sends notifications one way (a webhook endpoint, an SMTP relay).
// Send makes one attempt; the dispatcher retries.
type Channel interface {
	Name() string
	Send(ctx context.Context, n Notification) error
}

// Permanent wraps an error that a retry cannot mend (no address for the
// recipient, a receiver answering 400): the dispatcher gives up at once.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

// IsPermanent reports whether err is marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// The kinds of channel.
const (
	KindWebhook = "webhook"
	KindEmail   = "email"
)

// ChannelConfig is a configured channel, as stored. Secret and Password
// are never printed back: View redacts them.
type ChannelConfig struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Detail Detail `json:"detail"`
	// Timeout bounds one attempt; default 10 s.
	Timeout Seconds `json:"timeout_seconds,omitempty"`

	// Webhook: the endpoint and the key its signatures are made with.
	URL    string `json:"url,omitempty"`
	Secret string `json:"secret,omitempty"`

	// Email: the SMTP relay (STARTTLS and AUTH PLAIN required unless
	// Plaintext, which is for a relay on the loopback only), and From.
	Host      string `json:"host,omitempty"`
	Port      int    `json:"port,omitempty"`
	Username  string `json:"username,omitempty"`
	Password  string `json:"password,omitempty"`
	From      string `json:"from,omitempty"`
	CAFile    string `json:"ca_file,omitempty"`
	Plaintext bool   `json:"plaintext,omitempty"`
}

// Seconds is a duration given in whole seconds in JSON and flags.
type Seconds int

// Duration returns s as a time.Duration, or def for zero.
func (s Seconds) Duration(def time.Duration) time.Duration {
	if s <= 0 {
		return def
	}
	return time.Duration(s) * time.Second
}

// ChannelView is a channel as REST and the CLI show it: every setting but
// the secrets, of which only whether one is set.
type ChannelView struct {
	ChannelConfig
	HasSecret   bool `json:"has_secret,omitempty"`
	HasPassword bool `json:"has_password,omitempty"`
}

// View returns c with its secrets redacted.
func (c ChannelConfig) View() ChannelView {
	v := ChannelView{ChannelConfig: c, HasSecret: c.Secret != "", HasPassword: c.Password != ""}
	v.Secret, v.Password = "", ""
	return v
}

// Validate checks a channel's settings, naming what is wrong.
func (c *ChannelConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return vward.Errorf(vward.ErrInvalid, "channel %q: "+format, append([]any{c.Name}, args...)...)
	}
	if c.Name == "" || strings.ContainsAny(c.Name, " \t\n/.") {
		return vward.Errorf(vward.ErrInvalid, "channel name %q: give a name without spaces, dots or slashes", c.Name)
	}
	d, err := ParseDetail(string(c.Detail))
	if err != nil {
		return bad("%v", err)
	}
	c.Detail = d
	if c.Timeout < 0 || c.Timeout > 120 {
		return bad("timeout_seconds must be 1 to 120, got %d", c.Timeout)
	}
	switch c.Kind {
	case KindWebhook:
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("url %q is not an http(s) URL", c.URL)
		}
		if len(c.Secret) < 16 {
			return bad("the webhook secret must have at least 16 characters")
		}
	case KindEmail:
		if c.Host == "" {
			return bad("host (the SMTP relay) is missing")
		}
		if c.Port <= 0 || c.Port > 65535 {
			return bad("port must be 1 to 65535, got %d", c.Port)
		}
		if _, err := mail.ParseAddress(c.From); err != nil {
			return bad("from %q is not an email address", c.From)
		}
		if c.Plaintext && c.Host != "127.0.0.1" && c.Host != "localhost" && c.Host != "::1" {
			return bad("plaintext is allowed only for a relay on the loopback, not %s", c.Host)
		}
		if (c.Username == "") != (c.Password == "") {
			return bad("give both username and password, or neither")
		}
	default:
		return bad("kind %q is not webhook or email", c.Kind)
	}
	return nil
}

// build makes the channel a config describes.
func (c ChannelConfig) build(client *http.Client) (Channel, error) {
	switch c.Kind {
	case KindWebhook:
		return &Webhook{name: c.Name, url: c.URL, secret: []byte(c.Secret), timeout: c.Timeout.Duration(10 * time.Second), client: client}, nil
	case KindEmail:
		return newEmail(c)
	}
	return nil, fmt.Errorf("channel %s: unknown kind %q", c.Name, c.Kind)
}
