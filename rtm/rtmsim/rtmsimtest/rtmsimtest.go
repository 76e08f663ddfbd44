// Package rtmsimtest serves an RTM provider simulator (rtm/rtmsim) on
// loopback for a test, closed when the test ends.
//
//	sim := rtmsimtest.Start(t, rtmsim.Config{RequireCookie: true})
//	... dial sim.WSURL(), drive sim.URL (the control API) or sim.Server ...
package rtmsimtest

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anchat/realtime/rtm/rtmsim"
)

// Sim is a simulator serving until the test ends.
type Sim struct {
	*rtmsim.Server
	URL string // http://127.0.0.1:<port>: the control API
}

// Start builds a simulator with cfg and serves it.
func Start(tb testing.TB, cfg rtmsim.Config) *Sim {
	tb.Helper()
	s, err := rtmsim.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(s)
	tb.Cleanup(hs.Close)
	tb.Cleanup(s.Close) // first: hijacked WebSockets hold hs.Close otherwise
	return &Sim{Server: s, URL: hs.URL}
}

// WSURL is the provider's WebSocket endpoint (what a node's --rtm-url names).
func (s *Sim) WSURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/ws" }
