package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/anchat/realtime/internal/redismetrics"
	"github.com/anchat/realtime/node"
	"github.com/anchat/realtime/rtm"
)

// cmdServe implements `realtime serve`: resolve the configuration, build the
// engines and the node, run it until the first SIGTERM/SIGINT (then it
// drains), and exit at once on a second one.
func (a *app) cmdServe(ctx context.Context, args []string) int {
	var o serveOptions
	f := serveFlags(&o)
	if code, done := a.parseFlags(f, args); done {
		return code
	}
	r, err := resolve(&o, f, a.getenv, a.hostname)
	if err != nil {
		return a.usageError("serve", err.Error())
	}
	log, err := newLogger(a.stdout, r.logFormat, o.LogLevel, o.NodeID)
	if err != nil {
		return a.usageError("serve", err.Error())
	}
	if o.GCPercent >= 0 {
		// Idle connections are what a node mostly holds; the heap's headroom
		// (GOGC) is most of their RSS. See docs/BENCHMARKS.md.
		debug.SetGCPercent(o.GCPercent)
	}
	redis.SetLogger(redisLogger{log}) // process-wide, like the logger itself
	// Created on the memory engines too, so the Redis series exist (at 0)
	// on every node.
	redisMetrics := redismetrics.New()
	eng, err := buildEngines(&o, o.NodeID, log, a.getenv, redisMetrics)
	if err != nil {
		return a.usageError("serve", err.Error())
	}
	defer eng.close()
	r.cfg.Engines = eng.Engines
	r.cfg.Logger = log
	r.cfg.Version = version
	r.cfg.Collectors = redisMetrics.Collectors()
	var bridge *rtm.Bridge // the RTM bridge, with --rtm-url
	if o.RTMURL != "" {
		if bridge, err = newRTMBridge(&o, eng, log); err != nil {
			return a.usageError("serve", "--rtm-url: "+err.Error())
		}
		r.cfg.RTM = rtmAdapter{bridge}
	}
	if r.apiKey.value == "" {
		log.Warn().Msg("server API disabled: no API key (set REALTIME_API_KEY or --api-key-file)")
	}

	n, err := node.New(r.cfg)
	if err != nil {
		return a.usageError("serve", err.Error())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopSignals := a.handleSignals(ctx, cancel, log)
	defer stopSignals()
	if bridge != nil {
		// The first signal cancels ctx: the leader releases the lease as
		// draining starts. The bridge stops before the engines close.
		rtmDone := make(chan struct{})
		go func() {
			defer close(rtmDone)
			_ = bridge.Run(ctx)
		}()
		defer func() {
			cancel()
			<-rtmDone
		}()
	}

	start := log.Info().Str("version", version).Str("addr", o.Addr).Str("admin_addr", o.AdminAddr).
		Str("namespace", o.Namespace).Str("io", string(r.cfg.IO)).Bool("dev", o.Dev).Str("engine", eng.kind)
	if eng.target != "" {
		start = start.Str("redis", eng.target).Str("redis_prefix", o.RedisPrefix)
	}
	start.Msg("starting")
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	select {
	case <-n.Ready():
		if o.Dev {
			a.printDevSnippet(a.stderr, r, n.Addr(), n.APIAddr(), o.Namespace)
		}
		err = <-errc
	case err = <-errc:
	}
	if err != nil {
		log.Error().Err(err).Msg("node stopped with an error")
		return exitFailure
	}
	log.Info().Msg("stopped")
	return exitOK
}

// handleSignals cancels the run on the first SIGTERM or SIGINT (the node
// drains) and exits the process with code 1 on a second one. The returned
// function stops listening.
func (a *app) handleSignals(ctx context.Context, cancel context.CancelFunc, log zerolog.Logger) func() {
	sigs := a.signals
	var stop func()
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		sigs = ch
		stop = func() { signal.Stop(ch) }
	}
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			select {
			case <-done: // the run already ended; nothing to drain
				return
			default:
			}
			log.Info().Str("signal", s.String()).Msg("shutting down: draining connections (send the signal again to exit at once)")
			cancel()
		case <-ctx.Done():
			return
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			select {
			case <-done: // the drain finished meanwhile: exit normally
				return
			default:
			}
			log.Warn().Str("signal", s.String()).Msg("second signal: exiting at once")
			a.exit(exitFailure)
		case <-done:
		}
	}()
	return func() {
		close(done)
		if stop != nil {
			stop()
		}
	}
}

