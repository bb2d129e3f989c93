package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	"go.yaml.in/yaml/v4"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/journal"
	"github.com/vward/vward/mqttsource"
	"github.com/vward/vward/notify"
)

// runPromtool runs promtool in dir and returns its output, failing the test
// unless it exits 0.
func runPromtool(t *testing.T, dir string, stdin []byte, args ...string) string {
	t.Helper()
	bin := testenv.Promtool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// prometheus.yml is a configuration Prometheus accepts, and its rule files
// with it.
func TestPrometheusConfig(t *testing.T) {
	out := runPromtool(t, "prometheus", nil, "check", "config", "prometheus.yml")
	if !strings.Contains(out, "1 rule files found") {
		t.Errorf("promtool check config found no rule file:\n%s", out)
	}
}

// rulesFile is deploy/prometheus/rules.yml as promtool reads it.
type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) rulesFile {
	t.Helper()
	var rf rulesFile
	readYAML(t, "prometheus/rules.yml", &rf)
	if len(rf.Groups) == 0 {
		t.Fatal("rules.yml has no groups")
	}
	return rf
}

// The alert rules parse, say how urgent they are and what to do, and pass
// their unit tests, in which every alert both fires and stays quiet.
func TestPrometheusRules(t *testing.T) {
	runPromtool(t, "prometheus", nil, "check", "rules", "rules.yml")
	runPromtool(t, "prometheus", nil, "test", "rules", "rules_test.yml")

	var tests struct {
		Tests []struct {
			Name       string `yaml:"name"`
			AlertTests []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "prometheus/rules_test.yml", &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertTests {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
	}
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if r.For == "" {
				t.Errorf("%s has no for: one bad scrape would page someone", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s has no %s annotation", r.Alert, a)
				}
			}
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("rules_test.yml: %s fires in a test: %v, stays quiet in one: %v; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
}

// Every runbook_url points at a section that exists.
func TestRunbookLinks(t *testing.T) {
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			link := r.Annotations["runbook_url"]
			if link == "" {
				continue
			}
			file, anchor, ok := strings.Cut(link, "#")
			if !ok || !strings.HasPrefix(file, "docs/") {
				t.Errorf("%s: runbook_url %q, want docs/<page>.md#<section>", r.Alert, link)
				continue
			}
			if !slices.Contains(headingAnchors(t, filepath.Join("..", file)), anchor) {
				t.Errorf("%s: runbook_url %q: %s has no such section", r.Alert, link, file)
			}
		}
	}
}

// headingAnchors returns the anchors GitHub gives a Markdown file's headings.
func headingAnchors(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var anchors []string
	inCode := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var a strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				a.WriteByte('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				a.WriteRune(r)
			}
		}
		anchors = append(anchors, a.String())
	}
	return anchors
}

// datasource is one provisioned Grafana data source.
type datasource struct {
	Name     string `yaml:"name"`
	UID      string `yaml:"uid"`
	Type     string `yaml:"type"`
	URL      string `yaml:"url"`
	JSONData struct {
		Version       string `yaml:"version"`
		Organization  string `yaml:"organization"`
		DefaultBucket string `yaml:"defaultBucket"`
	} `yaml:"jsonData"`
}

func provisionedDatasources(t *testing.T) map[string]datasource {
	t.Helper()
	files, err := filepath.Glob("grafana/provisioning/datasources/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no data source files in grafana/provisioning/datasources (%v)", err)
	}
	all := map[string]datasource{}
	for _, f := range files {
		var doc struct {
			Datasources []datasource `yaml:"datasources"`
		}
		readYAML(t, f, &doc)
		for _, ds := range doc.Datasources {
			if ds.UID == "" {
				t.Errorf("%s: data source %s has no uid, so dashboards cannot name it", f, ds.Name)
			}
			all[ds.UID] = ds
		}
	}
	return all
}

