package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/rtm/rtmsim"
)

// chartDir is the Helm chart, whose dashboard and alerting rules query the
// node's metrics.
const chartDir = "../../helm/realtime"

// TestChartQueriesNameExportedMetrics starts a real node (`serve --dev` on
// Redis, with the RTM bridge on a simulated provider, so that every optional
// family is there), scrapes its /metrics, and checks every query of the
// chart's Grafana dashboard and PrometheusRule against it: each metric name
// is a family the node exports (a histogram's _bucket, _sum and _count
// included); each label a selector or a by/without clause names is one of
// those metrics' labels (or a target label Prometheus adds); and each value an
// exact matcher compares with is one the node exports. A renamed metric or
// label breaks this test instead of silently emptying a panel or an alert.
func TestChartQueriesNameExportedMetrics(t *testing.T) {
	families := scrapeRealNode(t)

	dashboard, err := os.ReadFile(filepath.Join(chartDir, "dashboards/realtime.json"))
	if err != nil {
		t.Fatal(err)
	}
	queries, err := dashboardQueries(dashboard)
	if err != nil {
		t.Fatalf("dashboards/realtime.json: %v", err)
	}
	if len(queries) < 20 {
		t.Fatalf("dashboards/realtime.json: %d queries found, expected the dashboard's panels' (more than 20)", len(queries))
	}
	for _, q := range queries {
		checkQuery(t, "dashboards/realtime.json", q, families)
	}

	// The rule template is Helm text, not YAML: its expressions, and then
	// each line, so that every metric it mentions (annotations too) exists.
	rules, err := os.ReadFile(filepath.Join(chartDir, "templates/prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	exprs := ruleExprs(string(rules))
	if len(exprs) < 8 {
		t.Fatalf("templates/prometheusrule.yaml: %d expr found, expected one per alert (8)", len(exprs))
	}
	for _, e := range exprs {
		checkQuery(t, "templates/prometheusrule.yaml expr", e, families)
	}
	for i, line := range strings.Split(string(rules), "\n") {
		checkQuery(t, fmt.Sprintf("templates/prometheusrule.yaml:%d", i+1), line, families)
	}
}

// family is what a scrape says of one metric family.
type family struct {
	typ    dto.MetricType
	labels map[string]map[string]bool // label name -> values seen
}

// scrapeRealNode runs `realtime serve --dev` on a Redis of its own with the
// RTM bridge pointed at a simulator, and returns its /metrics by family name.
func scrapeRealNode(t *testing.T) map[string]family {
	t.Helper()
	redis := redistest.Start(t, redistest.Options{})
	sim, err := rtmsim.New(rtmsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close()
		hs.Close()
	})
	simURL := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"

	sigs, out, errb, _, done := startServe(t, env{"REALTIME_REDIS_URL": redis.URL()},
		"--dev", "--log-format", "json", "--drain-period", "100ms", "--node-id", "n-metrics",
		"--redis-prefix", redistest.Prefix(t), "--rtm-url", simURL)
	waitOutput(t, errb, "/api/stats", done)
	m := regexp.MustCompile(`(http://\S+)/api/stats`).FindStringSubmatch(errb.String())
	if m == nil {
		t.Fatalf("no admin address in the dev banner:\n%s", errb)
	}
	defer stopServe(t, sigs, done, out)

	res, err := http.Get(m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", res.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	families := make(map[string]family, len(mfs))
	for name, mf := range mfs {
		f := family{typ: mf.GetType(), labels: map[string]map[string]bool{}}
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				if f.labels[lp.GetName()] == nil {
					f.labels[lp.GetName()] = map[string]bool{}
				}
				f.labels[lp.GetName()][lp.GetValue()] = true
			}
		}
		families[name] = f
	}
	return families
}

// lookup resolves a name a query uses to its family: the family itself, or a
// histogram's or summary's _bucket, _sum or _count series (le on _bucket).
func lookup(families map[string]family, name string) (family, bool) {
	if f, ok := families[name]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := families[base]
		if !ok || (f.typ != dto.MetricType_HISTOGRAM && f.typ != dto.MetricType_SUMMARY) {
			return family{}, false
		}
		if suffix == "_bucket" && f.typ == dto.MetricType_HISTOGRAM {
			labels := map[string]map[string]bool{"le": nil}
			for k, v := range f.labels {
				labels[k] = v
			}
			f.labels = labels
		}
		return f, true
	}
	return family{}, false
}

