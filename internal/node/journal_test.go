//go:build linux

package node_test

// Fault tests of the journal between ingest and InfluxDB (docs/operator.md,
// "Journal"): real Mosquitto, InfluxDB and Chromium, a fault in the middle
// of a stream of numbered messages, and then every msg_id in InfluxDB
// exactly once. As in faults_test.go, waits have deadlines only so that a
// loss fails instead of hanging.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/journal"
	"github.com/vward/vward/mqttsource"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/sqlitedb"
	"github.com/vward/vward/web"
)

// withJournal puts a journal with cfg in front of the node's InfluxDB; its
// directory defaults to the data dir's journal/.
func withJournal(cfg journal.Config) func(*node.Config) {
	return func(c *node.Config) { c.Journal = &cfg }
}

// InfluxDB stops for 60 s while the fleet publishes a few hundred messages
// a second: the journal acknowledges them, so a high-risk set published
// during the outage raises its alert during it; /readyz stays 200 and says
// the history is behind; the node says the history is delayed. Once
// InfluxDB is back every message is stored once and the journal empties.
func TestJournalInfluxDown60s(t *testing.T) {
	t.Parallel()
	began := time.Now()
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	f := newFleet(16000)
	const maxInFlight = 200
	n := runNode(t, f, broker, influx, mqttsource.Config{ClientID: "vward-journal-outage"},
		ingest.Config{MaxInFlight: maxInFlight}, withJournal(journal.Config{}))
	// A patient on a ward of their own, so that the fleet's count of
	// msg_ids on its ward is not changed by their set.
	const (
		highWard    vward.WardID    = "jw"
		highPatient vward.PatientID = "jp-1"
		highDevice  vward.DeviceID  = "jd-1"
		highNurse                   = "jw-nurse"
	)
	ctx := context.Background()
	if err := n.Registry.AddWard(ctx, devices.Ward{ID: highWard, Name: "Journal ward"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Registry.Admit(ctx, devices.Patient{ID: highPatient, Ward: highWard, Name: "High Risk", Admitted: time.Now().Add(-24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Registry.AddDevice(ctx, highDevice, "monitor"); err != nil {
		t.Fatal(err)
	}
	if err := n.Registry.Assign(ctx, highDevice, highPatient, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := n.Registry.AddClinician(ctx, devices.Clinician{Username: highNurse, Role: "clinician", Wards: []vward.WardID{highWard}}, password); err != nil {
		t.Fatal(err)
	}
	if err := n.LoadPatients(ctx); err != nil {
		t.Fatal(err)
	}
	clinician := signIn(t, n.URL(), highNurse)

	pub := f.publish(t, broker.URL, 250)
	pub.waitSent(t, 300)
	influx.Stop(t)
	stopped, atStop := time.Now(), pub.sent.Load()
	t.Logf("influxd stopped with %d messages published", atStop)
	// Past the in-flight window, where vward without a journal stops
	// taking messages, so the set below waits for no one.
	for deadline := time.Now().Add(30 * time.Second); n.Journal.State().Messages < 4*maxInFlight; {
		if time.Now().After(deadline) {
			t.Fatalf("the journal holds %d messages with InfluxDB down, want more than 4× the window of %d", n.Journal.State().Messages, maxInFlight)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// NEWS2 14: RR 26, SpO2 90, SBP 88, HR 135, temperature 39.5.
	if err := publishOnce(broker.URL, vward.ReadingsTopic(highDevice), vitalsMessage("jd-1-high", time.Now(), 26, 90, 88, 135, "A", 39.5)); err != nil {
		t.Fatal(err)
	}
	alert := waitOpen(t, clinician, highPatient, alerting.News2, "the high-risk set's alert with InfluxDB down")
	if alert.Risk != news2.High || alert.Score != 14 {
		t.Errorf("alert during the outage = %+v, want high risk, NEWS2 14", alert)
	}
	var row web.PatientView
	if code := clinician.do(http.MethodGet, "/api/v1/patients/"+string(highPatient), nil, &row); code != http.StatusOK || row.News2 == nil || row.News2.Score != 14 {
		t.Errorf("board row during the outage: %d %+v, want NEWS2 14", code, row.News2)
	}
	t.Logf("alert %d raised %v after influxd stopped, with %d messages in the journal and InfluxDB still down",
		alert.ID, time.Since(stopped).Round(time.Millisecond), n.Journal.State().Messages)

	// The history is behind from the first failed forward on; from then
	// until InfluxDB is back, every look says so and /readyz stays 200.
	waitStatus(t, n, web.HistoryDelayed)
	waitReadyz(t, n.URL(), "the history behind", func(status int, b map[string]string) bool { return b["history"] != "ok" && b["history"] != "" })
	samples, bad := 0, 0
	for time.Since(stopped) < 60*time.Second {
		samples++
		status, body := readyz(t, n.URL())
		st := n.Status()
		switch {
		case status != http.StatusOK || body["broker"] != "ok" || body["journal"] != "ok":
			bad++
			t.Errorf("/readyz during the outage: %d %v, want 200 with broker and journal ok", status, body)
		case !strings.Contains(body["history"], "behind") || !strings.Contains(body["history"], "alerts are live"):
			bad++
			t.Errorf("/readyz history during the outage: %q, want how far behind it is", body["history"])
		case st.History != web.HistoryDelayed || !strings.Contains(st.Message, "History delayed") || !strings.Contains(st.Message, "alerts are live"):
			bad++
			t.Errorf("Node.Status during the outage = %+v, want delayed, alerts live", st)
		}
		if bad >= 5 {
			t.FailNow()
		}
		time.Sleep(time.Second)
	}
	_, body := readyz(t, n.URL())
	st, js := n.Status(), n.Journal.State()
	t.Logf("after %v: %d messages published during the outage, the journal holds %d (%d bytes); /readyz history: %q; status: %q",
		time.Since(stopped).Round(time.Second), pub.sent.Load()-atStop, js.Messages, js.Bytes, body["history"], st.Message)
	// Without the journal vward would have stopped at its window.
	if js.Messages <= maxInFlight {
		t.Errorf("the journal holds %d messages after a 60 s outage: vward did not acknowledge beyond its window of %d", js.Messages, maxInFlight)
	}
	if js.HistoryErr == nil || js.Full {
		t.Errorf("journal state during the outage = %+v, want a history error and room", js)
	}
	influx.Start(t)

	pub.wait(t)
	f.requireEveryMessageOnce(t, influx)
	waitJournalEmpty(t, n)
	rows := influx.Query(t, fmt.Sprintf(`from(bucket: %q) |> range(start: -1h)
		|> filter(fn: (r) => r.patient == %q and r._field == "msg_id") |> keep(columns: ["_value"])`, influx.Bucket, highPatient))
	if len(rows) != 1 || rows[0]["_value"] != "jd-1-high" {
		t.Errorf("InfluxDB holds %v for %s, want its one set", rows, highPatient)
	}
	waitStatus(t, n, web.HistoryOK)
	waitReadyz(t, n.URL(), "the history caught up", func(status int, b map[string]string) bool {
		return status == http.StatusOK && b["history"] == "ok" && b["journal"] == "ok"
	})
	t.Logf("done in %v (%d samples of the outage)", time.Since(began).Round(time.Second), samples)
}

// vward, run as `vward serve` with its journal, is killed with SIGKILL
// while it writes the journal: once with InfluxDB up, once with InfluxDB
// down and a backlog in the journal. The journal reopens with that backlog,
// the broker resends what was not acknowledged, and every message is in
// InfluxDB exactly once.
func TestJournalVwardKilled(t *testing.T) {
	t.Parallel()
	began := time.Now()
	bin := buildVward(t)
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	f := newFleet(faultMessages)
	v := newVwardProcess(t, bin, seededDataDir(t, f), broker, influx, "vward-journal-kill")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(v.log)
			t.Logf("vward log:\n%s", tail(string(b), 16<<10))
		}
		v.stop(t, syscall.SIGKILL)
	})
	v.start(t)

	pub := f.publish(t, broker.URL, 300)
	pub.waitSent(t, faultMessages/3)
	appended := v.metric(t, "vward_journal_appended_messages_total")
	v.stop(t, syscall.SIGKILL)
	t.Logf("vward killed with %d messages published, %v of them written to its journal", pub.sent.Load(), appended)
	if appended == 0 {
		t.Fatal("vward wrote nothing to its journal before it was killed")
	}
	v.start(t)

	// With InfluxDB down the journal keeps what it acknowledges.
	pub.waitSent(t, faultMessages/2)
	influx.Stop(t)
	held := v.waitMetric(t, "vward_journal_messages", 300)
	v.stop(t, syscall.SIGKILL)
	t.Logf("vward killed with %v messages in its journal, %d published", held, pub.sent.Load())

	// Restarted with InfluxDB still down: the backlog is all there (none
	// can have been forwarded), and the journal takes new writes.
	v.start(t)
	reopened := v.metric(t, "vward_journal_messages")
	t.Logf("restarted with InfluxDB down: the journal holds %v messages", reopened)
	if reopened < held {
		t.Errorf("after the restart the journal holds %v messages, want at least the %v it held when killed", reopened, held)
	}
	for deadline := time.Now().Add(30 * time.Second); v.metric(t, "vward_journal_appended_messages_total") == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the restarted vward wrote nothing to its journal with InfluxDB down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	influx.Start(t)
	pub.wait(t)
	f.requireEveryMessageOnce(t, influx)
	for deadline := time.Now().Add(60 * time.Second); v.metric(t, "vward_journal_messages") != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("vward's journal still holds %v messages with everything in InfluxDB", v.metric(t, "vward_journal_messages"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("done in %v", time.Since(began).Round(time.Second))
}

// A journal of the smallest size fills while InfluxDB is down, and vward
// falls back to holding acknowledgements: /readyz answers 503 naming the
// journal, the node says the history is stalled, the in-flight window
// fills and the broker keeps the rest. Once InfluxDB is back, everything
// is stored once.
func TestJournalFullHoldsAcks(t *testing.T) {
	t.Parallel()
	began := time.Now()
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	f := newFleet(4000)
	// Room for more messages in flight than the journal holds: the batch
	// the pipeline writes first once InfluxDB is back is larger than the
	// whole journal.
	const maxInFlight = 2000
	n := runNode(t, f, broker, influx, mqttsource.Config{ClientID: "vward-journal-full"},
		ingest.Config{MaxInFlight: maxInFlight, RetryMax: time.Second},
		withJournal(journal.Config{MaxBytes: journal.MinMaxBytes, RetryMax: time.Second}))

	pub := f.publish(t, broker.URL, 400)
	pub.waitSent(t, 200)
	influx.Stop(t)
	t.Logf("influxd stopped with %d messages published", pub.sent.Load())
	body := waitReadyz(t, n.URL(), "the journal full", func(status int, b map[string]string) bool {
		return status == http.StatusServiceUnavailable && strings.Contains(b["journal"], "full") && b["broker"] == "ok"
	})
	t.Logf("/readyz with the journal full: %v", body)
	st := waitStatus(t, n, web.HistoryStalled)
	if !strings.Contains(st.Message, "journal is full") || !strings.Contains(st.Message, "waiting at the broker") {
		t.Errorf("Node.Status with the journal full = %+v, want it to say readings wait at the broker", st)
	}
	for deadline := time.Now().Add(60 * time.Second); n.Pipeline.InFlight() < maxInFlight; {
		if time.Now().After(deadline) {
			t.Fatalf("vward holds %d messages in flight with its journal full, want its window of %d", n.Pipeline.InFlight(), maxInFlight)
		}
		time.Sleep(20 * time.Millisecond)
	}
	js := n.Journal.State()
	t.Logf("window full: %d in flight, the journal holds %d messages (%d of %d bytes), %d published",
		n.Pipeline.InFlight(), js.Messages, js.Bytes, js.MaxBytes, pub.sent.Load())
	if !js.Full {
		t.Errorf("journal state with the window full = %+v, want full", js)
	}
	pub.wait(t)
	influx.Start(t)

	f.requireEveryMessageOnce(t, influx)
	waitJournalEmpty(t, n)
	waitStatus(t, n, web.HistoryOK)
	waitReadyz(t, n.URL(), "everything up again", func(status int, b map[string]string) bool {
		return status == http.StatusOK && b["journal"] == "ok" && b["history"] == "ok"
	})
	if n.Journal.State().Full {
		t.Error("the journal still says it is full with everything stored")
	}
	t.Logf("done in %v", time.Since(began).Round(time.Second))
}

// A clinician's board says, within its poll of vward's status, that the
// history is delayed and alerts are live while InfluxDB is down behind the
// journal, shows a new high score meanwhile, and drops the banner once the
// journal has caught up.
func TestJournalBannerInBrowser(t *testing.T) {
	t.Parallel()
	s := start(t, withJournal(journal.Config{}))
	b := browser(t)
	signInBoard(t, b, s.node.URL(), nurse)
	if got := systemBanner(t, b); !got.Hidden {
		t.Fatalf("system banner before any fault: %+v, want hidden", got)
	}

	s.influx.Stop(t)
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device),
		vitalsMessage("ox-1-high", time.Now(), 26, 90, 88, 135, "A", 39.5)) // NEWS2 14
	got := waitSystemBanner(t, b, "the history delayed", func(sb banner) bool { return !sb.Hidden })
	t.Logf("system banner with InfluxDB down: %q", got.Text)
	if !strings.Contains(got.Text, "History delayed") || !strings.Contains(got.Text, "alerts are live") || !strings.Contains(got.Class, "delayed") {
		t.Errorf("system banner with InfluxDB down: %+v, want it to say the history is delayed and alerts are live", got)
	}
	score := read(t, b, "p1's score", chromedp.Evaluate[string](`String(patients.get("p1").news2.score)`))
	if score != "14" {
		t.Errorf("p1's row scores %s with InfluxDB down, want the new set's 14", score)
	}
	if st := s.node.Journal.State(); st.Messages == 0 {
		t.Errorf("journal state with InfluxDB down = %+v, want the reading held", st)
	}

	s.influx.Start(t)
	waitSystemBanner(t, b, "the banner gone", func(sb banner) bool { return sb.Hidden })
	if st := s.node.Journal.State(); st.Messages != 0 || st.HistoryErr != nil {
		t.Errorf("journal state once the banner is gone = %+v, want it caught up", st)
	}
}

// banner is what #system-banner shows.
type banner struct {
	Hidden bool   `json:"hidden"`
	Text   string `json:"text"`
	Class  string `json:"class"`
}

func systemBanner(t *testing.T, b context.Context) banner {
	t.Helper()
	js := `(() => { const b = document.getElementById("system-banner");
		return JSON.stringify({hidden: b.hidden, text: b.textContent, class: b.className}); })()`
	var sb banner
	if err := json.Unmarshal([]byte(read(t, b, "#system-banner", chromedp.Evaluate[string](js))), &sb); err != nil {
		t.Fatal(err)
	}
	return sb
}

// waitSystemBanner polls the banner for up to four of the board's status
// polls.
func waitSystemBanner(t *testing.T, b context.Context, what string, ok func(banner) bool) banner {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		sb := systemBanner(t, b)
		if ok(sb) {
			return sb
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: #system-banner is %+v after 40s", what, sb)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitStatus polls Node.Status until its history is want.
func waitStatus(t *testing.T, n *node.Node, want string) web.SystemStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := n.Status()
		if st.History == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("Node.Status is %+v after 30s, want history %q", st, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitJournalEmpty waits until the journal has forwarded everything.
func waitJournalEmpty(t *testing.T, n *node.Node) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := n.Journal.State()
		if st.Messages == 0 && st.Bytes == 0 && st.HistoryErr == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the journal has not caught up within 60s: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// seededDataDir is a data dir whose registry holds the fleet, written
// before vward opens it.
func seededDataDir(t *testing.T, f fleet) string {
	t.Helper()
	dataDir := t.TempDir()
	db, err := sqlitedb.Open(filepath.Join(dataDir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	f.seed(t, reg)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dataDir
}
