package redistest

import (
	"context"
	"testing"
	"time"
)

func TestStartRestartKeepsAOFData(t *testing.T) {
	s := Start(t, Options{AOF: true})
	if s.Port == 6379 {
		t.Fatal("must never use 6379")
	}
	c := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	if err := WaitReady(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "k").Result()
	if err != nil || got != "v" {
		t.Fatalf("after restart: %q, %v", got, err)
	}
}
