package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/sqlitedb"
)

// vwardCLI runs the vward command in-process with args and stdin, and
// returns what it printed.
func vwardCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// mustCLI runs the command and fails the test if it fails.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := vwardCLI(t, "", args...)
	if err != nil {
		t.Fatalf("vward %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// failCLI runs a command that must fail, and returns its error text.
func failCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	_, _, err := vwardCLI(t, stdin, args...)
	if err == nil {
		t.Fatalf("vward %s succeeded, want an error", strings.Join(args, " "))
	}
	return err.Error()
}

func jsonInto(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

func TestRegistryCLI(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir

	if msg := failCLI(t, "", "wards", "list", "--data-dir="+filepath.Join(dir, "nowhere")); !strings.Contains(msg, "no vward data") {
		t.Errorf("list on a missing data dir: %s", msg)
	}

	mustCLI(t, "wards", "add", "resp", "--name", "East Kent respiratory", "--pathway", "Respiratory", "--place", "East Kent", "--capacity", "10", dd)
	if msg := failCLI(t, "", "wards", "add", "bad", "--name", "x", "--pathway", "dermatology", dd); !strings.Contains(msg, "is not one of") {
		t.Errorf("unknown pathway: %s", msg)
	}
	out := mustCLI(t, "wards", "list", dd)
	if !strings.Contains(out, "ID") || !strings.Contains(out, "CAPACITY") || !strings.Contains(out, "East Kent respiratory") || !strings.Contains(out, "respiratory") {
		t.Errorf("wards list:\n%s", out)
	}

	if msg := failCLI(t, "", "patients", "admit", "p1", "--ward", "resp", "--nhs", "943 476 5918", "--name", "Ada Whitfield", dd); !strings.Contains(msg, "check digit") {
		t.Errorf("admit with a wrong check digit: %s", msg)
	}
	if msg := failCLI(t, "", "patients", "admit", "p1", "--ward", "resp", "--name", "Ada Whitfield", dd); !strings.Contains(msg, "nhs") {
		t.Errorf("admit without an NHS number: %s", msg)
	}
	mustCLI(t, "patients", "admit", "p1", "--ward", "resp", "--nhs", "943 476 5919", "--name", "Ada Whitfield",
		"--born", "1941-03-02", "--contact", "Jo Whitfield|daughter|07700 900123", "--admitted", "-48h", dd)
	var p2 devices.Patient
	jsonInto(t, mustCLI(t, "patients", "admit", "--ward", "resp", "--nhs", "4000000020", "--name", "Bernard Okafor",
		"--scale", "2", "--scale-reason", "COPD, hypercapnic", "--json", dd), &p2)
	if !strings.HasPrefix(string(p2.ID), "p-") || p2.SpO2Scale != 2 {
		t.Errorf("admission with a made-up id and scale 2: %+v", p2)
	}

	if msg := failCLI(t, "", "patients", "set-scale", "p1", "2", dd); !strings.Contains(msg, "reason") {
		t.Errorf("set-scale without a reason: %s", msg)
	}
	mustCLI(t, "patients", "set-scale", "p1", "2", "--reason", "type 2 respiratory failure on ABG", "--actor", "dr.patel", dd)
	var ps []devices.Patient
	jsonInto(t, mustCLI(t, "patients", "list", "--json", dd), &ps)
	if len(ps) != 2 || ps[0].ID != "p1" || ps[0].NHSNumber != "9434765919" || ps[0].SpO2Scale != 2 || len(ps[0].Contacts) != 1 {
		t.Fatalf("patients list --json = %+v", ps)
	}
	out = mustCLI(t, "patients", "list", dd)
	if !strings.Contains(out, "943 476 5919") || !strings.Contains(out, "Ada Whitfield") {
		t.Errorf("patients list:\n%s", out)
	}
	out = mustCLI(t, "patients", "audit", "p1", dd)
	if !strings.Contains(out, "dr.patel") || !strings.Contains(out, "type 2 respiratory failure on ABG") || !strings.Contains(out, "patient.spo2_scale") {
		t.Errorf("patients audit:\n%s", out)
	}

	var added struct {
		Device devices.Device `json:"device"`
		Secret string         `json:"secret"`
	}
	jsonInto(t, mustCLI(t, "devices", "add", "ox-1", "--kind", "pulse oximeter", "--serial", "SN-1", "--json", dd), &added)
	if added.Secret == "" || added.Device.Serial != "SN-1" || !added.Device.MosquittoReady {
		t.Fatalf("devices add --json = %+v", added)
	}
	out = mustCLI(t, "devices", "add", "bp-1", dd)
	if !strings.Contains(out, "shown this once") {
		t.Errorf("devices add:\n%s", out)
	}
	mustCLI(t, "devices", "assign", "ox-1", "p1", "--from", "-1h", dd)
	var ds []devices.Device
	jsonInto(t, mustCLI(t, "devices", "list", "--json", dd), &ds)
	if len(ds) != 2 || ds[1].ID != "ox-1" || ds[1].Patient != "p1" || ds[1].Ward != "resp" {
		t.Errorf("devices list --json = %+v", ds)
	}
	out = mustCLI(t, "devices", "list", dd)
	if !strings.Contains(out, "PATIENT") || !strings.Contains(out, "p1") {
		t.Errorf("devices list:\n%s", out)
	}

	// Users: the password comes on standard input, never as an argument.
	mustCLIIn := func(stdin string, args ...string) {
		t.Helper()
		if _, errOut, err := vwardCLI(t, stdin, args...); err != nil {
			t.Fatalf("vward %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
	}
	mustCLIIn("first-password\n", "users", "add", "sam", "--role", "clinician", "--ward", "resp", dd)
	if msg := failCLI(t, "short\n", "users", "add", "kim", "--role", "viewer", dd); !strings.Contains(msg, "at least 8") {
		t.Errorf("short password: %s", msg)
	}
	if msg := failCLI(t, "another-password\n", "users", "add", "sam", "--role", "viewer", dd); !strings.Contains(msg, "exists") {
		t.Errorf("adding sam twice: %s", msg)
	}
	mustCLIIn("second-password\n", "users", "passwd", "sam", dd)
	out = mustCLI(t, "users", "list", dd)
	if !strings.Contains(out, "sam") || !strings.Contains(out, "clinician") || !strings.Contains(out, "resp") {
		t.Errorf("users list:\n%s", out)
	}
	reg := openCLIRegistry(t, dir)
	if _, err := reg.Login(context.Background(), "sam", "second-password"); err != nil {
		t.Errorf("sam's new password: %v", err)
	}

	// A stay's course, and the ward's report.
	mustCLI(t, "patients", "pause", "p1", "--reason", "admitted to QEQM", dd)
	mustCLI(t, "patients", "resume", "p1", dd)
	if msg := failCLI(t, "", "patients", "discharge", "p1", dd); !strings.Contains(msg, "outcome") {
		t.Errorf("discharge without an outcome: %s", msg)
	}
	mustCLI(t, "patients", "discharge", "p1", "--outcome", "recovered", "--reason", "stable 72h", dd)
	if msg := failCLI(t, "", "devices", "unassign", "ox-1", dd); !strings.Contains(msg, "not bound") {
		t.Errorf("unassign after the discharge unbound it: %s", msg)
	}
	var rep devices.WardReport
	jsonInto(t, mustCLI(t, "wards", "report", "resp", "--days", "7", "--json", dd), &rep)
	if rep.Managed != 1 || rep.Admissions != 2 || rep.Discharges != 1 || rep.Outcomes["recovered"] != 1 || rep.LengthOfStay.Count != 1 || rep.LengthOfStay.MeanDays < 1.9 {
		t.Errorf("ward report = %+v", rep)
	}
	out = mustCLI(t, "wards", "report", dd)
	for _, want := range []string{"Ward resp: East Kent respiratory", "1 of 10 beds (10%)", "2 admissions, 1 discharge", "recovered 1", "DATE"} {
		if !strings.Contains(out, want) {
			t.Errorf("wards report lacks %q:\n%s", want, out)
		}
	}

	// Every change above is in the audit, with who made it.
	es, err := reg.Audit(context.Background(), devices.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range es {
		actions[e.Action] = true
		if !strings.HasPrefix(e.Actor, "cli") && e.Actor != "dr.patel" {
			t.Errorf("audit entry %+v: actor should be the CLI user", e)
		}
	}
	for _, a := range []string{"ward.add", "patient.admit", "patient.spo2_scale", "patient.pause", "patient.resume", "patient.discharge",
		"device.add", "device.assign", "user.add", "user.passwd"} {
		if !actions[a] {
			t.Errorf("no %s in the audit", a)
		}
	}
}

func openCLIRegistry(t *testing.T, dir string) *devices.Registry {
	t.Helper()
	db, err := sqlitedb.Open(filepath.Join(dir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// ---- Mosquitto with exported files ----

const mqttWait = 10 * time.Second

type mqttMsg struct{ topic, payload string }

func mqttConnect(url, user, pass string) (mqtt.Client, <-chan mqttMsg, error) {
	got := make(chan mqttMsg, 32)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("cli-test-%s-%d", user, time.Now().UnixNano())).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).SetConnectRetry(false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- mqttMsg{m.Topic(), string(m.Payload())} }))
	tok := c.Connect()
	if !tok.WaitTimeout(mqttWait) {
		return nil, nil, fmt.Errorf("connect %s: timed out", user)
	}
	if err := tok.Error(); err != nil {
		return nil, nil, err
	}
	return c, got, nil
}

// listenerOf is where user connects: vward on its own listener when the
// broker has one, as deploy/mosquitto lays it out; devices on the other.
func listenerOf(broker *testenv.Mosquitto, user string) string {
	if user == "vward" && broker.ServiceURL != "" {
		return broker.ServiceURL
	}
	return broker.URL
}

func mqttMust(t *testing.T, broker *testenv.Mosquitto, user, pass string) (mqtt.Client, <-chan mqttMsg) {
	t.Helper()
	c, got, err := mqttConnect(listenerOf(broker, user), user, pass)
	if err != nil {
		t.Fatalf("connect as %s: %v\nbroker log:\n%s", user, err, broker.Log())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, got
}

func mqttRefused(t *testing.T, broker *testenv.Mosquitto, what, user, pass string) {
	t.Helper()
	mqttRefusedAt(t, listenerOf(broker, user), what, user, pass)
}

func mqttRefusedAt(t *testing.T, url, what, user, pass string) {
	t.Helper()
	if c, _, err := mqttConnect(url, user, pass); err == nil {
		c.Disconnect(100)
		t.Errorf("%s: connected, want refused", what)
	}
}

func mqttSub(t *testing.T, c mqtt.Client, filter string) {
	t.Helper()
	if tok := c.Subscribe(filter, 1, nil); !tok.WaitTimeout(mqttWait) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
}

func mqttPub(t *testing.T, c mqtt.Client, topic, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(mqttWait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// mqttNext fails unless the next message on got is exactly topic/payload.
// Mosquitto acknowledges and drops a publish its ACL refuses, so a refusal
// shows only as absence: publish the refused message, then an allowed one
// on the same connection, and expect the allowed one first.
func mqttNext(t *testing.T, got <-chan mqttMsg, topic, payload string, broker *testenv.Mosquitto) {
	t.Helper()
	select {
	case m := <-got:
		if m.topic != topic || m.payload != payload {
			t.Fatalf("got %q on %s, want %q on %s: the ACL let an earlier message through", m.payload, m.topic, payload, topic)
		}
	case <-time.After(mqttWait):
		t.Fatalf("no %q on %s within %v; broker log:\n%s", payload, topic, mqttWait, broker.Log())
	}
}

// Real Mosquitto accepts the password and ACL files vward exports: devices
// connect with the secret `devices add` showed, speak only for themselves,
// and a rotated secret replaces the old one once exported again.
func TestRegistryCLIMosquittoExport(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir
	secrets := map[string]string{}
	for _, id := range []string{"dev-a", "dev-b"} {
		var added struct{ Secret string }
		jsonInto(t, mustCLI(t, "devices", "add", id, "--kind", "oximeter", "--json", dd), &added)
		secrets[id] = added.Secret
	}
	passwd, servicePasswd, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "passwd.service"), filepath.Join(dir, "acl")
	export := func() {
		t.Helper()
		out := mustCLI(t, "devices", "export-mosquitto", "--passwd", passwd, "--service-passwd", servicePasswd, "--acl", acl,
			"--service-user", "vward", "--service-password", "svc-secret", dd)
		if !strings.Contains(out, "2 devices") || !strings.Contains(out, "service account vward") {
			t.Errorf("export said:\n%s", out)
		}
	}
	export()
	for file, users := range map[string][]string{passwd: {"dev-a", "dev-b"}, servicePasswd: {"vward"}} {
		if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode: %v %v, want 0600", file, st.Mode(), err)
		}
		b, _ := os.ReadFile(file)
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			user, hash, _ := strings.Cut(line, ":")
			got = append(got, user)
			if !strings.HasPrefix(hash, "$7$101$") {
				t.Errorf("%s: hash %q is not Mosquitto's $7$ form", user, hash)
			}
		}
		if !slices.Equal(got, users) {
			t.Errorf("%s has %v, want %v", file, got, users)
		}
	}

	// Laid out as deploy/mosquitto: devices on one listener, vward on its own.
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{PasswordFile: passwd, ServicePasswordFile: servicePasswd, ACLFile: acl})
	svc, svcGot := mqttMust(t, broker, "vward", "svc-secret")
	mqttSub(t, svc, vward.ReadingsFilter)

	mqttRefused(t, broker, "wrong secret", "dev-a", "not-the-secret")
	mqttRefused(t, broker, "another device's secret", "dev-a", secrets["dev-b"])
	mqttRefused(t, broker, "unregistered device", "dev-z", secrets["dev-a"])
	mqttRefused(t, broker, "service account, wrong password", "vward", "guess")
	mqttRefused(t, broker, "anonymous", "", "")
	mqttRefusedAt(t, broker.URL, "service account on the devices' listener", "vward", "svc-secret")
	mqttRefusedAt(t, broker.ServiceURL, "device on vward's listener", "dev-a", secrets["dev-a"])

	a, aGot := mqttMust(t, broker, "dev-a", secrets["dev-a"])
	mqttSub(t, a, vward.RejectedTopic("dev-a"))
	b2, bGot := mqttMust(t, broker, "dev-b", secrets["dev-b"])

	// dev-a cannot publish as dev-b: nothing of it reaches the service
	// account (and so ingest), while its own reading does.
	mqttPub(t, a, vward.ReadingsTopic("dev-b"), "dev-a posing as dev-b")
	mqttPub(t, a, vward.ReadingsTopic("dev-a"), "dev-a own")
	mqttNext(t, svcGot, vward.ReadingsTopic("dev-a"), "dev-a own", broker)

	// Nor forge its own rejection notices, nor read another device's.
	mqttSub(t, b2, vward.RejectedTopic("dev-a"))
	mqttSub(t, b2, vward.ReadingsFilter)
	mqttPub(t, a, vward.RejectedTopic("dev-a"), "forged notice")
	mqttPub(t, svc, vward.RejectedTopic("dev-a"), "real notice")
	mqttNext(t, aGot, vward.RejectedTopic("dev-a"), "real notice", broker)
	mqttSub(t, b2, vward.RejectedTopic("dev-b"))
	mqttPub(t, svc, vward.RejectedTopic("dev-b"), "for dev-b")
	mqttNext(t, bGot, vward.RejectedTopic("dev-b"), "for dev-b", broker)

	// Rotate dev-a's secret, export again, reload the broker.
	var rotated struct{ Secret string }
	jsonInto(t, mustCLI(t, "devices", "rotate-secret", "dev-a", "--reason", "hub replaced", "--json", dd), &rotated)
	export()
	broker.Stop(t)
	broker.Start(t)
	mqttRefused(t, broker, "old secret after rotation", "dev-a", secrets["dev-a"])
	a2, _ := mqttMust(t, broker, "dev-a", rotated.Secret)
	svc2, svc2Got := mqttMust(t, broker, "vward", "svc-secret")
	mqttSub(t, svc2, vward.ReadingsFilter)
	mqttPub(t, a2, vward.ReadingsTopic("dev-a"), "after rotation")
	mqttNext(t, svc2Got, vward.ReadingsTopic("dev-a"), "after rotation", broker)
	mqttMust(t, broker, "dev-b", secrets["dev-b"])
}