// The InfluxDB data source is InfluxDB 2.7's Flux API on org and bucket
// vward, as docker-compose.yml sets them up.
func TestGrafanaDatasources(t *testing.T) {
	var prom, influx int
	for _, ds := range provisionedDatasources(t) {
		switch ds.Type {
		case "prometheus":
			prom++
		case "influxdb":
			influx++
			if ds.JSONData.Version != "Flux" || ds.JSONData.Organization != "vward" || ds.JSONData.DefaultBucket != "vward" {
				t.Errorf("%s: jsonData %+v, want version Flux, organization and defaultBucket vward", ds.Name, ds.JSONData)
			}
		default:
			t.Errorf("%s: type %q; the dashboards use prometheus and influxdb", ds.Name, ds.Type)
		}
	}
	if prom != 1 || influx != 1 {
		t.Errorf("%d Prometheus and %d InfluxDB data sources, want one of each", prom, influx)
	}
}

// dashboard is what the tests read of a Grafana dashboard's JSON.
type dashboard struct {
	file       string
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Datasource *dsRef          `json:"datasource"`
			Query      json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int      `json:"id"`
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Datasource *dsRef   `json:"datasource"`
	Targets    []target `json:"targets"`
	Panels     []panel  `json:"panels"` // a collapsed row's
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	RefID      string `json:"refId"`
	Datasource *dsRef `json:"datasource"`
	Expr       string `json:"expr"`  // PromQL
	Query      string `json:"query"` // Flux
}

// query is one query of a dashboard, with where it comes from.
type query struct {
	where, dsType, text string
}

func readDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob("grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in grafana/dashboards (%v)", err)
	}
	var ds []dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := dashboard{file: f}
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ds = append(ds, d)
	}
	return ds
}

// queries returns every query of the dashboard: panels' targets and query
// variables, each with its data source's type.
func (d dashboard) queries(t *testing.T) []query {
	t.Helper()
	var qs []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, tg := range p.Targets {
				ds := p.Datasource
				if tg.Datasource != nil {
					ds = tg.Datasource
				}
				text := tg.Expr
				if ds != nil && ds.Type == "influxdb" {
					text = tg.Query
				}
				if ds == nil {
					t.Errorf("%s: panel %q target %s has no data source", d.file, p.Title, tg.RefID)
					continue
				}
				qs = append(qs, query{fmt.Sprintf("%s panel %q %s", d.file, p.Title, tg.RefID), ds.Type, text})
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" || v.Datasource == nil {
			continue
		}
		var s string
		if json.Unmarshal(v.Query, &s) != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Errorf("%s: variable %s: query %s: %v", d.file, v.Name, v.Query, err)
			}
			s = obj.Query
		}
		qs = append(qs, query{fmt.Sprintf("%s variable %s", d.file, v.Name), v.Datasource.Type, s})
	}
	return qs
}

// Each dashboard parses, has a uid and title of its own, and every panel,
// query and variable uses a provisioned data source.
func TestDashboards(t *testing.T) {
	provisioned := provisionedDatasources(t)
	uids, titles := map[string]string{}, map[string]string{}
	for _, d := range readDashboards(t) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid %q, title %q; want both", d.file, d.UID, d.Title)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %q", d.file, other, d.UID)
		}
		if other, dup := titles[d.Title]; dup {
			t.Errorf("%s and %s share title %q", d.file, other, d.Title)
		}
		uids[d.UID], titles[d.Title] = d.file, d.file
		check := func(where string, ref *dsRef) {
			if ref == nil {
				t.Errorf("%s: %s has no data source", d.file, where)
				return
			}
			ds, ok := provisioned[ref.UID]
			if !ok {
				t.Errorf("%s: %s uses data source uid %q, which is not provisioned", d.file, where, ref.UID)
			} else if ds.Type != ref.Type {
				t.Errorf("%s: %s names %q as type %q; it is %q", d.file, where, ref.UID, ref.Type, ds.Type)
			}
		}
		panels, ids := 0, map[int]bool{}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if ids[p.ID] {
					t.Errorf("%s: panel id %d twice", d.file, p.ID)
				}
				ids[p.ID] = true
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				panels++
				check(fmt.Sprintf("panel %q", p.Title), p.Datasource)
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", d.file, p.Title)
				}
				for _, tg := range p.Targets {
					if tg.Datasource != nil {
						check(fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), tg.Datasource)
					}
					if strings.TrimSpace(tg.Expr+tg.Query) == "" {
						t.Errorf("%s: panel %q target %s is empty", d.file, p.Title, tg.RefID)
					}
				}
			}
		}
		walk(d.Panels)
		if panels == 0 {
			t.Errorf("%s has no panels", d.file)
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				check("variable "+v.Name, v.Datasource)
			}
		}
	}
	for _, want := range []string{"vward-operator", "vward-clinical-history"} {
		if uids[want] == "" {
			t.Errorf("no dashboard with uid %s", want)
		}
	}
}

