package refresh

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/vault"
)

func recordAt(iat time.Time, life time.Duration) *vault.Record {
	rec := &vault.Record{AccessToken: "at", RefreshToken: "rt", IssuedAt: iat, Created: iat}
	if life > 0 {
		rec.Expiry = iat.Add(life)
	}
	return rec
}

func TestBufferRule(t *testing.T) {
	r := New(nil, nil, Config{Buffer: 5 * time.Minute})
	now := time.Unix(1_000_000, 0)
	cases := []struct {
		life, age time.Duration
		want      bool
	}{
		{time.Hour, 54 * time.Minute, false},
		{time.Hour, 55 * time.Minute, true},
		{60 * time.Second, 29 * time.Second, false}, // buffer capped at 30 s
		{60 * time.Second, 30 * time.Second, true},
		{60 * time.Second, 90 * time.Second, true},
		{0, 1000 * time.Hour, false}, // no expiry: never proactively
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("life=%v,age=%v", c.life, c.age), func(t *testing.T) {
			rec := recordAt(now.Add(-c.age), c.life)
			if got := r.needsRefresh(rec, now); got != c.want {
				t.Errorf("needsRefresh = %v; want %v", got, c.want)
			}
		})
	}
}

// engine is a Refresher over an embedded-Redis vault and the dev provider
// on loopback, with one signed-in session.
type engine struct {
	r   *Refresher
	v   *vault.Vault
	dev *devprovider.Provider
	sid string
	rec *vault.Record
}

func newEngine(t *testing.T) *engine {
	t.Helper()
	ctx := t.Context()
	dev, issuer := startProvider(t)
	p := newProviderClient(t, issuer)
	key := make([]byte, vault.KeySize)
	rand.Read(key)
	v, err := vault.Open(ctx, "", key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })

	g := signInGrant(t, p)
	now := time.Now()
	rec := &vault.Record{AccessToken: g.AccessToken, RefreshToken: g.RefreshToken, Subject: g.Subject,
		IssuedAt: now, Expiry: g.Expiry, RefreshExpiry: g.RefreshExpiry, Created: now}
	r := New(v, p, Config{ProviderTimeout: 2 * time.Second, RetryAfter: time.Second})
	sid := "session-" + rand.Text()
	if err := v.Put(ctx, sid, rec, r.RecordTTL(rec)); err != nil {
		t.Fatal(err)
	}
	return &engine{r: r, v: v, dev: dev, sid: sid, rec: rec}
}

// TestRefreshRereadsUnderLock: a replica that read the record, then took
// the lock after another replica had already refreshed and released it,
// must adopt the stored token instead of refreshing again (which would
// reuse a rotated refresh token).
func TestRefreshRereadsUnderLock(t *testing.T) {
	e := newEngine(t)
	o := e.r.refreshOnce(t.Context(), e.sid, "the token this replica saw before another replica refreshed", false)
	if o.rec == nil || o.rec.AccessToken != e.rec.AccessToken {
		t.Fatalf("refreshOnce = %+v; want the stored token adopted", o)
	}
	if st := e.dev.Stats(); st.RefreshToken != 0 {
		t.Errorf("provider refreshes = %d; want 0", st.RefreshToken)
	}
}

// TestTokenErrors: the engine's answers are typed errors that errors.Is
// and errors.As understand, with the reason a caller needs.
func TestTokenErrors(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()

	_, err := e.r.Token(ctx, "no such session", Want{})
	var re *ReconnectError
	if !errors.Is(err, ErrReconnect) || !errors.As(err, &re) || re.Reason != ReasonNoSession {
		t.Fatalf("unknown session: %v; want a ReconnectError no_session", err)
	}

	res, err := e.r.Token(ctx, e.sid, Want{})
	if err != nil || res.Record.AccessToken != e.rec.AccessToken || res.Degraded {
		t.Fatalf("valid token: %+v %v; want the stored token", res, err)
	}

	e.dev.SetOutage(devprovider.Outage503, time.Minute, 0)
	_, err = e.r.Token(ctx, e.sid, Want{Force: true, Rejected: e.rec.AccessToken})
	var ue *UnavailableError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ue) || ue.RetryAfter <= 0 {
		t.Fatalf("rejected token during an outage: %v; want an UnavailableError with a RetryAfter", err)
	}
	if _, err := e.v.Get(ctx, e.sid); err != nil {
		t.Fatalf("the outage lost the session: %v", err)
	}

	e.dev.SetOutage(devprovider.OutageNone, 0, 0)
	e.r.backoff.Clear()
	if n := e.dev.RevokeSubject(e.rec.Subject); n == 0 {
		t.Fatal("the dev provider revoked nothing")
	}
	_, err = e.r.Token(ctx, e.sid, Want{Force: true, Rejected: e.rec.AccessToken})
	if !errors.As(err, &re) || re.Reason != ReasonRevoked {
		t.Fatalf("revoked grant: %v; want a ReconnectError revoked", err)
	}
	if _, err := e.v.Get(ctx, e.sid); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("after revocation the record is still there (%v)", err)
	}

	e.v.Close() // the vault is gone: a StorageError, not a reconnect
	_, err = e.r.Token(ctx, e.sid, Want{})
	if !errors.Is(err, ErrStorage) || errors.Is(err, ErrReconnect) {
		t.Fatalf("vault closed: %v; want a StorageError", err)
	}
}
