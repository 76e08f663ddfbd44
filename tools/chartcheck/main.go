// Command chartcheck validates rendered Kubernetes manifests offline.
//
// It reads a multi-document YAML stream on standard input (the output of
// `helm template`), decodes every document strictly into its k8s.io/api type
// (unknown fields, mistyped values, duplicate keys and unknown kinds fail), and
// then applies the chart's sanity rules: every workload container has readiness
// and liveness probes and a locked-down security context, the grace period
// exceeds REALTIME_DRAIN_PERIOD, and references between objects (selectors,
// ports, ConfigMap and Secret keys, $(VAR) expansions) resolve.
//
//	helm template rt helm/realtime -f values.yaml | go run ./tools/chartcheck
//
// It exits 1 and lists every problem when any is found. It is its own module so
// that the node's module does not depend on k8s.io/api.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr))
}

func run(in io.Reader, stdout, stderr io.Writer) int {
	docs, errs := check(in)
	for _, err := range errs {
		fmt.Fprintln(stderr, "chartcheck:", err)
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "chartcheck: %d problem(s)\n", len(errs))
		return 1
	}
	fmt.Fprintf(stdout, "chartcheck: %d objects OK (%s)\n", len(docs), summary(docs))
	return 0
}

// check decodes the stream and, when every document decoded, lints it (the
// cross-object rules would only echo a document that failed to decode).
func check(in io.Reader) ([]doc, []error) {
	docs, errs := decodeStream(in)
	switch {
	case len(errs) > 0:
		return docs, errs
	case len(docs) == 0:
		return nil, []error{fmt.Errorf("no documents on input")}
	}
	return docs, lint(docs)
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
