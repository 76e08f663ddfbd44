package node

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/redistest"
)

// readyz returns /readyz's status code and status field.
func readyz(t *testing.T, n *Node) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body.Status
}

// TestNotReadyBeforeTheEngineAnswers: a node whose Redis is unreachable from
// the start is never ready, not even before its first engine check; when
// Redis comes up it turns ready.
func TestNotReadyBeforeTheEngineAnswers(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	client := rs.Client()
	rs.Kill()
	n := startNode(t, func(c *Config) {
		c.Engines.Ping = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return client.Ping(ctx).Err()
		}
	})
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if code, status := readyz(t, n); code == http.StatusOK {
			t.Fatalf("readyz answered %d %q while Redis is down", code, status)
		}
	}
	// The first check fails within its ping's bound: unreachable, never ready.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, status := readyz(t, n)
		if code == http.StatusOK {
			t.Fatalf("readyz answered %d %q while Redis is down", code, status)
		}
		if status == "engine unreachable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz %d %q 10 s after start, want 503 \"engine unreachable\"", code, status)
		}
	}
	rs.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, status := readyz(t, n)
		if code == http.StatusOK && status == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d %q 10 s after Redis came up", code, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