// grafanaPromQL replaces Grafana's macros and this dashboard's variables
// with what Grafana would send, so promtool can parse the expression.
var grafanaPromQL = strings.NewReplacer(
	"$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h",
	`=~"$instance"`, `=~".*"`,
)

// promQL returns every PromQL expression of the dashboards, Grafana's
// macros replaced.
func promQL(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, d := range readDashboards(t) {
		for _, q := range d.queries(t) {
			if q.dsType == "prometheus" {
				q.text = grafanaPromQL.Replace(q.text)
				if strings.Contains(q.text, "$") {
					t.Errorf("%s: a variable or macro this test does not know: %s", q.where, q.text)
				}
				qs = append(qs, q)
			}
		}
	}
	return qs
}

// Every PromQL expression of the dashboards parses: promtool checks them
// as recording rules. (label_values() is Grafana's, not PromQL: its
// argument is checked instead.)
func TestDashboardPromQLParses(t *testing.T) {
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for i, q := range promQL(t) {
		expr := q.text
		if m := labelValues.FindStringSubmatch(expr); m != nil {
			expr = m[1]
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: expr})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboards.yml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runPromtool(t, dir, nil, "check", "rules", "dashboards.yml")
	if want := fmt.Sprintf("%d rules found", len(rules)); !strings.Contains(out, want) {
		t.Errorf("promtool: %s, want %q", out, want)
	}
}

