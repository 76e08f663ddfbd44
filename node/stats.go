package node

import (
	"sync/atomic"
	"time"
)

// statCounters are running totals for the periodic stats line, kept beside
// the Prometheus metrics so the line needs no scrape; last* hold the totals
// at the previous line, so the line reports what happened since.
type statCounters struct {
	messagesIn, messagesOut, rateLimited, slowConsumers atomic.Uint64

	lastIn, lastOut, lastLimited, lastSlow uint64 // only the stats goroutine touches these
}

// logStats writes the periodic "stats" line: connections, users, chats,
// messages per minute in and out, rate-limit rejections and slow-consumer
// drops since the previous line, the round trip of one engine PING (Redis
// engines only), and the cluster figures when reachable.
func (srv *server) logStats() {
	sc := &srv.stats
	in, out := sc.messagesIn.Load(), sc.messagesOut.Load()
	limited, slow := sc.rateLimited.Load(), sc.slowConsumers.Load()
	perMin := 60 / srv.cfg.StatsInterval.Seconds()
	chats, users := srv.hub.counts()
	ev := srv.log.Info().
		Int("connections", srv.connCount()).Int("users", users).Int("chats", chats).
		Float64("messages_in_per_min", float64(in-sc.lastIn)*perMin).
		Float64("messages_out_per_min", float64(out-sc.lastOut)*perMin).
		Uint64("rate_limited", limited-sc.lastLimited).
		Uint64("slow_consumers", slow-sc.lastSlow).
		Bool("ready", srv.isReady())
	sc.lastIn, sc.lastOut, sc.lastLimited, sc.lastSlow = in, out, limited, slow
	if ping := srv.cfg.Engines.Ping; ping != nil && !srv.engineDown.Load() {
		start := time.Now()
		if ping() == nil {
			ev = ev.Dur("redis_rtt_ms", time.Since(start))
		}
	}
	ctx, cancel := srv.engineCtx()
	defer cancel()
	if st, err := srv.cfg.Engines.Presence.Stats(ctx); err == nil {
		ev = ev.Int("cluster_nodes", st.Nodes).Int("cluster_connections", st.Connections).
			Int("cluster_users", st.Users).Int("cluster_chats", st.Chats)
	}
	if srv.cfg.RTM != nil {
		if rs, err := srv.cfg.RTM.Stats(ctx); err == nil {
			ev = ev.Str("rtm_leader", rs.Leader).Int64("rtm_term", rs.Term).Bool("rtm_is_leader", rs.IsLeader).
				Interface("rtm_profiles", rs.Profiles).Uint64("rtm_reconnects", rs.Reconnects).
				Uint64("rtm_events_in", rs.EventsIn).Uint64("rtm_events_out", rs.EventsOut).
				Uint64("rtm_duplicates_dropped", rs.DuplicatesDrop)
		}
	}
	ev.Msg("stats")
}
