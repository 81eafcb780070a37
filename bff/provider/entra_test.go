package provider_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/provider"
)

// Tenant ids of the fake Entra directory.
const (
	contosoTID  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	fabrikamTID = "0e3d1a52-8ba4-4f5d-9d4e-3e5b7c7a6a00"
)

// fakeEntra reproduces Microsoft Entra ID's v2.0 wire behaviour at
// /{tenant}/v2.0 (authority) and /{tenant}/oauth2/v2.0/{authorize,token}:
//
//   - common and organizations publish the issuer
//     {host}/{tenantid}/v2.0 (a template), contoso.example and the
//     tenant id publish {host}/<tenant id>/v2.0;
//   - ID tokens carry iss {host}/<tid>/v2.0 and tid, of the tenant the
//     user belongs to (idTenant; issOverride forges iss);
//   - a refresh token comes only with offline_access; every refresh
//     rotates it; the refresh request must name the scope (the v2.0
//     documentation lists it as required); invalid_grant descriptions start with AADSTS codes and
//     carry trace and correlation ids;
//   - no revocation endpoint.
type fakeEntra struct {
	t      *testing.T
	srv    *httptest.Server
	signer *idSigner

	mu          sync.Mutex
	idTenant    string // the signing-in user's tenant id
	issOverride string // when set, the ID token's iss
	noTID       bool
	codes       map[string]url.Values // code -> authorization request
	refresh     map[string]bool
	lastForm    url.Values
}

func newFakeEntra(t *testing.T) *fakeEntra {
	f := &fakeEntra{t: t, signer: newIDSigner(t), idTenant: contosoTID, codes: map[string]url.Values{}, refresh: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", f.signer.jwks)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", f.authorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.token)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEntra) discovery(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	issuer := f.srv.URL + "/" + tenant + "/v2.0"
	switch tenant {
	case "common", "organizations":
		issuer = f.srv.URL + "/{tenantid}/v2.0"
	case "contoso.example":
		issuer = f.srv.URL + "/" + contosoTID + "/v2.0"
	case "elsewhere":
		issuer = "http://login.attacker.example/" + contosoTID + "/v2.0" // same scheme as the fake
	}
	base := f.srv.URL + "/" + tenant
	writeJSONReply(w, 200, map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"userinfo_endpoint":                     f.srv.URL + "/oidc/userinfo",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
	})
}