// The clinical-history dashboard's Flux queries run on real InfluxDB
// against readings as vward writes them, and each finds what its panel
// shows: the tags and fields named in them are the ones vward writes.
// (InfluxDB 1.8.10, as the other tests; compose runs 2.7, whose Flux
// reads the same.)
func TestDashboardFluxQueries(t *testing.T) {
	influx := testenv.StartInflux(t)
	store := history.NewInflux(history.InfluxConfig{URL: influx.URL, Token: influx.Token, Org: influx.Org, Bucket: influx.Bucket})
	defer store.Close()
	now := time.Now().UTC().Truncate(time.Second)
	var rs []vward.Reading
	for i, at := range []time.Time{now.Add(-2 * time.Hour), now.Add(-time.Hour)} {
		for _, k := range vward.ReadingKinds {
			rs = append(rs, vward.Reading{Device: "ox-1", Patient: "p1", Ward: "w1", MsgID: fmt.Sprint("m", i), Kind: k, Value: 1, At: at})
		}
	}
	rs = append(rs,
		vward.Reading{Device: "ox-2", Patient: "p2", Ward: "w2", MsgID: "m2", Kind: vward.SpO2, Value: 97, At: now.Add(-time.Hour)},
		vward.Reading{Device: "ox-3", Patient: "p3", MsgID: "m3", Kind: vward.SpO2, Value: 97, At: now.Add(-time.Hour)}, // no ward
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.WriteReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}

	// Grafana's Flux macros and the dashboard's variables, as Grafana
	// substitutes them before sending the query.
	grafanaFlux := strings.NewReplacer(
		"v.timeRangeStart", now.Add(-24*time.Hour).Format(time.RFC3339),
		"v.timeRangeStop", now.Add(time.Minute).Format(time.RFC3339),
		"v.windowPeriod", "1m",
		"v.defaultBucket", fmt.Sprintf("%q", influx.Bucket),
		"${ward}", "w1", "${patient}", "p1",
	)
	fieldFilter := regexp.MustCompile(`r\._field == "(\w+)"`)
	grafanaMacro := regexp.MustCompile(`\bv\.\w+`)
	var flux []query
	for _, d := range readDashboards(t) {
		for _, q := range d.queries(t) {
			if q.dsType == "influxdb" {
				flux = append(flux, q)
			}
		}
	}
	if len(flux) == 0 {
		t.Fatal("no Flux queries in the dashboards")
	}
	for _, q := range flux {
		text := grafanaFlux.Replace(q.text)
		if strings.Contains(text, "${") || grafanaMacro.MatchString(text) {
			t.Errorf("%s: a variable or macro this test does not know:\n%s", q.where, text)
			continue
		}
		rows, err := influx.QueryContext(ctx, text)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, text)
			continue
		}
		if len(rows) == 0 {
			t.Errorf("%s: no rows, want p1's readings\n%s", q.where, text)
			continue
		}
		var want []string
		for _, m := range fieldFilter.FindAllStringSubmatch(q.text, -1) {
			want = append(want, m[1])
		}
		var values []string
		for _, row := range rows {
			if f, ok := row["_field"].(string); ok && !slices.Contains(want, f) {
				t.Errorf("%s: row of field %q, want only %q", q.where, f, want)
			}
			if v, ok := row["patient"].(string); ok && v != "p1" {
				t.Errorf("%s: a row of patient %q, want only p1's", q.where, v)
			}
			if v, ok := row["ward"].(string); ok && v != "w1" {
				t.Errorf("%s: a row of ward %q, want only w1's", q.where, v)
			}
			if v, ok := row["_value"].(string); ok {
				values = append(values, v)
			}
		}
		for _, f := range want {
			if !slices.ContainsFunc(rows, func(r map[string]any) bool { return r["_field"] == f }) {
				t.Errorf("%s: no %s rows: vward writes no field of that name?", q.where, f)
			}
		}
		// A variable lists the wards that have readings (not p3's, on
		// none), and the chosen ward's patients.
		sort.Strings(values)
		for suffix, want := range map[string][]string{"variable ward": {"w1", "w2"}, "variable patient": {"p1"}} {
			if strings.HasSuffix(q.where, suffix) && !slices.Equal(values, want) {
				t.Errorf("%s: %q, want %q", q.where, values, want)
			}
		}
	}
}

// metricNames finds the metric names in PromQL: vward's own, and the Go
// runtime's and process's its registry also exports.
var metricNames = regexp.MustCompile(`\b(?:vward|go|process)_[a-zA-Z0-9_]+\b`)

