package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
)

// hubServer serves hub streams over a real websocket on loopback.
func hubServer(t testing.TB, h *Hub) string {
	return hubServerWith(t, h, func() ([]byte, error) { return []byte(`{"type":"snapshot","patients":[]}`), nil })
}

// hubServerWith serves hub streams with the given snapshot; a client's
// wards are the URL's ?wards=a,b (none: every ward).
func hubServerWith(t testing.TB, h *Hub, snapshot func() ([]byte, error)) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wards map[vward.WardID]bool
		if q := r.URL.Query().Get("wards"); q != "" {
			wards = map[vward.WardID]bool{}
			for _, w := range strings.Split(q, ",") {
				wards[vward.WardID(w)] = true
			}
		}
		conn, batch, err := upgrade(w, r)
		if err != nil {
			return
		}
		h.serve(ctx, conn, batch, wards, snapshot)
	}))
	t.Cleanup(func() {
		cancel()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitClients(t testing.TB, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Clients() != n {
		if time.Now().After(deadline) {
			t.Fatalf("hub has %d clients, want %d", h.Clients(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A client that stops reading must not hold up the others: while its
// writer is blocked on a full socket, a reading client still receives the
// latest update of every patient.
func TestStalledClientDoesNotDelayOthers(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.writeTimeout = time.Minute // long enough that the stalled client stays connected
	url := hubServer(t, h)
	stalled := dial(t, url) // never read from
	_ = stalled
	healthy := dial(t, url)
	waitClients(t, h, 2)
	if _, _, err := healthy.ReadMessage(); err != nil { // snapshot
		t.Fatal(err)
	}

	// 64 KiB rows for 400 patients, three rounds: ~75 MiB for the stalled
	// client, far beyond what loopback socket buffers hold.
	pad := strings.Repeat("x", 64<<10)
	const patients, rounds = 400, 3
	rows := newRowSource()
	for r := 1; r <= rounds; r++ {
		for i := range patients {
			rows.change(h, i, r, pad)
		}
	}

	latest := make(map[string]int)
	deadline := time.Now().Add(60 * time.Second)
	for len(latest) < patients || !allRound(latest, rounds) {
		_ = healthy.SetReadDeadline(deadline)
		_, b, err := healthy.ReadMessage()
		if err != nil {
			t.Fatalf("healthy client: %v after %d patients", err, len(latest))
		}
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		var round int
		fmt.Sscanf(e.Patient.Name, "round %d", &round)
		latest[string(e.Patient.Patient)] = round
	}
	// The stalled client is still connected, its writer still blocked:
	// the healthy one was served in spite of it, not after it was dropped.
	if h.Clients() != 2 || h.Dropped.Load() != 0 {
		t.Fatalf("clients %d, dropped %d: the stalled client should still be connected", h.Clients(), h.Dropped.Load())
	}
}

func allRound(m map[string]int, r int) bool {
	for _, v := range m {
		if v != r {
			return false
		}
	}
	return true
}

// A client too slow to take a write within the deadline is dropped.
func TestStalledClientIsDroppedAfterWriteTimeout(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.writeTimeout = 200 * time.Millisecond
	url := hubServer(t, h)
	dial(t, url) // never reads
	waitClients(t, h, 1)
	pad := strings.Repeat("x", 64<<10)
	rows := newRowSource()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; h.Dropped.Load() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("stalled client was never dropped")
		}
		rows.change(h, i%500, i, pad)
		if i%500 == 499 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitClients(t, h, 0)
}

// BenchmarkHubFanOut tells the hub of changed rows, as the monitor does, for
// many board clients that read as fast as they can; it measures the
// publisher's side, and the writers fetch the rows from a source of fixed
// rows.
func BenchmarkHubFanOut(b *testing.B) {
	for _, clients := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("rows/clients=%d", clients), func(b *testing.B) {
			h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
			url := hubServer(b, h)
			for range clients {
				c := dial(b, url)
				go func() {
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
					}
				}()
			}
			waitClients(b, h, clients)
			changes := make([]alerting.RowChange, 1000)
			rows := newRowSource()
			for i := range changes {
				id := vward.PatientID(fmt.Sprintf("p%04d", i))
				rows.wards[id] = "w1"
				changes[i] = alerting.RowChange{Patient: id, Ward: "w1", Rows: rows}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.RowChanged(changes[i%len(changes)])
				i++
			}
		})
	}
}

// The monitor builds a patient's row only if a connected client sees the
// patient's ward: ListeningTo follows who is connected and what they see.
func TestListeningToFollowsClientsWards(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	url := hubServer(t, h)
	if h.ListeningTo("w1") {
		t.Fatal("listening to w1 with no client")
	}
	one := dial(t, url+"?wards=w1,w3")
	waitClients(t, h, 1)
	for ward, want := range map[vward.WardID]bool{"w1": true, "w2": false, "w3": true, "": false} {
		if got := h.ListeningTo(ward); got != want {
			t.Errorf("one client of w1, w3: ListeningTo(%q) = %v, want %v", ward, got, want)
		}
	}
	all := dial(t, url)
	waitClients(t, h, 2)
	if !h.ListeningTo("w2") || !h.ListeningTo("") {
		t.Error("a client of every ward connected, yet not listening to w2 or to a patient without a ward")
	}
	all.Close()
	waitClients(t, h, 1)
	if h.ListeningTo("w2") || !h.ListeningTo("w1") {
		t.Errorf("after the all-wards client left: w2 %v (want false), w1 %v (want true)", h.ListeningTo("w2"), h.ListeningTo("w1"))
	}
	one.Close()
	waitClients(t, h, 0)
	if h.ListeningTo("w1") {
		t.Error("listening to w1 after every client left")
	}
}

// A change that lands after the snapshot is read but before it is sent
// still reaches the client, after the snapshot: the client is registered
// before its snapshot is taken.
func TestChangeDuringSnapshotFollowsIt(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	rows := newRowSource()
	url := hubServerWith(t, h, func() ([]byte, error) {
		snap := []byte(`{"type":"snapshot","patients":[]}`)
		rows.change(h, 7, 1, "after the snapshot") // the monitor, meanwhile
		return snap, nil
	})
	c := dial(t, url)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, first, err := c.ReadMessage()
	if err != nil || !strings.Contains(string(first), `"snapshot"`) {
		t.Fatalf("first message %q, %v; want the snapshot", first, err)
	}
	_, next, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("no event after the snapshot: %v", err)
	}
	var e struct {
		Type    string       `json:"type"`
		Patient *PatientView `json:"patient"`
	}
	if err := json.Unmarshal(next, &e); err != nil || e.Patient == nil || e.Patient.Patient != "p0007" {
		t.Fatalf("after the snapshot: %s (%v); want p0007's update", next, err)
	}
}

// rowSource is an alerting.RowSource of rows set by the test, as the
// monitor's are by readings, that records what it was asked for.
type rowSource struct {
	mu      sync.Mutex
	wards   map[vward.PatientID]vward.WardID // patients it has, and their wards now
	names   map[vward.PatientID]string       // their rows' names now
	record  bool                             // keep fetched
	fetched []string                         // "patient trend" per fetch
}

func newRowSource() *rowSource {
	return &rowSource{wards: map[vward.PatientID]vward.WardID{}, names: map[vward.PatientID]string{}}
}

func (s *rowSource) CopyRow(id vward.PatientID, trend bool, into *alerting.Row) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.record {
		s.fetched = append(s.fetched, fmt.Sprint(id, " ", trend))
	}
	ward, ok := s.wards[id]
	if !ok {
		return false
	}
	*into = alerting.Row{Patient: id, Ward: ward, Name: s.names[id], Trend: into.Trend[:0]}
	if trend {
		// A point shows that the row carried the trend (nextPatient).
		into.Trend = append(into.Trend, alerting.TrendPoint{Score: 1})
	}
	return true
}

// change sets patient p<id>'s row, in w1, to "round <round> <pad>", as a
// reading changes a row in the monitor, and tells the hub, as the monitor
// does.
func (s *rowSource) change(h *Hub, id, round int, pad string) {
	p := vward.PatientID(fmt.Sprintf("p%04d", id))
	s.mu.Lock()
	s.wards[p], s.names[p] = "w1", fmt.Sprintf("round %d %s", round, pad)
	s.mu.Unlock()
	h.RowChanged(alerting.RowChange{Patient: p, Ward: "w1", Rows: s})
}

// nextPatient reads the client's next message, which must be a patient
// event, and returns its patient and whether it carried the trend.
func nextPatient(t *testing.T, c *websocket.Conn) (string, bool) {
	t.Helper()
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("no event: %v", err)
	}
	var e struct {
		Patient struct {
			Patient string            `json:"patient"`
			Trend   []json.RawMessage `json:"trend"`
		} `json:"patient"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("event %s: %v", b, err)
	}
	return e.Patient.Patient, len(e.Patient.Trend) > 0
}

// A row change queues only whose row changed, and the writer fetches the
// row when it sends it: two changes of a patient before a write are one
// row, fetched once, and it carries the trend if either change said the
// trend changed.
func TestCoalescedRowChangesFetchOnceWithTheTrend(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	rows := newRowSource()
	rows.wards["p7"], rows.record = "w1", true
	url := hubServerWith(t, h, func() ([]byte, error) {
		// Both land before the client's first write, so they coalesce.
		h.RowChanged(alerting.RowChange{Patient: "p7", Ward: "w1", Trend: true, Rows: rows})
		h.RowChanged(alerting.RowChange{Patient: "p7", Ward: "w1", Trend: false, Rows: rows})
		return []byte(`{"type":"snapshot","patients":[]}`), nil
	})
	c := dial(t, url)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatalf("no snapshot: %v", err)
	}
	if p, trend := nextPatient(t, c); p != "p7" || !trend {
		t.Errorf("sent %s with trend %v, want p7 with the trend", p, trend)
	}
	rows.mu.Lock()
	defer rows.mu.Unlock()
	if len(rows.fetched) != 1 || rows.fetched[0] != "p7 true" {
		t.Errorf("fetched %q, want p7's row once, with the trend", rows.fetched)
	}
}

// A row is fetched as it is when it is sent, and by then the patient may
// have moved to a ward the client does not see, or been discharged: that
// row is not sent.
func TestRowFetchedOutOfTheClientsWardsIsNotSent(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	rows := newRowSource()
	rows.wards["p1"], rows.wards["p3"], rows.record = "w2", "w1", true
	url := hubServerWith(t, h, func() ([]byte, error) {
		h.RowChanged(alerting.RowChange{Patient: "p1", Ward: "w1", Rows: rows}) // moved to w2 since
		h.RowChanged(alerting.RowChange{Patient: "p2", Ward: "w1", Rows: rows}) // discharged since
		h.RowChanged(alerting.RowChange{Patient: "p3", Ward: "w1", Rows: rows})
		return []byte(`{"type":"snapshot","patients":[]}`), nil
	})
	c := dial(t, url+"?wards=w1")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatalf("no snapshot: %v", err)
	}
	if p, _ := nextPatient(t, c); p != "p3" {
		t.Errorf("first row after the snapshot is %s's, want p3's (p1 is in w2 now, p2 discharged)", p)
	}
	rows.mu.Lock()
	defer rows.mu.Unlock()
	if len(rows.fetched) != 3 {
		t.Errorf("fetched %q, want p1, p2 and p3", rows.fetched)
	}
}

// A patient's discharge replaces the patient's row queued before it: the
// client is told of the discharge, and not sent the row after it.
func TestDischargeReplacesAQueuedRow(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	rows := newRowSource()
	url := hubServerWith(t, h, func() ([]byte, error) {
		// All land before the client's first write, so they coalesce.
		rows.change(h, 7, 1, "before the discharge")
		h.Publish(alerting.Event{Type: "discharged", Patient: "p0007", Ward: "w1"})
		rows.change(h, 8, 1, "another patient")
		return []byte(`{"type":"snapshot","patients":[]}`), nil
	})
	c := dial(t, url)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []string
	for len(got) < 3 {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		var e struct {
			Type    string `json:"type"`
			Patient struct {
				Patient string `json:"patient"`
			} `json:"patient"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("message %s: %v", b, err)
		}
		got = append(got, e.Type+" "+e.Patient.Patient)
	}
	if want := []string{"snapshot ", "discharged p0007", "patient p0008"}; !slices.Equal(got, want) {
		t.Errorf("sent %q, want %q", got, want)
	}
}