func (f *fakeEntra) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	code := ghToken("1.AQ")
	f.codes[code] = q
	f.mu.Unlock()
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func (f *fakeEntra) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastForm = r.PostForm
	invalid := func(code, desc string) {
		writeJSONReply(w, 400, map[string]any{"error": "invalid_grant", "error_description": desc +
			"\r\nTrace ID: 2c1b5d4e-7f10-4c3a-9b1e-5a9d8e7f6a00\r\nCorrelation ID: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d\r\nTimestamp: 2030-01-02 03:04:05Z",
			"error_codes": []int{70000}, "timestamp": "2030-01-02 03:04:05Z", "trace_id": "2c1b5d4e-7f10-4c3a-9b1e-5a9d8e7f6a00",
			"correlation_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "error_uri": "https://login.microsoftonline.com/error?code=" + code})
	}
	scope := "openid profile offline_access User.Read"
	resp := map[string]any{"token_type": "Bearer", "scope": scope, "expires_in": 4435, "ext_expires_in": 4435,
		"access_token": "eyJ0eXAiOiJKV1QiLCJub25jZSI6" + ghToken("")}
	var auth url.Values
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		var ok bool
		if auth, ok = f.codes[r.PostForm.Get("code")]; !ok {
			invalid("54005", "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
			return
		}
		delete(f.codes, r.PostForm.Get("code"))
	case "refresh_token":
		if r.PostForm.Get("scope") == "" {
			writeJSONReply(w, 400, map[string]any{"error": "invalid_request", "error_description": "AADSTS900144: The request body must contain the following parameter: 'scope'."})
			return
		}
		rt := r.PostForm.Get("refresh_token")
		if !f.refresh[rt] {
			invalid("700082", "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2029-09-01T00:00:00Z and was inactive for 90.00:00:00.")
			return
		}
		delete(f.refresh, rt) // rotation
		auth = url.Values{"scope": {scope}}
	}
	if strings.Contains(auth.Get("scope"), "offline_access") {
		rt := "0.AQ" + ghToken("")
		f.refresh[rt] = true
		resp["refresh_token"] = rt
	}
	if nonce := auth.Get("nonce"); nonce != "" {
		iss := f.srv.URL + "/" + f.idTenant + "/v2.0"
		if f.issOverride != "" {
			iss = f.issOverride
		}
		c := map[string]any{"iss": iss, "aud": testClientID, "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "oid": "00000000-0000-0000-66f3-3332eca7ea81",
			"name": "Megan Bowen", "preferred_username": "meganb@contoso.example", "nonce": nonce, "ver": "2.0",
			"iat": time.Now().Unix(), "nbf": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		if !f.noTID {
			c["tid"] = f.idTenant
		}
		resp["id_token"] = f.signer.sign(f.t, c)
	}
	writeJSONReply(w, 200, resp)
}

// provider is the Entra preset for tenant, pointed at this fake.
func (f *fakeEntra) provider(tenant string) (*provider.Provider, error) {
	cfg := provider.Entra(tenant)
	cfg.Issuer = strings.Replace(cfg.Issuer, provider.EntraAuthority, f.srv.URL, 1)
	cfg.ClientID, cfg.ClientSecret, cfg.RedirectURL = testClientID, testClientSecret, devRedirect
	return provider.New(context.Background(), cfg)
}

func (f *fakeEntra) login(p *provider.Provider) (*provider.Grant, error) {
	v := provider.NewVerifier()
	q := followAuthorize(f.t, p.AuthCodeURL("st", v, "nonce-e"))
	return p.Exchange(context.Background(), q.Get("code"), v, "nonce-e")
}

func TestEntraPreset(t *testing.T) {
	c := provider.Entra("common")
	if c.Flavor != provider.FlavorEntra || c.Issuer != "https://login.microsoftonline.com/common/v2.0" ||
		!slices.Equal(c.Scopes, []string{"openid", "profile", "offline_access"}) {
		t.Errorf("Entra(common) = %+v", c)
	}
}

// The ID token's issuer is checked whichever way the tenant is given.
func TestEntraIssuer(t *testing.T) {
	cases := []struct {
		name, tenant string
		idTenant     string
		iss          string // forged iss; "" = the tenant's own
		noTID        bool
		ok           bool
	}{
		{name: "common, a contoso user", tenant: "common", idTenant: contosoTID, ok: true},
		{name: "common, a fabrikam user", tenant: "common", idTenant: fabrikamTID, ok: true},
		{name: "organizations", tenant: "organizations", idTenant: fabrikamTID, ok: true},
		{name: "common, iss of another tenant than tid", tenant: "common", idTenant: contosoTID, iss: "/" + fabrikamTID + "/v2.0"},
		{name: "common, iss off the template", tenant: "common", idTenant: contosoTID, iss: "https://evil.example/" + contosoTID + "/v2.0"},
		{name: "common, no tid", tenant: "common", idTenant: contosoTID, noTID: true},
		{name: "common, tid not a GUID", tenant: "common", idTenant: "x/../" + contosoTID},
		{name: "tenant id", tenant: contosoTID, idTenant: contosoTID, ok: true},
		{name: "tenant id, a user of another tenant", tenant: contosoTID, idTenant: fabrikamTID},
		{name: "verified domain", tenant: "contoso.example", idTenant: contosoTID, ok: true},
		{name: "verified domain, a user of another tenant", tenant: "contoso.example", idTenant: fabrikamTID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeEntra(t)
			f.idTenant, f.noTID = tc.idTenant, tc.noTID
			if tc.iss != "" {
				f.issOverride = tc.iss
				if strings.HasPrefix(tc.iss, "/") {
					f.issOverride = f.srv.URL + tc.iss
				}
			}
			p, err := f.provider(tc.tenant)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			g, err := f.login(p)
			if tc.ok {
				if err != nil || g.Subject == "" || g.Name != "Megan Bowen" || g.RefreshToken == "" {
					t.Fatalf("login = %+v, %v; want Megan Bowen with a refresh token", g, err)
				}
				return
			}
			if !errors.Is(err, provider.ErrBadResponse) || errors.Is(err, provider.ErrRevoked) {
				t.Fatalf("login = %+v, %v; want ErrBadResponse", g, err)
			}
		})
	}
}

// A discovery document whose issuer leaves the authority's host is refused.
func TestEntraIssuerOnAnotherHost(t *testing.T) {
	f := newFakeEntra(t)
	if _, err := f.provider("elsewhere"); err == nil || !strings.Contains(err.Error(), "login.attacker.example") {
		t.Fatalf("New = %v; want an error naming the foreign issuer", err)
	}
}

// Refresh tokens rotate; invalid_grant keeps its AADSTS code in the error
// (the log), but not the refresh token.
func TestEntraRefresh(t *testing.T) {
	f := newFakeEntra(t)
	p, err := f.provider("common")
	if err != nil {
		t.Fatal(err)
	}
	if p.CanRevoke() {
		t.Error("CanRevoke() = true; Entra has no revocation endpoint")
	}
	u, _ := url.Parse(p.AuthCodeURL("st", provider.NewVerifier(), "n"))
	if got := u.Query().Get("scope"); got != "openid profile offline_access" {
		t.Errorf("scope=%q; want openid profile offline_access", got)
	}
	g, err := f.login(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.lastForm.Get("client_secret") != testClientSecret {
		t.Errorf("token request form %v; want client_secret_post", f.lastForm)
	}
	g2, err := p.Refresh(context.Background(), g.RefreshToken)
	if err != nil || g2.RefreshToken == "" || g2.RefreshToken == g.RefreshToken {
		t.Fatalf("Refresh = %+v, %v; want a rotated refresh token", g2, err)
	}
	_, err = p.Refresh(context.Background(), g.RefreshToken)
	if !errors.Is(err, provider.ErrRevoked) {
		t.Fatalf("Refresh with the rotated-away token: %v; want ErrRevoked", err)
	}
	msg := err.Error()
	t.Log(msg)
	if !strings.Contains(msg, "invalid_grant") || !strings.Contains(msg, "AADSTS700082: The refresh token has expired due to inactivity") {
		t.Errorf("error %q lost the AADSTS code or its text", msg)
	}
	if strings.Contains(msg, g.RefreshToken) || strings.Contains(msg, testClientSecret) {
		t.Errorf("error %q contains a secret", msg)
	}
	if err := p.Revoke(context.Background(), g2.RefreshToken, g2.AccessToken); err != nil {
		t.Errorf("Revoke without an endpoint = %v; want nil", err)
	}
}
