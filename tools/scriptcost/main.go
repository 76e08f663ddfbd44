// Command scriptcost measures Redis's own CPU per call (INFO cpu: used_cpu_sys
// + used_cpu_user) of the engines' Lua scripts, without nodes or
// subscribers: a PUBLISH alone (what the Socket.IO peer sends per message),
// the bare XADD+PUBLISH script, a send with and without its
// folded rate limit, a typing event as two round trips (the limit's script,
// then PUBLISH) and as one script, and a reaction as two scripts and as one;
// and the parts of a script's cost (see the variants' comment in run).
// docs/BENCHMARKS.md ("Redis's cost per send") records its figures. Run it
// from the repository's root, against a Redis of its own (it writes keys):
//
//	redis-server --port 6400 --save '' &
//	go run ./tools/scriptcost --addr 127.0.0.1:6400 --calls 20000 --rounds 3
//	go run ./tools/scriptcost --addr 127.0.0.1:6400 --only 'PUBLISH|limit folded' --rate 1000 --calls 5000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// payload is a chat-scenario new_message after its opening brace (the send
// script splices messageId in front).
const payload = `"chatId":"c000123","senderId":"u000123","senderName":"","content":"m 12345 ............................................","createdAt":"2026-12-03T05:00:00.000Z"}`

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "Redis host:port (a Redis of its own: the tool writes keys)")
	root := flag.String("root", ".", "the repository's root (the scripts are read from bus/lua and limits/lua)")
	calls := flag.Int("calls", 20000, "calls per variant and round, from two goroutines")
	rounds := flag.Int("rounds", 3, "rounds; the variants alternate within each")
	rate := flag.Int("rate", 0, "calls per second, paced (as a node's sends arrive, Redis sleeping between them); 0: as fast as Redis answers")
	only := flag.String("only", "", "a regular expression: run only the variants whose name matches")
	flag.Parse()
	if err := run(*addr, *root, *calls, *rounds, *rate, *only); err != nil {
		fmt.Fprintln(os.Stderr, "scriptcost:", err)
		os.Exit(1)
	}
}

type variant struct {
	name string
	call func(i int) error
}

