// Command barescript calls, at a fixed rate, a Redis function that only
// XADDs to a capped stream and PUBLISHes (or SPUBLISHes) the payload: the
// reference a send's cost is compared with in docs/BENCHMARKS.md. It is a
// function (FCALL), so INFO commandstats counts it on a line of its own,
// apart from the node's EVALSHA, in the same run.
//
//	go run ./tools/barescript --addr 127.0.0.1:6400 --rate 1000 --duration 14s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

const library = `#!lua name=realtime_bare
redis.register_function('realtime_bare', function(keys, args)
  redis.call('XADD', keys[1], 'MAXLEN', 1000, '*', 'e', 'new_message', 'd', args[1])
  redis.call(args[2], keys[2], args[1])
  return 1
end)`

// payload is the size of a chat-scenario new_message.
const payload = `{"messageId":"1796270000000-0","chatId":"c000123","senderId":"u000123","senderName":"","content":"m 12345 ............................................","createdAt":"2026-12-03T05:00:00.000Z"}`

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "Redis host:port")
	rate := flag.Int("rate", 1000, "calls per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to call")
	publish := flag.String("publish", "PUBLISH", "PUBLISH or SPUBLISH")
	flag.Parse()
	if err := run(*addr, *rate, *duration, *publish); err != nil {
		fmt.Fprintln(os.Stderr, "barescript:", err)
		os.Exit(1)
	}
}

func run(addr string, rate int, duration time.Duration, publish string) error {
	if rate <= 0 {
		return fmt.Errorf("--rate must be positive")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	if err := c.FunctionLoadReplace(ctx, library).Err(); err != nil {
		return fmt.Errorf("function load: %w", err)
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(duration)
	n := 0
	for ; time.Now().Before(end); n++ {
		<-tick.C
		tag := fmt.Sprintf("bare:{c%d}", n%1000)
		if err := c.FCall(ctx, "realtime_bare", []string{tag + ":h", tag}, payload, publish).Err(); err != nil {
			return fmt.Errorf("fcall: %w", err)
		}
	}
	fmt.Printf("barescript: %d calls\n", n)
	return nil
}
