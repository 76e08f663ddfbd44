package redistest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// recorder is a testing.TB that keeps what a helper reports instead of
// failing the test running it.
type recorder struct {
	testing.TB
	errs  []string
	fatal bool
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.fatal = true
}

// A command and a pipeline are one round trip each (the connection's setup
// is not counted), and Expect reports each call that takes another number.
func TestRoundTrips(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client()
	ctx := t.Context()
	rt := CountRoundTrips(c)
	one := func() error { return c.Set(ctx, "k", "v", 0).Err() }
	pipe := func() error {
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "a", "1", 0)
			p.Set(ctx, "b", "2", 0)
			return nil
		})
		return err
	}
	two := func() error {
		if err := c.Get(ctx, "k").Err(); err != nil {
			return err
		}
		return c.Get(ctx, "k").Err()
	}
	rt.Expect(t, []Call{{Name: "first SET (dials)", Do: one}, {Name: "GET twice", Do: two, Want: 2}, {Name: "pipeline", Do: pipe}})

	r := &recorder{TB: t}
	rt.Expect(r, []Call{{Name: "SET", Do: one, Want: 2}, {Name: "GET twice", Do: two}})
	if len(r.errs) != 2 || !strings.Contains(r.errs[0], "SET: 1 round trips, want 2") || !strings.Contains(r.errs[1], "GET twice: 2 round trips, want 1") {
		t.Fatalf("reports %q, want one for each wrong count", r.errs)
	}
	r = &recorder{TB: t}
	rt.Expect(r, []Call{{Name: "broken", Do: func() error { return errors.New("boom") }}, {Name: "after", Do: one, Want: 9}})
	if !r.fatal || len(r.errs) == 0 || !strings.Contains(r.errs[0], "broken: boom") {
		t.Fatalf("reports %q (fatal %v), want a fatal report of the error", r.errs, r.fatal)
	}
}

func TestExpectErr(t *testing.T) {
	want := errors.New("down")
	r := &recorder{TB: t}
	ExpectErr(r, want, "with Redis down", map[string]func() error{
		"wrapped": func() error { return fmt.Errorf("x: %w", want) },
		"other":   func() error { return errors.New("other") },
		"nil":     func() error { return nil },
	})
	if len(r.errs) != 2 {
		t.Fatalf("reports %q, want two (other, nil)", r.errs)
	}
}

// A client of a killed server fails at once rather than retrying.
func TestFailFastClient(t *testing.T) {
	s := Start(t, Options{})
	c := s.FailFastClient()
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := c.Ping(t.Context()).Err(); err == nil {
		t.Fatal("PING to a killed server succeeded")
	}
}
