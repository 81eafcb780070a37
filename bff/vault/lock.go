package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The lock's value is the holder's random token; only a caller presenting
// that token may extend or delete it. Both checks run inside Redis, so no
// other client can slip in between the comparison and the write.
var (
	renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

	releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)
)

// Lock is a held per-session lock, taken with Vault.TryLock. It is a lease:
// unless renewed it expires on its own, so a crashed holder blocks others
// for at most one lease. Its methods may be called from any goroutine.
type Lock struct {
	v     *Vault
	key   string
	token string
}

// TryLock takes the lock of session sid for lease, which must be positive
// (SET NX PX with a random token). It does not wait: when someone else
// holds the lock it returns ErrLocked.
func (v *Vault) TryLock(ctx context.Context, sid string, lease time.Duration) (*Lock, error) {
	if sid == "" {
		return nil, errors.New("vault: lock: empty id")
	}
	if lease <= 0 {
		return nil, fmt.Errorf("vault: lock: lease %v is not positive", lease)
	}
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	l := &Lock{v: v, key: v.lockKey(sid), token: hex.EncodeToString(b[:])}
	ok, err := v.rdb.SetNX(ctx, l.key, l.token, lease).Result()
	if err != nil {
		return nil, fmt.Errorf("vault: lock: %w", err)
	}
	if !ok {
		return nil, ErrLocked
	}
	return l, nil
}

// Renew sets the lock to expire lease from now, if it is still ours
// (compare-and-PEXPIRE). Otherwise it returns ErrLockLost.
func (l *Lock) Renew(ctx context.Context, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("vault: renew lock: lease %v is not positive", lease)
	}
	ms := max(lease.Milliseconds(), 1)
	n, err := renewScript.Run(ctx, l.v.rdb, []string{l.key}, l.token, ms).Int64()
	if err != nil {
		return fmt.Errorf("vault: renew lock: %w", err)
	}
	if n == 0 {
		return ErrLockLost
	}
	return nil
}

// Release deletes the lock if it is still ours (compare-and-DEL). Otherwise
// it returns ErrLockLost, and leaves the current holder's lock alone.
func (l *Lock) Release(ctx context.Context) error {
	n, err := releaseScript.Run(ctx, l.v.rdb, []string{l.key}, l.token).Int64()
	if err != nil {
		return fmt.Errorf("vault: release lock: %w", err)
	}
	if n == 0 {
		return ErrLockLost
	}
	return nil
}
