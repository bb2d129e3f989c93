package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/internal/testenv"
)

// browser starts a real headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	exec := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exec),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", exec, err)
	}
	return ctx
}

// step runs browser actions with a deadline, failing the test with what
// was being waited for. The deadline is a hang guard, not a timing: a
// patient view opening under -race beside the rest of the suite on two
// cores has taken over 20 s.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// signInBoard signs username in on the board at url and waits for p1's row and
// the live stream.
func signInBoard(t *testing.T, b context.Context, url, username string) {
	t.Helper()
	step(t, b, username+" signs in", chromedp.Navigate(url+"/"), chromedp.WaitVisible("#login-form"),
		chromedp.SendKeys("#login-username", username),
		chromedp.SendKeys("#login-password", password),
		chromedp.Click(`#login-form button[type="submit"]`),
		chromedp.WaitVisible(`tr[data-patient="p1"]`),
		chromedp.WaitVisible(`#conn.up`))
}

// read runs one browser action that returns a value, with a deadline.
func read[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, action)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// click clicks an element as a person would. A row rebuilt between finding
// the element and pressing on it is found again, a few times at most.
func click(t *testing.T, ctx context.Context, selector string) {
	t.Helper()
	var err error
	for range 5 {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = chromedp.Do(sctx, chromedp.Click(selector))
		cancel()
		// A row redrawn by the stream between finding it and clicking it
		// is gone: find it again.
		if err == nil || !strings.Contains(err.Error(), "No node") && !strings.Contains(err.Error(), "Could not find node") {
			break
		}
	}
	if err != nil {
		t.Fatalf("browser: click %s: %v", selector, err)
	}
}

