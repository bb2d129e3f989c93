package node_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/boardclient"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/mqttsource"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/notify"
	"github.com/vward/vward/simulator"
	"github.com/vward/vward/sqlitedb"
)

// scenarioNode is a node running a scenario's ward: its patients (with
// their SpO2 scales) and devices registered, Mosquitto checking every
// device's own credentials and the production ACL, and a clinician of the
// scenario's wards to watch the board.
type scenarioNode struct {
	node        *node.Node
	brokerURL   string
	credentials map[vward.DeviceID]string
	clinician   boardclient.Login
}

const scenarioClinician = "scenario-nurse"

func startScenarioNode(t *testing.T, plan *simulator.Plan) *scenarioNode {
	t.Helper()
	influx := testenv.StartInflux(t)
	ctx, cancel := context.WithCancel(context.Background())
	servicePassword := randomSecret(t)
	// The broker's password file needs the devices' secrets, so the
	// scenario is registered in vward's own SQLite file before the broker
	// starts, and the node, which needs the broker's URL, opens it after:
	// the same registration a test engineer runs with vward replay
	// --register before vward serve.
	dataDir := t.TempDir()
	db, err := sqlitedb.Open(filepath.Join(dataDir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	registered, err := simulator.Register(ctx, reg, plan, time.Now())
	if err != nil {
		t.Fatalf("register the scenario: %v", err)
	}
	creds := registered.Secrets()
	users := map[string]string{"vward": servicePassword}
	for id, secret := range creds {
		users[string(id)] = secret
	}
	clinicianPassword := randomSecret(t)
	if err := reg.AddClinician(ctx, devices.Clinician{Username: scenarioClinician, Role: "clinician", Wards: plan.Wards()}, clinicianPassword); err != nil {
		t.Fatal(err)
	}
	sc := plan.Scenario
	for _, n := range sc.Notifications {
		if _, err := reg.Clinician(ctx, n.Recipient); err == nil || n.Recipient == "" {
			continue
		}
		if err := reg.AddClinician(ctx, devices.Clinician{Username: n.Recipient, Role: "clinician", Wards: plan.Wards()}, randomSecret(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{
		PasswordFile: passwordFile(t, users),
		ACLFile:      filepath.Join("..", "..", "deploy", "mosquitto", "acl"),
	})
	n, err := node.Open(ctx, node.Config{
		DataDir:  dataDir,
		HTTPAddr: "127.0.0.1:0",
		MQTT:     mqttsource.Config{URL: broker.URL, Username: "vward", Password: servicePassword, ClientID: "vward-scenario"},
		Influx:   &history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket},
		Alerting: alerting.Config{Policy: alerting.Policy{AckTimeout: ackTimeout(sc)}},
		Log:      scenarioLog(t),
	})
	if err != nil {
		t.Fatalf("open node: %v", err)
	}
	routeNotifications(t, n, plan)
	serveNode(t, n, ctx, cancel)
	return &scenarioNode{
		node: n, brokerURL: broker.URL, credentials: creds,
		clinician: boardclient.Login{URL: n.URL(), Username: scenarioClinician, Password: clinicianPassword},
	}
}

// ackTimeout is the escalation timer the scenario asks vward to run with
// (vward serve --ack-timeout).
func ackTimeout(sc *simulator.Scenario) alerting.PerRisk {
	var p alerting.PerRisk
	for risk, d := range sc.AckTimeout {
		r, _ := simulator.ParseRisk(risk)
		switch r {
		case news2.High:
			p.High = d.D()
		case news2.Medium:
			p.Medium = d.D()
		case news2.LowMedium:
			p.LowMedium = d.D()
		default:
			p.Low = d.D()
		}
	}
	return p
}

// routeNotifications configures what the scenario's notification
// expectations name: each channel a webhook to a real HTTP receiver that
// accepts everything, and a route from each expected tier of the
// patient's ward to its recipient.
func routeNotifications(t *testing.T, n *node.Node, plan *simulator.Plan) {
	t.Helper()
	ctx := context.Background()
	st := n.Notify.Store()
	wardOf := map[vward.PatientID]vward.WardID{}
	for _, p := range plan.Patients {
		wardOf[p.ID] = p.Ward
	}
	var receiver *httptest.Server
	for _, e := range plan.Scenario.Notifications {
		if receiver == nil {
			receiver = httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			t.Cleanup(receiver.Close)
		}
		channel := cmp.Or(e.Channel, "scenario-pager")
		if _, err := st.Channel(ctx, channel); err != nil {
			if err := st.PutChannel(ctx, notify.ChannelConfig{Name: channel, Kind: notify.KindWebhook, URL: receiver.URL, Secret: randomSecret(t)}); err != nil {
				t.Fatal(err)
			}
		}
		r := notify.Route{Ward: wardOf[e.Patient], Queue: alerting.Clinical, Tier: e.Tier, TargetKind: "user", Target: cmp.Or(e.Recipient, scenarioClinician), Channel: channel}
		if _, err := st.AddRoute(ctx, r); err != nil && !errors.Is(err, vward.ErrConflict) {
			t.Fatal(err)
		}
	}
}

// passwordFile writes a Mosquitto password file in one mosquitto_passwd run
// (-U hashes a file of plain user:password lines): a scenario has hundreds of
// devices, and testenv.PasswordFile starts one process per user.
func passwordFile(t *testing.T, users map[string]string) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		return testenv.PasswordFile(t, users) // finds it elsewhere, or skips
	}
	var lines strings.Builder
	for u, p := range users {
		fmt.Fprintf(&lines, "%s:%s\n", u, p)
	}
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte(lines.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-U", path).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd -U: %v\n%s", err, out)
	}
	return path
}

func randomSecret(t *testing.T) string {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// scenarioLog keeps the node's warnings and errors, shown if the test fails.
func scenarioLog(t *testing.T) *slog.Logger {
	t.Helper()
	var buf safeBuffer
	t.Cleanup(func() {
		if t.Failed() {
			s := buf.String()
			if len(s) > 16<<10 {
				s = "…" + s[len(s)-16<<10:]
			}
			t.Logf("vward log:\n%s", s)
		}
	})
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Every shipped scenario passes `vward replay FILE --expect` against a real
// vward (Mosquitto with per-device credentials and the production ACL,
// InfluxDB, the board's stream) in accelerated time: the same function the
// command runs, in-process.
func TestScenarioFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "simulator", "scenarios", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files found: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			sc, err := simulator.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := sc.Plan()
			if err != nil {
				t.Fatal(err)
			}
			s := startScenarioNode(t, plan)
			began := time.Now()
			rep, err := simulator.RunScenario(context.Background(), sc, simulator.RunOptions{
				MQTTURL:     s.brokerURL,
				Credentials: s.credentials,
				Board:       &s.clinician,
				Grace:       2 * time.Second,
				Log:         scenarioLog(t),
			})
			if err != nil {
				t.Fatalf("replay %s: %v", name, err)
			}
			var out strings.Builder
			_, _ = rep.WriteTo(&out)
			t.Logf("replayed in %v:\n%s", time.Since(began).Round(100*time.Millisecond), out.String())
			if !rep.Passed() {
				t.Errorf("scenario %s failed against vward", name)
			}
		})
	}
}

// safeBuffer is a bytes.Buffer the node's goroutines may log to.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
