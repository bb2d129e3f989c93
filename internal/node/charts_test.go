package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/observations"
)

// publishAll publishes messages as one device client, in order.
func publishAll(t *testing.T, brokerURL, clientID, topic string, payloads [][]byte) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	for _, p := range payloads {
		if tok := c.Publish(topic, 1, false, p); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("device publish: %v", tok.Error())
		}
	}
}

// chartFacts is what the browser test reads of the charts in one step.
type chartFacts struct {
	Range      string   `json:"range"`
	Ticks      []string `json:"ticks"`
	PulseLines int      `json:"pulse_lines"`
	PulseDots  int      `json:"pulse_dots"`
	TempLines  int      `json:"temp_lines"`
	TempDots   int      `json:"temp_dots"`
	TempDotX   float64  `json:"temp_dot_x"`
	Right      float64  `json:"right"`
	Manual     []string `json:"manual"`
	Bands      int      `json:"bands"`
	Now        int      `json:"now"`
	ScoreMarks int      `json:"score_marks"`
	Admitted   int      `json:"admitted"`
}

const readCharts = `(() => {
	const c = k => document.querySelector('#pv-charts .chart[data-kind="' + k + '"]');
	const all = (k, sel) => c(k) ? [...c(k).querySelectorAll(sel)] : [];
	const dot = all("temperature", "circle.mark.device")[0];
	return JSON.stringify({
		range: document.getElementById("pv-charts").dataset.range || "",
		ticks: all("heart_rate", "text.tick").map(t => t.textContent),
		pulse_lines: all("heart_rate", "polyline.trace").length,
		pulse_dots: all("heart_rate", "circle.mark.device").length,
		temp_lines: all("temperature", "polyline.trace").length,
		temp_dots: all("temperature", "circle.mark.device").length,
		temp_dot_x: dot ? Number(dot.getAttribute("cx")) : -1,
		right: Charts.GEOM.right,
		manual: all("respiratory_rate", "path.mark.manual").map(m => m.textContent),
		bands: all("heart_rate", "rect.band").length,
		now: all("heart_rate", "line.now").length,
		score_marks: all("news2", ".mark.score").length,
		admitted: all("heart_rate", "line.admitted").length,
	});
})()`