// selector finds a metric name and its label matchers in PromQL; matcher
// the equality matchers among them, or a sample's labels in the text
// format.
var (
	selector = regexp.MustCompile(`\b((?:vward|go|process)_[a-zA-Z0-9_]+)\{([^}]*)\}`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"`)
)

// targetLabels are added by Prometheus when it scrapes, not by vward.
var targetLabels = map[string]bool{"job": true, "instance": true}

// The metrics vward serves pass `promtool check metrics`, every metric the
// dashboards and alert rules use is among them, and docs/monitoring.md
// lists exactly vward's own.
//
// Histograms appear without observations and gauges and plain counters
// always; a metric with labels appears once a label value is used, so a
// node is started and used first: signed in, the board open, a reading that
// raises an alert and a message that is rejected.
func TestExportedMetrics(t *testing.T) {
	scrape := usedNodeMetrics(t)

	t.Run("promtool check metrics", func(t *testing.T) {
		runPromtool(t, ".", []byte(scrape), "check", "metrics")
	})

	types := map[string]string{}
	labelValues := map[string]bool{} // "name label value" of every sample
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} `)
	for _, line := range strings.Split(scrape, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
		if m := sample.FindStringSubmatch(line); m != nil {
			for _, lv := range matcher.FindAllStringSubmatch(m[2], -1) {
				labelValues[m[1]+" "+lv[1]+" "+lv[2]] = true
			}
		}
	}
	exported := func(name string) bool {
		if types[name] != "" {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				if tp := types[base]; tp == "histogram" || tp == "summary" && suffix != "_bucket" {
					return true
				}
			}
		}
		return false
	}

	t.Run("dashboards and rules", func(t *testing.T) {
		used := map[string][]string{}
		exprs := promQL(t)
		for _, g := range readRules(t).Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, query{where: "rules.yml " + r.Alert, text: r.Expr})
			}
		}
		for _, q := range exprs {
			for _, n := range metricNames.FindAllString(q.text, -1) {
				used[n] = append(used[n], q.where)
			}
			// A label matched to a value must have that value: a typo, or
			// a value vward does not use, would match nothing for ever.
			for _, sel := range selector.FindAllStringSubmatch(q.text, -1) {
				for _, lv := range matcher.FindAllStringSubmatch(sel[2], -1) {
					if targetLabels[lv[1]] || !exported(sel[1]) {
						continue
					}
					if !labelValues[sel[1]+" "+lv[1]+" "+lv[2]] {
						t.Errorf("%s: %s{%s=%q}: vward exports no such series", q.where, sel[1], lv[1], lv[2])
					}
				}
			}
		}
		if len(used) == 0 {
			t.Fatal("found no metric names in the dashboards and rules")
		}
		var missing []string
		for n, where := range used {
			if !exported(n) {
				missing = append(missing, fmt.Sprintf("%s (%s)", n, strings.Join(slices.Compact(slices.Sorted(slices.Values(where))), "; ")))
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("used but not exported by vward:\n  %s", strings.Join(missing, "\n  "))
		}
	})

	t.Run("docs/monitoring.md", func(t *testing.T) {
		doc, err := os.ReadFile("../docs/monitoring.md")
		if err != nil {
			t.Fatal(err)
		}
		documented := map[string]bool{}
		row := regexp.MustCompile("(?m)^\\| `(vward_[a-z0-9_]+)")
		for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
			documented[m[1]] = true
		}
		for n := range types {
			if strings.HasPrefix(n, "vward_") && !documented[n] {
				t.Errorf("vward exports %s (%s); docs/monitoring.md's table does not list it", n, types[n])
			}
		}
		for n := range documented {
			if types[n] == "" {
				t.Errorf("docs/monitoring.md lists %s; vward does not export it", n)
			}
		}
	})
}

