package must

import (
	"errors"
	"testing"
)

// fatalRecorder is a testing.TB that notes Fatal instead of stopping.
type fatalRecorder struct {
	testing.TB
	fatal []any
}

func (r *fatalRecorder) Helper()           {}
func (r *fatalRecorder) Fatal(args ...any) { r.fatal = args }

func TestGet(t *testing.T) {
	if got := Get[int](t)(7, nil); got != 7 {
		t.Fatalf("Get = %d, want 7", got)
	}
	r := &fatalRecorder{TB: t}
	boom := errors.New("boom")
	_ = Get[int](r)(0, boom)
	if len(r.fatal) != 1 || r.fatal[0] != boom {
		t.Fatalf("Fatal got %v, want the error", r.fatal)
	}
}
