// Package redismetrics measures the Redis engines' commands for Prometheus
// without touching the engines: a go-redis hook on their shared client times
// every command and pipeline by logical operation and counts failures by
// class.
//
//	m := redismetrics.New()
//	client.AddHook(m)                 // every engine built on client is measured
//	reg.MustRegister(m.Collectors()...) // realtime_redis_command_seconds, realtime_redis_errors_total
//
// Both label sets are fixed ([Ops], [Classes]) and every series is created
// by New, so a scrape shows them from the start and nothing a client sends
// can add one. Observing allocates nothing.
//
// Pub/sub subscriptions (SUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBE) run on
// go-redis's pub/sub connections, which no hook sees: they are not measured.
package redismetrics

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/rediserr"
	"github.com/anchat/realtime/internal/redisscript"
)

// Logical operations, the op label: what the engines asked Redis for.
const (
	OpAppend     = "append"      // the bus's append script: send, edit, delete, reactions (with the rate limit when combined)
	OpHistory    = "history"     // reading a chat's history (XRANGE, XREVRANGE): join recovery, gap repair
	OpPublish    = "publish"     // PUBLISH, SPUBLISH outside a script (ephemeral events, RTM signals)
	OpPresence   = "presence"    // presence scripts and pipelines: connection slots, node liveness, refresh
	OpMembership = "membership"  // chat membership sets
	OpLimit      = "limit"       // the rate limiter's script
	OpLease      = "lease"       // the RTM leader lease
	OpRTM        = "rtm"         // the RTM bridge's profile store
	OpPing       = "ping"        // readiness and round-trip pings
	OpScriptLoad = "script_load" // SCRIPT LOAD at start-up
	OpConnect    = "connect"     // a new connection's handshake (HELLO, AUTH, CLIENT SETINFO, SELECT)
	OpOther      = "other"       // anything else
)

// Ops is the fixed set of op label values.
var Ops = []string{OpAppend, OpHistory, OpPublish, OpPresence, OpMembership, OpLimit, OpLease,
	OpRTM, OpPing, OpScriptLoad, OpConnect, OpOther}

// Error classes, the class label of realtime_redis_errors_total.
const (
	ClassUnavailable = "unavailable" // no usable reply: connection refused or lost, LOADING, READONLY, failover, cancelled
	ClassTimeout     = "timeout"     // a dial, read, write or pool timeout, or the caller's deadline
	ClassScript      = "script"      // a script failed while running (an error reply to EVAL/EVALSHA)
	ClassOther       = "other"       // any other error reply (WRONGTYPE, ...)
)

// Classes is the fixed set of class label values.
var Classes = []string{ClassUnavailable, ClassTimeout, ClassScript, ClassOther}

// Metrics is a redis.Hook that records what passes through it.
type Metrics struct {
	latencyVec *prometheus.HistogramVec
	errorsVec  *prometheus.CounterVec
	latency    map[string]prometheus.Observer           // by op, every one of Ops
	errs       map[string]map[string]prometheus.Counter // by op, then class
}

var _ redis.Hook = (*Metrics)(nil)

// Buckets of realtime_redis_command_seconds: 100 µs to the engines' 1 s
// command timeout.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

// New returns the metrics with every series created.
func New() *Metrics {
	m := &Metrics{
		latencyVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "realtime_redis_command_seconds",
			Help:    "Redis round trips of the engines by logical operation (a pipeline counts once, under its first command's op).",
			Buckets: latencyBuckets}, []string{"op"}),
		errorsVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_redis_errors_total",
			Help: "Failed Redis commands by logical operation and error class (unavailable, timeout, script, other)."}, []string{"op", "class"}),
		latency: make(map[string]prometheus.Observer, len(Ops)),
		errs:    make(map[string]map[string]prometheus.Counter, len(Ops)),
	}
	for _, op := range Ops {
		m.latency[op] = m.latencyVec.WithLabelValues(op)
		m.errs[op] = make(map[string]prometheus.Counter, len(Classes))
		for _, c := range Classes {
			m.errs[op][c] = m.errorsVec.WithLabelValues(op, c)
		}
	}
	return m
}

// Collectors are the families to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.latencyVec, m.errorsVec}
}

// DialHook passes dials through.
func (m *Metrics) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook times one command.
func (m *Metrics) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		op := OpOf(cmd)
		m.observe(op, time.Since(start), classOf(cmd, err))
		return err
	}
}

