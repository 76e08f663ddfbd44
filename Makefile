# realtime: build, test and measure.
#
#   make test    everything CI runs (installs what it needs on a fresh Debian machine)
#   make build   bin/realtime (and bin/bench, bin/rtmsim when their commands exist)
#   make fuzz    every fuzz target for $(FUZZTIME) each
#   make bench   Go benchmarks with allocations
#   make lint    gofmt check and go vet

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 60s
# Minimizing each new interesting input may otherwise take a minute and
# stall the run; bound it.
FUZZMINIMIZETIME ?= 5s
# apt-get through sudo when not root (CI and fresh machines run as root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

.PHONY: all build test deps fuzz bench lint clean

all: build

build:
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/realtime ./cmd/realtime
	@for c in bench rtmsim; do \
		if compgen -G "cmd/$$c/*.go" >/dev/null; then \
			echo "$(GO) build -o bin/$$c ./cmd/$$c"; $(GO) build -ldflags '$(LDFLAGS)' -o bin/$$c ./cmd/$$c; \
		fi; \
	done

# deps installs what the tests need: redis-server and redis-cli (engine and
# cluster tests start their own on free ports; Redis 7 for sharded pub/sub), node and npm, the e2e package's
# socket.io-client and puppeteer-core (pinned by e2e/package-lock.json), Debian's chromium for the admin
# console's browser test (puppeteer-core drives it; no browser download), promtool (Debian's
# prometheus package; its server is stopped where systemd started it), and curl.
deps:
	@command -v redis-server >/dev/null || { $(APT) update && $(APT) install -y redis-server; }
	@# redis-cli --cluster create joins the Redis Cluster of internal/clustersuite.
	@command -v redis-cli >/dev/null || { $(APT) update && $(APT) install -y redis-tools; }
	@command -v node >/dev/null && command -v npm >/dev/null || { $(APT) update && $(APT) install -y nodejs npm; }
	@command -v chromium >/dev/null || { $(APT) update && $(APT) install -y chromium; }
	@# promtool checks and unit-tests the chart's alerting rules (scripts/helm-test.sh).
	@# On a systemd host the package starts Prometheus on :9090, the node's default admin port: stop it.
	@command -v promtool >/dev/null || { $(APT) update && $(APT) install -y --no-install-recommends prometheus && \
		{ $(SUDO) systemctl disable --now prometheus >/dev/null 2>&1 || true; }; }
	@# curl: the README steps (e2e/readme_steps_test.go) wait for a node with it.
	@command -v curl >/dev/null || { $(APT) update && $(APT) install -y curl; }
	@[ -d e2e/node_modules/socket.io-client ] && [ -d e2e/node_modules/puppeteer-core ] || (cd e2e && npm ci --no-audit --no-fund)

# -p 1: one test binary at a time, so the load-generating packages (bench,
# e2e) never starve the timing-sensitive ones (leases, heartbeats).
test: deps
	$(GO) vet ./...
	$(GO) test -race -shuffle=on -count=1 -p 1 -timeout 14m ./...
	@# HELM_TEST: the chart's offline checks, when the script exists.
	@if [ -f scripts/helm-test.sh ]; then bash scripts/helm-test.sh; fi

fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) "$$pkg"; \
		done; \
	done

bench:
	$(GO) test -run x -bench . -benchmem ./...

lint:
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './e2e/node_modules/*' -not -path './.git/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
