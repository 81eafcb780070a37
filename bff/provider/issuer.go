package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// tenantPlaceholder is what Entra's multi-tenant discovery documents put in
// their issuer where each ID token names its own tenant.
const tenantPlaceholder = "{tenantid}"

// googleSchemeless reports the issuer Google may also put in ID tokens:
// its URL without the scheme ("accounts.google.com").
func googleSchemeless(issuer string) string {
	if i := strings.Index(issuer, "://"); i >= 0 {
		return issuer[i+3:]
	}
	return issuer
}

// tenantID matches a directory (tenant) id, a GUID.
var tenantID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// entraIssuer reads the issuer Entra's discovery document states for the
// configured authority, which is not the authority's URL unless the tenant
// is given as its id:
//
//   - common and organizations state
//     https://login.microsoftonline.com/{tenantid}/v2.0, a template: each
//     ID token's iss must be it with the token's own tid (checkTenant);
//   - a verified domain (contoso.onmicrosoft.com) or consumers state the
//     tenant-id form, which ID tokens must then match exactly.
//
// The document (doc, fetched from the configured host) must state an
// issuer on that host. The returned context makes go-oidc's discovery
// accept the stated issuer.
func (p *Provider) entraIssuer(ctx context.Context, issuer string, doc []byte) (context.Context, error) {
	issuer = strings.TrimSuffix(issuer, "/")
	var d struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("provider: discovery at %s: %w: %w", issuer, ErrDiscovery, err)
	}
	configured, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("provider: issuer %q: %w", issuer, err)
	}
	if stated, err := url.Parse(d.Issuer); err != nil || stated.Scheme != configured.Scheme || stated.Host != configured.Host {
		return nil, fmt.Errorf("provider: discovery at %s: %w: the issuer %q is not on %s", issuer, ErrBadResponse, d.Issuer, configured.Host)
	}
	if d.Issuer == issuer {
		return ctx, nil
	}
	if strings.Contains(d.Issuer, tenantPlaceholder) {
		p.issuerTemplate = d.Issuer
	}
	return oidc.InsecureIssuerURLContext(ctx, d.Issuer), nil
}

// checkIssuer does the ID-token issuer check that go-oidc was told to
// skip (it has checked the signature, audience, expiry and nonce):
//
//   - Entra's multi-tenant authorities: iss must be the template with the
//     token's own tenant id (tid);
//   - Google: iss is the issuer URL or, as Google documents, the same
//     without its scheme (accounts.google.com).
func (p *Provider) checkIssuer(iss, tid string) error {
	switch {
	case p.issuerTemplate != "":
		if !tenantID.MatchString(tid) {
			return fmt.Errorf("provider: id token: %w: no tenant id (tid) to check the issuer against", ErrBadResponse)
		}
		if want := strings.Replace(p.issuerTemplate, tenantPlaceholder, tid, 1); iss != want {
			return fmt.Errorf("provider: id token: %w: issuer %q is not %q", ErrBadResponse, iss, want)
		}
	case p.schemelessIssuer != "":
		if iss != p.issuer && iss != p.schemelessIssuer {
			return fmt.Errorf("provider: id token: %w: issuer %q is not %q", ErrBadResponse, iss, p.issuer)
		}
	}
	return nil
}
