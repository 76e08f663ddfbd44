package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/internal/syncbuf"
)

// startServe runs `realtime serve args...` in the background with signals
// delivered through the returned channel.
func startServe(t *testing.T, e env, args ...string) (sigs chan os.Signal, out, errb *syncbuf.Buffer, exits chan int, done chan int) {
	t.Helper()
	sigs = make(chan os.Signal, 2)
	out, errb = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	exits = make(chan int, 1)
	done = make(chan int, 1)
	a := &app{
		stdout:   out,
		stderr:   errb,
		getenv:   e.get,
		hostname: func() (string, error) { return "host1", nil },
		now:      time.Now,
		exit:     func(code int) { exits <- code },
		signals:  sigs,
	}
	go func() {
		done <- a.Run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, args...))
	}()
	return sigs, out, errb, exits, done
}

func waitOutput(t *testing.T, buf *syncbuf.Buffer, want string, done chan int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), want) {
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d before printing %q", code, want)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 10 s; output so far:\n%s", want, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopServe sends SIGTERM and fails the test unless serve returns 0 within
// 10 s.
func stopServe(t *testing.T, sigs chan<- os.Signal, done <-chan int, out *syncbuf.Buffer) {
	t.Helper()
	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0\n%s", code, out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return within 10 s of SIGTERM")
	}
}

// waitUntil polls cond every 50 ms until it holds; the test fails on its
// error or when it does not hold within 20 s.
func waitUntil(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeDevDrainsOnSignal(t *testing.T) {
	sigs, out, errb, exits, done := startServe(t, env{}, "--dev", "--log-format", "json", "--drain-period", "100ms", "--node-id", "n-test")
	waitOutput(t, errb, "const socket = io('http://127.0.0.1:", done)
	stopServe(t, sigs, done, out)
	select {
	case code := <-exits:
		t.Errorf("exit(%d) called after a single signal", code)
	default:
	}
	// Every stdout line is JSON with time, level, message and node.
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	lines := 0
	for sc.Scan() {
		lines++
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("log line is not JSON: %q", sc.Text())
			continue
		}
		for _, k := range []string{"time", "level", "message"} {
			if _, ok := m[k]; !ok {
				t.Errorf("log line lacks %q: %s", k, sc.Text())
			}
		}
		if m["node"] != "n-test" {
			t.Errorf("log line without node n-test: %s", sc.Text())
		}
	}
	if lines == 0 {
		t.Error("no log lines")
	}
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	exits := make(chan int, 1)
	a := &app{exit: func(code int) { exits <- code }, signals: sigs}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := a.handleSignals(ctx, cancel, zerolog.Nop())
	defer stop()

	sigs <- syscall.SIGTERM
	select {
	case <-ctx.Done(): // the first signal starts the drain
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not cancel the run")
	}
	select {
	case code := <-exits:
		t.Fatalf("exit(%d) after one signal", code)
	case <-time.After(50 * time.Millisecond):
	}
	sigs <- syscall.SIGINT
	select {
	case code := <-exits:
		if code != 1 {
			t.Errorf("exit(%d) on the second signal, want 1", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exit not called within 5 s of a second signal")
	}
}

func TestSignalHandlerStops(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	a := &app{exit: func(code int) { t.Errorf("exit(%d) after stop", code) }, signals: sigs}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := a.handleSignals(ctx, cancel, zerolog.Nop())
	stop() // the run ended by itself
	sigs <- syscall.SIGTERM
	time.Sleep(50 * time.Millisecond)
	if ctx.Err() != nil {
		t.Error("a signal after stop cancelled the run")
	}
}

// TestServeWithRedis wires the Redis engines: the node starts, writes its
// presence under the prefix, and removes it after the drain.
func TestServeWithRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := redistest.Prefix(t)
	sigs, out, errb, _, done := startServe(t, env{"REALTIME_REDIS_URL": srv.URL()},
		"--dev", "--log-format", "json", "--drain-period", "100ms", "--node-id", "n-redis", "--redis-prefix", prefix)
	waitOutput(t, errb, "const socket", done)
	if !strings.Contains(out.String(), `"engine":"redis"`) {
		t.Errorf("start-up line does not say the Redis engine:\n%s", out)
	}
	c := srv.Client()
	ctx := context.Background()
	waitUntil(t, "a key under the prefix (the node does not use this Redis)", func() (bool, error) { // the first presence refresh
		keys, err := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			t.Logf("keys under %s: %v", prefix, keys)
		}
		return len(keys) > 0, err
	})
	stopServe(t, sigs, done, out)
	if n, err := c.Exists(ctx, prefix+":{nodes}:n-redis:alive").Result(); err != nil || n != 0 {
		t.Errorf("the node's liveness key is still there after a clean stop (%d, %v)", n, err)
	}
}

// TestServeWithRedisCluster wires the engines on a Redis Cluster client: the
// node starts and writes its presence into the cluster.
func TestServeWithRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	prefix := redistest.Prefix(t)
	addrs := strings.Join(c.Options().Addrs, ",")
	sigs, out, errb, _, done := startServe(t, env{"REALTIME_REDIS_CLUSTER_ADDRS": addrs},
		"--dev", "--log-format", "json", "--drain-period", "100ms", "--node-id", "n-cluster", "--redis-prefix", prefix)
	waitOutput(t, errb, "const socket", done)
	if !strings.Contains(out.String(), `"engine":"redis"`) || !strings.Contains(out.String(), "cluster "+addrs) {
		t.Errorf("start-up line does not say the Redis Cluster engine:\n%s", out)
	}
	ctx := context.Background()
	waitUntil(t, "the liveness key (the node does not use this cluster)", func() (bool, error) {
		n, err := c.Exists(ctx, prefix+":{nodes}:n-cluster:alive").Result()
		return n == 1, err
	})
	stopServe(t, sigs, done, out)
}

func TestServeRedisErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		env  env
		args []string
		want string
	}{
		"bad url":    {env{"REALTIME_JWT_SECRET": "s"}, []string{"--redis-url", "http://x"}, "--redis-url"},
		"bad prefix": {env{"REALTIME_JWT_SECRET": "s"}, []string{"--redis-url", "redis://127.0.0.1:1/0", "--redis-prefix", "a{b}"}, "prefix"},
	} {
		t.Run(name, func(t *testing.T) {
			a, _, errb := testApp(tc.env)
			code := a.Run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, tc.args...))
			if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d stderr %q, want exit 2 naming %s", code, errb, tc.want)
			}
		})
	}
}
