package logbuf

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Lines written by many goroutines at once all arrive whole (and -race
// sees no race between the writers and a reader).
func TestConcurrentWrites(t *testing.T) {
	const writers, lines = 8, 200
	var b Buffer
	log := slog.New(slog.NewTextHandler(&b, nil))
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				log.Info("line", "writer", w, "i", i)
				if i%50 == 0 {
					_ = b.String()
				}
			}
		})
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines; want %d", len(got), writers*lines)
	}
	seen := map[string]bool{}
	for _, l := range got {
		if !strings.Contains(l, "msg=line writer=") {
			t.Fatalf("torn line %q", l)
		}
		seen[l[strings.Index(l, "writer="):]] = true
	}
	if len(seen) != writers*lines {
		t.Errorf("%d distinct lines; want %d", len(seen), writers*lines)
	}
}

func TestTail(t *testing.T) {
	cases := []struct {
		written string
		n       int
		want    string
	}{
		{"", 10, ""},
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 3, "…abc"},
		{"naïve café", 4, "…afé"}, // "é" is two bytes
		{"naïve café", 2, "…é"},
		{"naïve café", 1, "…"}, // one byte would tear "é": the cut moves past it
		{"a€", 2, "…"},         // "€" is three bytes
		{"abc", 0, "…"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q/%d", c.written, c.n), func(t *testing.T) {
			var b Buffer
			b.Write([]byte(c.written))
			if got := b.Tail(c.n); got != c.want {
				t.Errorf("Tail(%d) = %q; want %q", c.n, got, c.want)
			}
		})
	}
}
