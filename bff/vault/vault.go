package vault

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// ErrNotFound reports that there is no session record under the id, or
// that what is stored there does not decrypt and authenticate under the
// vault's key (which the caller treats the same way and may overwrite). It is never returned for a Redis or network failure.
var ErrNotFound = errors.New("vault: not found")

// ErrLocked reports that TryLock found the lock held by someone else.
var ErrLocked = errors.New("vault: locked")

// ErrLockLost reports that a Lock's token no longer holds the lock: its lease
// ran out and it expired, or another holder has taken it since.
var ErrLockLost = errors.New("vault: lock lost")

// DefaultPrefix namespaces every key the vault writes unless WithPrefix
// says otherwise.
const DefaultPrefix = "tether:"

// KeySize is the length in bytes of the vault's AES-256 key.
const KeySize = 32

// Record is what the vault keeps per session. It is encoded with
// MarshalBinary (the JSON tags name the fields of records written before
// that form existed, which still read), then sealed with AES-256-GCM. It
// holds no ID token.
type Record struct {
	AccessToken   string    `json:"at"`
	TokenType     string    `json:"tt,omitempty"`
	RefreshToken  string    `json:"rt,omitempty"`
	Scope         string    `json:"sc,omitempty"`
	Subject       string    `json:"sub,omitempty"`
	Name          string    `json:"name,omitempty"`
	IssuedAt      time.Time `json:"iat"`           // when AccessToken was obtained
	Expiry        time.Time `json:"exp,omitzero"`  // AccessToken expiry; zero = unknown or non-expiring
	RefreshExpiry time.Time `json:"rexp,omitzero"` // refresh token expiry; zero = unknown
	Created       time.Time `json:"created"`       // when the session was created (login)
	// LastUsed is when a token was last handed out, as recorded: coarsely
	// (see the refresh engine's idle timeout); zero when never recorded.
	LastUsed time.Time `json:"used,omitzero"`
	// Forced reports that AccessToken came from a forced refresh: an API
	// had refused the token before it.
	Forced bool `json:"forced,omitempty"`
	// ProviderSID is the provider's session id: the sid claim of the ID
	// token at login (OpenID Connect Back-Channel Logout names sessions
	// by it); empty when there was none.
	ProviderSID string `json:"psid,omitempty"`
}

// Vault stores session records, used login states and refresh locks in
// Redis. Values are encrypted and bound to their key; ids are hashed
// before they become keys. A Vault is safe for concurrent use.
type Vault struct {
	rdb      redis.UniversalClient
	keys     []sealer // keys[0] seals; all open
	previous [][]byte // WithPreviousKeys, until New makes them sealers
	prefix   string
	now      func() time.Time

	mr         *miniredis.Miniredis // started by Open(""), else nil
	mrPassword string               // the password mr requires
	closeOnce  sync.Once
	closeErr   error
}

// Option configures a Vault made by New or Open.
type Option func(*Vault)

// WithPrefix namespaces the vault's keys, so several applications (or
// tests) can share one Redis database. The default is DefaultPrefix.
func WithPrefix(prefix string) Option {
	return func(v *Vault) { v.prefix = prefix }
}

// WithNow sets the clock the vault reads to fill a zero Record.Created,
// Record.IssuedAt. The default is time.Now. Expiry of keys
// is Redis's business and does not depend on it.
func WithNow(now func() time.Time) Option {
	return func(v *Vault) { v.now = now }
}

// WithPreviousKeys adds keys that open values but seal none: the keys a
// rotation replaces. Values sealed under them read as before, and each
// write seals under the vault's key, so they can be dropped once every
// record sealed under them has been rewritten or has expired. Each must be
// KeySize bytes.
func WithPreviousKeys(keys ...[]byte) Option {
	return func(v *Vault) { v.previous = append(v.previous, keys...) }
}

