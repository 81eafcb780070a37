// Package vault keeps Tether's server-side session state in Redis: each
// session's tokens, the states of completed logins (so that a callback
// cannot be replayed), and the per-session lock that makes one refresh
// happen across all BFF replicas.
// It is the only package of Tether that speaks Redis (through
// github.com/redis/go-redis/v9, or an in-process
// github.com/alicebob/miniredis/v2 when no Redis is configured; see Open).
//
// # Key layout
//
// With the default prefix "tether:", and h(x) = base64url(SHA-256(x)):
//
//	tether:s:h(sid)       session Record, sealed; SET ... PX ttl (Put)
//	tether:l:h(state)     "1": this login's code was exchanged; SET NX PX ttl (MarkLoginUsed)
//	tether:lock:h(sid)    refresh lock, a random 16-byte hex token; SET NX PX lease
//
// Ids are hashed so that a dump of Redis (or MONITOR, or a slow log) shows
// neither the session cookie's value nor an OAuth state.
//
// # Encryption
//
// A session record is sealed: AES-256-GCM of the plaintext (a Record's compact binary form,
// see Record.MarshalBinary; records written as JSON by earlier versions
// still read) with a random 12-byte nonce per write, stored
// as nonce || ciphertext || tag. The full Redis key is the additional
// authenticated data, so a value copied to another key does not open there.
// A value that does not open — tampered, moved, or sealed under another key
// after a key change — reads as ErrNotFound, as if the session had ended;
// the caller may overwrite it. A failure to reach Redis is never
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
package vault
