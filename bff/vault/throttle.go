package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// allowScript is a token bucket kept as one number, the generic cell rate
// algorithm's theoretical arrival time (TAT, Unix ms): ARGV[1] is now,
// ARGV[2] the interval between tokens, ARGV[3] the burst, all integers. It
// returns 0 and takes a token, or the ms to wait for one and takes
// nothing. The key expires when the bucket is full again, so idle
// sessions leave nothing behind.
var allowScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local every = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call("GET", KEYS[1]) or "0") or 0
if tat < now then
	tat = now
end
local wait = tat + every - burst * every - now
if wait > 0 then
	return wait
end
tat = tat + every
redis.call("SET", KEYS[1], string.format("%d", tat), "PX", string.format("%d", tat - now))
return 0`)

// Allow takes one token from session sid's bucket, which holds burst
// tokens and gains one every interval, shared by every process on this
// Redis: it returns 0 when there was a token, else how long until there
// is one (and takes nothing). now is the caller's clock. The refresh
// engine bounds forced refreshes with it.
func (v *Vault) Allow(ctx context.Context, sid string, now time.Time, every time.Duration, burst int) (time.Duration, error) {
	switch {
	case sid == "":
		return 0, errors.New("vault: allow: empty id")
	case every < time.Millisecond || burst < 1:
		return 0, fmt.Errorf("vault: allow: %d every %v is not a bucket", burst, every)
	}
	wait, err := allowScript.Run(ctx, v.rdb, []string{v.bucketKey(sid)}, now.UnixMilli(), every.Milliseconds(), burst).Int64()
	if err != nil {
		return 0, fmt.Errorf("vault: allow: %w", err)
	}
	return time.Duration(wait) * time.Millisecond, nil
}
