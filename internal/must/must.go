// Package must turns a (value, error) result into its value for tests, failing
// the test on the error:
//
//	ok := must.Get[bool](t)(p.Acquire(ctx, "alice", "c1", 3))
package must

import "testing"

// Get returns a function that returns v, or fails tb (from the caller's
// line) when err is not nil.
func Get[V any](tb testing.TB) func(v V, err error) V {
	return func(v V, err error) V {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}
