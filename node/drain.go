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
	srv.log.Info().Int("connections", len(conns)).Dur("period", srv.cfg.DrainPeriod).Msg("draining")
	if len(conns) > 0 {
		const tick = 100 * time.Millisecond
		batches := max(1, int(srv.cfg.DrainPeriod/tick))
		per := (len(conns) + batches - 1) / batches
		t := time.NewTicker(tick)
		for i := 0; i < len(conns); i += per {
			for _, c := range conns[i:min(i+per, len(conns))] {
				c.closeAfter(closeFrame(ws.StatusGoingAway, codeDraining), reasonDraining)
			}
			if i+per < len(conns) {
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
	srv.log.Info().Dur("took", time.Since(start)).Msg("drained")
}
