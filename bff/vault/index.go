package vault

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The session indexes say which sessions belong to a subject (the user,
// Record.Subject) and to a provider session (Record.ProviderSID), so that
// a back-channel logout or an operator can end them all. Each index is a
// sorted set of hashed session ids (never the ids themselves: see the
// package doc), scored with the Unix millisecond at which the member's
// record expires:
//
//	tether:ix:sub:h(subject)   sessions of a subject
//	tether:ix:psid:h(sid)      sessions of a provider session
//
// Put and Update add a session to its indexes (raising its score to the
// record's new expiry, never lowering it); ending it (endSession) takes
// it out. Every write also drops the members whose records have expired
// and sets the index's own expiry to its longest-lived member's, so an
// index lives as long as its longest record, holds at most the sessions
// still alive, and disappears with the last of them. Each script touches
// its one key, so the indexes work on Redis Cluster. Scores are the BFF's
// wall clock (not Redis's): a skew between the two moves an index's end by
// that much, against records that live hours.
var (
	// indexAddScript raises member ARGV[1]'s score to ARGV[3] (ms), drops
	// members whose score is at most ARGV[2] (now, ms), and makes the key
	// expire with its highest score.
	indexAddScript = redis.NewScript(`
local cur = redis.call("ZSCORE", KEYS[1], ARGV[1])
if not cur or tonumber(cur) < tonumber(ARGV[3]) then
	redis.call("ZADD", KEYS[1], ARGV[3], ARGV[1])
end
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", ARGV[2])
local last = redis.call("ZRANGE", KEYS[1], -1, -1, "WITHSCORES")
if #last == 0 then
	return 0
end
redis.call("PEXPIRE", KEYS[1], string.format("%d", math.max(1, tonumber(last[2]) - tonumber(ARGV[2]))))
return 1`)

	// indexRemoveScript removes member ARGV[1], drops members whose score
	// is at most ARGV[2] (now, ms), and makes the key expire with its
	// highest remaining score (an empty sorted set is no key at all).
	indexRemoveScript = redis.NewScript(`
redis.call("ZREM", KEYS[1], ARGV[1])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", ARGV[2])
local last = redis.call("ZRANGE", KEYS[1], -1, -1, "WITHSCORES")
if #last == 0 then
	return 0
end
redis.call("PEXPIRE", KEYS[1], string.format("%d", math.max(1, tonumber(last[2]) - tonumber(ARGV[2]))))
return 1`)
)

// maxIndexed bounds how many sessions one listing returns.
const maxIndexed = 10000

func (v *Vault) subjectIndexKey(subject string) string { return v.prefix + "ix:sub:" + hashID(subject) }
func (v *Vault) providerIndexKey(psid string) string   { return v.prefix + "ix:psid:" + hashID(psid) }

// indexKeys are the indexes rec belongs in.
func (v *Vault) indexKeys(rec *Record) []string {
	var keys []string
	if rec.Subject != "" {
		keys = append(keys, v.subjectIndexKey(rec.Subject))
	}
	if rec.ProviderSID != "" {
		keys = append(keys, v.providerIndexKey(rec.ProviderSID))
	}
	return keys
}

// index adds session hid, whose record rec lives ttl from now, to its
// indexes.
func (v *Vault) index(ctx context.Context, rec *Record, hid string, ttl time.Duration) error {
	keys := v.indexKeys(rec)
	if len(keys) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	until := now + max(ttl.Milliseconds(), 1)
	return v.runEach(ctx, indexAddScript, keys, hid, strconv.FormatInt(now, 10), strconv.FormatInt(until, 10))
}

// unindex takes session hid out of rec's indexes.
func (v *Vault) unindex(ctx context.Context, rec *Record, hid string) error {
	keys := v.indexKeys(rec)
	if len(keys) == 0 {
		return nil
	}
	return v.runEach(ctx, indexRemoveScript, keys, hid, strconv.FormatInt(time.Now().UnixMilli(), 10))
}

// runEach runs script once per key (each run touches its one key; on
// Redis Cluster the pipeline goes to each key's node), in one round trip.
func (v *Vault) runEach(ctx context.Context, script *redis.Script, keys []string, args ...any) error {
	if len(keys) == 1 {
		return script.Run(ctx, v.rdb, keys, args...).Err()
	}
	// EVAL, not EVALSHA: a node that does not have the script cached (a
	// failover, a new shard) runs it all the same.
	pipe := v.rdb.Pipeline()
	for _, k := range keys {
		script.Eval(ctx, pipe, []string{k}, args...)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// SubjectSessions returns the hashed ids of the sessions of subject (as
// Record.Subject names it) whose records have not expired: live ones, and
// any that ended too recently for the index to know (EndHashed tells).
// At most 10,000.
func (v *Vault) SubjectSessions(ctx context.Context, subject string) ([]string, error) {
	if subject == "" {
		return nil, errors.New("vault: sessions of a subject: empty subject")
	}
	return v.indexed(ctx, v.subjectIndexKey(subject))
}

// ProviderSessions returns the hashed ids of the sessions logged in
// through the provider session psid (Record.ProviderSID), as
// SubjectSessions does for a subject.
func (v *Vault) ProviderSessions(ctx context.Context, psid string) ([]string, error) {
	if psid == "" {
		return nil, errors.New("vault: sessions of a provider session: empty sid")
	}
	return v.indexed(ctx, v.providerIndexKey(psid))
}

func (v *Vault) indexed(ctx context.Context, key string) ([]string, error) {
	ids, err := v.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf", Count: maxIndexed,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("vault: list sessions: %w", err)
	}
	return ids, nil
}

// HashedRecord is a session's record found by its hashed id, and how
// long Redis keeps it.
type HashedRecord struct {
	ID     string // the hashed id
	Record *Record
	TTL    time.Duration
}

// GetHashed returns the records of the sessions whose hashed ids are hids
// (as SubjectSessions lists them), in their order, leaving out those that
// ended, expired or do not open. It reads them in pipelined batches of
// 256 (one round trip each), so a user with thousands of sessions is
// listed in a few round trips.
func (v *Vault) GetHashed(ctx context.Context, hids []string) ([]HashedRecord, error) {
	for _, hid := range hids {
		if !validHashedID(hid) {
			return nil, errors.New("vault: get sessions: not a hashed session id")
		}
	}
	out := make([]HashedRecord, 0, len(hids))
	err := v.readHashed(ctx, hids, true, 0, func(k keyRead) error {
		switch {
		case k.err != nil:
			return k.err
		case !k.found || endedError(k.blob) != nil:
			return nil
		}
		var rec Record
		if v.decode(v.sessionKeyOfHash(k.hid), k.blob, "get sessions", &rec) == nil {
			out = append(out, HashedRecord{ID: k.hid, Record: &rec, TTL: max(k.ttl, 0)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vault: get sessions: %w", err)
	}
	return out, nil
}

// keyRead is one session key as readHashed read it.
type keyRead struct {
	hid   string        // the hashed session id
	found bool          // the key exists
	blob  []byte        // its value, when found
	ttl   time.Duration // its PTTL, when asked for
	err   error         // the error of its GET, if any (not a missing key)
}

// readHashed reads the session keys of hids in pipelined batches of
// recheckBatch, one round trip each, and hands each to use in order, with
// withTTL its PTTL too. A batch gets its own timeout when timeout > 0. It
// stops at the first error of a round trip or of use.
func (v *Vault) readHashed(ctx context.Context, hids []string, withTTL bool, timeout time.Duration, use func(keyRead) error) error {
	for len(hids) > 0 {
		batch := hids[:min(len(hids), recheckBatch)]
		hids = hids[len(batch):]
		bctx, cancel := ctx, func() {}
		if timeout > 0 {
			bctx, cancel = context.WithTimeout(ctx, timeout)
		}
		pipe := v.rdb.Pipeline()
		gets := make([]*redis.StringCmd, len(batch))
		var ttls []*redis.DurationCmd
		if withTTL {
			ttls = make([]*redis.DurationCmd, len(batch))
		}
		for i, hid := range batch {
			key := v.sessionKeyOfHash(hid)
			gets[i] = pipe.Get(bctx, key)
			if withTTL {
				ttls[i] = pipe.PTTL(bctx, key)
			}
		}
		_, err := pipe.Exec(bctx)
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for i, hid := range batch {
			k := keyRead{hid: hid, found: true}
			k.blob, k.err = gets[i].Bytes()
			if errors.Is(k.err, redis.Nil) {
				k.found, k.blob, k.err = false, nil, nil
			}
			if withTTL {
				k.ttl = ttls[i].Val()
			}
			if err := use(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// HashID returns the hashed form of session id sid, as the indexes and
// EndHashed name sessions.
func HashID(sid string) string { return hashID(sid) }

// validHashedID reports whether s looks like hashID's output: 43
// base64url characters (256 bits).
func validHashedID(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
