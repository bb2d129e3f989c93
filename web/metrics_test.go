package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vward/vward/internal/testenv"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
)

// The board's metrics count clients, coalesced updates, frames, drops and
// the update delay.
func TestHubMetrics(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h.Collector())
	rows := newRowSource()
	rows.wards["p7"] = "w1"
	url := hubServerWith(t, h, func() ([]byte, error) {
		// Queued before the first write: the second replaces the first.
		h.RowChanged(alertingRowChange("p7", rows))
		h.RowChanged(alertingRowChange("p7", rows))
		return []byte(`{"type":"snapshot","patients":[]}`), nil
	})
	c := dial(t, url)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 2 { // the snapshot and p7's row
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	// The delay is observed once the batch's write has returned.
	deadline := time.Now().Add(10 * time.Second)
	for testenv.Samples(t, reg)["vward_board_update_delay_seconds{}"] == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s := testenv.Samples(t, reg)
	for k, want := range map[string]float64{
		"vward_board_clients{}":                                  1,
		"vward_board_updates_coalesced_total{}":                  1,
		"vward_board_frames_sent_total{}":                        2,
		"vward_board_update_delay_seconds{}":                     1,
		"vward_board_queued_updates{}":                           0,
		"vward_board_clients_dropped_total{reason=write_failed}": 0,
	} {
		if s[k] != want {
			t.Errorf("%s = %v, want %v", k, s[k], want)
		}
	}
	c.Close()
	waitClients(t, h, 0)
	// A client that left keeps its counts.
	if s := testenv.Samples(t, reg); s["vward_board_frames_sent_total{}"] != 2 || s["vward_board_clients{}"] != 0 {
		t.Errorf("after the client left: %v", s)
	}

	// A client that never reads is dropped, and the reason counted.
	h.writeTimeout = 200 * time.Millisecond
	dial(t, hubServer(t, h))
	waitClients(t, h, 1)
	pad := strings.Repeat("x", 64<<10)
	deadline = time.Now().Add(30 * time.Second)
	for i := 0; h.Dropped.Load() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("stalled client was never dropped")
		}
		rows.change(h, i%500, i, pad)
		if i%500 == 499 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if s := testenv.Samples(t, reg); s["vward_board_clients_dropped_total{reason=write_failed}"] != 1 {
		t.Errorf("drops: %v", s)
	}
}

// Requests are counted by the route that served them and their status;
// the websocket stream is counted, with 101, but not timed.
func TestHTTPMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := newHTTPMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /api/v1/patients/{id}", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusForbidden) })
	mux.HandleFunc(streamRoute, func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conn.Close()
	})
	srv := httptest.NewServer(m.instrument(mux, func(r *http.Request) string { _, p := mux.Handler(r); return p }))
	defer srv.Close()
	for _, p := range []string{"/healthz", "/healthz", "/api/v1/patients/p1", "/api/v1/patients/p2", "/nowhere"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.ReadMessage() // until the server closes it, after it has been counted
	ws.Close()
	deadline := time.Now().Add(10 * time.Second)
	for testenv.Samples(t, reg)[`vward_http_requests_total{code=101,route=GET /api/v1/stream}`] != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s := testenv.Samples(t, reg)
	for k, want := range map[string]float64{
		"vward_http_requests_total{code=200,route=GET /healthz}":               2,
		"vward_http_requests_total{code=403,route=GET /api/v1/patients/{id}}":  2,
		"vward_http_requests_total{code=404,route=unmatched}":                  1,
		"vward_http_requests_total{code=101,route=GET /api/v1/stream}":         1,
		"vward_http_request_duration_seconds{route=GET /healthz}":              2,
		"vward_http_request_duration_seconds{route=GET /api/v1/patients/{id}}": 2,
		"vward_http_request_duration_seconds{route=GET /api/v1/stream}":        0,
	} {
		if s[k] != want {
			t.Errorf("%s = %v, want %v", k, s[k], want)
		}
	}
}

func alertingRowChange(p string, rows *rowSource) alerting.RowChange {
	return alerting.RowChange{Patient: vward.PatientID(p), Ward: "w1", Rows: rows}
}
