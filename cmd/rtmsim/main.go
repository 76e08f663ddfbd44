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
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/anchat/realtime/rtm/rtmsim"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	f := flag.NewFlagSet("rtmsim", flag.ContinueOnError)
	addr := f.String("addr", "127.0.0.1:7200", "listen address (WebSocket endpoint and /control/ API)")
	profiles := f.String("profiles", "", "comma-separated profile ids to generate events for")
	rate := f.Float64("rate", 10, "generated events per second per connected profile (0: none)")
	mix := f.String("mix", "MessageSent=8,MessageRead=1,DialogLimitChanged=1", "weights of the generated event types")
	dropRate := f.Float64("drop-rate", 0, "probability per second that an open connection is dropped")
	expired := f.String("expired", "", "comma-separated profile ids answered 401 (expired session)")
	requireCookie := f.Bool("require-cookie", false, "answer 401 to an upgrade without a Cookie header")
	seed := f.Uint64("seed", 0, "random seed (0: from the clock)")
	if err := f.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	m, err := rtmsim.ParseMix(*mix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	srv, err := rtmsim.New(rtmsim.Config{
		Profiles: list(*profiles), Rate: *rate, Mix: m, DropRate: *dropRate,
		Expired: list(*expired), RequireCookie: *requireCookie, Seed: *seed,
		Logger: zerolog.New(os.Stdout).With().Timestamp().Logger(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.ListenAndServe(ctx, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "rtmsim:", err)
		return 1
	}
	return 0
}

func list(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