// printDevSnippet prints what a developer pastes to try the node: a token for
// alice, the socket.io-client line, and curl commands for the server API.
// Secrets given by the operator are referred to, not printed.
func (a *app) printDevSnippet(w io.Writer, r *resolved, addr, api net.Addr, namespace string) {
	scheme := "http"
	if r.cfg.TLSCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + loopbackHostPort(addr)
	apiBase := "http://" + loopbackHostPort(api)

	var b strings.Builder
	b.WriteString("\n=== realtime dev mode: open chat membership ===\n")
	if len(r.cfg.JWT.Secret) == 0 {
		fmt.Fprintf(&b, "JWT algorithm %s: mint tokens with your private key (no snippet token).\n", r.cfg.JWT.Alg)
	} else {
		tok, err := mintToken(r.cfg.JWT.Secret, tokenSpec{
			User: "alice", Name: "Alice", TTL: 24 * time.Hour,
			Issuer: r.cfg.JWT.Issuer, Audience: r.cfg.JWT.Audience,
		}, a.now())
		if err != nil {
			fmt.Fprintf(&b, "could not mint a token: %v\n", err)
		} else {
			fmt.Fprintf(&b, "JWT secret: %s\n\nToken for user alice (valid 24 h; more with `%s token --dev --user bob`):\n  %s\n\n", describeSecret(r.jwtSecret, devJWTSecret), a.selfCommand(), tok)
			fmt.Fprintf(&b, "socket.io-client v4:\n  import { io } from 'socket.io-client';\n")
			fmt.Fprintf(&b, "  const socket = io('%s%s', { transports: ['websocket'], auth: { token: '%s' } });\n", base, namespace, tok)
			b.WriteString("  socket.on('connect_error', (err) => console.log(err.message, err.data));\n")
			b.WriteString("  socket.on('new_message', (m) => console.log('new_message', m));\n")
			b.WriteString("  socket.on('connect', () => socket.emit('join_chat', { chatId: 'general' }, (res) => {\n")
			b.WriteString("    console.log('joined', res);\n")
			b.WriteString("    socket.emit('send_message', { chatId: 'general', content: 'hello', messageType: 'TEXT', tempId: 't1' }, console.log);\n")
			b.WriteString("  }));\n\n")
		}
	}
	if r.apiKey.value != "" {
		key := r.apiKey.value
		if r.apiKey.source != "--dev default" {
			key = "$REALTIME_API_KEY"
		}
		fmt.Fprintf(&b, "Server API (key: %s):\n", describeSecret(r.apiKey, devAPIKey))
		fmt.Fprintf(&b, "  curl -s -H \"Authorization: Bearer %s\" %s/api/stats\n", key, apiBase)
		fmt.Fprintf(&b, "  curl -s -X POST -H \"Authorization: Bearer %s\" -H 'Content-Type: application/json' \\\n", key)
		fmt.Fprintf(&b, "    -d '{\"senderId\":\"bob\",\"content\":\"hi alice\",\"messageType\":\"TEXT\"}' %s/api/chats/general/messages\n", apiBase)
	}
	b.WriteString("===\n\n")
	_, _ = io.WriteString(w, b.String())
}

// describeSecret says where a secret came from without printing an
// operator-provided value.
func describeSecret(s secret, devDefault string) string {
	if s.source == "--dev default" {
		return strconv.Quote(devDefault)
	}
	return "from " + s.source
}

// loopbackHostPort turns a listener address into one a local client can dial:
// an unspecified host (":8080", "0.0.0.0", "::") becomes 127.0.0.1.
func loopbackHostPort(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
