package vault

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// countingHook counts the pipelines and the single commands a client
// sends, but for a new connection's set-up (HELLO, CLIENT SETINFO).
type countingHook struct{ pipelines, commands *atomic.Int64 }

func (countingHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !setUp(cmd) {
			h.commands.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !setUp(cmds[0]) {
			h.pipelines.Add(1)
		}
		return next(ctx, cmds)
	}
}

func setUp(cmd redis.Cmder) bool { return cmd.Name() == "hello" || cmd.Name() == "client" }

// indexSuite is the part of the conformance suite about the session
// indexes (SubjectSessions, ProviderSessions, EndHashed).
func indexSuite(t *testing.T, run func(string, func(*testing.T, *harness))) {
	ctx := context.Background()
	rec := func(sub, psid string) *Record {
		r := sampleRecord()
		r.Subject, r.ProviderSID = sub, psid
		return r
	}
	// indexKeys counts the index keys in Redis.
	indexKeys := func(t *testing.T, h *harness) []string {
		t.Helper()
		keys, err := h.rdb.Keys(ctx, DefaultPrefix+"ix:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}

	run("GetHashedInBatches", func(t *testing.T, h *harness) {
		// 600 of carol's sessions: GetHashed reads them in 3 pipelines
		// (256 a round trip), in order, leaving out those that ended,
		// that were never there and that do not open.
		var hids, want []string
		for i := range 600 {
			sid := "c" + strconv.Itoa(i)
			r := rec("carol", "")
			r.Name = sid
			if err := h.v.Put(ctx, sid, r, time.Hour); err != nil {
				t.Fatal(err)
			}
			hids = append(hids, HashID(sid))
			switch {
			case i%100 == 7:
				if _, _, err := h.v.EndHashed(ctx, HashID(sid), "revoked", time.Hour); err != nil {
					t.Fatal(err)
				}
			case i == 301:
				if err := h.rdb.Set(ctx, DefaultPrefix+"s:"+HashID(sid), "not a sealed record", time.Hour).Err(); err != nil {
					t.Fatal(err)
				}
			default:
				want = append(want, sid)
			}
		}
		hids = append(hids, HashID("never there"))
		var pipelines, commands atomic.Int64
		h.rdb.AddHook(countingHook{pipelines: &pipelines, commands: &commands})
		got, err := h.v.GetHashed(ctx, hids)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range got {
			names = append(names, g.Record.Name)
			if g.ID != HashID(g.Record.Name) || g.TTL <= 0 || g.TTL > time.Hour || g.Record.Subject != "carol" {
				t.Fatalf("GetHashed gave %+v for %s; want its hashed id, a TTL within the hour, carol", g, g.Record.Name)
			}
		}
		if !slices.Equal(names, want) {
			t.Fatalf("GetHashed gave %d records (%v…); want the %d live ones in order", len(names), names[:min(len(names), 5)], len(want))
		}
		if p, c := pipelines.Load(), commands.Load(); p != 3 || c != 0 {
			t.Fatalf("GetHashed took %d pipelines and %d single commands for 601 ids; want 3 and 0", p, c)
		}
		if _, err := h.v.GetHashed(ctx, []string{HashID("a"), "s:not-a-hash"}); err == nil {
			t.Fatal("GetHashed took an id that is not a hashed id")
		}
	})

	run("IndexesFollowTheSessions", func(t *testing.T, h *harness) {
		for sid, r := range map[string]*Record{
			"a1": rec("alice", "op-1"), "a2": rec("alice", "op-2"), "b1": rec("bob", "op-3"),
		} {
			if err := h.v.Put(ctx, sid, r, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		alice, err := h.v.SubjectSessions(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(alice)
		want := []string{HashID("a1"), HashID("a2")}
		slices.Sort(want)
		if !slices.Equal(alice, want) {
			t.Fatalf("SubjectSessions(alice) = %v; want %v", alice, want)
		}
		if got, _ := h.v.ProviderSessions(ctx, "op-2"); !slices.Equal(got, []string{HashID("a2")}) {
			t.Fatalf("ProviderSessions(op-2) = %v; want a2's hash", got)
		}
		// Only hashes in Redis: no session id, no subject, no provider sid.
		for _, k := range indexKeys(t, h) {
			members, _ := h.rdb.ZRange(ctx, k, 0, -1).Result()
			for _, text := range append(members, k) {
				for _, raw := range []string{"a1", "a2", "b1", "alice", "bob", "op-"} {
					if strings.Contains(text, ":"+raw) || text == raw {
						t.Errorf("index %q holds %q in the clear", k, raw)
					}
				}
			}
		}
		// An index lives as long as its longest record.
		if err := h.v.Put(ctx, "a3", rec("alice", ""), 3*time.Hour); err != nil {
			t.Fatal(err)
		}
		if pttl, _ := h.rdb.PTTL(ctx, h.v.subjectIndexKey("alice")).Result(); pttl <= 2*time.Hour+59*time.Minute || pttl > 3*time.Hour {
			t.Fatalf("alice's index PTTL = %v; want the longest record's 3h", pttl)
		}
		if pttl, _ := h.rdb.PTTL(ctx, h.v.providerIndexKey("op-1")).Result(); pttl <= 59*time.Minute || pttl > time.Hour {
			t.Fatalf("op-1's index PTTL = %v; want its record's 1h", pttl)
		}

		// Ending a session takes it out of both its indexes; the index's
		// TTL shrinks to its longest remaining record.
		if _, err := h.v.End(ctx, "a3", "signed_out", 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if pttl, _ := h.rdb.PTTL(ctx, h.v.subjectIndexKey("alice")).Result(); pttl > time.Hour {
			t.Fatalf("alice's index PTTL after a3 ended = %v; want at most the remaining records' 1h", pttl)
		}
		reason, ended, err := h.v.EndHashed(ctx, HashID("a2"), "revoked", 24*time.Hour)
		if err != nil || reason != "revoked" || ended == nil || ended.RefreshToken != rec("", "").RefreshToken {
			t.Fatalf("EndHashed(a2) = %q, %+v, %v; want revoked and a2's record", reason, ended, err)
		}
		var ee *EndedError
		if _, err := h.v.Get(ctx, "a2"); !errors.As(err, &ee) || ee.Reason != "revoked" {
			t.Fatalf("Get(a2) after EndHashed = %v; want ended (revoked)", err)
		}
		// A second end ends nothing and says why the session had ended.
		if reason, ended, err := h.v.EndHashed(ctx, HashID("a2"), "signed_out", time.Hour); err != nil || reason != "revoked" || ended != nil {
			t.Fatalf("second EndHashed = %q, %v, %v; want revoked, nil", reason, ended, err)
		}
		// A session without a record gets no tombstone.
		if reason, ended, err := h.v.EndHashed(ctx, HashID("never"), "revoked", time.Hour); err != nil || reason != "" || ended != nil {
			t.Fatalf("EndHashed(never) = %q, %v, %v; want nothing", reason, ended, err)
		}
		if n, _ := h.rdb.Exists(ctx, h.v.sessionKey("never")).Result(); n != 0 {
			t.Fatal("EndHashed wrote a tombstone for a session that had no record")
		}
		if got, _ := h.v.ProviderSessions(ctx, "op-2"); len(got) != 0 {
			t.Fatalf("op-2 still lists %v", got)
		}
		if got, _ := h.v.SubjectSessions(ctx, "alice"); !slices.Equal(got, []string{HashID("a1")}) {
			t.Fatalf("alice still lists %v; want a1 only", got)
		}
		for _, sid := range []string{"a1", "b1"} {
			if _, err := h.v.End(ctx, sid, "signed_out", time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		// Every index key is gone with its last session.
		if keys := indexKeys(t, h); len(keys) != 0 {
			t.Fatalf("index keys left after every session ended: %v", keys)
		}
	})

	run("DeleteUnindexes", func(t *testing.T, h *harness) {
		// A second login in a browser deletes the first session.
		if err := h.v.Put(ctx, "first", rec("erin", "op-7"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := h.v.Delete(ctx, "first"); err != nil {
			t.Fatal(err)
		}
		if keys := indexKeys(t, h); len(keys) != 0 {
			t.Fatalf("index keys after the only session was deleted: %v", keys)
		}
		if err := h.v.Delete(ctx, "first"); err != nil {
			t.Fatalf("deleting again: %v", err)
		}
	})

	run("RefreshExtendsTheIndex", func(t *testing.T, h *harness) {
		if err := h.v.Put(ctx, "s", rec("carol", "op-9"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := h.v.Update(ctx, "s", rec("carol", "op-9"), 5*time.Hour); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{h.v.subjectIndexKey("carol"), h.v.providerIndexKey("op-9")} {
			if pttl, _ := h.rdb.PTTL(ctx, k).Result(); pttl <= 4*time.Hour+59*time.Minute {
				t.Fatalf("%s PTTL after a refresh = %v; want the record's new 5h", k, pttl)
			}
		}
		// A shorter ttl does not shorten it: the longest record rules.
		if err := h.v.Update(ctx, "s", rec("carol", "op-9"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if pttl, _ := h.rdb.PTTL(ctx, h.v.subjectIndexKey("carol")).Result(); pttl <= 4*time.Hour {
			t.Fatalf("PTTL after a shorter refresh = %v; want still 5h", pttl)
		}
	})

	run("ExpiredMembersArePruned", func(t *testing.T, h *harness) {
		// Records that expire (not ended) leave their entries, with the
		// time they expire: a listing skips them, the next write drops
		// them, and the index goes with the last.
		for i := range 5 {
			if err := h.v.Put(ctx, "old"+string(rune('0'+i)), rec("dave", ""), 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(400 * time.Millisecond) // the scores are the wall clock
		h.advance(400 * time.Millisecond)  // and Redis's own clock
		if got, _ := h.v.SubjectSessions(ctx, "dave"); len(got) != 0 {
			t.Fatalf("expired sessions listed: %v", got)
		}
		if err := h.v.Put(ctx, "new", rec("dave", ""), time.Hour); err != nil {
			t.Fatal(err)
		}
		if n, _ := h.rdb.ZCard(ctx, h.v.subjectIndexKey("dave")).Result(); n != 1 {
			t.Fatalf("dave's index holds %d members; want the 1 live session", n)
		}
	})

	run("NoSubjectNoIndex", func(t *testing.T, h *harness) {
		if err := h.v.Put(ctx, "anon", rec("", ""), time.Hour); err != nil {
			t.Fatal(err)
		}
		if keys := indexKeys(t, h); len(keys) != 0 {
			t.Fatalf("index keys for a session without subject: %v", keys)
		}
		if _, _, err := h.v.EndHashed(ctx, "anon", "revoked", time.Hour); err == nil {
			t.Fatal("EndHashed took a raw session id")
		}
	})
}

func TestMarkTokenSeen(t *testing.T) {
	for name, newH := range map[string]func(*testing.T) *harness{"miniredis": newMiniredis, "redis-server": newRealRedis} {
		t.Run(name, func(t *testing.T) {
			h := newH(t)
			ctx := context.Background()
			first, err := h.v.MarkTokenSeen(ctx, "https://op", "jti-1", time.Minute)
			if err != nil || !first {
				t.Fatalf("first MarkTokenSeen = %v, %v; want true", first, err)
			}
			if again, err := h.v.MarkTokenSeen(ctx, "https://op", "jti-1", time.Minute); err != nil || again {
				t.Fatalf("replayed MarkTokenSeen = %v, %v; want false", again, err)
			}
			// Another issuer's jti is another token.
			if other, _ := h.v.MarkTokenSeen(ctx, "https://other", "jti-1", time.Minute); !other {
				t.Fatal("another issuer's same jti was taken for a replay")
			}
			if pttl, _ := h.rdb.PTTL(ctx, h.v.jtiKey("https://op", "jti-1")).Result(); pttl <= 50*time.Second || pttl > time.Minute {
				t.Fatalf("PTTL = %v; want the minute given", pttl)
			}
			if err := h.v.ForgetTokenSeen(ctx, "https://op", "jti-1"); err != nil {
				t.Fatal(err)
			}
			if first, _ := h.v.MarkTokenSeen(ctx, "https://op", "jti-1", time.Minute); !first {
				t.Fatal("a forgotten jti is still seen")
			}
			keys, _ := h.rdb.Keys(ctx, "*").Result()
			for _, k := range keys {
				if strings.Contains(k, "jti-1") || strings.Contains(k, "https:") {
					t.Errorf("key %q shows the token's id", k)
				}
			}
		})
	}
}

// TestSessionKeyOfHash: the key built from a hashed id (the indexes, the
// admin, the watcher) is the key the session's own id names.
func TestSessionKeyOfHash(t *testing.T) {
	v := &Vault{prefix: "app:"}
	for _, sid := range []string{"a", "9tX2-session-id", strings.Repeat("z", 100)} {
		if got, want := v.sessionKeyOfHash(HashID(sid)), v.sessionKey(sid); got != want {
			t.Errorf("sessionKeyOfHash(HashID(%q)) = %q; sessionKey = %q", sid, got, want)
		}
	}
}
