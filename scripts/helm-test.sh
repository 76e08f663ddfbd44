#!/usr/bin/env bash
# Offline checks of the Helm chart in helm/realtime. No cluster, no network
# (beyond a first `go install` of helm and the checker's modules).
#
#   bash scripts/helm-test.sh
#
# 1. tools/chartcheck's own unit tests.
# 2. For every values file in helm/realtime/ci/*.yaml (ci/00-defaults.yaml is
#    empty: the chart's defaults, what `helm install chat ./helm/realtime` gets):
#    `helm lint --strict`, then
#    `helm template` piped into tools/chartcheck, which decodes each object
#    strictly into its k8s.io/api type and applies the chart's sanity rules;
#    every REALTIME_* variable the chart sets must be one that `realtime help
#    serve` lists (the node ignores unknown ones); ./cmd/realtime must build.
#    A PrometheusRule is decoded into prometheus-operator's monitoring/v1 type,
#    each alert must have a "### <alert>" runbook section in docs/OPERATIONS.md,
#    and its groups pass `promtool check rules`; the render of
#    ci/NAME.yaml passes the unit tests of ci/promtool/NAME.test.yaml
#    (`promtool test rules`), if there is one. A dashboard
#    ConfigMap's JSON is checked too. (That the dashboard's and the rules'
#    queries name metrics a real node exports is a Go test:
#    cmd/realtime TestChartQueriesNameExportedMetrics.) promtool is required
#    (Debian's prometheus package; `make deps` installs it): without it the
#    promtool steps fail, they are never skipped.
# 3. For every values file in helm/realtime/ci/bad/*.yaml: `helm template` must
#    fail with an error containing the text after "# expect:" on the file's first
#    line (so it fails for the intended reason), and `helm lint --strict` must
#    fail too, unless a line "# lint: accepts" says why not (helm lint reports a
#    template's fail() only as [INFO]; the schema's errors do fail it).
# 4. `helm package` works, and README.md documents every value of the schema.
#
# Helm: $HELM_BIN if set, else helm in `go env GOBIN` (or GOPATH/bin), installed
# there with `go install` when missing (about 5 minutes from a cold module cache).
# KUBE_VERSION (default 1.30.0) is passed to lint and template: a helm built with
# `go install` otherwise assumes Kubernetes 1.20, below the chart's kubeVersion.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
chart=$root/helm/realtime
kube_version=${KUBE_VERSION:-1.30.0}
helm_version=v3.22.0
start=$SECONDS
passed=0
failed=0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() {
	passed=$((passed + 1))
	printf 'ok    %s\n' "$1"
}
fail() {
	failed=$((failed + 1))
	printf 'FAIL  %s\n' "$1"
	if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/      /'; fi
}
summary() {
	echo "helm-test: $((SECONDS - start))s"
	echo "helm-test: $passed passed, $failed failed"
}

# --- tools ---------------------------------------------------------------

helm=${HELM_BIN:-}
if [ -z "$helm" ]; then
	gobin=$(go env GOBIN)
	[ -n "$gobin" ] || gobin=$(go env GOPATH)/bin
	helm=$gobin/helm
	if [ ! -x "$helm" ]; then
		echo "helm-test: installing helm $helm_version into $gobin (minutes on a cold module cache)"
		GOFLAGS=-buildvcs=false go install "helm.sh/helm/v3/cmd/helm@$helm_version"
	fi
fi
echo "helm-test: $("$helm" version --short 2>/dev/null || echo "$helm") ($helm), kube-version $kube_version"

promtool=${PROMTOOL_BIN:-$(command -v promtool || true)}
# promtool_ok fails step $1 when there is no promtool: make deps installs it.
promtool_ok() {
	if [ -n "$promtool" ]; then
		return 0
	fi
	fail "$1" "promtool not found: run make deps (it installs Debian's prometheus package)"
	return 1
}

checker=$tmp/chartcheck
if out=$(cd "$root/tools/chartcheck" && GOFLAGS=-buildvcs=false go test ./... 2>&1); then
	pass "tools/chartcheck: go test"
else
	fail "tools/chartcheck: go test" "$out"
fi
if ! out=$(cd "$root/tools/chartcheck" && GOFLAGS=-buildvcs=false go build -o "$checker" . 2>&1); then
	fail "tools/chartcheck: go build" "$out"
	summary
	exit 1
fi

# The variables the node reads, from its own help.
env_args=()
if out=$(cd "$root" && GOFLAGS=-buildvcs=false go build -o "$tmp/realtime" ./cmd/realtime 2>&1) &&
	out=$("$tmp/realtime" help serve 2>&1) && grep -q 'REALTIME_' <<<"$out"; then
	printf '%s\n' "$out" >"$tmp/serve-help.txt"
	env_args=(-env-names "$tmp/serve-help.txt")
	pass "cmd/realtime: help serve lists the REALTIME_* variables"
