package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the node's goroutines and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs `realtime serve args...` in the background with signals
// delivered through the returned channel.
func startServe(t *testing.T, e env, args ...string) (sigs chan os.Signal, out, errb *lockedBuffer, exits chan int, done chan int) {
	t.Helper()
	sigs = make(chan os.Signal, 2)
	out, errb = &lockedBuffer{}, &lockedBuffer{}
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

func waitOutput(t *testing.T, buf *lockedBuffer, want string, done chan int) {
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

func TestServeDevDrainsOnSignal(t *testing.T) {
	sigs, out, errb, exits, done := startServe(t, env{}, "--dev", "--log-format", "json", "--drain-period", "100ms", "--node-id", "n-test")
	waitOutput(t, errb, "const socket = io('http://127.0.0.1:", done)
	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after one SIGTERM, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return within 10 s of SIGTERM")
	}
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

func TestServeSecondSignalExitsAtOnce(t *testing.T) {
	// A long drain with a connection-free node still returns quickly, so the
	// second signal must arrive while draining: send both at once.
	sigs, _, errb, exits, done := startServe(t, env{}, "--dev", "--log-format", "json", "--drain-period", "5s")
	waitOutput(t, errb, "const socket", done)
	sigs <- syscall.SIGTERM
	sigs <- syscall.SIGINT
	select {
	case code := <-exits:
		if code != 1 {
			t.Errorf("exit(%d) on the second signal, want 1", code)
		}
	case <-done:
		t.Error("serve returned before handling the second signal")
	case <-time.After(10 * time.Second):
		t.Fatal("exit not called within 10 s of a second signal")
	}
	<-done
}
