package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
	"github.com/vward/vward/web"
)

// needsOf reads a row's needs as "parameter@last_at" ("parameter" when
// never measured), for comparing.
func needsOf(v *web.PatientView) []string {
	out := []string{}
	for _, n := range v.Needs {
		s := n.Parameter.String()
		if !n.LastAt.IsZero() {
			s += "@" + n.LastAt.UTC().Format(time.RFC3339)
		}
		out = append(out, s)
	}
	return out
}

// untilRow reads the board stream until p1's row satisfies ok, and
// returns it.
func untilRow(t *testing.T, ws *websocket.Conn, what string, ok func(*web.PatientView) bool) *web.PatientView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_ = ws.SetReadDeadline(deadline)
		var m boardMessage
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("%s: read board stream: %v", what, err)
		}
		if m.Type == "patient" && m.Patient != nil && m.Patient.Patient == patient && ok(m.Patient) {
			return m.Patient
		}
	}
	t.Fatalf("%s: no such row of %s within 20s", what, patient)
	return nil
}

// The REST API and the stream say the same of what a patient's NEWS2
// needs: every parameter before any reading; after the devices' readings,
// what no device measures, never measured; after a telephone set of three
// hours ago, those answers with their time (stale); after a fresh one,
// nothing.
func TestNeedsOverRESTAndStream(t *testing.T) {
	s := start(t)
	nurseAPI := signIn(t, s.node.URL(), nurse)
	ws := nurseAPI.dialBoard()
	snap := readBoard(t, ws)
	if len(snap.Patients) != 1 {
		t.Fatalf("snapshot: %+v", snap)
	}
	all := []string{"respiratory_rate", "spo2", "supplemental_oxygen", "systolic_bp", "heart_rate", "consciousness", "temperature"}
	if got := needsOf(&snap.Patients[0]); !reflect.DeepEqual(got, all) {
		t.Errorf("before any reading the snapshot's needs are %v, want all seven, never measured", got)
	}
	agree := func(what string, want []string) {
		t.Helper()
		row := untilRow(t, ws, what, func(v *web.PatientView) bool { return reflect.DeepEqual(needsOf(v), want) })
		var rest web.PatientView
		if code := nurseAPI.do("GET", "/api/v1/patients/"+string(patient), nil, &rest); code != http.StatusOK {
			t.Fatalf("%s: GET the patient: %d", what, code)
		}
		if got := needsOf(&rest); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: REST needs %v, the stream's %v", what, got, needsOf(row))
		}
		if complete := row.News2 != nil && row.News2.Complete; complete != (len(want) == 0) {
			t.Errorf("%s: needs %v but NEWS2 %+v", what, want, row.News2)
		}
	}

	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device), partialMessage("ox-1-1", time.Now().Add(-time.Minute)))
	agree("the devices' readings", []string{"respiratory_rate", "supplemental_oxygen", "consciousness"})

	morning := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	var answer struct {
		Entry   observations.View `json:"entry"`
		Patient *web.PatientView  `json:"patient"`
	}
	if code := nurseAPI.do("POST", "/api/v1/patients/"+string(patient)+"/observations", map[string]any{
		"source": "telephone", "measured_at": morning.Format(time.RFC3339),
		"readings": map[string]any{"consciousness": "A", "supplemental_oxygen": false},
	}, &answer); code != http.StatusCreated {
		t.Fatalf("enter this morning's answers: %d", code)
	}
	stale := morning.Format(time.RFC3339)
	want := []string{"respiratory_rate", "supplemental_oxygen@" + stale, "consciousness@" + stale}
	if answer.Patient == nil || !reflect.DeepEqual(needsOf(answer.Patient), want) {
		t.Errorf("the entry's answer says the patient needs %v, want %v", needsOf(answer.Patient), want)
	}
	agree("this morning's telephone answers", want)

	if code := nurseAPI.do("POST", "/api/v1/patients/"+string(patient)+"/observations", map[string]any{
		"source": "telephone", "readings": map[string]any{"respiratory_rate": 16, "consciousness": "A", "supplemental_oxygen": false},
	}, nil); code != http.StatusCreated {
		t.Fatalf("enter a telephone set now: %d", code)
	}
	agree("a telephone set now", []string{})
}

