package vault

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Discovery is a provider's OpenID Connect discovery document as a BFF
// fetched it, kept so that a replica that starts while the provider is
// down still knows its endpoints. It is sealed like every value: a
// document planted in Redis cannot send refresh tokens elsewhere.
type Discovery struct {
	Document []byte    `json:"d"`
	Fetched  time.Time `json:"f"`
}

// DiscoveryTTL is how long a stored discovery document is kept after its
// last write; every successful discovery writes it again.
const DiscoveryTTL = 30 * 24 * time.Hour

// PutDiscovery stores issuer's discovery document for DiscoveryTTL,
// replacing the one stored before.
func (v *Vault) PutDiscovery(ctx context.Context, issuer string, d *Discovery) error {
	if d == nil || len(d.Document) == 0 {
		return errors.New("vault: put discovery: empty document")
	}
	if err := v.store(ctx, v.discoveryKey(issuer), issuer, d, DiscoveryTTL); err != nil {
		return fmt.Errorf("vault: put discovery: %w", err)
	}
	return nil
}

// GetDiscovery returns the discovery document stored for issuer, or an
// error wrapping ErrNotFound when there is none (or it does not
// authenticate).
func (v *Vault) GetDiscovery(ctx context.Context, issuer string) (*Discovery, error) {
	var d Discovery
	if err := v.load(ctx, v.discoveryKey(issuer), "get discovery", &d); err != nil {
		return nil, err
	}
	return &d, nil
}

func (v *Vault) discoveryKey(issuer string) string { return v.prefix + "disc:" + hashID(issuer) }