// New wraps a go-redis client. key must be KeySize (32) bytes; it is the
// AES-256-GCM key for every value the vault writes (WithPreviousKeys adds
// keys that only open). The vault owns client from then on: Close closes
// it.
func New(client redis.UniversalClient, key []byte, opts ...Option) (*Vault, error) {
	if client == nil {
		return nil, errors.New("vault: nil redis client")
	}
	v := &Vault{rdb: client, prefix: DefaultPrefix, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	for i, k := range append([][]byte{key}, v.previous...) {
		if i > 0 && len(k) != KeySize {
			return nil, fmt.Errorf("vault: previous key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		s, err := newSealer(k)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, s)
	}
	v.previous = nil
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Get returns the record of session sid. It returns an error wrapping
// ErrNotFound when there is none or it does not authenticate (an
// *EndedError, which is also ErrNotFound, when End ended it), and any
// other error when Redis cannot be asked, in which case the caller should
// answer "unavailable" and delete nothing.
func (v *Vault) Get(ctx context.Context, sid string) (*Record, error) {
	key := v.sessionKey(sid)
	var rec Record
	if err := v.load(ctx, key, "get session", &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// Put stores rec as the record of session sid, replacing any previous one,
// and sets it to expire after ttl, which must be positive. The session
// joins the indexes of its Subject and ProviderSID (see SubjectSessions);
// an error there is returned too (the record is then stored, unindexed). A zero
// rec.Created or rec.IssuedAt is stored as the vault's current time; rec
// itself is not modified.
func (v *Vault) Put(ctx context.Context, sid string, rec *Record, ttl time.Duration) error {
	if rec == nil {
		return errors.New("vault: put session: nil record")
	}
	r := v.filled(rec)
	if err := v.store(ctx, v.sessionKey(sid), sid, &r, ttl); err != nil {
		return fmt.Errorf("vault: put session: %w", err)
	}
	if err := v.index(ctx, &r, hashID(sid), ttl); err != nil {
		return fmt.Errorf("vault: put session: indexing it: %w", err)
	}
	return nil
}

// filled returns a copy of rec with a zero Created or IssuedAt set to now.
func (v *Vault) filled(rec *Record) Record {
	r := *rec
	if r.Created.IsZero() {
		r.Created = v.now()
	}
	if r.IssuedAt.IsZero() {
		r.IssuedAt = v.now()
	}
	return r
}

// Delete removes the record of session sid, and the session from its
// indexes, and announces it gone (with no reason: watches get an empty
// Ending, as for a record a read-back finds missing; listeners drop what
// they keep of it). Deleting a record that does not exist is not an
// error.
func (v *Vault) Delete(ctx context.Context, sid string) error {
	hid := hashID(sid)
	key := v.sessionKeyOfHash(hid)
	blob, err := v.rdb.GetDel(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vault: delete session: %w", err)
	}
	var rec Record
	if endedError(blob) == nil && v.decode(key, blob, "delete session", &rec) == nil {
		_ = v.unindex(ctx, &rec, hid) // best effort, as in endSession
	}
	// Best effort too: a lost announcement is caught by the read-back,
	// and a listener's cache by its own bound.
	_ = v.rdb.Publish(ctx, v.prefix+endedChannel, announcement(hid, "")).Err()
	return nil
}

// Ping checks that Redis answers.
func (v *Vault) Ping(ctx context.Context) error {
	if err := v.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("vault: ping: %w", err)
	}
	return nil
}

// Close closes the Redis client and, when Open started one, the in-process
// miniredis. Calling it again returns the first call's result.
func (v *Vault) Close() error {
	v.closeOnce.Do(func() {
		if err := v.rdb.Close(); err != nil {
			v.closeErr = fmt.Errorf("vault: close: %w", err)
		}
		if v.mr != nil {
			v.mr.Close()
		}
	})
	return v.closeErr
}

// EmbeddedAddr returns the address of the in-process miniredis that Open
// started, or "" when the vault talks to an outside Redis. It answers only
// clients that know its password (see EmbeddedURL); the address alone may
// be logged.
func (v *Vault) EmbeddedAddr() string {
	if v.mr == nil {
		return ""
	}
	return v.mr.Addr()
}

// EmbeddedURL returns a redis:// URL, password included, through which
// other clients (say, a second BFF in a test) can share the in-process
// miniredis that Open started; "" when the vault talks to an outside
// Redis. It is a secret: do not log it.
func (v *Vault) EmbeddedURL() string {
	if v.mr == nil {
		return ""
	}
	return (&url.URL{Scheme: "redis", User: url.UserPassword("", v.mrPassword), Host: v.mr.Addr()}).String()
}

// Key layout. Ids are hashed so that a dump of Redis does not reveal the
// session cookie's value or a login's state.
func (v *Vault) sessionKey(sid string) string { return v.hashedKey("s:", sid) }

// sessionKeyOfHash is the key of the session whose hashed id is hid:
// sessionKey(sid) == sessionKeyOfHash(hashID(sid)).
func (v *Vault) sessionKeyOfHash(hid string) string { return v.prefix + "s:" + hid }

func (v *Vault) loginKey(state string) string { return v.hashedKey("l:", state) }
func (v *Vault) lockKey(sid string) string    { return v.hashedKey("lock:", sid) }
func (v *Vault) bucketKey(sid string) string  { return v.hashedKey("f:", sid) }

func hashID(id string) string {
	var buf [64]byte
	return string(appendHashID(buf[:0], id))
}

// hashedKey is v.prefix + kind + hashID(id), built with one allocation
// (the session key is built on every token request).
func (v *Vault) hashedKey(kind, id string) string {
	var buf [128]byte
	return string(appendHashID(append(append(buf[:0], v.prefix...), kind...), id))
}

// appendHashID appends hashID(id) to b: SHA-256, base64url without
// padding. A short id is hashed from a copy on the stack, so that the
// conversion allocates nothing (a session id is 43 bytes).
func appendHashID(b []byte, id string) []byte {
	var idBuf [64]byte
	src := idBuf[:0]
	if len(id) <= len(idBuf) {
		src = idBuf[:copy(idBuf[:], id)]
	} else {
		src = []byte(id)
	}
	sum := sha256.Sum256(src)
	return base64.RawURLEncoding.AppendEncode(b, sum[:])
}

// store seals val for key and SETs it with a millisecond TTL.
func (v *Vault) store(ctx context.Context, key, id string, val any, ttl time.Duration) error {
	if id == "" {
		return errors.New("empty id")
	}
	if ttl <= 0 {
		return fmt.Errorf("ttl %v is not positive", ttl)
	}
	var plain []byte
	var err error
	if m, ok := val.(encoding.BinaryMarshaler); ok {
		plain, err = m.MarshalBinary()
	} else {
		plain, err = json.Marshal(val)
	}
	if err != nil {
		return err
	}
	return v.rdb.Set(ctx, key, v.seal(key, plain), ttl).Err()
}

// load GETs key and opens it into val. A missing key, or a
// value that does not open or decode, is ErrNotFound; anything else is a
// Redis failure, wrapped with op.
func (v *Vault) load(ctx context.Context, key string, op string, val any) error {
	blob, err := v.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("vault: %s: %w", op, err)
	}
	if e := endedError(blob); e != nil {
		return e
	}
	return v.decode(key, blob, op, val)
}

// decode opens blob, read from key, into val. A value that does not open
// or decode is ErrNotFound.
func (v *Vault) decode(key string, blob []byte, op string, val any) error {
	err := v.withOpen(key, blob, func(plain []byte) error {
		// Both copy what they keep from plain (withOpen lends it).
		if u, ok := val.(encoding.BinaryUnmarshaler); ok && (len(plain) == 0 || plain[0] != '{') {
			return u.UnmarshalBinary(plain)
		}
		return json.Unmarshal(plain, val) // records written before the binary form
	})
	switch {
	case errors.Is(err, errSealed):
		// The cause (wrong key, tampering, a value moved from another key)
		// is deliberately not told apart: none of it is for a log line.
		return fmt.Errorf("vault: %s: stored value does not authenticate: %w", op, ErrNotFound)
	case err != nil:
		return fmt.Errorf("vault: %s: stored value does not decode: %w", op, ErrNotFound)
	}
	return nil
}
