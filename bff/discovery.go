package bff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/bff/vault"
)

// Discovery retries: the first after discoveryRetryMin, doubling up to
// discoveryRetryMax, each with up to a tenth of jitter. The attempt at
// start waits at most startDiscoveryTimeout (or the provider timeout, if
// shorter), so a hanging provider does not keep the BFF from listening.
const (
	discoveryRetryMin     = time.Second
	discoveryRetryMax     = 30 * time.Second
	startDiscoveryTimeout = 5 * time.Second
)

// errNoProvider is what the provider's calls fail with while its endpoints
// are not known: an outage to every caller, and no call for the circuit
// breaker to count.
var errNoProvider = fmt.Errorf("%w: %w: the sign-in provider's endpoints are not known yet (discovery has not succeeded)",
	provider.ErrUnavailable, refresh.ErrNoProvider)

// providerSlot is the BFF's oauthProvider: the provider once its endpoints
// are known (configured, discovered, or from the discovery document a
// replica stored in the vault), and until then a provider whose every
// call fails with errNoProvider. It is safe for concurrent use.
type providerSlot struct {
	p atomic.Pointer[provider.Provider]

	mu     sync.Mutex
	status string // why there is no provider, or where its endpoints came from
}

var _ oauthProvider = (*providerSlot)(nil)

func (s *providerSlot) set(p *provider.Provider, status string) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
	s.p.Store(p)
}

func (s *providerSlot) setStatus(status string) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

// ready reports whether the provider's endpoints are known, and says why
// not or where they came from.
func (s *providerSlot) ready() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.Load() != nil, s.status
}

func (s *providerSlot) Refresh(ctx context.Context, refreshToken string) (*provider.Grant, error) {
	p := s.p.Load()
	if p == nil {
		return nil, errNoProvider
	}
	return p.Refresh(ctx, refreshToken)
}

func (s *providerSlot) AuthCodeURL(state, verifier, nonce string) string {
	p := s.p.Load()
	if p == nil {
		return "" // handleLogin checks ready first
	}
	return p.AuthCodeURL(state, verifier, nonce)
}

func (s *providerSlot) Exchange(ctx context.Context, code, verifier, nonce string) (*provider.Grant, error) {
	p := s.p.Load()
	if p == nil {
		return nil, errNoProvider
	}
	return p.Exchange(ctx, code, verifier, nonce)
}

func (s *providerSlot) Revoke(ctx context.Context, refreshToken, accessToken string) error {
	p := s.p.Load()
	if p == nil {
		return errNoProvider
	}
	return p.Revoke(ctx, refreshToken, accessToken)
}

// VerifyLogoutToken checks a back-channel logout token (see
// provider.Provider.VerifyLogoutToken); errNoProvider before discovery.
func (s *providerSlot) VerifyLogoutToken(ctx context.Context, raw string) (*provider.LogoutToken, error) {
	p := s.p.Load()
	if p == nil {
		return nil, errNoProvider
	}
	return p.VerifyLogoutToken(ctx, raw)
}

// CanRevoke reports whether the provider has a revocation endpoint.
func (s *providerSlot) CanRevoke() bool {
	p := s.p.Load()
	return p != nil && p.CanRevoke()
}

func (s *providerSlot) OIDC() bool {
	p := s.p.Load()
	return p != nil && p.OIDC()
}

// discoveryStore keeps the last good discovery document; the vault is one.
type discoveryStore interface {
	GetDiscovery(ctx context.Context, issuer string) (*vault.Discovery, error)
	PutDiscovery(ctx context.Context, issuer string, d *vault.Discovery) error
}

var _ discoveryStore = (*vault.Vault)(nil)

// discoverer finds the provider of a Config with an issuer: at start, and
// in the background for as long as discovery fails.
type discoverer struct {
	pc      provider.Config
	store   discoveryStore
	slot    *providerSlot
	log     *slog.Logger
	timeout time.Duration // bounds one attempt
	stop    context.CancelFunc
	done    chan struct{}
}