func run(addr, root string, calls, rounds, rate int, only string) error {
	match, err := regexp.Compile(only)
	if err != nil {
		return fmt.Errorf("--only: %w", err)
	}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(root, name))
		return string(b), err
	}
	var src [4]string
	for i, name := range []string{"limits/lua/window_rule.lua", "limits/lua/window.lua", "bus/lua/append.lua", "bus/lua/publish.lua"} {
		s, err := read(name)
		if err != nil {
			return err
		}
		src[i] = s
	}
	window := redis.NewScript(src[0] + src[1])
	appendScript := redis.NewScript(src[0] + src[2])
	// Where a script's CPU goes: the send script with the previous id read
	// from a string key of the chat's (GET, then SET with the stream's TTL)
	// instead of the stream's last entry (XREVRANGE; tried, not adopted; the
	// key is not declared in KEYS, so one Redis only); a script that does
	// nothing, called with no arguments and with a send's; a script that
	// calls TIME ten times (the cost of redis.call itself); PING (a round
	// trip that does nothing).
	prevOld := "local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)\nif top[1] then\n  prev = top[1][1]\n"
	prevKey := "local top = redis.call('GET', stream .. 'l')\nif top then\n  prev = top\n"
	if !strings.Contains(src[2], prevOld) {
		return errors.New("bus/lua/append.lua: the previous id's read not found")
	}
	keyed := strings.Replace(src[2], prevOld, prevKey, 1)
	keyed = strings.Replace(keyed, "redis.call('PEXPIRE', stream, ttl)", "redis.call('PEXPIRE', stream, ttl)\nredis.call('SET', stream .. 'l', id, 'PX', ttl)", 1)
	appendKeyed := redis.NewScript(src[0] + keyed)
	noop := redis.NewScript("return 1")
	tenTime := redis.NewScript("for i = 1, 10 do redis.call('TIME') end return 1")
	publish := redis.NewScript(src[0] + src[3])
	bare := redis.NewScript(`redis.call('XADD', KEYS[1], 'MAXLEN', 1000, '*', 'e', 'new_message', 'd', ARGV[1])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1`)

	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4})
	defer c.Close()
	ctx := context.Background()
	// The limit never refuses (N is huge): every call does the whole work.
	limit := func(i int) []any {
		now := time.Now().UnixMicro()
		return []any{now, now - 60_000_000, 60_000_000, 1 << 40, "m:" + strconv.Itoa(i)}
	}
	sendWith := func(script *redis.Script, prefix string, i int, limited bool) error {
		tag := fmt.Sprintf("%s:{c%d}", prefix, i%1000)
		keys := []string{tag + ":h", tag + ":m:"}
		args := []any{"s", 1000, 86400000, "PUBLISH", "new_message", payload, ",", "u1", "", ""}
		if limited {
			keys = append(keys, fmt.Sprintf("%s:lim:{u%d}", prefix, i%2000))
			args = append(args, limit(i)...)
		}
		return script.Run(ctx, c, append(keys, tag), args...).Err()
	}
	send := func(prefix string, i int, limited bool) error { return sendWith(appendScript, prefix, i, limited) }
	// Reactions go to one message per chat, sent first; add and remove alternate.
	msgs := make([]string, 1000)
	for j := range msgs {
		tag := fmt.Sprintf("r:{c%d}", j)
		v, err := appendScript.Run(ctx, c, []string{tag + ":h", tag + ":m:", tag},
			"s", 1000, 86400000, "PUBLISH", "new_message", payload, ",", "u1", "", "").StringSlice()
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		msgs[j] = v[1]
	}
	react := func(i int, folded bool) error {
		j := i % 1000
		tag, msg := fmt.Sprintf("r:{c%d}", j), msgs[j]
		mode := "a"
		if (i/1000)%2 == 1 {
			mode = "r"
		}
		keys := []string{tag + ":h", tag + ":m:" + msg, tag + ":r:" + msg}
		args := []any{mode, 1000, 86400000, "PUBLISH", "reaction_updated",
			`{"chatId":"c000123","messageId":"` + msg + `","userId":"u1","emoji":"x","action":"added"}`, "", "u1", msg, "x"}
		lim := fmt.Sprintf("rl:{u%d}", i%2000)
		if folded {
			keys = append(keys, lim)
			args = append(args, limit(i)...)
		} else if err := window.Run(ctx, c, []string{lim}, limit(i)...).Err(); err != nil {
			return err
		}
		return appendScript.Run(ctx, c, append(keys, tag), args...).Err()
	}
	typing := "\n\nuser_typing\n" + `{"chatId":"c000123","userId":"u000123","isTyping":true}`
	variants := []variant{
		{"PUBLISH alone", func(i int) error {
			return c.Publish(ctx, fmt.Sprintf("p:{c%d}", i%1000), payload).Err()
		}},
		{"bare XADD+PUBLISH", func(i int) error {
			tag := fmt.Sprintf("b:{c%d}", i%1000)
			return bare.Run(ctx, c, []string{tag + ":h", tag}, payload).Err()
		}},
		{"send, no limit", func(i int) error { return send("s", i, false) }},
		{"send, limit folded", func(i int) error { return send("l", i, true) }},
		{"send, prev id from a key", func(i int) error { return sendWith(appendKeyed, "k", i, true) }},
		{"noop, send's arguments", func(i int) error { return sendWith(noop, "n", i, true) }},
		{"noop, no arguments", func(i int) error { return noop.Run(ctx, c, nil).Err() }},
		{"PING", func(i int) error { return c.Ping(ctx).Err() }},
		{"10 TIME in a script", func(i int) error { return tenTime.Run(ctx, c, []string{"x"}).Err() }},
		{"typing, 2 round trips", func(i int) error {
			if err := window.Run(ctx, c, []string{fmt.Sprintf("tl:{u%d}", i%2000)}, limit(i)...).Err(); err != nil {
				return err
			}
			return c.Publish(ctx, fmt.Sprintf("t:{c%d}", i%1000), typing).Err()
		}},
		{"typing, 1 script", func(i int) error {
			return publish.Run(ctx, c, []string{fmt.Sprintf("tl1:{u%d}", i%2000), fmt.Sprintf("t:{c%d}", i%1000)},
				append(limit(i), "PUBLISH", typing)...).Err()
		}},
		{"reaction, 2 scripts", func(i int) error { return react(i, false) }},
		{"reaction, 1 script", func(i int) error { return react(i, true) }},
	}
	for round := range rounds {
		fmt.Printf("round %d\n", round+1)
		for _, v := range variants {
			if !match.MatchString(v.name) {
				continue
			}
			before, err := cpu(ctx, c)
			if err != nil {
				return err
			}
			var wg sync.WaitGroup
			errs := make(chan error, 2)
			start := time.Now()
			for g := range 2 {
				wg.Go(func() {
					for i := g; i < calls; i += 2 {
						if rate > 0 {
							time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
						}
						if err := v.call(i); err != nil {
							errs <- fmt.Errorf("%s: %w", v.name, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			if err := <-errs; err != nil {
				return err
			}
			after, err := cpu(ctx, c)
			if err != nil {
				return err
			}
			fmt.Printf("  %-22s %6.1f µs of Redis CPU per call\n", v.name, (after-before)/float64(calls)*1e6)
		}
	}
	return nil
}

// cpu is Redis's used_cpu_sys + used_cpu_user, in seconds.
func cpu(ctx context.Context, c *redis.Client) (float64, error) {
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
			}
			total += f
		}
	}
	return total, nil
}
