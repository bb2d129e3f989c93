// Package services starts real Mosquitto and InfluxDB processes on free
// loopback ports in a directory of the caller's choosing. The tests' harness
// (internal/testenv) wraps it with testing.TB; `vward bench` uses it
// directly, so what a benchmark measures runs the way the tests run it.
package services

import (
	"context"
	"errors"
	"fmt"
	"go/build"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LookBinary searches, in order: $VWARD_TOOLS_BIN (where scripts/test
// installs pinned tools, so it wins over whatever else is on PATH), PATH, the
// Go bin directories (go install's default target), and the sbin
// directories, which are not on a non-root PATH but are where Debian puts
// mosquitto.
func LookBinary(name string) (string, error) {
	var dirs []string
	if d := os.Getenv("VWARD_TOOLS_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	dirs = append(dirs, goBinDirs()...)
	dirs = append(dirs, "/usr/local/sbin", "/usr/sbin", "/sbin")
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in $VWARD_TOOLS_BIN, PATH, GOBIN, GOPATH/bin or sbin", name)
}

// goBinDirs is computed once: asking the go command costs a process start,
// and it honours `go env -w` settings that build.Default does not see.
var goBinDirs = sync.OnceValue(func() []string {
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	gopath := build.Default.GOPATH
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) == 2 {
			if lines[0] != "" {
				dirs = append(dirs, lines[0])
			}
			gopath = lines[1]
		}
	}
	for _, p := range filepath.SplitList(gopath) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	return dirs
})

// handedOut remembers ports FreePort already gave to this process, so two
// services started back to back cannot be handed the same port before
// either has bound it.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a loopback TCP port that was free a moment ago.
//
// It prefers ports below the kernel's ephemeral range: services here are
// stopped and restarted on the same port, and a port inside the ephemeral
// range can meanwhile become the source port of some outgoing connection (a
// reconnecting client, for one), which would make the restart fail to bind.
func FreePort() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	lo, hi := 20000, ephemeralLow()
	for range 100 {
		if hi-lo < 1000 {
			break
		}
		port := lo + rand.IntN(hi-lo)
		if handedOut.ports[port] || !bindable(port) {
			continue
		}
		handedOut.ports[port] = true
		return port, nil
	}
	// Fall back to letting the kernel choose (inside the ephemeral range).
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("listen on 127.0.0.1:0: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("close probe listener: %w", err)
		}
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port after 120 attempts")
}

func bindable(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	return l.Close() == nil
}

// ephemeralLow is the first port the kernel hands out for outgoing
// connections (32768 on a default Linux).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// Process runs one service binary, possibly several times (stop/start for
// fault tests), appending its stdout and stderr to one log file.
//
// Output goes to a file, never to our own stdout/stderr: go test waits for
// those pipes to close, so a service that outlived a crashed test binary
// would otherwise hang the whole run.
type Process struct {
	Name    string
	Bin     string
	Args    []string
	Env     []string // nil: inherit our environment
	LogPath string

	mu  sync.Mutex
	cur *Run // nil when not running
}

// Run is one execution of a Process.
type Run struct {
	Cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // exit status; read only after done is closed
}

// Start starts the process; it fails if it is already running.
func (p *Process) Start() (*Run, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		return nil, fmt.Errorf("%s is already running (pid %d)", p.Name, p.cur.Cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", p.Name, err)
	}
	// The child keeps its own descriptor; ours is only needed until Start.
	defer logf.Close()
	fmt.Fprintf(logf, "---- services %s: %s %s\n", time.Now().Format(time.RFC3339Nano), p.Bin, strings.Join(p.Args, " "))
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = p.Env
	cmd.SysProcAttr = ChildAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.Name, err)
	}
	r := &Run{Cmd: cmd, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	p.cur = r
	return r, nil
}

// Pid is the running process's id, or 0.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.Cmd.Process.Pid
}

// Signal sends sig to the running process, e.g. SIGSTOP and SIGCONT to
// freeze and thaw it; a process not running is an error.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return fmt.Errorf("signal %s with %v: not running", p.Name, sig)
	}
	if err := p.cur.Cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s (pid %d) with %v: %w", p.Name, p.cur.Cmd.Process.Pid, sig, err)
	}
	return nil
}

// Stop sends sig, waits up to grace for the process to exit, then kills it.
// Stopping a stopped process is a no-op, so cleanup may always call it.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.cur
	if r == nil {
		return nil
	}
	p.cur = nil
	select {
	case <-r.done:
		return nil // already exited on its own
	default:
	}
	if err := r.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s (pid %d) with %v: %w", p.Name, r.Cmd.Process.Pid, sig, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-r.done:
		return nil
	case <-timer.C:
	}
	_ = r.Cmd.Process.Kill()
	select {
	case <-r.done:
		return fmt.Errorf("%s (pid %d) ignored %v for %v and was killed", p.Name, r.Cmd.Process.Pid, sig, grace)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit 10s after SIGKILL", p.Name, r.Cmd.Process.Pid)
	}
}

// Log returns everything the process has logged so far.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s log: %v)", p.Name, err)
	}
	return string(b)
}

// LogTail keeps failure messages readable when a service is chatty.
func (p *Process) LogTail() string {
	const limit = 16 << 10
	s := p.Log()
	if len(s) > limit {
		s = "…" + s[len(s)-limit:]
	}
	return s
}

// WaitReady polls probe until it succeeds, the process exits, or timeout.
func WaitReady(r *Run, timeout time.Duration, probe func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	delay := 10 * time.Millisecond
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := probe(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("exited before it was ready (%v); last probe: %w", r.err, err)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v; last probe: %w", timeout, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// DialProbe succeeds once addr accepts TCP connections.
func DialProbe(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}
