package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// A session that ended is not deleted: its key is given a tombstone, a
// plain value that says why it ended and that no sealed value starts with
// (a sealed value starts with sealFormat and a key id, or, written before
// key ids, with a random nonce: tombstonePrefix is 14 bytes long). A write
// that began before the end (a refresh in flight) is conditional on the
// key holding a record (Update), so it can neither overwrite the tombstone
// nor bring back a key that expired or was deleted. The key is the same,
// so this holds on Redis Cluster too.
const tombstonePrefix = "\x00tether-ended:"

// Bounds of a tombstone's life (see End).
const (
	minTombstoneTTL = time.Minute
	maxReasonLen    = 64
)

// ErrEnded reports that a session ended (see EndedError). errors.Is(err,
// ErrNotFound) is true of it as well: there is no record to use.
var ErrEnded = errors.New("vault: session ended")

// EndedError is what Get returns for a session that End ended, with the
// reason End was given, until the tombstone expires (then Get returns
// ErrNotFound).
type EndedError struct {
	Reason string
}

func (e *EndedError) Error() string { return "vault: the session ended (" + e.Reason + ")" }

// Is makes errors.Is(err, ErrEnded) and errors.Is(err, ErrNotFound) true.
func (e *EndedError) Is(target error) bool { return target == ErrEnded || target == ErrNotFound }

// endedError returns the EndedError a tombstone stands for, or nil when
// blob is not one.
func endedError(blob []byte) *EndedError {
	if !bytes.HasPrefix(blob, []byte(tombstonePrefix)) {
		return nil
	}
	return &EndedError{Reason: string(blob[len(tombstonePrefix):])}
}

var (
	// endScript replaces what the key holds by the tombstone ARGV[1], for
	// ARGV[2] ms, or for the key's remaining life if that is shorter, but
	// at least ARGV[3] ms; unless the key already holds a tombstone (prefix
	// ARGV[4]), which stands, or holds nothing and ARGV[5] is "1" (end
	// only a live session), when nothing is written. When it writes, it
	// publishes ARGV[7] on channel ARGV[6] (the announcement every
	// replica's event streams hear, events.go) in the same round trip. It returns {1, the
	// value replaced or false} when it wrote, {0, the tombstone in force}
	// when the session had ended, {2} when there was nothing to end.
	endScript = redis.NewScript(`
local cur = redis.call("GET", KEYS[1])
if cur and string.sub(cur, 1, string.len(ARGV[4])) == ARGV[4] then
	return {0, cur}
end
if not cur and ARGV[5] == "1" then
	return {2}
end
local ttl = tonumber(ARGV[2])
local left = redis.call("PTTL", KEYS[1])
if left > 0 and left < ttl then
	ttl = math.max(left, tonumber(ARGV[3]))
end
redis.call("SET", KEYS[1], ARGV[1], "PX", string.format("%d", ttl))
redis.call("PUBLISH", ARGV[6], ARGV[7])
return {1, cur}`)

	// updateScript writes ARGV[1] for ARGV[3] ms only if the key holds a
	// value that is not a tombstone (prefix ARGV[2]). It returns 1 when it
	// wrote, 0 when the key is missing, and the tombstone when there is one.
	updateScript = redis.NewScript(`
local cur = redis.call("GET", KEYS[1])
if not cur then
	return 0
end
if string.sub(cur, 1, string.len(ARGV[2])) == ARGV[2] then
	return cur
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[3])
return 1`)
)

// End ends session sid: its record (or nothing, if it has none) is
// replaced by a tombstone that makes Get return an *EndedError with
// reason, and that no Update can overwrite. The tombstone lasts ttl, or
// the record's remaining TTL if that is shorter (but at least a minute,
// and never more than ttl). A session ends once: if it had already ended,
// its tombstone stands, reason and TTL. End returns the reason in force.
// reason is short printable ASCII, like "signed_out". The session leaves
// the indexes (see Sessions).
func (v *Vault) End(ctx context.Context, sid, reason string, ttl time.Duration) (string, error) {
	if sid == "" {
		return "", errors.New("vault: end session: empty id")
	}
	got, _, err := v.endSession(ctx, hashID(sid), reason, ttl, false)
	return got, err
}