// text reads an element's visible text in one step inside the page. The
// board rebuilds a row whenever its patient changes, so a node found by one
// protocol call may be gone by the next; a single evaluation cannot race.
func text(t *testing.T, ctx context.Context, selector string) string {
	t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText : "(no element)"; })()`, selector)
	return read(t, ctx, "text of "+selector, chromedp.Evaluate[string](js))
}

// screenshot saves the whole page as name.png in $VWARD_SCREENSHOTS (the
// docs use docs/screenshots), or in a temp dir so the step still runs.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	save(t, name, read(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100)))
}

// viewportShot saves what fits in the window, for pages too long to
// capture whole.
func viewportShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	save(t, name, read(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot()))
}

func save(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := os.Getenv("VWARD_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if !filepath.IsAbs(dir) {
		// Relative to the repository root, not this package.
		dir = filepath.Join("..", "..", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// vitalsMessage is a full set of observations from a device.
func vitalsMessage(msgID string, at time.Time, rr, spo2, sbp, hr int, acvpu string, temp float64) []byte {
	return []byte(fmt.Sprintf(`{"msg_id":%q,"ts":%q,"readings":[
		{"type":"respiratory_rate","value":%d},{"type":"spo2","value":%d},
		{"type":"supplemental_oxygen","value":false},{"type":"systolic_bp","value":%d},
		{"type":"heart_rate","value":%d},{"type":"consciousness","value":%q},
		{"type":"temperature","value":%g}]}`, msgID, at.UTC().Format(time.RFC3339), rr, spo2, sbp, hr, acvpu, temp))
}

// The board in a real browser: sign in, see the ward, watch a patient
// deteriorate to high, lose the stream and get it back.
func TestBoardInBrowser(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	// A few more patients so the board looks like a ward.
	others := []struct {
		id   vward.PatientID
		name string
		rr   int
		spo2 int
		temp float64
	}{
		{"p2", "Grace Mensah", 16, 97, 36.8},
		{"p3", "Harold Price", 21, 95, 37.9},
		{"p4", "Irene Walsh", 18, 96, 37.1},
	}
	for i, o := range others {
		dev := vward.DeviceID(fmt.Sprintf("hub-%d", i+2))
		if err := s.node.Registry.Admit(ctx, devices.Patient{ID: o.id, Ward: ward, Name: o.name}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.node.Registry.AddDevice(ctx, dev, "hub"); err != nil {
			t.Fatal(err)
		}
		if err := s.node.Registry.Assign(ctx, dev, o.id, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		publish(t, s.broker.URL, string(dev)+"-c", vward.ReadingsTopic(dev),
			vitalsMessage(string(dev)+"-1", time.Now().Add(-2*time.Minute), o.rr, o.spo2, 128, 76, "A", o.temp))
	}
	if err := s.node.LoadPatients(ctx); err != nil {
		t.Fatal(err)
	}
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device),
		vitalsMessage("ox-1-1", time.Now().Add(-3*time.Minute), 17, 96, 124, 72, "A", 36.9))

	proxy := startProxy(t, strings.TrimPrefix(s.node.URL(), "http://"))
	b := browser(t)
	board := "http://" + proxy.Addr() + "/"

	step(t, b, "sign-in form", chromedp.Navigate(board), chromedp.WaitVisible("#login-form"))
	step(t, b, "sign in",
		chromedp.SendKeys("#login-username", nurse),
		chromedp.SendKeys("#login-password", password),
		chromedp.Click(`#login-form button[type="submit"]`),
		chromedp.WaitVisible(`tr[data-patient="p1"]`),
		chromedp.WaitVisible(`#conn.up`),
	)
	step(t, b, "all rows", chromedp.WaitVisible(`tr[data-patient="p4"]`))
	names := text(t, b, "#rows")
	for _, n := range []string{"Test Patient", "Grace Mensah", "Harold Price", "Irene Walsh"} {
		if !strings.Contains(names, n) {
			t.Errorf("board rows %q do not show %s", names, n)
		}
	}

	// Deterioration: NEWS2 8, high. The row turns high and goes to the top.
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device),
		vitalsMessage("ox-1-2", time.Now().Add(-10*time.Second), 26, 91, 98, 124, "C", 39.2))
	step(t, b, "row turns high", chromedp.WaitVisible(`tr[data-patient="p1"].risk-high`))
	first := read(t, b, "first row", chromedp.Evaluate[string](`document.querySelector("#rows tr").dataset.patient`))
	badge := text(t, b, `tr[data-patient="p1"] .badge`)
	if first != "p1" {
		t.Errorf("first row is %q, want the high-risk p1 on top", first)
	}
	if !strings.Contains(badge, "HIGH") {
		t.Errorf("p1 badge %q, want the word HIGH, not colour alone", badge)
	}
	// The sparkline keeps the trend through updates that do not change it:
	// an event carries the trend only when it changed. Heart rate 124 → 125
	// keeps NEWS2 where it is.
	sparkTitle := `(document.querySelector('tr[data-patient="p1"] svg.spark title') || {}).textContent || ""`
	trend := read(t, b, "sparkline", chromedp.Evaluate[string](sparkTitle))
	if !strings.HasPrefix(trend, "NEWS2 over 24 hours: ") || !strings.Contains(trend, ", ") {
		t.Errorf("p1's sparkline says %q, want two scores: before and after it deteriorated", trend)
	}
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device),
		[]byte(fmt.Sprintf(`{"msg_id":"ox-1-3","ts":%q,"readings":[{"type":"heart_rate","value":125}]}`, time.Now().Add(-5*time.Second).UTC().Format(time.RFC3339))))
	read(t, b, "heart rate update shown",
		chromedp.Poll[bool](`document.querySelector('tr[data-patient="p1"]').textContent.includes("125 bpm")`, chromedp.WithPollingTimeout(15*time.Second)))
	if got := read(t, b, "sparkline after the update", chromedp.Evaluate[string](sparkTitle)); got != trend {
		t.Errorf("after an update that kept NEWS2 as it was, p1's sparkline says %q, want %q as before", got, trend)
	}
	step(t, b, "high alert on the row", chromedp.WaitVisible(`tr[data-patient="p1"] .alert.clinical.st-raised button.ack`))
	banner := text(t, b, "#alert-banner")
	if !strings.Contains(banner, "HIGH risk: Test Patient") {
		t.Errorf("banner %q, want a HIGH risk cue naming the patient", banner)
	}
	screenshot(t, b, "board")

	// One click acknowledges; the row says who did.
	click(t, b, `tr[data-patient="p1"] .alert.clinical button.ack`)
	step(t, b, "acknowledged", chromedp.WaitVisible(`tr[data-patient="p1"] .alert.clinical.st-acknowledged`))
	if st := text(t, b, `tr[data-patient="p1"] .alert.clinical .state`); !strings.Contains(st, "acknowledged by nurse") {
		t.Errorf("alert state %q, want it to say acknowledged by nurse", st)
	}

	// The ward filter lists the ward and keeps its patients.
	rows := read(t, b, "filter by ward", chromedp.Evaluate[int](`(() => {
		const f = document.getElementById("filter-ward");
		f.value = "w1";
		f.dispatchEvent(new Event("change"));
		return document.querySelectorAll("#rows tr").length;
	})()`))
	if rows != 4 {
		t.Errorf("ward filter w1 shows %d rows, want 4", rows)
	}

	// A care plan with a ceiling of care, shown in the patient view.
	if _, err := s.node.CarePlans.Put(devices.WithActor(ctx, "dr.patel"), patient, []byte(carePlanTEP), "ReSPECT conversation"); err != nil {
		t.Fatal(err)
	}
	// Written as the CLI writes it: the node follows it within seconds.
	for deadline := time.Now().Add(10 * time.Second); s.node.Monitor.CarePlanVersion(patient) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node did not follow the care plan within 10s")
		}
	}

	// Keyboard: focus the top row and press Enter to open the patient.
	step(t, b, "open patient by keyboard",
		chromedp.Focus(`tr[data-patient="p1"]`),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(`#patient-view`),
		chromedp.WaitVisible(`#pv-charts .chart svg`),
	)
	step(t, b, "alert events on the timeline", chromedp.WaitVisible(`#tl-items .tl-alert`))
	pv := text(t, b, "#patient-view")
	for _, want := range []string{"Test Patient", "NEWS2", "Respiration rate", "SpO₂", "Temperature", "raised", "nurse", "acknowledged"} {
		if !strings.Contains(pv, want) {
			t.Errorf("patient view %q lacks %q", pv, want)
		}
	}
	step(t, b, "the care plan shown", chromedp.WaitVisible(`#cp-body .cp-ceiling`))
	plan := text(t, b, "#pv-careplan")
	for _, want := range []string{"Heart failure (from the heart failure template)", "Version 1 by dr.patel", "ReSPECT conversation",
		"Ceiling of care: NO CRITICAL CARE — for admission to hospital, not intensive care", "not for intubation",
		"Decided by dr.patel on 20 Nov 2026", "review by 20 Feb 2027", "weight every 1d by 10:00", "spo2 every 12h",
		"Weight up more than 2 kg in 3 days", "when weight up more than 2 kg from the lowest within 3d", "ESC 2021"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the care plan panel %q lacks %q", plan, want)
		}
	}
	// Each expected measurement says when it is due; none is overdue yet.
	if got := read(t, b, "the expected measurements' status", chromedp.Evaluate[int](`document.querySelectorAll("#cp-body .cp-expected .cp-due").length`)); got != 2 {
		t.Errorf("%d expected measurements say when they are due, want 2: %q", got, plan)
	}
	step(t, b, "the care plan's change on the timeline", chromedp.WaitVisible(`#tl-items .tl-careplan[data-careplan="1"]`))
	if got := text(t, b, `#tl-items .tl-careplan`); !strings.Contains(got, "Care plan version 1: Heart failure") || !strings.Contains(got, "by dr.patel") ||
		!strings.Contains(got, "Ceiling of care: NO CRITICAL CARE") || !strings.Contains(got, "Why: ReSPECT conversation") {
		t.Errorf("the timeline's care plan line reads %q", got)
	}
	// The ceiling of care comes before the rules, and above the forms.
	if got := read(t, b, "the panel's place", chromedp.Evaluate[bool](`(() => {
		const tep = document.querySelector("#cp-body .cp-tep"), rules = document.querySelector("#cp-body .cp-rules");
		return !!(tep.compareDocumentPosition(rules) & Node.DOCUMENT_POSITION_FOLLOWING) &&
			!!(document.getElementById("pv-careplan").compareDocumentPosition(document.getElementById("obs-form")) & Node.DOCUMENT_POSITION_FOLLOWING);
	})()`)); !got {
		t.Error("the treatment escalation plan is not shown first, above the forms")
	}
	screenshot(t, b, "patient")
	step(t, b, "back to the board", chromedp.Click("#pv-back"), chromedp.WaitVisible(`tr[data-patient="p1"]`))

	// Lose the stream: the board must say so rather than freeze, then
	// recover by itself.
	proxy.cut()
	step(t, b, "stale shown", chromedp.WaitVisible(`#conn.down`))
	conn := text(t, b, "#conn")
	if !strings.Contains(conn, "stale") {
		t.Errorf("connection badge %q while the stream is down, want it to say stale", conn)
	}
	screenshot(t, b, "board-stale")
	// A reading arrives while the board is cut off; it must appear after
	// the board resynchronises from the new snapshot.
	publish(t, s.broker.URL, "hub-2-c", vward.ReadingsTopic("hub-2"),
		vitalsMessage("hub-2-2", time.Now().Add(-5*time.Second), 23, 93, 128, 96, "A", 37.0)) // NEWS2 5: medium
	proxy.restore()
	step(t, b, "live again with the missed update",
		chromedp.WaitVisible(`#conn.up`),
		chromedp.WaitVisible(`tr[data-patient="p2"].risk-medium`),
	)
}