// targetLabels are added by Prometheus (and the ServiceMonitor) at scrape
// time, so they are on every series but not in the node's own output.
var targetLabels = map[string]bool{"namespace": true, "job": true, "pod": true, "instance": true,
	"service": true, "endpoint": true, "container": true}

var (
	// metricName matches the families a node exports: its own and the Go
	// client's runtime and process collectors.
	metricName = regexp.MustCompile(`\b(?:realtime|go|process)_[a-zA-Z0-9_]*[a-zA-Z0-9]\b`)
	// matcher is one label matcher inside a selector's braces.
	matcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	// grouping is a by (...) or without (...) clause.
	grouping = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// checkQuery checks one query (or any text holding queries) against the
// scraped families.
func checkQuery(t *testing.T, where, q string, families map[string]family) {
	t.Helper()
	var used []family
	missing := false
	for _, loc := range metricName.FindAllStringIndex(q, -1) {
		name := q[loc[0]:loc[1]]
		f, ok := lookup(families, name)
		if !ok {
			t.Errorf("%s: %s is not a metric the node exports (query: %s)", where, name, q)
			missing = true
			continue
		}
		used = append(used, f)
		rest := q[loc[1]:]
		if !strings.HasPrefix(rest, "{") {
			continue
		}
		end := strings.Index(rest, "}")
		if end < 0 {
			t.Errorf("%s: unclosed selector after %s", where, name)
			continue
		}
		for _, m := range matcher.FindAllStringSubmatch(rest[1:end], -1) {
			label, op, value := m[1], m[2], m[3]
			if targetLabels[label] {
				continue
			}
			values, ok := f.labels[label]
			switch {
			case !ok:
				t.Errorf("%s: %s has no label %q (it has %s)", where, name, label, labelNames(f))
			case (op == "=" || op == "!=") && !strings.Contains(value, "$") && values != nil && !values[value]:
				t.Errorf("%s: %s{%s} never takes the value %q (query: %s)", where, name, label, value, q)
			}
		}
	}
	if missing {
		return // its labels are unknown; the name is reported
	}
	for _, m := range grouping.FindAllStringSubmatch(q, -1) {
		for _, label := range strings.Split(m[1], ",") {
			label = strings.TrimSpace(label)
			if label == "" || targetLabels[label] {
				continue
			}
			found := false
			for _, f := range used {
				if _, ok := f.labels[label]; ok {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: grouping by %q, a label of none of the query's metrics (query: %s)", where, label, q)
			}
		}
	}
}

func labelNames(f family) string {
	names := make([]string, 0, len(f.labels))
	for k := range f.labels {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// dashboardQueries returns the PromQL of a Grafana dashboard: every panel's
// targets (rows' nested panels included) and every query variable.
func dashboardQueries(raw []byte) ([]string, error) {
	type panel struct {
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var db struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &db); err != nil {
		return nil, err
	}
	var queries []string
	var walk func([]json.RawMessage) error
	walk = func(ps []json.RawMessage) error {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			for _, t := range p.Targets {
				queries = append(queries, t.Expr)
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(db.Panels); err != nil {
		return nil, err
	}
	for _, v := range db.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if err := json.Unmarshal(v.Query, &s); err != nil {
				return nil, err
			}
			q.Query = s
		}
		queries = append(queries, q.Query)
	}
	return queries, nil
}

// ruleExprs returns the expr values of the rule template: a one-line
// "expr: ..." or an indented "expr: |-" block.
func ruleExprs(text string) []string {
	var exprs []string
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if rest != "|-" && rest != "|" && rest != ">-" {
			exprs = append(exprs, rest)
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		var block []string
		for i+1 < len(lines) {
			next := lines[i+1]
			if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
				break
			}
			block = append(block, strings.TrimSpace(next))
			i++
		}
		exprs = append(exprs, strings.Join(block, " "))
	}
	return exprs
}