// EndHashed ends the session whose hashed id is hid (as Sessions lists
// it), like End, but only if it has a record: a session that already
// ended keeps its tombstone, one that expired or never was gets none. It
// returns the record it replaced, so that the caller can revoke its
// grant, or nil when it ended nothing (then reason is the reason in force
// for a session that had ended, or "").
func (v *Vault) EndHashed(ctx context.Context, hid, reason string, ttl time.Duration) (string, *Record, error) {
	if !validHashedID(hid) {
		return "", nil, errors.New("vault: end session: not a hashed session id")
	}
	return v.endSession(ctx, hid, reason, ttl, true)
}

// endSession is the one place where a session ends: every tombstone is
// written here (End, EndHashed, and through them logout, revocation,
// idleness, back-channel logout and the admin's end). hid is the hashed
// session id (the session key's suffix). With liveOnly, a key without a
// value is left alone. It returns the reason in force and the record the
// tombstone replaced (nil when there was none, or it did not open), after
// taking that session out of the indexes.
func (v *Vault) endSession(ctx context.Context, hid, reason string, ttl time.Duration, liveOnly bool) (string, *Record, error) {
	switch {
	case ttl <= 0:
		return "", nil, fmt.Errorf("vault: end session: ttl %v is not positive", ttl)
	case !validReason(reason):
		return "", nil, fmt.Errorf("vault: end session: reason %q is not 1 to %d printable ASCII characters", reason, maxReasonLen)
	}
	ms := max(ttl.Milliseconds(), 1)
	floor := min(ms, minTombstoneTTL.Milliseconds())
	live := "0"
	if liveOnly {
		live = "1"
	}
	key := v.sessionKeyOfHash(hid)
	res, err := endScript.Run(ctx, v.rdb, []string{key}, tombstonePrefix+reason, ms, floor, tombstonePrefix, live,
		v.prefix+endedChannel, announcement(hid, reason)).Slice()
	if err != nil {
		return "", nil, fmt.Errorf("vault: end session: %w", err)
	}
	code, _ := res[0].(int64)
	switch code {
	case 0: // it had ended
		prev, _ := res[1].(string)
		if e := endedError([]byte(prev)); e != nil {
			return e.Reason, nil, nil
		}
		return reason, nil, nil
	case 2: // nothing to end
		return "", nil, nil
	}
	var rec *Record
	if len(res) > 1 {
		if prev, ok := res[1].(string); ok {
			var r Record
			if v.decode(key, []byte(prev), "end session", &r) == nil {
				rec = &r
			}
		}
	}
	if rec != nil {
		// Best effort: the session has ended whatever happens here, and
		// an entry left behind goes when the record would have expired
		// (an index lists it, EndHashed finds its tombstone).
		_ = v.unindex(ctx, rec, hid)
	}
	return reason, rec, nil
}

func validReason(r string) bool {
	if r == "" || len(r) > maxReasonLen {
		return false
	}
	for i := range len(r) {
		if r[i] < 0x21 || r[i] > 0x7e {
			return false
		}
	}
	return true
}

// Update replaces the record of session sid by rec, for ttl, only if the
// session still has a record: not if it ended (an *EndedError), expired or
// was deleted (ErrNotFound). A refresh stores its result with it, so that
// a session ended while the refresh was in flight stays ended. Zero times
// are filled as Put does. The session's index entries are extended to the
// new ttl (best effort).
func (v *Vault) Update(ctx context.Context, sid string, rec *Record, ttl time.Duration) error {
	if rec == nil {
		return errors.New("vault: update session: nil record")
	}
	if sid == "" {
		return errors.New("vault: update session: empty id")
	}
	if ttl <= 0 {
		return fmt.Errorf("vault: update session: ttl %v is not positive", ttl)
	}
	r := v.filled(rec)
	plain, err := r.MarshalBinary()
	if err != nil {
		return fmt.Errorf("vault: update session: %w", err)
	}
	key := v.sessionKey(sid)
	ms := max(ttl.Milliseconds(), 1)
	res, err := updateScript.Run(ctx, v.rdb, []string{key}, v.seal(key, plain), tombstonePrefix, ms).Result()
	if err != nil {
		return fmt.Errorf("vault: update session: %w", err)
	}
	switch res := res.(type) {
	case int64:
		if res == 1 {
			// Best effort: the record is written; an index that missed
			// the longer life keeps the session until its login-time end.
			_ = v.index(ctx, &r, hashID(sid), ttl)
			return nil
		}
		return fmt.Errorf("vault: update session: no record: %w", ErrNotFound)
	case string:
		if e := endedError([]byte(res)); e != nil {
			return e
		}
	}
	return fmt.Errorf("vault: update session: unexpected reply %T", res)
}
