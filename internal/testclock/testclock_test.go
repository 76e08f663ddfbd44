package testclock

import (
	"testing"
	"time"
)

func TestStopped(t *testing.T) {
	start := time.Unix(1_900_000_000, 0)
	c := New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now %v, want %v", got, start)
	}
	c.Advance(time.Minute)
	c.Advance(time.Second)
	if got, want := c.Now(), start.Add(61*time.Second); !got.Equal(want) {
		t.Fatalf("Now after 1m1s %v, want %v", got, want)
	}
}

func TestRealPlusAdvance(t *testing.T) {
	c := Real()
	c.Advance(time.Hour)
	before := time.Now()
	got := c.Now()
	after := time.Now()
	if got.Before(before.Add(time.Hour)) || got.After(after.Add(time.Hour)) {
		t.Fatalf("Now %v, want between %v and %v", got, before.Add(time.Hour), after.Add(time.Hour))
	}
}
