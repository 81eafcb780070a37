package vault

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// jtiKey names a back-channel logout token by its issuer and jti.
func (v *Vault) jtiKey(issuer, jti string) string {
	return v.prefix + "jti:" + hashID(issuer+"\x00"+jti)
}

// MarkTokenSeen records that the token jti of issuer was used, for ttl
// (SET NX PX), and reports whether this was the first time: false means
// a replay. Call it only for a token whose signature verified, so that
// nobody can fill Redis with made-up ids.
func (v *Vault) MarkTokenSeen(ctx context.Context, issuer, jti string, ttl time.Duration) (bool, error) {
	if jti == "" {
		return false, errors.New("vault: mark token seen: empty jti")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("vault: mark token seen: ttl %v is not positive", ttl)
	}
	ok, err := v.rdb.SetNX(ctx, v.jtiKey(issuer, jti), "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("vault: mark token seen: %w", err)
	}
	return ok, nil
}

// ForgetTokenSeen undoes MarkTokenSeen, for a token whose work failed
// (the vault could not end its sessions) so that its sender's retry is
// not taken for a replay.
func (v *Vault) ForgetTokenSeen(ctx context.Context, issuer, jti string) error {
	if err := v.rdb.Del(ctx, v.jtiKey(issuer, jti)).Err(); err != nil {
		return fmt.Errorf("vault: forget token: %w", err)
	}
	return nil
}
