// Package e2e holds the end-to-end tests: they build cmd/realtime, start real
// node processes on free loopback ports (internal/nodetest, which bench uses
// too), and drive them with the real socket.io-client v4 from npm (scenario
// scripts in js/*.mjs, run with node) and with plain HTTP for the admin
// surface.
//
//	cd e2e && npm ci        # once; `make test` does it
//	go test ./e2e -v        # every scenario, each against its own node
//
// A failing test prints the scenario's output and the node's JSON log lines.
// There is no non-test code here.
package e2e
