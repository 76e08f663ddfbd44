// Package leakcheck fails a test that leaves goroutines behind: call Check
// first thing in the test, so that its check runs after every other cleanup
// (cleanups run last registered first) and sees only what the test started
// and did not stop. It uses go.uber.org/goleak, which retries for a while so
// goroutines that are ending anyway are not reported. Tests using it must not
// run in parallel with others (t.Parallel), whose goroutines it would see.
//
//	func TestX(t *testing.T) {
//		leakcheck.Check(t)
//		...
//	}
package leakcheck

import (
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// settle is how long goroutines get to end after the test's cleanups.
const settle = 5 * time.Second

// Check records the goroutines running now and, when the test ends, fails it
// if others are still running after a few seconds.
func Check(tb testing.TB) {
	tb.Helper()
	check(tb, settle)
}

func check(tb testing.TB, settle time.Duration) {
	ignore := goleak.IgnoreCurrent()
	tb.Cleanup(func() {
		// Keep-alive connections of the default client (admin endpoints,
		// metrics) are the test's own: close them first.
		http.DefaultClient.CloseIdleConnections()
		// goleak.Find retries for about half a second; a loaded machine
		// may need longer for goroutines that are ending anyway.
		deadline := time.Now().Add(settle)
		for {
			err := goleak.Find(ignore)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				tb.Errorf("leakcheck: goroutines left running: %v", err)
				return
			}
		}
	})
}
