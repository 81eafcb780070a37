// Package vault keeps Tether's server-side session state in Redis: each
// session's tokens, the states of completed logins (so that a callback
// cannot be replayed), and the per-session lock that makes one refresh
// happen across all BFF replicas.
// It is the only package of Tether that speaks Redis (through
// github.com/redis/go-redis/v9, or an in-process
// github.com/alicebob/miniredis/v2 when no Redis is configured, which
// answers only clients presenting a random password; see Open).
//
// # Key layout
//
// With the default prefix "tether:", and h(x) = base64url(SHA-256(x)):
//
//	tether:s:h(sid)       session Record, sealed; SET ... PX ttl (Put), or a Lua
//	                      write-if-live (Update); once the session ended, a tombstone (End)
//	tether:l:h(state)     "1": this login's code was exchanged; SET NX PX ttl (MarkLoginUsed)
//	tether:lock:h(sid)    refresh lock, a random 16-byte hex token; SET NX PX lease
//	tether:cb:{h(name)}:state  circuit breaker of one provider, open: "<down until ms> <last probe ms>"
//	tether:cb:{h(name)}:fails  its count of transient failures in a row (closed)
//	tether:cb:{h(name)}:probe  its probe slot, a random token; SET NX PX lease
//	tether:disc:h(issuer) the provider's last good discovery document, sealed; SET ... PX 30 days
//	tether:f:h(sid)       the session's bucket of forced refreshes, a Unix-ms number
//	                      (Allow); it expires when the bucket is full again
//	tether:ix:sub:h(sub)  the subject's sessions: a sorted set of h(sid), scored by
//	                      when each record expires (Put, Update; see index.go)
//	tether:ix:psid:h(s)   the sessions of provider session s (the ID token's sid)
//	tether:jti:h(iss jti) a back-channel logout token seen; SET NX PX until it expires
//	tether:ended          a pub/sub channel, no key: "h(sid) <reason>" each time a
//	                      tombstone is written (events.go; Watcher subscribes)
//
// Ids are hashed so that a dump of Redis (or MONITOR, or a slow log) shows
// neither the session cookie's value nor a pending OAuth state; the
// indexes hold hashed ids only, and EndHashed and GetHashed take them. Every
// script touches one key, so all of it works on Redis Cluster.
//
// # Ending a session
//
// End (by session id) and EndHashed (by hashed id, as the indexes list
// sessions) both go through endSession, the one function that writes a
// tombstone (and takes the session out of its indexes). End replaces a
// session's record by a tombstone: the plain value
// "\x00tether-ended:" followed by the reason (signed_out, revoked,
// expired), which no sealed value starts with. Get then returns an
// *EndedError carrying the reason (which is also ErrNotFound), so every
// replica can say why the session ended; it lasts a day, or the record's
// remaining TTL if shorter, but at least a minute. Update, which a refresh
// stores its result with, writes only over a live record (a Lua script):
// a refresh in flight when the session ends cannot overwrite the
// tombstone, nor bring back a record that expired or was deleted. Touch
// records a session's use with a compare-and-set on the sealed value, so
// it never undoes another write either.
//
// # Encryption
//
// A value is AES-256-GCM of the plaintext (a Record's compact binary form,
// see Record.MarshalBinary; records written as JSON by earlier versions
// still read) with a random 12-byte nonce per write, stored
// as 0x01 || key id (4 bytes) || nonce || ciphertext || tag. The key id
// names the key that sealed the value (see KeyID); the header and the full
// Redis key are the additional authenticated data, so a value copied to
// another key does not open there. A vault seals with its key and opens
// with it and any WithPreviousKeys, so the key can be rotated under live
// sessions; values written before key ids (nonce || ciphertext || tag, the
// Redis key as additional data) open under any of them. A value that does
// not open — tampered, moved, or sealed under a key the vault no longer
// has — reads as ErrNotFound, as if the session had ended; the caller may
// overwrite it. A failure to reach Redis is never
// ErrNotFound: it is a plain error, on which callers answer "unavailable"
// and delete nothing.
//
// A used login's value is the constant "1": its key alone carries the
// information, and reveals nothing without the state.
//
// Records hold the access and refresh tokens and their expiries, never the
// ID token, so one takes well under a kilobyte of Redis memory for opaque
// tokens (see BenchmarkMemoryUsage).
//
// # Lock protocol
//
// TryLock sets the lock key with SET NX PX and a fresh random token; if the
// key exists it fails at once with ErrLocked. The holder should then
// re-read the record (another replica may have refreshed it meanwhile), do
// its work within the lease, and Release. Renew (compare-and-PEXPIRE) and
// Release (compare-and-DEL) are Lua scripts that act only if the key still
// holds the holder's token, so a holder whose lease ran out can neither
// extend nor delete a lock that has since passed to someone else: both
// report ErrLockLost instead. The lock is advisory and a lease, not a
// fence: a holder that stalls past its lease must assume another holder may
// be running.
//
// # Circuit breaker
//
// Circuit keeps what every replica must agree on about a provider's
// health: Fail counts a transient failure and opens the circuit at a
// threshold (an open circuit is not extended by failures already under
// way); TryProbe hands the one probe slot to a single caller once the
// next probe is due; Reopen records a failed probe (only while the slot
// is still the caller's) and Reset closes the circuit, freeing the slot so
// that a probe failing afterwards cannot reopen it. Each step is one Lua
// script or command. The circuit's keys are not secret and not sealed;
// they share a hash tag so the scripts run on Redis Cluster.
package vault
