package bench

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// disconnectReasons reads realtime_disconnects_total by reason from a node.
func disconnectReasons(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `realtime_disconnects_total{reason="`)
		if !ok {
			continue
		}
		reason, value, _ := strings.Cut(rest, `"} `)
		var v float64
		if _, err := fmt.Sscan(value, &v); err == nil {
			out[reason] = v
		}
	}
	return out
}

// TestE2ECloseIsClean: at the end of a run every connection is closed with
// a WebSocket close, so the node counts client closes, not read errors, with
// either reader.
func TestE2ECloseIsClean(t *testing.T) {
	for _, io := range []string{IOEpoll, IOGoroutine} {
		t.Run(io, func(t *testing.T) {
			n := startNode(t)
			const conns = 40
			mustPass(t)(run(t, Config{Scenario: ScenarioIdle, Targets: []string{n.Addr}, Conns: conns, IO: io,
				Duration: Duration(500 * time.Millisecond)}, Options{}))
			var got map[string]float64
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if got = disconnectReasons(t, n.AdminURL); got["client_close"]+got["read_error"] >= conns {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if got["client_close"] != conns || got["read_error"] != 0 {
				t.Fatalf("node's disconnect reasons after the run: %v; want %d client_close, no read_error", got, conns)
			}
		})
	}
}
