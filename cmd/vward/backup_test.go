package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/sqlitedb"
)

// lockedBuffer collects a command's output from the goroutine it runs in.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// served is `vward serve` running in this process.
type served struct {
	url    string
	out    *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

// startServe runs `vward serve` on dataDir against the broker and InfluxDB,
// on a free loopback port, and waits until /readyz says it is ready. It is
// stopped when the test ends, if it was not before.
func startServe(t *testing.T, dataDir string, broker *testenv.Mosquitto, influx *testenv.Influx) *served {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{url: "http://" + addr, out: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	root := newRootCmd()
	root.SetOut(s.out)
	root.SetErr(s.out)
	root.SetArgs([]string{"serve", "--http-addr", addr, "--data-dir", dataDir,
		"--mqtt-url", broker.URL, "--mqtt-client-id", "vward-cli-test",
		"--influx-url", influx.URL, "--influx-bucket", influx.Bucket, "--log-level", "warn"})
	go func() { s.done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() { s.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	last := "no answer"
	for {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("vward serve ended before it was ready: %v\n%s", err, s.out)
		default:
		}
		if resp, err := http.Get(s.url + "/readyz"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("vward serve not ready within 30s: %s\n%s", last, s.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends vward serve as SIGTERM would, and waits for it to exit.
func (s *served) stop(t *testing.T) {
	t.Helper()
	if s.done == nil {
		return
	}
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("vward serve exited with %v\n%s", err, s.out)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("vward serve did not stop within 60s\n%s", s.out)
	}
	s.done = nil
}

// cli runs the vward command in this process, from any goroutine.
func cli(ctx context.Context, stdin string, args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(io.Discard)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// nhsNumbers returns n valid NHS numbers (modulus 11 check digit), none of
// them another test's.
func nhsNumbers(n int) []string {
	var out []string
	for base := 600000000; len(out) < n; base++ {
		s := fmt.Sprintf("%09d", base)
		sum := 0
		for i, c := range s {
			sum += int(c-'0') * (10 - i)
		}
		check := 11 - sum%11
		if check == 11 {
			check = 0
		}
		if check == 10 {
			continue // no valid number has this stem
		}
		out = append(out, fmt.Sprintf("%s%d", s, check))
	}
	return out
}

// signInAs signs in through the API and returns a client with the session.
func signInAs(t *testing.T, base, user, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)
	resp, err := c.Post(base+"/api/v1/login", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("sign in as %s: %v", user, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("sign in as %s: %d %s", user, resp.StatusCode, b)
	}
	return c
}

// openAlertsOf lists a patient's open alerts through the API.
func openAlertsOf(t *testing.T, c *http.Client, base string, p vward.PatientID) []alerting.Alert {
	t.Helper()
	resp, err := c.Get(base + "/api/v1/alerts?state=open&patient=" + string(p))
	if err != nil {
		t.Fatalf("GET /api/v1/alerts: %v", err)
	}
	defer resp.Body.Close()
	var as struct {
		Alerts []alerting.Alert `json:"alerts"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&as) != nil {
		t.Fatalf("GET /api/v1/alerts: status %d", resp.StatusCode)
	}
	return as.Alerts
}

// publishReading sends one device message at QoS 1, as a device would.
func publishReading(t *testing.T, brokerURL string, d vward.DeviceID, payload []byte) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(string(d) + "-test"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	if tok := c.Publish(vward.ReadingsTopic(d), 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

// restoreBackup does what docs/operator.md ("Backup and restore") tells
// an operator to do with vward stopped: move vward.db and its -wal and
// -shm files away, and copy the backup in as vward.db.
func restoreBackup(t *testing.T, backup, dataDir string) {
	t.Helper()
	aside := t.TempDir()
	for _, name := range []string{"vward.db", "vward.db-wal", "vward.db-shm"} {
		err := os.Rename(filepath.Join(dataDir, name), filepath.Join(aside, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "vward.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A backup taken while vward serve runs and patients keep being admitted
// restores into a vward that has the ward, the patients admitted before
// the backup (and none half-written), the device, the user, who can sign
// in, and the open alert; and its store passes integrity_check.
func TestBackupWhileServingAndRestore(t *testing.T) {
	ctx := context.Background()
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	live := t.TempDir()
	dd := "--data-dir=" + live
	mustCLI(t, "wards", "add", "resp", "--name", "East Kent respiratory", "--pathway", "Respiratory", dd)
	mustCLI(t, "patients", "admit", "p1", "--ward", "resp", "--nhs", "943 476 5919", "--name", "Ada Whitfield", dd)
	mustCLI(t, "devices", "add", "ox-1", "--kind", "pulse oximeter", dd)
	mustCLI(t, "devices", "assign", "ox-1", "p1", "--from", "-1h", dd)
	const password = "backup-test-password"
	if _, errOut, err := vwardCLI(t, password+"\n", "users", "add", "sam", "--role", "clinician", "--ward", "resp", dd); err != nil {
		t.Fatalf("users add: %v\n%s", err, errOut)
	}

	srv := startServe(t, live, broker, influx)
	// NEWS2 13 for p1: an alert, written to the store by the engine.
	publishReading(t, broker.URL, "ox-1", []byte(fmt.Sprintf(`{"msg_id":"m1","ts":%q,"readings":[
		{"type":"respiratory_rate","value":26},{"type":"spo2","value":90},
		{"type":"supplemental_oxygen","value":false},{"type":"systolic_bp","value":88},
		{"type":"heart_rate","value":132},{"type":"consciousness","value":"A"},
		{"type":"temperature","value":39.4}]}`, time.Now().UTC().Format(time.RFC3339))))
	sam := signInAs(t, srv.url, "sam", password)
	var alert alerting.Alert
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if as := openAlertsOf(t, sam, srv.url, "p1"); len(as) > 0 {
			alert = as[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no open alert for p1 within 30s of a NEWS2 13 reading")
		}
	}

	// Patients bulk-0000, bulk-0001, … are admitted one by one, each in a
	// process of its own as the CLI is, until told to stop.
	nhs := nhsNumbers(2000)
	var admitted atomic.Int64
	wctx, stopAdmitting := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var admitErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < len(nhs) && wctx.Err() == nil; i++ {
			_, err := cli(wctx, "", "patients", "admit", fmt.Sprintf("bulk-%04d", i), "--ward", "resp",
				"--nhs", nhs[i], "--name", fmt.Sprintf("Bulk Patient %d", i), dd)
			if err != nil {
				if wctx.Err() == nil {
					admitErr = fmt.Errorf("admit bulk-%04d: %w", i, err)
				}
				return
			}
			admitted.Add(1)
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopAdmitting()
			wg.Wait()
			stopped = true
		}
	}
	defer stop()
	waitAdmitted := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); admitted.Load() < n; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("only %d patients admitted within 60s, waiting for %d: %v", admitted.Load(), n, admitErr)
			}
		}
	}
	waitAdmitted(3)

	out := filepath.Join(t.TempDir(), "vward-backup.db")
	before := admitted.Load()
	printed := mustCLI(t, "backup", dd, out)
	after := admitted.Load()
	// Admissions go on after the backup: it held nothing up.
	waitAdmitted(after + 2)
	stop()
	if admitErr != nil {
		t.Fatal(admitErr)
	}
	t.Logf("backup began after %d admissions and ended after %d:\n%s", before, after, printed)
	for _, want := range []string{"written to " + out, "size:", "devices ", "alerting ", "integrity: ok"} {
		if !strings.Contains(printed, want) {
			t.Errorf("vward backup printed no %q:\n%s", want, printed)
		}
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, %v; want mode 0600", st, err)
	}
	for _, side := range []string{out + "-wal", out + "-shm", out + "-journal"} {
		if _, err := os.Stat(side); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s beside the backup: %v", filepath.Base(side), err)
		}
	}
	srv.stop(t)

	restored := t.TempDir()
	restoreBackup(t, out, restored)
	srv = startServe(t, restored, broker, influx)
	rd := "--data-dir=" + restored

	var wards []devices.Ward
	jsonInto(t, mustCLI(t, "wards", "list", "--json", rd), &wards)
	if len(wards) != 1 || wards[0].ID != "resp" || wards[0].Name != "East Kent respiratory" {
		t.Errorf("restored wards = %+v", wards)
	}
	var ps []devices.Patient
	jsonInto(t, mustCLI(t, "patients", "list", "--json", rd), &ps)
	var bulk []string
	hasP1 := false
	for _, p := range ps {
		if p.ID == "p1" && p.NHSNumber == "9434765919" && p.Name == "Ada Whitfield" {
			hasP1 = true
		}
		if strings.HasPrefix(string(p.ID), "bulk-") {
			bulk = append(bulk, string(p.ID))
		}
	}
	if !hasP1 {
		t.Errorf("p1 is not among the restored patients %+v", ps)
	}
	slices.Sort(bulk)
	n := int64(len(bulk))
	if n < before || n > after {
		t.Errorf("the backup holds %d bulk admissions; %d were done when it began, %d when it ended", n, before, after)
	}
	for i, id := range bulk {
		if want := fmt.Sprintf("bulk-%04d", i); id != want {
			t.Fatalf("restored bulk patients %v: %s where %s should be; a snapshot of one moment has no gaps", bulk, id, want)
		}
	}
	var ds []devices.Device
	jsonInto(t, mustCLI(t, "devices", "list", "--json", rd), &ds)
	if len(ds) != 1 || ds[0].ID != "ox-1" || ds[0].Patient != "p1" {
		t.Errorf("restored devices = %+v", ds)
	}
	sam = signInAs(t, srv.url, "sam", password)
	as := openAlertsOf(t, sam, srv.url, "p1")
	if len(as) != 1 || as[0].ID != alert.ID || as[0].Condition != alert.Condition {
		t.Errorf("restored open alerts of p1 = %+v, want the one raised before the backup (%d, %s)", as, alert.ID, alert.Condition)
	}
	srv.stop(t)

	db, err := sqlitedb.Open(filepath.Join(restored, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlitedb.IntegrityCheck(ctx, db); err != nil {
		t.Errorf("the restored store after vward ran on it: %v", err)
	}
}

// What vward backup refuses, each with a message saying what was wrong
// and where; only a wrong command line is a usage error (exit 2).
func TestBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live")
	mustCLI(t, "wards", "add", "resp", "--name", "East Kent respiratory", "--pathway", "Respiratory", "--data-dir="+live)
	outDir := t.TempDir()
	existing := filepath.Join(outDir, "existing.db")
	if err := os.WriteFile(existing, []byte("an older backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	notSQLite := filepath.Join(dir, "not-sqlite")
	if err := os.MkdirAll(notSQLite, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notSQLite, "vward.db"), bytes.Repeat([]byte("not a database\n"), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	otherSQLite := filepath.Join(dir, "other-sqlite")
	if err := os.MkdirAll(otherSQLite, 0o700); err != nil {
		t.Fatal(err)
	}
	odb, err := sqlitedb.Open(filepath.Join(otherSQLite, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := odb.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	odb.Close()

	for _, tc := range []struct {
		name  string
		args  []string
		want  string
		usage bool
	}{
		{"no OUT", []string{"backup", "--data-dir", live}, "takes one argument, OUT", true},
		{"two OUTs", []string{"backup", "--data-dir", live, "a.db", "b.db"}, "takes one argument, OUT", true},
		{"no data dir", []string{"backup", "--data-dir", filepath.Join(dir, "nowhere"), filepath.Join(outDir, "a.db")}, "no vward data in " + filepath.Join(dir, "nowhere"), false},
		{"data dir without a store", []string{"backup", "--data-dir", outDir, filepath.Join(outDir, "a.db")}, "no vward data in " + outDir, false},
		{"not SQLite", []string{"backup", "--data-dir", notSQLite, filepath.Join(outDir, "a.db")}, filepath.Join(notSQLite, "vward.db") + " is not a vward store", false},
		{"SQLite, not vward's", []string{"backup", "--data-dir", otherSQLite, filepath.Join(outDir, "a.db")}, filepath.Join(otherSQLite, "vward.db") + " is not a vward store", false},
		{"OUT exists", []string{"backup", "--data-dir", live, existing}, existing + ": the file already exists; refusing to overwrite it", false},
		{"OUT in a missing directory", []string{"backup", "--data-dir", live, filepath.Join(outDir, "missing", "a.db")}, "directory " + filepath.Join(outDir, "missing") + " does not exist", false},
		{"OUT a directory", []string{"backup", "--data-dir", live, outDir}, outDir + ": that is a directory", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := vwardCLI(t, "", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if got := errors.As(err, new(usageError)); got != tc.usage {
				t.Errorf("usage error = %v, want %v: %v", got, tc.usage, err)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "an older backup" {
		t.Errorf("the existing file was changed: %q", b)
	}
	ents, _ := os.ReadDir(outDir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("after the refusals %s holds %v, want existing.db alone", outDir, names)
	}
}
