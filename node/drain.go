package node

import (
	"time"

	"github.com/gobwas/ws"
)

// drain runs on shutdown: the node turns not ready and refuses new upgrades
// with DRAINING, then closes its connections in batches spread over
// DrainPeriod so their reconnects land on other nodes without a stampede.
// Closing the transport (not a Socket.IO DISCONNECT) makes socket.io-client
// reconnect by itself.
func (srv *server) drain() {
	srv.draining.Store(true)
	start := time.Now()
	conns := srv.snapshot()
	srv.log.Info().Int("connections", len(conns)).Dur("period_ms", srv.cfg.DrainPeriod).Msg("draining")
	if n := len(conns); n > 0 {
		// Connection i closes at about i×period/n: the whole period is
		// used whatever the count, in ticks of 100 ms (or less when the
		// period is short).
		tick := min(100*time.Millisecond, max(srv.cfg.DrainPeriod/time.Duration(n), time.Millisecond))
		ticks := max(1, int(srv.cfg.DrainPeriod/tick))
		t := time.NewTicker(tick)
		next := 0
		for k := 1; next < n; k++ {
			upto := min(n, (k*n+ticks-1)/ticks) // ceil(k×n/ticks)
			for _, c := range conns[next:upto] {
				c.closeAfter(closeFrame(ws.StatusGoingAway, codeDraining), reasonDraining)
			}
			next = upto
			if next < n {
				<-t.C
			}
		}
		t.Stop()
	}
	// Wait for the last closes to be written (bounded).
	deadline := time.Now().Add(srv.cfg.WriteTimeout)
	for srv.connCount() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	srv.log.Info().Dur("duration_ms", time.Since(start)).Msg("drained")
}