// A board of 1,000 patients: every row renders, a burst of updates across
// the ward settles to the latest value of each patient, and a patient at
// the bottom who deteriorates moves to the top. Readings go straight to the
// monitor: this tests the board, not ingest.
func TestBoardThousandPatients(t *testing.T) {
	s := start(t)
	const n = 1000
	now := time.Now().Add(-time.Minute)
	reading := func(id vward.PatientID, kind vward.ReadingKind, v float64, at time.Time) vward.Reading {
		return vward.Reading{Patient: id, Ward: ward, Kind: kind, Value: v, At: at, MsgID: fmt.Sprintf("%s-%d", id, at.UnixNano())}
	}
	set := func(id vward.PatientID, at time.Time, rr, spo2, sbp, hr float64, temp float64, acvpu vward.Level) []vward.Reading {
		return []vward.Reading{
			reading(id, vward.RespiratoryRate, rr, at), reading(id, vward.SpO2, spo2, at),
			reading(id, vward.SupplementalOxygen, 0, at), reading(id, vward.SystolicBP, sbp, at),
			reading(id, vward.HeartRate, hr, at), reading(id, vward.Consciousness, float64(acvpu), at),
			reading(id, vward.Temperature, temp, at),
		}
	}
	ids := make([]vward.PatientID, n)
	for i := range n {
		ids[i] = vward.PatientID(fmt.Sprintf("bulk-%04d", i))
		s.node.Monitor.Admit(alerting.PatientInfo{ID: ids[i], Ward: ward, Name: fmt.Sprintf("Patient %04d", i)})
		s.node.Monitor.Observe(set(ids[i], now, 16, 97, 125, 70, 36.9, vward.Alert))
	}

	b := browser(t)
	step(t, b, "sign in",
		chromedp.Navigate(s.node.URL()+"/"),
		chromedp.WaitVisible("#login-form"),
		chromedp.SendKeys("#login-username", nurse),
		chromedp.SendKeys("#login-password", password),
		chromedp.Click(`#login-form button[type="submit"]`),
		chromedp.WaitVisible(`tr[data-patient="bulk-0999"]`),
	)
	countRows := `document.querySelectorAll("#rows tr").length`
	if got := read(t, b, "row count", chromedp.Evaluate[int](countRows)); got != n+1 {
		t.Fatalf("board shows %d rows, want %d", got, n+1)
	}

	// A burst: five rounds of new pulses for every patient, the last
	// round's value 60 + i%30.
	for round := 1; round <= 5; round++ {
		at := now.Add(time.Duration(round) * time.Second)
		for i, id := range ids {
			s.node.Monitor.Observe([]vward.Reading{reading(id, vward.HeartRate, float64(60+(i+round)%30), at)})
		}
	}
	// The last patient deteriorates to high.
	s.node.Monitor.Observe(set(ids[n-1], now.Add(10*time.Second), 27, 90, 95, 128, 39.3, vward.Confused))
	top := `(() => { const tr = document.querySelector("#rows tr"); return tr ? tr.dataset.patient + " " + tr.className : "none"; })()`
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := read(t, b, "top row", chromedp.Evaluate[string](top))
		if got == "bulk-0999 risk-high" || strings.HasPrefix(got, "bulk-0999 risk-high ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("top row is %q after 60s, want bulk-0999 at high risk", got)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Every row settles on its patient's latest pulse.
	check := fmt.Sprintf(`(() => {
		const bad = [];
		document.querySelectorAll("#rows tr[data-patient^=bulk-]").forEach(tr => {
			const i = Number(tr.dataset.patient.slice(5));
			if (i === %d) return;
			const pulse = tr.children[8].querySelector("span").textContent;
			if (pulse !== (60 + (i + 5) %% 30) + " bpm") bad.push(tr.dataset.patient + "=" + pulse);
		});
		return bad.slice(0, 5).join(", ");
	})()`, n-1)
	deadline = time.Now().Add(60 * time.Second)
	for {
		bad := read(t, b, "pulses", chromedp.Evaluate[string](check))
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows not on their latest pulse after 60s: %s", bad)
		}
		time.Sleep(200 * time.Millisecond)
	}
	viewportShot(t, b, "board-1000")
}