// ProcessPipelineHook times one pipeline (or MULTI/EXEC transaction): one
// round trip, under the op of its first command, and at most one error,
// the first.
func (m *Metrics) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		op := pipelineOp(cmds)
		class, cmdErr := "", false
		for _, cmd := range cmds {
			cmdErr = cmdErr || cmd.Err() != nil
			if class = classOf(cmd, cmd.Err()); class != "" {
				break
			}
		}
		if !cmdErr && err != nil { // failed before any command had a reply
			class = classOf(nil, err)
		}
		m.observe(op, time.Since(start), class)
		return err
	}
}

// observe records one round trip of op and, when class is not empty, one
// error.
func (m *Metrics) observe(op string, d time.Duration, class string) {
	m.latency[op].Observe(d.Seconds())
	if class != "" {
		m.errs[op][class].Inc()
	}
}

// OpOf is the logical operation of one command: scripts by the package that
// registered them (internal/redisscript), other commands by name. The table
// follows what the engines send; a command it does not know is OpOther.
func OpOf(cmd redis.Cmder) string {
	name := cmd.Name()
	switch name {
	case "evalsha", "evalsha_ro", "eval", "eval_ro":
		args := cmd.Args()
		if len(args) < 2 {
			return OpOther
		}
		key, _ := args[1].(string) // the SHA-1 (EVALSHA) or the source (EVAL)
		if op := scriptOp(redisscript.Owner(key)); op != OpOther {
			return op
		}
		// redis_rate's GCRA script (the per-address connect limit) is not
		// registered; its key is the limiter's, "{lim:" tagged.
		if len(args) >= 4 {
			if k, ok := args[3].(string); ok && strings.Contains(k, "{lim:") {
				return OpLimit
			}
		}
		return OpOther
	}
	return commandOp(name)
}

// scriptOp maps the package owning a script to its op.
func scriptOp(owner string) string {
	switch owner {
	case "bus":
		return OpAppend
	case "bus.publish":
		return OpPublish
	case "presence":
		return OpPresence
	case "limits":
		return OpLimit
	case "lease":
		return OpLease
	case "rtm":
		return OpRTM
	case "membership":
		return OpMembership
	}
	return OpOther
}

// commandOp maps a command name (lower case) to its op. Each command here is
// sent by one engine only (presence uses ZREM, PEXPIRE and DEL; rtm the hash
// commands and SETNX; lease GET; membership the set commands outside
// presence's pipelines, which start with ZREM, DEL or a script).
func commandOp(name string) string {
	switch name {
	case "xrange", "xrevrange":
		return OpHistory
	case "publish", "spublish":
		return OpPublish
	case "zrem", "pexpire", "del":
		return OpPresence
	case "sadd", "srem", "smembers", "sismember":
		return OpMembership
	case "hset", "hdel", "hget", "hgetall", "set", "setnx", "keys":
		return OpRTM
	case "get":
		return OpLease
	case "ping":
		return OpPing
	case "script":
		return OpScriptLoad
	case "hello", "auth", "client", "select", "readonly":
		return OpConnect
	}
	return OpOther
}

// pipelineOp is the op of a pipeline's first command other than MULTI.
func pipelineOp(cmds []redis.Cmder) string {
	for _, cmd := range cmds {
		if cmd.Name() != "multi" {
			return OpOf(cmd)
		}
	}
	return OpOther
}

// classOf is the error class of err, the outcome of cmd (nil for a
// pipeline-wide error), or "" when err is no failure: nil, redis.Nil (no
// such key), NOSCRIPT (go-redis sends the script again with EVAL) or a
// CLIENT subcommand the server does not know (go-redis probes optional
// features on each new connection and goes on without them).
func classOf(cmd redis.Cmder, err error) string {
	if err == nil || errors.Is(err, redis.Nil) || redis.HasErrorPrefix(err, "NOSCRIPT") {
		return ""
	}
	if cmd != nil && cmd.Name() == "client" && redis.HasErrorPrefix(err, "unknown subcommand") {
		return ""
	}
	if isTimeout(err) {
		return ClassTimeout
	}
	if rediserr.Unavailable(err) {
		return ClassUnavailable
	}
	if cmd != nil && strings.HasPrefix(cmd.Name(), "eval") {
		return ClassScript
	}
	return ClassOther
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
