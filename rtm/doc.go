// Package rtm bridges the external real-time messaging provider ("RTM") into
// the cluster's event stream: one node, elected on a lease, keeps one
// upstream WebSocket per operated profile and publishes what the provider
// sends as client events on the profile's bus channel, which every node
// delivers to the connections of the users operating that profile.
//
// # Usage
//
//	st, _ := rtm.NewRedisStore(rdb, rtm.RedisStoreConfig{Prefix: "rt"}) // or rtm.NewMemoryStore(nil)
//	br, err := rtm.New(rtm.Config{
//		NodeID: nodeID, URL: "wss://rtm.example/ws",
//		Lease: lse, LeaseTTL: 10 * time.Second, Bus: broker, Store: st, Logger: log,
//	})
//	go br.Run(ctx)                  // campaign; lead when elected; release at once when ctx ends
//	_ = br.PutProfile(ctx, "p1", json.RawMessage(`{"cookies":{"sid":"abc"}}`))
//	event, data, ok := br.Accept(d) // on every node, for each bus.KindProfile delivery
//
// # Leadership
//
// Every node runs [Bridge.Run]. It tries the lease (lease.Lease, name
// "rtm") every RenewInterval (TTL/3), and at once when a leader signals that
// it released it. The holder runs the bridge under a context that is
// cancelled when leadership ends, and renews every RenewInterval. Renewals
// run beside a guard timer: when LeaseTTL - SafetyMargin has passed since
// the start of the last successful renewal (or acquisition), the bridge is
// stopped, its upstream connections closed, before the lease can expire and
// pass to another node, even while a renewal is still blocked on an
// unreachable Redis. On ctx end the leader stops the bridge, releases the
// lease and signals the other nodes, which take over within a round trip.
// With lease.NewMemory the single node always leads.
//
// # Upstream
//
// One WebSocket per profile with a stored session, dialled at Config.URL
// with the profile id in place of "{profileId}" if the URL has it, or as
// the query parameter profileId ("ws://host/ws?profileId=p1"); cmd/rtmsim
// accepts both. The upgrade request carries the session's cookies in the
// Cookie header. A session is {"cookies": {"name": "value", ...}} (sent
// sorted by name) or {"cookies": "a=b; c=d"}; names must be RFC 6265
// tokens and values cookie-octets, otherwise PutProfile refuses it with
// [ErrBadSession].
//
// An upgrade answered 401 or 403 means the session expired: state
// session_expired, and no retry until PutProfile stores a session again
// (even an identical one). Any other failure, or a dropped connection,
// reconnects per [Backoff]: the n-th consecutive failure waits a uniform
// random time in [0, min(30s, 0.5s·2^(n-1))]; a connection that stayed up
// 30s resets n. DeleteProfile drops the connection. The bridge pings every
// PingInterval and drops a connection silent for twice that.
//
// Upstream frames are JSON text (binary frames are read the same way):
//
//	{"id": "<event id>", "type": "MessageSent" | "MessageRead" | "DialogLimitChanged", "profileId": "p1", "data": {...}}
//
// id is required (string or number); profileId, if present, must be the
// connection's. Ids inside data may be strings or numbers (sent on as
// strings); times are RFC 3339 strings (passed through) or Unix
// milliseconds (sent as RFC 3339 UTC), and default to the time received.
//
//	type                data fields                                                   client event
//	MessageSent         dialogId*, messageId*, fromId, text, createdAt, outgoing      message_toast {profileId, dialogId, messageId, fromId, text, createdAt}
//	MessageRead         dialogId*, messageId*, readAt                                 message_read {profileId, dialogId, messageId, readAt}
//	DialogLimitChanged  dialogId*, limit* (integer), remaining* (integer)             dialog_limit_changed {profileId, dialogId, limit, remaining}
//	(* required)
//
// A MessageSent the profile itself sent (outgoing is true, or fromId equals
// the profile id) yields nothing. Unknown types and malformed frames are
// counted and logged (sampled) and never close the connection.
//
// Every published upstream event id is recorded in the Store for DedupeTTL
// (5 minutes), scoped to its profile, before publishing: an id seen again,
// on any connection of any leader, is dropped. So a new leader receiving
// recent events again never shows a toast twice.
//
// State changes are published as rtm_status {profileId, state, retryInMs?}
// with state connected, reconnecting (with the delay before the next
// attempt, published for each scheduled retry) or session_expired; the first
// connection attempt publishes only its outcome. The leader also writes each
// state to the Store so that Stats on any node shows them, and so that
// [Bridge.Statuses] (every client CONNECT) reads the states of the client's
// profiles only: one HMGET on a follower, a lookup on the leader. The
// store keeps counts by state beside the states, in the same scripts, so
// Stats on a follower reads three counts, not every profile's state, and
// the sorted ids, so [Bridge.Profiles] reads one page, not every profile.
//
// The leader reads every stored session when its term starts and on every
// change signal. Every ResyncInterval (5 s) it also checks the sessions'
// version (one GET; PutSession and DeleteSession move it) and rereads them
// only when it moved, or when 12 intervals have passed without a reread
// (a safety net for a lost signal together with a version that went back
// to an earlier value when Redis lost its data). Once a term and then every
// 12 intervals it recounts the states on the server (one script), so counts
// left off by nodes of an older version are made good.
//
// # Terms on the bus
//
// Every publication on a profile channel is the client event name with
// data {"term": <fencing number>, "data": {...client payload...}}.
// [Bridge.Accept] drops deliveries of a term older than the highest it has
// seen (from deliveries or from the lease itself) and returns the client
// payload otherwise. The fencing number is global to the lease, so so is the
// comparison. If the counter goes backwards (Redis lost its data), nodes
// accept the lower sequence once the lease has shown it for a whole TTL, when
// no leader of the old sequence can still hold; events published in between
// are dropped.
//
// # Redis keys
//
// [RedisStore], with prefix "rt": rt:{rtm}:profiles (hash of sessions),
// rt:{rtm}:version (session version counter), rt:{rtm}:state (hash of
// states written by the leader), rt:{rtm}:statecounts (hash of counts by
// state), rt:{rtm}:stateids (sorted set of the ids with a state, for
// paging), rt:{rtm}:figures (hash of the leader's figures by profile),
// rt:{rtm}:changes (pub/sub change signals),
// rt:rtm:seen:<len(profile)>:<profile>:<event id> (SET NX EX 300). The lease
// and the profile channels belong to the lease and bus packages
// (rt:{lease:rtm}, rt:{profile:<id>}).
//
// The stand-in provider for development and tests is package rtm/rtmsim
// (command cmd/rtmsim).
package rtm