func charts(t *testing.T, b context.Context) chartFacts {
	t.Helper()
	var f chartFacts
	if err := json.Unmarshal([]byte(read(t, b, "the charts", chromedp.Evaluate[string](readCharts))), &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// The patient view's charts in a real browser: a time axis with labels
// and a now mark, a range selector the keyboard works, a lone reading drawn
// as a point, a gap in the pulse as two lines, and the telephone's entry
// as a manual mark that says who entered it.
func TestChartsInBrowser(t *testing.T) {
	s := start(t)
	now := time.Now()
	// A pulse every 2 minutes, off for 24 minutes in the middle, and one
	// temperature in the gap. The patient was admitted (start) just before
	// the last pulse.
	var msgs [][]byte
	for m := 58; m >= 0; m -= 2 {
		if m < 40 && m > 16 {
			continue
		}
		msgs = append(msgs, []byte(fmt.Sprintf(`{"msg_id":"ox-1-hr-%d","ts":%q,"readings":[{"type":"heart_rate","value":%d}]}`,
			m, now.Add(-time.Duration(m)*time.Minute).UTC().Format(time.RFC3339), 70+m%7)))
	}
	msgs = append(msgs, []byte(fmt.Sprintf(`{"msg_id":"ox-1-t","ts":%q,"readings":[{"type":"temperature","value":37.9}]}`,
		now.Add(-30*time.Minute).UTC().Format(time.RFC3339))))
	publishAll(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device), msgs)
	// Three days of 4-hourly spot checks before, from a cuff and an
	// oximeter, as the history holds them: for the picture.
	var earlier []vward.Reading
	for h := 69; h >= 5; h -= 4 {
		at := now.Add(-time.Duration(h) * time.Hour)
		k := float64(h % 9)
		for kind, v := range map[vward.ReadingKind]float64{vward.SystolicBP: 112 + 2*k, vward.DiastolicBP: 68 + k, vward.HeartRate: 78 + k,
			vward.SpO2: 93 + float64((h/4)%5), vward.SupplementalOxygen: float64(h / 40 % 2)} {
			earlier = append(earlier, vward.Reading{Device: "cuff-1", Patient: patient, Ward: ward, Kind: kind, Value: v, At: at})
		}
	}
	if err := s.node.History.WriteReadings(context.Background(), earlier); err != nil {
		t.Fatal(err)
	}
	if _, err := s.node.Observations.Enter(devices.WithActor(context.Background(), nurse), patient, observations.Input{
		Source: "telephone", Readings: map[string]json.RawMessage{"respiratory_rate": json.RawMessage("22")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every reading stored", func() bool {
		rs, err := s.node.History.Readings(context.Background(), patient, now.Add(-72*time.Hour), now.Add(time.Hour))
		return err == nil && len(rs) == len(msgs)+1+len(earlier)
	})

	b := browser(t)
	signInBoard(t, b, s.node.URL(), viewer)
	click(t, b, `tr[data-patient="p1"]`)
	step(t, b, "open the patient", chromedp.WaitVisible(`#pv-charts .chart[data-kind="heart_rate"] svg`))
	day := charts(t, b)
	if day.Range != "24h" || len(day.Ticks) < 3 || day.Now != 1 || day.Bands == 0 {
		t.Errorf("24 hours: range %q, axis labels %q, now marks %d, bands %d; want labels, a now mark and NEWS2 bands", day.Range, day.Ticks, day.Now, day.Bands)
	}
	if day.PulseLines != 2 {
		t.Errorf("the pulse with a 24-minute gap is drawn as %d lines, want 2", day.PulseLines)
	}
	if day.TempDots != 1 || day.TempLines != 0 {
		t.Errorf("a single temperature: %d dots and %d lines, want one dot and no line", day.TempDots, day.TempLines)
	}
	if len(day.Manual) != 1 || !strings.Contains(day.Manual[0], "telephone by nurse") || !strings.Contains(day.Manual[0], "22") {
		t.Errorf("the telephone's respiratory rate is marked %q, want one manual mark saying who entered it", day.Manual)
	}
	if day.ScoreMarks == 0 {
		t.Error("the NEWS2 chart has no score marked")
	}

	// The keyboard: the range is a group of radio buttons; left arrow
	// from 24 h chooses 6 h.
	step(t, b, "choose 6 hours by keyboard", chromedp.Focus(`input[name="chart-range"][value="24h"]`), chromedp.KeyEvent(kb.ArrowLeft))
	read(t, b, "the 6-hour charts", chromedp.Poll[bool](`document.getElementById("pv-charts").dataset.range === "6h"`,
		chromedp.WithPollingTimeout(15*time.Second)))
	six := charts(t, b)
	if strings.Join(six.Ticks, "|") == strings.Join(day.Ticks, "|") || len(six.Ticks) < 3 {
		t.Errorf("6 hours labels the axis %q, as 24 hours did (%q)", six.Ticks, day.Ticks)
	}
	// Half an hour ago in a 6-hour frame: well inside it, not at its edge.
	if six.TempDots != 1 || six.TempLines != 0 || six.TempDotX <= 0 || six.TempDotX > six.Right-20 {
		t.Errorf("the single temperature over 6 hours: %d dots at x %g (right edge %g), %d lines", six.TempDots, six.TempDotX, six.Right, six.TempLines)
	}

	step(t, b, "choose 72 hours", chromedp.Click(`input[name="chart-range"][value="72h"]`))
	read(t, b, "the 72-hour charts", chromedp.Poll[bool](`document.getElementById("pv-charts").dataset.range === "72h"`,
		chromedp.WithPollingTimeout(15*time.Second)))
	screenshot(t, b, "charts")

	step(t, b, "choose 7 days", chromedp.Click(`input[name="chart-range"][value="7d"]`))
	read(t, b, "the 7-day charts", chromedp.Poll[bool](`document.getElementById("pv-charts").dataset.range === "7d"`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if week := charts(t, b); strings.Join(week.Ticks, "|") == strings.Join(day.Ticks, "|") || len(week.Ticks) < 6 {
		t.Errorf("7 days labels the axis %q, want a label a day", week.Ticks)
	}
	// Admitted at the start of the test: the stay is shown over 6 hours
	// with the admission marked, and only the pulse measured since.
	step(t, b, "choose the whole stay", chromedp.Click(`input[name="chart-range"][value="stay"]`))
	read(t, b, "the stay's charts", chromedp.Poll[bool](`document.getElementById("pv-charts").dataset.range === "stay"`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if stay := charts(t, b); stay.Admitted != 1 || stay.PulseDots != 1 || stay.PulseLines != 0 || len(stay.Ticks) < 3 {
		t.Errorf("the whole stay: %d admission marks, %d pulse dots and %d lines, axis labels %q; want the admission and one dot",
			stay.Admitted, stay.PulseDots, stay.PulseLines, stay.Ticks)
	}

	// The page's own helpers, on cases the data above does not reach.
	helpers := read(t, b, "the chart helpers", chromedp.Evaluate[string](`(() => {
		const H = 3600e3, now = Date.now();
		const day = Charts.timeTicks(now - 24 * H, now, 8), week = Charts.timeTicks(now - 168 * H, now, 8), hour = Charts.timeTicks(now - 0.5 * H, now, 8);
		const local = t => new Date(t.at);
		const pts = [];
		for (let i = 0; i < 10000; i++) pts.push({ t: now - (10000 - i) * 60e3, v: 70 + (i % 5) });
		pts[4321].v = 190; pts[1234].v = 20;
		const x = t => (t - pts[0].t) / (now - pts[0].t) * 418;
		const kept = Charts.thin(pts, x);
		return JSON.stringify([
			day.step / H, day.ticks.every(t => local(t).getMinutes() === 0 && local(t).getHours() % 3 === 0),
			week.step / H, week.ticks.length, week.ticks.every(t => local(t).getHours() === 0),
			hour.step / 60e3, hour.ticks.length > 0,
			kept.length < 2000, kept.some(p => p.v === 190), kept.some(p => p.v === 20),
		]);
	})()`))
	if want := `[3,true,24,7,true,15,true,true,true,true]`; helpers != want {
		t.Errorf("timeTicks and thin: %s, want %s ([day step h, on the hour; week step h, ticks, at midnight; half-hour step min, any; thinned, highest, lowest])", helpers, want)
	}
}
