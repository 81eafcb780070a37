// Package vault keeps Tether's server-side session state in Redis: each
// session's tokens, the short-lived state of a login in progress, and the
// per-session lock that makes one refresh happen across all BFF replicas.
// It is the only package of Tether that speaks Redis (through
// github.com/redis/go-redis/v9, or an in-process
// github.com/alicebob/miniredis/v2 when no Redis is configured; see Open).
//
// # Key layout
//
// With the default prefix "tether:", and h(x) = base64url(SHA-256(x)):
//
//	tether:s:h(sid)       session Record, sealed; SET ... PX ttl (Put)
//	tether:l:h(state)     login state, sealed; read once with GETDEL (TakeLogin)
//	tether:lock:h(sid)    refresh lock, a random 16-byte hex token; SET NX PX lease
//	tether:cb:{h(name)}:state  circuit breaker of one provider, open: "<down until ms> <last probe ms>"
//	tether:cb:{h(name)}:fails  its count of transient failures in a row (closed)
//	tether:cb:{h(name)}:probe  its probe slot, a random token; SET NX PX lease
//	tether:disc:h(issuer) the provider's last good discovery document, sealed; SET ... PX 30 days
//
// Ids are hashed so that a dump of Redis (or MONITOR, or a slow log) shows
// neither the session cookie's value nor a pending OAuth state.
//
// # Encryption
//
// A value is AES-256-GCM of the plaintext (a Record's compact binary form,
// see Record.MarshalBinary; login state as JSON; records written as JSON by
// earlier versions still read) with a random 12-byte nonce per write, stored
// as nonce || ciphertext || tag. The full Redis key is the additional
// authenticated data, so a value copied to another key does not open there.
// A value that does not open — tampered, moved, or sealed under another key
// after a key change — reads as ErrNotFound, as if the session had ended;
// the caller may overwrite it. A failure to reach Redis is never
// ErrNotFound: it is a plain error, on which callers answer "unavailable"
// and delete nothing.
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