else
	fail "cmd/realtime: build and help serve (needed to check variable names)" "$out"
fi

# --- values that must render -------------------------------------------------

shopt -s nullglob
good=("$chart"/ci/*.yaml)
bad=("$chart"/ci/bad/*.yaml)
if [ ${#good[@]} -eq 0 ] || [ ${#bad[@]} -eq 0 ]; then
	fail "values files" "no files in $chart/ci/*.yaml or $chart/ci/bad/*.yaml"
fi

for values in "${good[@]}"; do
	name=ci/$(basename "$values")
	if out=$("$helm" lint --strict --kube-version "$kube_version" "$chart" -f "$values" 2>&1); then
		pass "$name: helm lint --strict"
	else
		fail "$name: helm lint --strict" "$out"
	fi
	render=$tmp/render.yaml
	if ! out=$("$helm" template realtime-ci "$chart" --namespace realtime-ci \
		--kube-version "$kube_version" -f "$values" 2>&1 >"$render"); then
		fail "$name: helm template" "$out"
		continue
	fi
	rules=$tmp/rules/$(basename "$values")
	mkdir -p "$tmp/rules"
	rm -f "$rules"
	if out=$("$checker" "${env_args[@]}" -runbook "$root/docs/OPERATIONS.md" -rules-out "$rules" <"$render" 2>&1); then
		out=${out%%$'\n'*} # the objects line, not the rules file's
		pass "$name: helm template | chartcheck: ${out#chartcheck: }"
	else
		fail "$name: helm template | chartcheck" "$out"
	fi
	if [ -f "$rules" ] && promtool_ok "$name: promtool check rules"; then
		if out=$("$promtool" check rules "$rules" 2>&1); then
			pass "$name: promtool check rules: $(grep -o '[0-9]* rules found' <<<"$out")"
		else
			fail "$name: promtool check rules" "$out"
		fi
	fi
done

# --- alert unit tests ------------------------------------------------------------

# ci/promtool/NAME.test.yaml tests the alerts of ci/NAME.yaml's render.
for test in "$chart"/ci/promtool/*.test.yaml; do
	base=$(basename "$test" .test.yaml)
	name=ci/promtool/$(basename "$test")
	rules=$tmp/rules/$base.yaml
	if [ ! -f "$rules" ]; then
		fail "$name" "ci/$base.yaml rendered no PrometheusRule"
		continue
	fi
	promtool_ok "$name: promtool test rules" || continue
	rm -rf "$tmp/promtool" && mkdir -p "$tmp/promtool"
	cp "$rules" "$tmp/promtool/rules.yaml"
	cp "$test" "$tmp/promtool/"
	if out=$(cd "$tmp/promtool" && "$promtool" test rules "$(basename "$test")" 2>&1); then
		pass "$name: promtool test rules on ci/$base.yaml's alerts"
	else
		fail "$name: promtool test rules" "$out"
	fi
done

# --- values the chart must refuse ---------------------------------------------

for values in "${bad[@]}"; do
	name=ci/bad/$(basename "$values")
	expect=$(sed -n '1s/^# expect: *//p' "$values")
	if [ -z "$expect" ]; then
		fail "$name" 'first line must be "# expect: <text of the error>"'
		continue
	fi
	if out=$("$helm" template realtime-ci "$chart" --kube-version "$kube_version" -f "$values" 2>&1 >/dev/null); then
		fail "$name: helm template accepted it"
	elif ! grep -qF -- "$expect" <<<"$out"; then
		fail "$name: helm template failed, but not with \"$expect\"" "$out"
	else
		pass "$name: helm template refuses it ($expect)"
	fi
	if grep -q '^# lint: accepts' "$values"; then
		continue
	fi
	if out=$("$helm" lint --strict --kube-version "$kube_version" "$chart" -f "$values" 2>&1); then
		fail "$name: helm lint --strict accepted it"
	else
		pass "$name: helm lint --strict refuses it"
	fi
done

# --- packaging and docs --------------------------------------------------------

if out=$("$helm" package "$chart" --destination "$tmp" 2>&1); then
	pass "helm package"
else
	fail "helm package" "$out"
fi
if out=$("$checker" -schema "$chart/values.schema.json" -readme "$chart/README.md" 2>&1); then
	pass "README.md documents every value"
else
	fail "README.md documents every value" "$out"
fi

summary
[ "$failed" -eq 0 ]
