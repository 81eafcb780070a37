package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Circuit is the shared state of a circuit breaker in front of one
// provider, kept in Redis so that every replica sees the same state: how
// many transient failures came in a row, whether the circuit is open (no
// provider call before DownUntil), and who may send the one probe when it
// is due. Its keys share a hash tag, so the scripts work on Redis Cluster.
// The values are not secret and are stored in the clear.
//
// The breaker's policy (thresholds, intervals) is the caller's; Circuit
// only makes each step atomic across replicas.
type Circuit struct {
	v                   *Vault
	state, fails, probe string
}

// CircuitState is what a Circuit holds.
type CircuitState struct {
	// Open reports that the provider is considered down.
	Open bool
	// DownUntil, when Open, is when the next probe is due.
	DownUntil time.Time
	// LastProbe, when Open, is when the last probe failed; zero when no
	// probe has run since the circuit opened.
	LastProbe time.Time
	// Failures, when not Open, is the count of transient failures in a
	// row that Fail has seen.
	Failures int64
}

// ErrProbeNotDue reports that TryProbe found the circuit open with its
// next probe still ahead.
var ErrProbeNotDue = errors.New("vault: circuit probe not due")

// ErrProbeBusy reports that TryProbe found another caller probing.
var ErrProbeBusy = errors.New("vault: circuit probe in progress")

// Circuit returns the shared circuit named name (one per provider).
func (v *Vault) Circuit(name string) *Circuit {
	base := v.prefix + "cb:{" + hashID(name) + "}:"
	return &Circuit{v: v, state: base + "state", fails: base + "fails", probe: base + "probe"}
}

// circuitTTL bounds how long circuit keys outlive their last write: a
// deployment that stops leaves nothing behind for long.
const circuitTTL = 10 * time.Minute

var (
	// failScript counts a failure unless the circuit is open, and opens it
	// (until ARGV[2]) when the count reaches ARGV[1]. It returns the state
	// value when open, else the count.
	failScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if v then return v end
local n = redis.call("INCR", KEYS[2])
redis.call("PEXPIRE", KEYS[2], ARGV[3])
if n >= tonumber(ARGV[1]) then
	v = ARGV[2] .. " 0"
	redis.call("SET", KEYS[1], v, "PX", ARGV[3])
	redis.call("DEL", KEYS[2])
	return v
end
return n`)

	// probeScript takes the probe slot if the circuit is open and its
	// probe is due (ARGV[1] is now). It returns {code, state}: 0 closed,
	// 1 taken, 2 not due, 3 someone else is probing.
	probeScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if not v then return {0, ""} end
local m = string.match(v, "^(%d+)")
local due = m and tonumber(m)
if due and due > tonumber(ARGV[1]) then return {2, v} end
if redis.call("SET", KEYS[2], ARGV[2], "NX", "PX", ARGV[3]) then return {1, v} end
return {3, v}`)

	// reopenScript records a failed probe: only while the probe slot is
	// still the caller's (a success elsewhere deletes it, and the circuit
	// stays closed). It returns 1 when it reopened the circuit.
	reopenScript = redis.NewScript(`
if redis.call("GET", KEYS[2]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
redis.call("DEL", KEYS[2])
return 1`)
)

// State reads the circuit.
func (c *Circuit) State(ctx context.Context) (CircuitState, error) {
	vals, err := c.v.rdb.MGet(ctx, c.state, c.fails).Result()
	if err != nil {
		return CircuitState{}, fmt.Errorf("vault: circuit state: %w", err)
	}
	if s, ok := vals[0].(string); ok {
		return parseCircuit(s), nil
	}
	var st CircuitState
	if s, ok := vals[1].(string); ok {
		st.Failures, _ = strconv.ParseInt(s, 10, 64)
	}
	return st, nil
}

