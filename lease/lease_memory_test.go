package lease_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/lease/leasetest"
)

func TestMemory(t *testing.T) {
	leasetest.Run(t, func(t *testing.T, now func() time.Time) lease.Lease {
		return lease.NewMemory(now)
	}, leasetest.Options{})
}

// TestMemoryDefaultClock runs the memory lease on its default clock
// (time.Now, which the suite replaces) inside a synctest bubble: the lease
// holds until exactly its TTL, then another holder gets a new term with a
// higher fencing number.
func TestMemoryDefaultClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := lease.NewMemory(nil)
		ctx := t.Context()
		a, ok, err := l.TryAcquire(ctx, "rtm", "a", 10*time.Second)
		if !ok || err != nil {
			t.Fatalf("a: ok=%v err=%v", ok, err)
		}
		time.Sleep(10*time.Second - time.Nanosecond)
		if _, ok, _ := l.TryAcquire(ctx, "rtm", "b", 10*time.Second); ok {
			t.Fatal("b took the lease before a's TTL ran out")
		}
		time.Sleep(time.Nanosecond)
		b, ok, err := l.TryAcquire(ctx, "rtm", "b", 10*time.Second)
		if !ok || err != nil || b.Fencing <= a.Fencing {
			t.Fatalf("b after the TTL: term %+v ok=%v err=%v; want a fencing above %d", b, ok, err, a.Fencing)
		}
	})
}
