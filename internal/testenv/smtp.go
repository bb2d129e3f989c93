package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vward/vward/internal/services"
)

// SMTP is a real SMTP server: Debian's python3-aiosmtpd, run by a small
// script this harness writes, offering STARTTLS with a test CA's
// certificate and requiring AUTH (PLAIN or LOGIN) over TLS. Each message it
// accepts is written as a JSON file for the test to read.
type SMTP struct {
	Host string // 127.0.0.1
	Port int
	// CAFile verifies the server's certificate.
	CAFile string
	// Username and Password are the one account it accepts.
	Username, Password string

	dir  string
	proc *services.Process
}

// SMTPMessage is one message the server accepted.
type SMTPMessage struct {
	From string   `json:"from"`
	To   []string `json:"to"`
	Data string   `json:"data"` // the message as sent: headers and body
	TLS  bool     `json:"tls"`  // the session had been upgraded with STARTTLS
	User string   `json:"user"` // the account it signed in with
}

// smtpScript is the server. It writes each message to a temporary name and
// renames it, so that a test never reads half a message.
const smtpScript = `
import asyncio, json, os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, out, cert, key, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        msg = {"from": envelope.mail_from, "to": envelope.rcpt_tos,
               "data": envelope.content.decode("utf-8", "replace"),
               "tls": session.ssl is not None, "user": login}
        name = os.path.join(out, "%d" % time.time_ns())
        with open(name + ".tmp", "w") as f:
            json.dump(msg, f)
        os.rename(name + ".tmp", name + ".json")
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password:
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
               authenticator=authenticator, auth_required=True, auth_require_tls=True)
c.start()
open(os.path.join(out, "..", "ready"), "w").close()
print("aiosmtpd ready on", port, flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    pass
finally:
    c.stop()
`

// smtpPython finds a Python 3 that can import aiosmtpd: Debian's first, as a
// pyenv or venv python3 on PATH does not see its packages.
func smtpPython(t testing.TB) string {
	t.Helper()
	var candidates []string
	for _, p := range []string{"/usr/bin/python3"} {
		if _, err := os.Stat(p); err == nil {
			candidates = append(candidates, p)
		}
	}
	if p, err := lookBinary("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import aiosmtpd").Run() == nil {
			return p
		}
	}
	msg := "no python3 with aiosmtpd (Debian's python3-aiosmtpd); scripts/test installs it"
	if RequireServices() {
		t.Fatalf("VWARD_REQUIRE_SERVICES=1: %s", msg)
	} else {
		t.Skip(msg)
	}
	return ""
}

// StartSMTP starts the server on a free loopback port with a certificate
// from a new test CA, and waits until it answers. It is stopped when the
// test ends.
func StartSMTP(t testing.TB) *SMTP {
	t.Helper()
	py := smtpPython(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "messages")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "smtpd.py")
	if err := os.WriteFile(script, []byte(smtpScript), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := NewCA(t, "vward test SMTP CA")
	cert := ca.Server(t)
	s := &SMTP{Host: "127.0.0.1", Port: FreePort(t), CAFile: ca.CertFile, Username: "vward", Password: "relay-password-1", dir: dir}
	s.proc = &services.Process{Name: "aiosmtpd", Bin: py, LogPath: filepath.Join(dir, "smtpd.log"),
		Args: []string{script, strconv.Itoa(s.Port), out, cert.CertFile, cert.KeyFile, s.Username, s.Password}}
	began := time.Now()
	r, err := s.proc.Start()
	if err != nil {
		t.Fatalf("StartSMTP: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("aiosmtpd log:\n%s", s.proc.LogTail())
		}
		_ = s.proc.Stop(syscall.SIGINT, 5*time.Second)
	})
	ready := filepath.Join(dir, "ready")
	if err := services.WaitReady(r, 30*time.Second, func(context.Context) error {
		_, err := os.Stat(ready)
		return err
	}); err != nil {
		t.Fatalf("StartSMTP: aiosmtpd %v\n%s", err, s.proc.LogTail())
	}
	t.Logf("aiosmtpd ready on %s:%d in %v", s.Host, s.Port, time.Since(began).Round(time.Millisecond))
	return s
}

// Messages returns the messages accepted so far, oldest first.
func (s *SMTP) Messages(t testing.TB) []SMTPMessage {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(s.dir, "messages", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	out := make([]SMTPMessage, 0, len(names))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		var m SMTPMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("decode %s: %v", n, err)
		}
		out = append(out, m)
	}
	return out
}

// WaitMessages waits until at least n messages were accepted.
func (s *SMTP) WaitMessages(t testing.TB, n int) []SMTPMessage {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ms := s.Messages(t); len(ms) >= n {
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SMTP server accepted %d messages, want %d\n%s", len(s.Messages(t)), n, s.proc.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// String says where the server listens.
func (s *SMTP) String() string { return fmt.Sprintf("smtp://%s:%d", s.Host, s.Port) }