// The board says, on the row, that a patient's ACVPU is stale and since
// when, and the patient view says what completes the NEWS2; entering it
// from the patient view makes the row complete.
func TestNeedsInBrowser(t *testing.T) {
	s := start(t)
	ctx := devices.WithActor(context.Background(), nurse)
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device), partialMessage("ox-1-1", time.Now().Add(-time.Minute)))
	morning := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Minute)
	for _, in := range []observations.Input{
		{Source: "telephone", MeasuredAt: morning.Format(time.RFC3339), Readings: map[string]json.RawMessage{"consciousness": json.RawMessage(`"A"`)}},
		{Source: "telephone", Readings: map[string]json.RawMessage{"respiratory_rate": json.RawMessage("16"), "supplemental_oxygen": json.RawMessage("false")}},
	} {
		if _, err := s.node.Observations.Enter(ctx, patient, in); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "only ACVPU is needed", func() bool {
		row, _ := s.node.Monitor.Patient(patient)
		needs := row.Needs()
		return len(needs) == 1 && needs[0].Parameter == news2.Consciousness && needs[0].LastAt.Equal(morning)
	})

	b := browser(t)
	signInBoard(t, b, s.node.URL(), nurse)
	read(t, b, "the row says what it needs", chromedp.Poll[bool](`!!document.querySelector('tr[data-patient="p1"] .needs')`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if got := text(t, b, `tr[data-patient="p1"] .needs`); got != "needs ACVPU (3h ago)" {
		t.Errorf("the row's needs line says %q, want %q", got, "needs ACVPU (3h ago)")
	}
	acvpu := read(t, b, "the ACVPU cell", chromedp.Evaluate[string](`(() => {
		const td = document.querySelector('tr[data-patient="p1"]').children[9];
		return td.className + " | " + td.innerText.replace(/\s+/g, " ") + " | " + td.title;
	})()`))
	if !strings.HasPrefix(acvpu, "stale | A 3h ago | ACVPU is stale: measured ") {
		t.Errorf("the ACVPU cell is %q, want it marked stale with its age", acvpu)
	}
	if got := read(t, b, "the needs filter", chromedp.Evaluate[string](`(() => {
		document.getElementById("filter-needs").click();
		return [...document.querySelectorAll("#rows tr")].map(tr => tr.dataset.patient).join(",");
	})()`)); got != "p1" {
		t.Errorf("with 'needs observations only' the board shows %q, want p1", got)
	}
	screenshot(t, b, "board-needs")

	step(t, b, "open the patient", chromedp.Click(`tr[data-patient="p1"]`), chromedp.WaitVisible("#obs-form"))
	line := text(t, b, "#pv-score .to-complete")
	if want := "To complete NEWS2: ACVPU (last 3h ago, "; !strings.HasPrefix(line, want) {
		t.Errorf("the patient view says %q, want it to begin %q", line, want)
	}
	step(t, b, "enter ACVPU",
		chromedp.SetValue("#obs-consciousness", "A"),
		chromedp.SetValue("#obs-source", "telephone"),
		chromedp.Click(`#obs-form button[type="submit"]`))
	read(t, b, "the view says nothing more is needed", chromedp.Poll[bool](`!document.querySelector("#pv-score .to-complete")`,
		chromedp.WithPollingTimeout(15*time.Second)))
	step(t, b, "back to the board", chromedp.Click("#pv-back"), chromedp.WaitVisible(`#board`))
	// The filter still asks for patients who need observations: p1 is gone.
	read(t, b, "p1 left the filtered board", chromedp.Poll[bool](`!document.querySelector('tr[data-patient="p1"]')`,
		chromedp.WithPollingTimeout(15*time.Second)))
	step(t, b, "show everyone", chromedp.Click("#filter-needs"), chromedp.WaitVisible(`tr[data-patient="p1"]`))
	got := read(t, b, "the complete row", chromedp.Evaluate[string](`(() => {
		const tr = document.querySelector('tr[data-patient="p1"]');
		return [patients.get("p1").news2.complete, !!tr.querySelector(".needs, .partial, td.stale")].join(",");
	})()`))
	if got != "true,false" {
		t.Errorf("after the entry the row is [complete, shows needs] %s, want [true,false]", got)
	}
	row, _ := s.node.Monitor.Patient(patient)
	if !row.Result.Complete || len(row.Needs()) != 0 {
		t.Errorf("the monitor scores %+v, needs %+v; want complete", row.Result, row.Needs())
	}
}
