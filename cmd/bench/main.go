// Command bench is the load generator: see `bench --help` and package
// github.com/anchat/realtime/bench.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/anchat/realtime/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bench.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
