package vault

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MarkLoginUsed remembers for ttl, which must be positive, that the login
// with this OAuth state has been completed, with SET NX: of any number of
// concurrent callers exactly one gets true, the others false. The BFF
// calls it only after the provider accepted the login's code, so nothing
// an unauthenticated browser can do writes here. The value is a constant;
// the key is a hash of the state.
func (v *Vault) MarkLoginUsed(ctx context.Context, state string, ttl time.Duration) (bool, error) {
	if state == "" {
		return false, errors.New("vault: mark login used: empty state")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("vault: mark login used: ttl %v is not positive", ttl)
	}
	ok, err := v.rdb.SetNX(ctx, v.loginKey(state), "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("vault: mark login used: %w", err)
	}
	return ok, nil
}

// LoginUsed reports whether MarkLoginUsed marked state and its ttl has not
// run out. It only reads.
func (v *Vault) LoginUsed(ctx context.Context, state string) (bool, error) {
	n, err := v.rdb.Exists(ctx, v.loginKey(state)).Result()
	if err != nil {
		return false, fmt.Errorf("vault: login used: %w", err)
	}
	return n > 0, nil
}
