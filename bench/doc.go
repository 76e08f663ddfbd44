// Package bench is the load generator behind `cmd/bench`: it opens tens of
// thousands of socket.io-client v4 compatible connections (Engine.IO v4 /
// Socket.IO v5 over WebSocket, masked client frames) to realtime nodes or to
// any Socket.IO server speaking the same events (such as the Node.js
// Socket.IO peer scripts/bench-compare.sh runs), drives a scenario, and
// measures what arrives.
//
// Scenarios (Config.Scenario):
//
//   - idle: hold N connections, each joined to a chat, for Duration; connect
//     rate, connect latency, errors, and the servers' memory and goroutines
//     per connection.
//   - fanout: N members of one chat, member 0 sends at Rate messages/s;
//     deliveries/s, expected vs received, duplicates, out-of-order, latency.
//   - chat: N users in chats of ChatSize, every user sends, Rate messages/s in
//     total.
//   - typing: the same layout, typing_start/typing_stop at Rate events/s.
//   - reconnect: drop ReconnectFraction of the connections at once and
//     reconnect them; time until all are back.
//   - rtm: users operate RTM profiles; messages are injected upstream through
//     cmd/rtmsim's control endpoint and measured as message_toast.
//
// Measuring: each message carries "t=<unix ns>;c=<chat>;m=<member>;q=<seq>;"
// at the start of its content, stamped just before the frame is written.
// Receivers find it with a byte search (no JSON decoding unless
// Config.Strict) and record the latency in a log-linear histogram; each
// receiver keeps a bitmap per sender, so every message is counted once and
// duplicates, out-of-order and misrouted deliveries are counted. Loss is
// expected minus distinct received after the drain, and fails the run.
//
// Architecture: a coordinator (Run) talks to one or more workers over a
// JSON-lines protocol (config, start, stop from the coordinator; ready, tick,
// result from the workers). With Config.Procs == 1 the worker runs in-process
// over pipes; with more, the command re-executes itself once per worker
// (hidden --worker flag), because one process may hold only so many open
// files. Workers read with one epoll loop per CPU (IOEpoll: no goroutine and
// no buffer per idle connection) or a goroutine per connection
// (IOGoroutine), for comparison.
//
// Usage sketch:
//
//	res, err := bench.Run(ctx, bench.Config{
//		Scenario: "fanout", Targets: []string{"127.0.0.1:8080"},
//		JWTSecret: "dev-secret", Conns: 2000, Rate: 200, Duration: 10 * time.Second,
//	}, bench.Options{Progress: os.Stderr})
//	bench.WriteTable(os.Stdout, res)
package bench