// Fail counts a transient failure seen at now. When the circuit is
// closed and the count reaches threshold, it opens with its first probe
// due at until. An open circuit is left as it is (a failure that was
// already under way when it opened says nothing new). It returns the
// state after the call.
func (c *Circuit) Fail(ctx context.Context, threshold int, until time.Time) (CircuitState, error) {
	res, err := failScript.Run(ctx, c.v.rdb, []string{c.state, c.fails},
		max(threshold, 1), ms(until), circuitTTL.Milliseconds()).Result()
	if err != nil {
		return CircuitState{}, fmt.Errorf("vault: circuit failure: %w", err)
	}
	switch r := res.(type) {
	case string:
		return parseCircuit(r), nil
	case int64:
		return CircuitState{Failures: r}, nil
	}
	return CircuitState{}, fmt.Errorf("vault: circuit failure: unexpected reply %T", res)
}

// Reset closes the circuit: the provider answered. It clears the failure
// count and any probe slot, so a probe that fails after this does not
// reopen it.
func (c *Circuit) Reset(ctx context.Context) error {
	if err := c.v.rdb.Del(ctx, c.state, c.fails, c.probe).Err(); err != nil {
		return fmt.Errorf("vault: circuit reset: %w", err)
	}
	return nil
}

// TryProbe takes the circuit's probe slot for lease if the circuit is
// open and its probe is due at now. It returns the slot, which the caller
// gives back through Reopen (the probe failed), Reset (it succeeded) or
// Release (it did not reach the provider). Otherwise it returns the state
// it found, with a nil Lock and: a nil error when the circuit is closed;
// ErrProbeNotDue when the next probe is ahead; ErrProbeBusy when another
// caller holds the slot.
func (c *Circuit) TryProbe(ctx context.Context, now time.Time, lease time.Duration) (*Lock, CircuitState, error) {
	if lease <= 0 {
		return nil, CircuitState{}, fmt.Errorf("vault: circuit probe: lease %v is not positive", lease)
	}
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	token := hex.EncodeToString(b[:])
	res, err := probeScript.Run(ctx, c.v.rdb, []string{c.state, c.probe}, ms(now), token, max(lease.Milliseconds(), 1)).Slice()
	if err != nil {
		return nil, CircuitState{}, fmt.Errorf("vault: circuit probe: %w", err)
	}
	if len(res) != 2 {
		return nil, CircuitState{}, fmt.Errorf("vault: circuit probe: unexpected reply %v", res)
	}
	code, _ := res[0].(int64)
	if code == 0 {
		return nil, CircuitState{}, nil
	}
	val, _ := res[1].(string)
	st := parseCircuit(val)
	switch code {
	case 1:
		return &Lock{v: c.v, key: c.probe, token: token}, st, nil
	case 2:
		return nil, st, ErrProbeNotDue
	default:
		return nil, st, ErrProbeBusy
	}
}

// Reopen records that the probe holding slot failed at now: the circuit
// stays open, its next probe due at until, and the slot is freed. It
// reports false, changing nothing, when the slot is no longer the
// caller's: the circuit was closed meanwhile (or the lease ran out).
func (c *Circuit) Reopen(ctx context.Context, slot *Lock, now, until time.Time) (bool, error) {
	if slot == nil || slot.key != c.probe {
		return false, errors.New("vault: circuit reopen: not this circuit's probe slot")
	}
	val := strconv.FormatInt(ms(until), 10) + " " + strconv.FormatInt(ms(now), 10)
	n, err := reopenScript.Run(ctx, c.v.rdb, []string{c.state, c.probe}, slot.token, val, circuitTTL.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("vault: circuit reopen: %w", err)
	}
	return n == 1, nil
}

// parseCircuit reads the state value "<down until ms> <last probe ms>".
// A value it cannot read is an open circuit whose probe is due: the probe
// then settles it one way or the other (the scripts read it the same way).
func parseCircuit(v string) CircuitState {
	st := CircuitState{Open: true}
	a, b, _ := strings.Cut(v, " ")
	if until, err := strconv.ParseInt(a, 10, 64); err == nil && until > 0 {
		st.DownUntil = time.UnixMilli(until)
	}
	if probe, err := strconv.ParseInt(b, 10, 64); err == nil && probe > 0 {
		st.LastProbe = time.UnixMilli(probe)
	}
	return st
}

func ms(t time.Time) int64 { return t.UnixMilli() }
