package bus

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Coalescing of concurrent script calls (sends, edits, deletes, reactions,
// limited typing events) into one pipelined round trip.
//
// Each round trip costs Redis a read and a write system call and a wake-up
// of its event loop, and each wake-up a write to every subscriber connection
// with something to send. A single writer per broker sends whatever calls are
// queued as one pipeline; calls that arrive while it is in flight go out
// together in the next one. When idle a call goes out at once (no added
// latency); under load the batches grow by themselves.
// [RedisConfig.BatchLinger] can add a bounded wait for more calls,
// [RedisConfig.NoBatch] turns the writer off. One Redis (or Sentinel's
// master) only: see runScript. Redis runs a pipeline's scripts one after
// another in queue order, each still atomic, so every guarantee of a single
// call holds per call. (Measured in docs/BENCHMARKS.md: Redis's reads per
// send fall, its CPU per send hardly, as most of that is the scripts'.)

// maxBatch bounds the calls in one pipeline.
const maxBatch = 128

// scriptCall is one queued script call; done is closed once cmd holds its
// reply (or err is set).
type scriptCall struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
	err    error // set instead of running the call (its context ended first)
	done   chan struct{}
}

// runScript runs script through the broker's writer and returns its reply.
// Errors are Redis's (the caller wraps them) or ctx's, or ErrClosed.
//
// With NoBatch, and on a Redis Cluster client, the call goes out on its own
// (a pooled connection each). Not on a cluster because one writer pipelines
// to every master at once and waits for the slowest: a master failing over
// (about a second of timeouts) would hold up every other master's sends.
func (r *Redis) runScript(ctx context.Context, script *redis.Script, keys []string, args ...any) (any, error) {
	if !r.batch {
		return script.Run(ctx, r.client, keys, args...).Result()
	}
	r.startWriter()
	c := &scriptCall{ctx: ctx, script: script, keys: keys, args: args, done: make(chan struct{})}
	select {
	case r.calls <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.closeCh:
		return nil, ErrClosed
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		// Not answered in time: the call may still run (as when a reply is
		// lost), unless the writer had not taken it yet (see write).
		return nil, ctx.Err()
	case <-r.closeCh:
		return nil, ErrClosed
	}
	if c.err != nil {
		return nil, c.err
	}
	return c.cmd.Result()
}

// startWriter starts the writer goroutine on first use; Close stops it.
func (r *Redis) startWriter() {
	r.writerOnce.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.closed {
			return // runScript's select sees closeCh
		}
		r.wg.Add(1)
		go r.writer()
	})
}

// writer sends queued calls, one pipeline at a time, until Close.
func (r *Redis) writer() {
	defer r.wg.Done()
	batch := make([]*scriptCall, 0, maxBatch)
	var linger *time.Timer
	for {
		select {
		case c := <-r.calls:
			batch = append(batch[:0], c)
		case <-r.closeCh:
			return
		}
		if r.linger > 0 {
			if linger == nil {
				linger = time.NewTimer(r.linger)
			} else {
				linger.Reset(r.linger)
			}
		wait:
			for len(batch) < maxBatch {
				select {
				case c := <-r.calls:
					batch = append(batch, c)
				case <-linger.C:
					break wait
				case <-r.closeCh:
					return
				}
			}
			linger.Stop()
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case c := <-r.calls:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		r.write(batch)
		clear(batch)
	}
}

// write sends batch as one pipeline of EVALSHA and answers every call. Calls
// whose script Redis does not know (NOSCRIPT: a restarted or failed-over
// Redis) are sent again with the script's source, in their order; a call
// whose context ended while queued is not sent at all.
func (r *Redis) write(batch []*scriptCall) {
	live := batch[:0:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := r.batchContext(live)
	defer cancel()
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range live {
			c.cmd = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	var again []*scriptCall
	for _, c := range live {
		if redis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT") {
			again = append(again, c)
			continue
		}
		close(c.done)
	}
	if len(again) == 0 {
		return
	}
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range again {
			c.cmd = c.script.Eval(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	for _, c := range again {
		close(c.done)
	}
}

// batchContext bounds a pipeline by the latest deadline of its calls (each
// caller stops waiting at its own) and ends it when the broker closes.
func (r *Redis) batchContext(batch []*scriptCall) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			return context.WithCancel(r.closeCtx)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(r.closeCtx, latest)
}

// stringSlice is redis.Cmd.StringSlice for runScript's reply.
func stringSlice(v any, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return redis.NewCmdResult(v, nil).StringSlice()
}
