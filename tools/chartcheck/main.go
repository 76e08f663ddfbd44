// Command chartcheck validates rendered Kubernetes manifests offline.
//
// It reads a multi-document YAML stream on standard input (the output of
// `helm template`), decodes every document strictly into its k8s.io/api type,
// or prometheus-operator's monitoring/v1 type for a ServiceMonitor or
// PrometheusRule (unknown fields, mistyped values, duplicate keys and unknown
// kinds fail), and
// then applies the chart's sanity rules: every workload container has readiness
// and liveness probes and a locked-down security context, the grace period
// exceeds REALTIME_DRAIN_PERIOD, and references between objects (selectors,
// ports, ConfigMap and Secret keys, $(VAR) expansions) resolve.
//
//	helm template rt helm/realtime -f values.yaml | go run ./tools/chartcheck
//
// With -env-names FILE (for example the output of `realtime help serve`), every
// REALTIME_* variable the manifests set must be named in FILE: the node ignores
// variables it does not know, so a misspelt one would be lost silently.
//
// A PrometheusRule is decoded into prometheus-operator's monitoring/v1 type;
// each alert must carry a severity and summary and description annotations,
// and with -runbook FILE (the operations guide) have a "### <alert>" section
// there. With -rules-out FILE the rule groups are written to FILE as a
// Prometheus rule file, for `promtool check rules` and `promtool test rules`.
// A ConfigMap key ending in .json is checked as a Grafana dashboard.
//
// With -schema and -readme it instead checks that the README documents every
// value the chart's values.schema.json declares:
//
//	go run ./tools/chartcheck -schema helm/realtime/values.schema.json -readme helm/realtime/README.md
//
// It exits 1 and lists every problem when any is found. It is its own module so
// that the node's module does not depend on k8s.io/api.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

func main() {
	schema := flag.String("schema", "", "values.schema.json whose values -readme must document")
	readme := flag.String("readme", "", "README.md that documents the values of -schema")
	envNames := flag.String("env-names", "", "file naming every REALTIME_* variable the node reads (e.g. `realtime help serve` output)")
	runbook := flag.String("runbook", "", "Markdown file with a \"### <alert>\" section for every alert of a PrometheusRule")
	rulesOut := flag.String("rules-out", "", "write the PrometheusRules' groups to this file as a Prometheus rule file (none: no file)")
	flag.Parse()
	if *schema != "" || *readme != "" {
		os.Exit(runDocs(*schema, *readme, os.Stdout, os.Stderr))
	}
	opts := options{rulesOut: *rulesOut}
	if *runbook != "" {
		text, err := os.ReadFile(*runbook)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chartcheck:", err)
			os.Exit(2)
		}
		opts.runbook = string(text)
	}
	if *envNames != "" {
		text, err := os.ReadFile(*envNames)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chartcheck:", err)
			os.Exit(2)
		}
		if opts.knownEnv = envNamesIn(string(text)); len(opts.knownEnv) == 0 {
			fmt.Fprintf(os.Stderr, "chartcheck: %s names no REALTIME_* variable\n", *envNames)
			os.Exit(2)
		}
	}
	os.Exit(runWith(os.Stdin, os.Stdout, os.Stderr, opts))
}

// envNamesIn returns the REALTIME_* names that appear in text.
func envNamesIn(text string) map[string]bool {
	known := map[string]bool{}
	for _, name := range envNameRE.FindAllString(text, -1) {
		known[name] = true
	}
	return known
}

var envNameRE = regexp.MustCompile(`\bREALTIME_[A-Z0-9_]+\b`)

func runDocs(schema, readme string, stdout, stderr io.Writer) int {
	if schema == "" || readme == "" {
		fmt.Fprintln(stderr, "chartcheck: -schema and -readme go together")
		return 2
	}
	missing, err := undocumented(schema, readme)
	if err != nil {
		fmt.Fprintln(stderr, "chartcheck:", err)
		return 1
	}
	for _, path := range missing {
		fmt.Fprintf(stderr, "chartcheck: %s does not document `%s`\n", readme, path)
	}
	if len(missing) > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "chartcheck: %s documents every value of %s\n", readme, schema)
	return 0
}

// options are the checks' settings beyond the stream itself.
type options struct {
	knownEnv map[string]bool // when not nil, the REALTIME_* variables the node reads
	runbook  string          // when not empty, the text that must have a section per alert
	rulesOut string          // when not empty, where to write the PrometheusRules' groups
}

// run checks the stream on in; knownEnv, when not nil, lists the REALTIME_*
// variables the node reads.
func run(in io.Reader, stdout, stderr io.Writer, knownEnv map[string]bool) int {
	return runWith(in, stdout, stderr, options{knownEnv: knownEnv})
}

// runWith checks the stream on in and, when it passes and opts.rulesOut is
// set, writes the rule groups there.
func runWith(in io.Reader, stdout, stderr io.Writer, opts options) int {
	docs, errs := check(in, opts)
	for _, err := range errs {
		fmt.Fprintln(stderr, "chartcheck:", err)
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "chartcheck: %d problem(s)\n", len(errs))
		return 1
	}
	fmt.Fprintf(stdout, "chartcheck: %d objects OK (%s)\n", len(docs), summary(docs))
	if opts.rulesOut != "" {
		wrote, err := writeRules(docs, opts.rulesOut)
		if err != nil {
			fmt.Fprintln(stderr, "chartcheck:", err)
			return 1
		}
		if wrote {
			fmt.Fprintf(stdout, "chartcheck: rule groups written to %s\n", opts.rulesOut)
		}
	}
	return 0
}

// check decodes the stream and, when every document decoded, lints it (the
// cross-object rules would only echo a document that failed to decode).
func check(in io.Reader, opts options) ([]doc, []error) {
	docs, errs := decodeStream(in)
	switch {
	case len(errs) > 0:
		return docs, errs
	case len(docs) == 0:
		return nil, []error{fmt.Errorf("no documents on input")}
	}
	return docs, lint(docs, opts)
}

func summary(docs []doc) string {
	count := map[string]int{}
	for _, d := range docs {
		count[d.kind]++
	}
	parts := make([]string, 0, len(count))
	for k, n := range count {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
