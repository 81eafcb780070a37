package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// touchScript replaces the value ARGV[1] by ARGV[2], keeping its TTL, only
// if the key still holds ARGV[1]: a compare-and-set on the sealed value,
// whose random nonce makes every write unique.
var touchScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
	return 0
end
local left = redis.call("PTTL", KEYS[1])
if left > 0 then
	redis.call("SET", KEYS[1], ARGV[2], "PX", left)
else
	redis.call("SET", KEYS[1], ARGV[2])
end
return 1`)

// Touch records that session sid was used at `at`: it sets the record's
// LastUsed to at, if that is later, keeping the record's TTL. It reads the
// record and writes it back only if the stored value has not changed in
// between (a compare-and-set inside Redis), so it never undoes a refresh
// (which records its own use) and never brings back an ended session. It
// costs a GET and a script: callers make it rarely, off the hot path.
// A session without a record is not an error.
func (v *Vault) Touch(ctx context.Context, sid string, at time.Time) error {
	if sid == "" {
		return errors.New("vault: touch: empty id")
	}
	key := v.sessionKey(sid)
	blob, err := v.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vault: touch: %w", err)
	}
	if endedError(blob) != nil {
		return nil
	}
	var rec Record
	if err := v.decode(key, blob, "touch", &rec); err != nil {
		return nil // does not open: nothing to record a use on
	}
	if !rec.LastUsed.Before(at) {
		return nil
	}
	rec.LastUsed = at
	plain, err := rec.MarshalBinary()
	if err != nil {
		return fmt.Errorf("vault: touch: %w", err)
	}
	if err := touchScript.Run(ctx, v.rdb, []string{key}, blob, v.seal(key, plain)).Err(); err != nil {
		return fmt.Errorf("vault: touch: %w", err)
	}
	return nil
}
