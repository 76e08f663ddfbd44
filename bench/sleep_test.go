package bench

import (
	"context"
	"testing"
	"time"
)

// sleep waits out its duration while ctx lives and returns at once, false,
// when ctx has ended: a stopped run must not sit out an hour-long wait.
func TestSleep(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
	}{
		{"live, elapses", live, time.Millisecond, true},
		{"live, nothing to wait", live, 0, true},
		{"live, in the past", live, -time.Second, true},
		{"ended, an hour", ended, time.Hour, false},
		{"ended, nothing to wait", ended, 0, false},
	} {
		if got := sleep(c.ctx, c.d); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}

	// Ended while waiting.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }() // ends with the cancel
	if sleep(ctx, time.Hour) {
		t.Error("canceled during the wait: true, want false")
	}
}
