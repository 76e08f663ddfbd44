// Command rtmsim runs a stand-in RTM provider (package rtm/rtmsim): the
// upstream WebSocket format the realtime nodes' RTM bridge consumes, with
// generated events and a control API for tests.
//
//	rtmsim --addr 127.0.0.1:7200 --profiles p1,p2 --rate 10 \
//	  --mix MessageSent=8,MessageRead=1,DialogLimitChanged=1 --drop-rate 0.01 --expired p2 --require-cookie
//
// Point a node at it with --rtm-url ws://127.0.0.1:7200/ws.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/anchat/realtime/internal/flaglist"
	"github.com/anchat/realtime/rtm/rtmsim"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageHead is the top of --help: what rtmsim serves and its control API
// (as in package rtmsim's documentation).
const usageHead = `rtmsim: a stand-in RTM provider for development and tests.

Usage: rtmsim [flags]

WebSocket endpoint: ws://<addr>/ws?profileId=<id> (or ws://<addr>/ws/<id>);
point a node at it with: realtime serve --rtm-url ws://<addr>/ws
Each event is one text frame:
  {"id":"sim-42","type":"MessageSent","profileId":"p1","data":{"dialogId":"d3","messageId":"m42","fromId":"u7","text":"hello 42","createdAt":"..."}}

Control API (HTTP on the same address, JSON bodies):
  POST /control/emit         {profileId, type, data, id?} or {profileId, raw}: send to the profile's open
                             connections -> {id, delivered}; 409 when none is open
  GET  /control/connections  [?profileId=]: every upgrade attempt: {id, time, profileId, cookie, status, closedAt?, closeReason?}
  POST /control/expire       {profileId, expired}: answer 401 (or stop answering 401) from the next attempt on
  POST /control/refuse       {profileId, status}: answer this status instead of upgrading (0: upgrade again)
  POST /control/drop         {profileId}: close the profile's open connections -> {dropped}
  GET  /control/sent         ?profileId=: events written, oldest first

Flags:
`

// run runs rtmsim with args; --help goes to stdout, errors to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("rtmsim", flag.ContinueOnError)
	f.SetOutput(stderr)
	f.Usage = func() {
		fmt.Fprint(f.Output(), usageHead)
		f.PrintDefaults()
	}
	addr := f.String("addr", "127.0.0.1:7200", "listen address (WebSocket endpoint and /control/ API)")
	profiles := f.String("profiles", "", "comma-separated profile ids to generate events for")
	rate := f.Float64("rate", 10, "generated events per second per connected profile (0: none)")
	mix := f.String("mix", "MessageSent=8,MessageRead=1,DialogLimitChanged=1", "weights of the generated event types")
	dropRate := f.Float64("drop-rate", 0, "probability per second that an open connection is dropped")
	expired := f.String("expired", "", "comma-separated profile ids answered 401 (expired session)")
	requireCookie := f.Bool("require-cookie", false, "answer 401 to an upgrade without a Cookie header")
	seed := f.Uint64("seed", 0, "random seed (0: from the clock)")
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "-h=true" {
			f.SetOutput(stdout)
			f.Usage()
			return 0
		}
	}
	if err := f.Parse(args); err != nil {
		return 2
	}
	m, err := rtmsim.ParseMix(*mix)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	srv, err := rtmsim.New(rtmsim.Config{
		Profiles: flaglist.Split(*profiles), Rate: *rate, Mix: m, DropRate: *dropRate,
		Expired: flaglist.Split(*expired), RequireCookie: *requireCookie, Seed: *seed,
		Logger: zerolog.New(os.Stdout).With().Timestamp().Logger(),
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.ListenAndServe(ctx, *addr); err != nil {
		fmt.Fprintln(stderr, "rtmsim:", err)
		return 1
	}
	return 0
}