// usedNodeMetrics starts a node as `vward serve` runs one, against real
// Mosquitto and InfluxDB with the journal between them, uses it, and
// returns its /metrics.
func usedNodeMetrics(t *testing.T) string {
	t.Helper()
	const (
		ward    vward.WardID    = "w1"
		patient vward.PatientID = "p1"
		device  vward.DeviceID  = "ox-1"
		nurse                   = "nurse"
		pass                    = "correct horse battery"
	)
	broker := testenv.StartMosquitto(t)
	influx := testenv.StartInflux(t)
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.Open(ctx, node.Config{
		DataDir:  t.TempDir(),
		HTTPAddr: "127.0.0.1:0",
		MQTT:     mqttsource.Config{URL: broker.URL, ClientID: "vward-metrics-test"},
		Influx:   &history.InfluxConfig{URL: influx.URL, Token: influx.Token, Org: influx.Org, Bucket: influx.Bucket},
		Journal:  &journal.Config{},
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		cancel()
		t.Fatalf("open node: %v", err)
	}
	for _, step := range []func() error{
		func() error { return n.Registry.AddWard(ctx, devices.Ward{ID: ward, Name: "Respiratory"}) },
		func() error {
			return n.Registry.Admit(ctx, devices.Patient{ID: patient, Ward: ward, Name: "Test Patient"})
		},
		func() error {
			return n.Registry.AddClinician(ctx, devices.Clinician{Username: nurse, Role: "clinician", Wards: []vward.WardID{ward}}, pass)
		},
		func() error { _, err := n.Registry.AddDevice(ctx, device, "pulse oximeter"); return err },
		func() error { return n.Registry.Assign(ctx, device, patient, time.Now().Add(-time.Hour)) },
		func() error { return n.LoadPatients(ctx) },
		// A channel, so that the notify metrics have their series.
		func() error {
			return n.Notify.Store().PutChannel(ctx, notify.ChannelConfig{Name: "pager", Kind: notify.KindWebhook,
				URL: "http://127.0.0.1:9/vward", Secret: "a-signing-key-for-the-test"})
		},
	} {
		if err := step(); err != nil {
			cancel()
			n.Close()
			t.Fatalf("set up the registry: %v", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("node did not stop within 30s of cancellation")
		}
		n.Close()
	})
	base := n.URL()
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for code, body := get("/readyz"); code != http.StatusOK; code, body = get("/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("node not ready within 20s: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// HTTP: signed out and in.
	get("/healthz")
	if code, _ := get("/api/v1/patients"); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/patients signed out: %d, want 401", code)
	}
	jar, _ := cookiejar.New(nil)
	client.Jar = jar
	resp, err := client.Post(base+"/api/v1/login", "application/json",
		strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, nurse, pass)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	if code, _ := get("/api/v1/patients"); code != http.StatusOK {
		t.Errorf("GET /api/v1/patients: %d", code)
	}

	// The board, open.
	hdr := http.Header{}
	for _, c := range jar.Cookies(resp.Request.URL) {
		hdr.Add("Cookie", c.String())
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/api/v1/stream", hdr)
	if err != nil {
		t.Fatalf("open the board: %v", err)
	}
	defer ws.Close()
	readBoard := func() string {
		_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		var m struct {
			Type string `json:"type"`
		}
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("read the board: %v", err)
		}
		return m.Type
	}
	if typ := readBoard(); typ != "snapshot" {
		t.Fatalf("board's first message %q, want snapshot", typ)
	}

	// A reading that scores NEWS2 8 (an alert), and one that is rejected.
	dev := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("ox-1-metrics"))
	if tok := dev.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer dev.Disconnect(100)
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Minute).Format(time.RFC3339)
	for _, payload := range []string{
		`{"msg_id":"ox-1-000001","ts":"` + at + `","readings":[
			{"type":"respiratory_rate","value":22},{"type":"spo2","value":93},
			{"type":"supplemental_oxygen","value":false},{"type":"systolic_bp","value":105},
			{"type":"heart_rate","value":115},{"type":"consciousness","value":"A"},
			{"type":"temperature","value":38.3}],"battery":0.8}`,
		`{"msg_id":"ox-1-000002","ts":"` + at + `","readings":[{"type":"spo2","value":"ninety"}]}`,
	} {
		if tok := dev.Publish(vward.ReadingsTopic(device), 1, false, payload); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	for readBoard() != "patient" {
	}

	acked := regexp.MustCompile(`(?m)^vward_ingest_messages_acked_total (\d+)`)
	deadline = time.Now().Add(20 * time.Second)
	for {
		code, body := get("/metrics")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: %d\n%s", code, body)
		}
		if m := acked.FindStringSubmatch(body); m != nil && m[1] == "2" {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("vward did not acknowledge both messages; /metrics:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
