package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// The monitoring objects: a PrometheusRule (decoded into prometheus-operator's
// own monitoring/v1 type) and Grafana dashboards shipped as ConfigMaps (every
// data key ending in .json is taken for a dashboard).

// lintPrometheusRule checks what Prometheus and Alertmanager cannot: every
// alert is named once, carries a severity and the summary and description
// annotations, and, when runbook (the text of the operations guide) is not
// empty, has a "### <alert name>" section there. Prometheus itself checks the
// expressions (promtool check rules on the file -rules-out writes).
func lintPrometheusRule(d doc, pr *monitoringv1.PrometheusRule, runbook string, fail func(doc, string, ...any)) {
	if len(pr.Spec.Groups) == 0 {
		fail(d, "no rule groups")
	}
	groups := map[string]bool{}
	alerts := map[string]bool{}
	for _, g := range pr.Spec.Groups {
		if groups[g.Name] {
			fail(d, "group %q twice", g.Name)
		}
		groups[g.Name] = true
		if len(g.Rules) == 0 {
			fail(d, "group %q has no rules", g.Name)
		}
		for i, r := range g.Rules {
			where := fmt.Sprintf("group %q rule %d", g.Name, i)
			if r.Alert != "" {
				where = fmt.Sprintf("alert %s", r.Alert)
			}
			switch {
			case (r.Alert == "") == (r.Record == ""):
				fail(d, "%s: needs exactly one of alert and record", where)
				continue
			case r.Expr.Type != intstr.String || strings.TrimSpace(r.Expr.StrVal) == "":
				fail(d, "%s: expr is empty or not a string", where)
			}
			if r.Record != "" {
				continue
			}
			if alerts[r.Alert] {
				fail(d, "%s: defined twice", where)
			}
			alerts[r.Alert] = true
			if r.Labels["severity"] == "" {
				fail(d, "%s: no severity label", where)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					fail(d, "%s: no %s annotation", where, a)
				}
			}
			if runbook != "" && !hasHeading(runbook, r.Alert) {
				fail(d, "%s: the runbook has no section \"### %s\"", where, r.Alert)
			}
		}
	}
}

// hasHeading reports whether markdown has a heading line whose text is title.
func hasHeading(markdown, title string) bool {
	for _, line := range strings.Split(markdown, "\n") {
		if t, ok := strings.CutPrefix(line, "#"); ok && strings.TrimSpace(strings.TrimLeft(t, "#")) == title {
			return true
		}
	}
	return false
}

// ruleFile is a Prometheus rule file, what promtool check rules reads.
type ruleFile struct {
	Groups []monitoringv1.RuleGroup `json:"groups"`
}

// writeRules writes the groups of every PrometheusRule in docs to path as one
// Prometheus rule file; it reports false, writing nothing, when there is none.
func writeRules(docs []doc, path string) (bool, error) {
	var f ruleFile
	for _, d := range docs {
		if pr, ok := d.obj.(*monitoringv1.PrometheusRule); ok {
			f.Groups = append(f.Groups, pr.Spec.Groups...)
		}
	}
	if len(f.Groups) == 0 {
		return false, nil
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		return false, fmt.Errorf("rules: %w", err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return false, fmt.Errorf("rules: %w", err)
	}
	return true, nil
}

// dashboard is the part of a Grafana dashboard's JSON model that the checks
// read; Grafana ignores what it does not know, so the decode is not strict.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"` // a string, or an object holding one
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    *gridPos        `json:"gridPos"`
	Targets    []struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// variableRef finds Grafana variable references: $name, ${name} and ${name:format}.
var variableRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// lintDashboards checks every .json key of a ConfigMap as a Grafana dashboard:
// it parses; it has a title and a uid Grafana accepts; panel ids are unique;
// panels fit the 24-column grid without overlapping; every panel but a row has
// a query with an expression, a unique refId, and its data source taken from a
// variable (so the dashboard works in any Grafana); and every $variable an
// expression or data source names is defined (or one of Grafana's $__ ones).
func lintDashboards(d doc, cm *corev1.ConfigMap, fail func(doc, string, ...any)) {
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		if strings.HasSuffix(k, ".json") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := func(format string, args ...any) { fail(d, "%s: %s", k, fmt.Sprintf(format, args...)) }
		var db dashboard
		if err := json.Unmarshal([]byte(cm.Data[k]), &db); err != nil {
			f("not a dashboard: %v", err)
			continue
		}
		lintDashboard(db, f)
	}
}

func lintDashboard(db dashboard, f func(string, ...any)) {
	if db.Title == "" {
		f("no title")
	}
	if db.UID == "" || len(db.UID) > 40 {
		f("uid %q: must be 1 to 40 characters", db.UID)
	}
	vars := map[string]bool{}
	for _, v := range db.Templating.List {
		if v.Name == "" || vars[v.Name] {
			f("variable %q: name is empty or not unique", v.Name)
		}
		vars[v.Name] = true
	}
	checkRefs := func(where, text string) {
		for _, m := range variableRef.FindAllStringSubmatch(text, -1) {
			if !vars[m[1]] && !strings.HasPrefix(m[1], "__") {
				f("%s: $%s is not a dashboard variable", where, m[1])
			}
		}
	}
	for _, v := range db.Templating.List {
		checkRefs("variable "+v.Name, string(v.Query))
	}
	ids := map[int]bool{}
	var placed []panel
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if p.ID <= 0 || ids[p.ID] {
				f("%s: id must be positive and unique", where)
			}
			ids[p.ID] = true
			switch g := p.GridPos; {
			case g == nil:
				f("%s: no gridPos", where)
			case g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24:
				f("%s: gridPos %+v is outside the 24-column grid", where, *g)
			default:
				for _, q := range placed {
					if overlaps(*g, *q.GridPos) {
						f("%s overlaps panel %d %q", where, q.ID, q.Title)
					}
				}
				placed = append(placed, p)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if !strings.Contains(string(p.Datasource), "$") {
				f("%s: datasource %s is not a variable", where, p.Datasource)
			}
			checkRefs(where+" datasource", string(p.Datasource))
			if len(p.Targets) == 0 {
				f("%s: no queries", where)
			}
			refIDs := map[string]bool{}
			for _, t := range p.Targets {
				if t.RefID == "" || refIDs[t.RefID] {
					f("%s: refId %q is empty or not unique", where, t.RefID)
				}
				refIDs[t.RefID] = true
				if strings.TrimSpace(t.Expr) == "" {
					f("%s query %s: no expr", where, t.RefID)
				}
				checkRefs(fmt.Sprintf("%s query %s", where, t.RefID), t.Expr+string(t.Datasource))
			}
		}
	}
	walk(db.Panels)
	if len(ids) == 0 {
		f("no panels")
	}
}

func overlaps(a, b gridPos) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}
