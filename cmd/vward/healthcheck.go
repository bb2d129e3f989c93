package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
)

func newHealthcheckCmd() *cobra.Command {
	var (
		rawURL   string
		httpAddr string
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the vward on this host is ready (its /readyz), 1 if not: for a container's healthcheck",
		Long: `Ask a running vward whether it is ready: GET its /readyz, exit 0 when it
answers 200, and 1 otherwise, saying why on one line (what /readyz says of
the broker and the history, or that nothing answered). Made for the
distroless image, which has no shell or curl:

  healthcheck:
    test: ["CMD", "/usr/local/bin/vward", "healthcheck"]

By default it asks the address vward serve listens on, --http-addr or
VWARD_HTTP_ADDR, as the image sets it: a wildcard host (0.0.0.0 or ::) is
asked on loopback, so inside the container VWARD_HTTP_ADDR=0.0.0.0:8080
means http://127.0.0.1:8080/readyz. --url asks another address instead.
No proxy is used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout %v: want a positive duration such as 3s", timeout)}
			}
			target := rawURL
			if target == "" {
				var err error
				if target, err = readyzURL(httpAddr); err != nil {
					return usageError{err}
				}
			} else if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageError{fmt.Errorf("--url %q: want an http:// or https:// URL such as http://127.0.0.1:8080/readyz", target)}
			}
			ready, reason, err := probe(cmd.Context(), target, timeout)
			if err != nil {
				return err
			}
			if !ready {
				return errors.New("not ready: " + reason)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "ready: "+reason)
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&httpAddr, "http-addr", "127.0.0.1:8080", "address vward serve listens on; /readyz is asked there, a wildcard host on loopback (env VWARD_HTTP_ADDR)")
	fs.StringVar(&rawURL, "url", "", "readiness URL to ask instead, e.g. http://127.0.0.1:8080/readyz (env VWARD_HEALTHCHECK_URL)")
	fs.DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the whole answer (env VWARD_HEALTHCHECK_TIMEOUT)")
	return cmd
}

// readyzURL is the /readyz URL of a vward listening on addr. A wildcard
// or empty host means every interface, of which loopback is the one sure
// to answer from the same host or container.
func readyzURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("--http-addr %q: want host:port, such as 127.0.0.1:8080", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// probe asks target once within timeout. ready is whether it answered
// 200; reason says what it answered, on one line. err is only for what
// the probe itself could not do.
func probe(ctx context.Context, target string, timeout time.Duration) (ready bool, reason string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, "", fmt.Errorf("healthcheck %s: %w", target, err)
	}
	client := &http.Client{
		// Straight to vward: a proxy from the environment has no business
		// between a container and itself.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, fmt.Sprintf("%s did not answer within %v", target, timeout), nil
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return false, fmt.Sprintf("%s: %v", target, err), nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, fmt.Sprintf("%s did not send its whole answer within %v", target, timeout), nil
		}
		return false, fmt.Sprintf("%s: reading the answer: %v", target, err), nil
	}
	summary := summarise(body)
	if resp.StatusCode == http.StatusOK {
		return true, summary, nil
	}
	if summary == "" {
		summary = "(no body)"
	}
	return false, fmt.Sprintf("%s answered %s: %s", target, resp.Status, summary), nil
}

// summarise puts /readyz's answer on one line: its checks, failing ones
// first ("broker: 1 of 1 broker connections down; history: ok"), or any
// other body as text, shortened.
func summarise(body []byte) string {
	var checks map[string]string
	if json.Unmarshal(body, &checks) == nil && len(checks) > 0 {
		var failing, ok []string
		for _, name := range slices.Sorted(maps.Keys(checks)) {
			s := oneLine(name) + ": " + oneLine(checks[name])
			if checks[name] == "ok" {
				ok = append(ok, s)
			} else {
				failing = append(failing, s)
			}
		}
		return strings.Join(append(failing, ok...), "; ")
	}
	s := oneLine(string(body))
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// oneLine turns line breaks and other control characters into spaces and
// collapses runs of them: the answer is untrusted text for a log line.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
}
