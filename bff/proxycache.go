package bff

import (
	"sync"
	"time"

	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/bff/vault"
)

// hotRecords lets a replica reuse, for proxied calls, a session record it
// read through the refresh engine moments ago instead of reading the
// vault on every call (a Redis round trip was a third of the proxy's
// cost). An entry lives at most ttl and never past the token's refresh
// point, so refreshes happen as without it; a degraded answer is not kept;
// a refresh after an upstream 401 replaces the entry, a reconnect answer
// or a logout here removes it. What it changes: a logout or a revocation
// made through another replica reaches this one within ttl (a grant the
// provider revoked is caught sooner, by the API's 401). In token mode the
// browser keeps using its token for the rest of the token's lifetime.
type hotRecords struct {
	ttl time.Duration
	r   *refresh.Refresher
	mu  sync.RWMutex
	m   map[string]hotRecord
}

type hotRecord struct {
	rec   *vault.Record
	until time.Time
}

// hotRecordsMax bounds the entries; the map is emptied when full.
const hotRecordsMax = 1 << 14

func newHotRecords(ttl time.Duration, r *refresh.Refresher) *hotRecords {
	if ttl <= 0 {
		return nil
	}
	return &hotRecords{ttl: ttl, r: r, m: make(map[string]hotRecord)}
}

// get returns sid's record if it was kept less than ttl ago and its token
// is not due for a refresh at now.
func (h *hotRecords) get(sid string, now time.Time) *vault.Record {
	if h == nil {
		return nil
	}
	h.mu.RLock()
	e, ok := h.m[sid]
	h.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e.rec
}

// put keeps a record the engine handed out (not a degraded one).
func (h *hotRecords) put(sid string, res refresh.Result, now time.Time) {
	if h == nil || res.Degraded {
		return
	}
	until := now.Add(h.ttl)
	if rec := res.Record; !rec.Expiry.IsZero() {
		if due := rec.Expiry.Add(-h.r.Buffer(rec)); due.Before(until) {
			until = due
		}
	}
	if !now.Before(until) {
		return
	}
	h.mu.Lock()
	if len(h.m) >= hotRecordsMax {
		clear(h.m)
	}
	h.m[sid] = hotRecord{rec: res.Record, until: until}
	h.mu.Unlock()
}

// forget drops sid's record.
func (h *hotRecords) forget(sid string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	delete(h.m, sid)
	h.mu.Unlock()
}
