// Package syncbuf is a bytes.Buffer that goroutines may write while a test
// reads it: a process's stdout and stderr, a logger's sink.
//
//	var logs syncbuf.Buffer
//	cmd.Stdout, cmd.Stderr = &logs, &logs
//	...
//	t.Logf("output:\n%s", logs.String())
package syncbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is safe for concurrent use; its zero value is empty and ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns what was written so far split into lines, without the
// surrounding white space (log lines, one per entry).
func (b *Buffer) Lines() []string {
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}