// startProvider fills s's provider slot from pc. Without an issuer nothing
// goes over the network and any error is a configuration error. With one,
// discovery runs once; if it fails for a reason that may pass (the issuer
// unreachable, a 5xx, a timeout, a malformed document) the BFF starts all
// the same, with the last good discovery document a replica stored in the
// vault if there is one, and keeps trying in the background (1 s, 2 s, …
// 30 s) until discovery succeeds. Any other failure is a ConfigError.
func (s *Handler) startProvider(ctx context.Context, pc provider.Config, store discoveryStore) error {
	if pc.Issuer == "" {
		p, err := provider.New(ctx, pc)
		if err != nil {
			return &ConfigError{s.cfg.providerVar(), err}
		}
		s.slot.set(p, "endpoints configured")
		return nil
	}
	d := &discoverer{pc: pc, store: store, slot: s.slot, log: s.log, timeout: min(s.cfg.ProviderTimeout, startDiscoveryTimeout)}
	err := d.attempt(ctx)
	d.timeout = s.cfg.ProviderTimeout
	if err == nil {
		return nil
	}
	if !errors.Is(err, provider.ErrDiscovery) {
		return &ConfigError{s.cfg.providerVar(), err}
	}
	s.log.Error("provider discovery failed; starting without it and retrying in the background", "issuer", pc.Issuer, "err", err)
	d.fromStore(ctx)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.stop, d.done = cancel, make(chan struct{})
	go d.retry(rctx)
	s.disc = d
	return nil
}

// attempt runs discovery once and, when it succeeds, puts the provider in
// the slot and stores its document.
func (d *discoverer) attempt(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	p, err := provider.New(actx, d.pc)
	if err != nil {
		if ok, _ := d.slot.ready(); !ok {
			d.slot.setStatus("provider discovery has not succeeded: " + err.Error())
		}
		return err
	}
	doc := p.Discovery()
	d.slot.set(p, fmt.Sprintf("provider discovered at %s", doc.Fetched.UTC().Format(time.RFC3339)))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := d.store.PutDiscovery(sctx, d.pc.Issuer, &vault.Discovery{Document: doc.Document, Fetched: doc.Fetched}); err != nil {
		d.log.Warn("storing the provider's discovery document", "err", err)
	}
	return nil
}

// fromStore puts a provider built from the stored discovery document in
// the slot, if there is one that works.
func (d *discoverer) fromStore(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	stored, err := d.store.GetDiscovery(sctx, d.pc.Issuer)
	cancel()
	if err != nil {
		if !errors.Is(err, vault.ErrNotFound) {
			d.log.Warn("reading the stored discovery document", "err", err)
		}
		d.log.Warn("no stored discovery document: logins and refreshes wait for discovery", "issuer", d.pc.Issuer)
		return
	}
	pc := d.pc
	pc.Discovery = &provider.Discovery{Document: stored.Document, Fetched: stored.Fetched}
	p, err := provider.New(ctx, pc)
	if err != nil {
		d.log.Warn("the stored discovery document is not usable", "issuer", d.pc.Issuer, "err", err)
		return
	}
	fetched := stored.Fetched.UTC().Format(time.RFC3339)
	d.slot.set(p, "provider endpoints from the discovery document stored in the vault, fetched "+fetched+"; rediscovering")
	d.log.Info("using the stored discovery document until discovery succeeds", "issuer", d.pc.Issuer, "fetched", fetched)
}

// retry runs discovery with back-off until it succeeds or ctx ends.
func (d *discoverer) retry(ctx context.Context) {
	defer close(d.done)
	wait := discoveryRetryMin
	for {
		t := time.NewTimer(wait + rand.N(wait/10+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err := d.attempt(ctx)
		if err == nil {
			d.log.Info("provider discovery succeeded", "issuer", d.pc.Issuer)
			return
		}
		if ctx.Err() != nil {
			return
		}
		wait = min(2*wait, discoveryRetryMax)
		d.log.Warn("provider discovery failed again", "issuer", d.pc.Issuer, "err", err, "next_attempt", wait)
	}
}

// close stops the background discovery, if any, and waits for it.
func (d *discoverer) close() {
	if d == nil || d.stop == nil {
		return
	}
	d.stop()
	<-d.done
}

func (s *providerSlot) AuthorizationResponseIssuer() (string, bool) {
	p := s.p.Load()
	if p == nil {
		return "", false // handleCallback checks ready first
	}
	return p.AuthorizationResponseIssuer()
}
