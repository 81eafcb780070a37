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
// or a logout here removes it. A session that ends anywhere (a logout or
// an admin's end through another replica, a back-channel logout) is
// announced to every replica (vault.Watcher): the entry goes at once
// (ended), and all of them go when the subscription is answered again
// after a Redis blip (clear), since an announcement may have been lost
// meanwhile; ttl bounds what is left (the subscription's first seconds).
// A grant the provider revoked is caught by the API's 401. In token mode
// the browser keeps using its token for the rest of the token's
// lifetime.
type hotRecords struct {
	ttl    time.Duration
	r      *refresh.Refresher
	mu     sync.RWMutex
	m      map[string]hotRecord // by session id
	byHash map[string]string    // hashed id (vault.HashID) → session id
	gen    uint64               // one more at each announcement (see mark)
}

type hotRecord struct {
	rec   *vault.Record
	hid   string
	until time.Time
}

// hotRecordsMax bounds the entries; the map is emptied when full.
const hotRecordsMax = 1 << 14

func newHotRecords(ttl time.Duration, r *refresh.Refresher) *hotRecords {
	if ttl <= 0 {
		return nil
	}
	return &hotRecords{ttl: ttl, r: r, m: make(map[string]hotRecord), byHash: make(map[string]string)}
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

// mark is taken before reading a record for put: a session announced
// ended between the two could otherwise be kept after its announcement
// was heard, so put keeps nothing when any announcement came in between.
func (h *hotRecords) mark() uint64 {
	if h == nil {
		return 0
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.gen
}

// put keeps a record the engine handed out (not a degraded one), read
// after mark returned gen.
func (h *hotRecords) put(sid string, res refresh.Result, now time.Time, gen uint64) {
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
	hid := vault.HashID(sid) // on a miss only: at most once a ttl per session
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen != gen {
		return
	}
	if len(h.m) >= hotRecordsMax {
		clear(h.m)
		clear(h.byHash)
	}
	h.m[sid] = hotRecord{rec: res.Record, hid: hid, until: until}
	h.byHash[hid] = sid
}

// forget drops sid's record.
func (h *hotRecords) forget(sid string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	if e, ok := h.m[sid]; ok {
		delete(h.byHash, e.hid)
		delete(h.m, sid)
	}
	h.mu.Unlock()
}

// ended drops the record of the session whose hashed id is hid, announced
// ended (by any replica).
func (h *hotRecords) ended(hid string) {
	h.mu.Lock()
	h.gen++
	if sid, ok := h.byHash[hid]; ok {
		delete(h.m, sid)
		delete(h.byHash, hid)
	}
	h.mu.Unlock()
}

// clearAll drops every record: announcements may have been lost.
func (h *hotRecords) clearAll() {
	h.mu.Lock()
	h.gen++
	clear(h.m)
	clear(h.byHash)
	h.mu.Unlock()
}
