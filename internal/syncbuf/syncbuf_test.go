package syncbuf

import (
	"fmt"
	"sync"
	"testing"
)

// Writers on several goroutines: every write is kept whole (run with -race).
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				fmt.Fprintf(&b, "g%d-%d\n", g, i)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	lines := b.Lines()
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l] = true
	}
	if !seen["g0-0"] || !seen["g3-99"] || len(seen) != 400 {
		t.Fatalf("%d distinct lines, want 400 (g0-0 %v, g3-99 %v)", len(seen), seen["g0-0"], seen["g3-99"])
	}
}
