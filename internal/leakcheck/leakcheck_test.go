package leakcheck

import (
	"fmt"
	"testing"
	"time"
)

// recorder is a test whose cleanups and errors are kept, to run them by hand.
type recorder struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) finish() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestReportsALeftGoroutine(t *testing.T) {
	r := &recorder{TB: t}
	check(r, 100*time.Millisecond)
	release := make(chan struct{})
	go func() { <-release }()
	r.finish()
	close(release)
	if len(r.errors) != 1 {
		t.Fatalf("errors %q, want one report of the blocked goroutine", r.errors)
	}
}

func TestWaitsForGoroutinesEnding(t *testing.T) {
	r := &recorder{TB: t}
	check(r, 5*time.Second)
	go func() { time.Sleep(300 * time.Millisecond) }()
	r.finish()
	if len(r.errors) != 0 {
		t.Fatalf("errors %q for a goroutine that ended by itself", r.errors)
	}
}
