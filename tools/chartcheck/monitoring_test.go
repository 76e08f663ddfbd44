package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// goodMonitoring is a dashboard ConfigMap and a PrometheusRule that pass every
// rule; the table below breaks them one way at a time.
const goodMonitoring = `---
# Source: realtime/templates/dashboard.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: rt-dashboard
  labels:
    grafana_dashboard: "1"
data:
  realtime.json: |-
    {
      "title": "realtime",
      "uid": "realtime-overview",
      "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        {"name": "namespace", "type": "query", "query": {"query": "label_values(realtime_ready, namespace)"}},
        {"name": "pod", "type": "query", "query": {"query": "label_values(realtime_ready{namespace=\"$namespace\"}, pod)"}}
      ]},
      "panels": [
        {"id": 1, "type": "row", "title": "Overview", "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}, "panels": []},
        {"id": 2, "type": "timeseries", "title": "Connections",
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "gridPos": {"h": 8, "w": 12, "x": 0, "y": 1},
         "targets": [
           {"refId": "A", "expr": "sum by (pod) (realtime_connections{namespace=\"$namespace\", pod=~\"$pod\"})"},
           {"refId": "B", "expr": "sum(rate(realtime_connections_accepted_total{namespace=\"$namespace\"}[$__rate_interval]))"}
         ]},
        {"id": 3, "type": "stat", "title": "Ready",
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "gridPos": {"h": 8, "w": 12, "x": 12, "y": 1},
         "targets": [{"refId": "A", "expr": "sum(realtime_ready{namespace=\"$namespace\"})"}]}
      ]
    }
---
# Source: realtime/templates/prometheusrule.yaml
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: rt
  labels:
    release: kube-prometheus-stack
spec:
  groups:
    - name: realtime
      rules:
        - alert: RealtimeNodeNotReady
          expr: realtime_ready == 0
          for: 5m
          labels:
            severity: warning
          annotations:
            summary: node {{ $labels.pod }} not ready
            description: it answers 503 on /readyz
        - record: realtime:connections:sum
          expr: sum by (namespace) (realtime_connections)
`

func TestGoodMonitoring(t *testing.T) {
	expectOK(t, goodMonitoring, options{runbook: "# Ops\n\n### RealtimeNodeNotReady\n"},
		"chartcheck: 2 objects OK (1 ConfigMap, 1 PrometheusRule)\n")
}

