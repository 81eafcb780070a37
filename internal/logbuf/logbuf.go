// Package logbuf provides Buffer, a byte buffer that many goroutines may
// write to at once. Tests and test tools hand it to a logger, an in-process
// server or a child process as its output, and read what was written while
// the writers still run.
package logbuf

import (
	"bytes"
	"sync"
	"unicode/utf8"
)

// Buffer collects writes from many goroutines. The zero value is an empty
// buffer ready to use. It is safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p. It never fails.
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

// Tail returns about the last n bytes written, for an error message: when
// it cuts, it cuts at the start of a UTF-8 character and begins with "…".
func (b *Buffer) Tail(n int) string {
	s := b.String()
	if len(s) <= n {
		return s
	}
	i := len(s) - max(n, 0)
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return "…" + s[i:]
}