func TestBadMonitoring(t *testing.T) {
	expectRefused(t, goodMonitoring, options{runbook: "### RealtimeNodeNotReady\n### Two\n"}, []mutation{
		{"unknown field in PrometheusRule", "          for: 5m", "          for: 5m\n          keepFiring: 1m",
			`PrometheusRule: json: unknown field "keepFiring"`},
		{"wrong type in PrometheusRule", "          for: 5m", "          for: [5m]", "cannot unmarshal array"},
		{"alert and record", "        - record: realtime:connections:sum", "        - alert: Two\n          record: realtime:connections:sum",
			"alert Two: needs exactly one of alert and record"},
		{"empty expr", "expr: realtime_ready == 0", `expr: ""`, "alert RealtimeNodeNotReady: expr is empty"},
		{"no severity", "            severity: warning", "            team: chat", "alert RealtimeNodeNotReady: no severity label"},
		{"no summary", "            summary: node {{ $labels.pod }} not ready\n", "", "no summary annotation"},
		{"no description", "            description: it answers 503 on /readyz\n", "", "no description annotation"},
		{"alert twice", "        - record: realtime:connections:sum\n          expr: sum by (namespace) (realtime_connections)\n",
			"        - alert: RealtimeNodeNotReady\n          expr: up == 0\n          labels: {severity: warning}\n          annotations: {summary: s, description: d}\n",
			"alert RealtimeNodeNotReady: defined twice"},
		{"no runbook section", "- alert: RealtimeNodeNotReady", "- alert: RealtimeNodeDown",
			`alert RealtimeNodeDown: the runbook has no section "### RealtimeNodeDown"`},
		{"dashboard not JSON", `"title": "realtime",`, `"title": "realtime"`, "realtime.json: not a dashboard"},
		{"dashboard without uid", `"uid": "realtime-overview",`, `"uid": "",`, `uid "": must be 1 to 40 characters`},
		{"undefined variable in expr", `pod=~\"$pod\"`, `pod=~\"$instance\"`,
			`panel 2 "Connections" query A: $instance is not a dashboard variable`},
		{"undefined variable in a variable's query", `namespace=\"$namespace\"}, pod)`, `ns=\"$ns\"}, pod)`,
			"variable pod: $ns is not a dashboard variable"},
		{"fixed datasource", `"uid": "${datasource}"},
         "gridPos": {"h": 8, "w": 12, "x": 0`, `"uid": "P1809F7CD0C75ACF3"},
         "gridPos": {"h": 8, "w": 12, "x": 0`, `panel 2 "Connections": datasource {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"} is not a variable`},
		{"duplicate panel id", `{"id": 3,`, `{"id": 2,`, `panel 2 "Ready": id must be positive and unique`},
		{"duplicate refId", `{"refId": "B",`, `{"refId": "A",`, `refId "A" is empty or not unique`},
		{"empty expr in panel", `"expr": "sum(realtime_ready{namespace=\"$namespace\"})"`, `"expr": ""`, `panel 3 "Ready" query A: no expr`},
		{"panel without queries", `"targets": [{"refId": "A", "expr": "sum(realtime_ready{namespace=\"$namespace\"})"}]`, `"targets": []`,
			`panel 3 "Ready": no queries`},
		{"overlapping panels", `"gridPos": {"h": 8, "w": 12, "x": 12, "y": 1}`, `"gridPos": {"h": 8, "w": 12, "x": 6, "y": 1}`,
			`panel 3 "Ready" overlaps panel 2 "Connections"`},
		{"off the grid", `"gridPos": {"h": 8, "w": 12, "x": 12, "y": 1}`, `"gridPos": {"h": 8, "w": 13, "x": 12, "y": 1}`,
			"is outside the 24-column grid"},
	})
}

// TestRulesOut writes the groups as a Prometheus rule file, and nothing when
// the stream has no PrometheusRule.
func TestRulesOut(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	var out, errOut bytes.Buffer
	if code := runWith(strings.NewReader(goodMonitoring), &out, &errOut, options{rulesOut: path}); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string           `json:"name"`
			Rules []map[string]any `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		t.Fatalf("%v in:\n%s", err, raw)
	}
	if len(f.Groups) != 1 || f.Groups[0].Name != "realtime" || len(f.Groups[0].Rules) != 2 {
		t.Fatalf("groups = %+v", f.Groups)
	}
	r := f.Groups[0].Rules[0]
	if r["alert"] != "RealtimeNodeNotReady" || r["expr"] != "realtime_ready == 0" || r["for"] != "5m" {
		t.Errorf("first rule = %v", r)
	}

	none := filepath.Join(dir, "none.yaml")
	if code := runWith(strings.NewReader(good), &out, &errOut, options{rulesOut: none}); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	if _, err := os.Stat(none); !os.IsNotExist(err) {
		t.Errorf("a rules file was written for a stream without PrometheusRule (stat: %v)", err)
	}
}

func TestHasHeading(t *testing.T) {
	md := "# Ops\n\n## Alerts\n\n### RealtimeNodeNotReady\n\ntext RealtimeRTMNoLeader\n#### RealtimeRedisErrors  \n"
	for name, want := range map[string]bool{
		"RealtimeNodeNotReady": true,
		"RealtimeRedisErrors":  true,
		"RealtimeRTMNoLeader":  false, // mentioned, not a heading
		"Realtime":             false,
	} {
		if got := hasHeading(md, name); got != want {
			t.Errorf("hasHeading(%q) = %v, want %v", name, got, want)
		}
	}
}
