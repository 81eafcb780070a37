package provider_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/provider"
)

// checkRefreshRequest fails the test unless r is an RFC 6749 section 6
// refresh request for testRefresh, authenticated with HTTP Basic.
func checkRefreshRequest(t *testing.T, r *http.Request) {
	t.Helper()
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		t.Errorf("request %s %s; want POST /token", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q; want application/x-www-form-urlencoded", ct)
	}
	if err := r.ParseForm(); err != nil {
		t.Errorf("ParseForm: %v", err)
	}
	if gt, rt := r.PostForm.Get("grant_type"), r.PostForm.Get("refresh_token"); gt != "refresh_token" || rt != testRefresh {
		t.Errorf("grant_type=%q refresh_token=%q; want refresh_token and %q", gt, rt, testRefresh)
	}
	id, secret, ok := r.BasicAuth()
	if !ok || id != testClientID || secret != testClientSecret {
		t.Errorf("Basic auth %q:%q (%v); want %q:%q", id, secret, ok, testClientID, testClientSecret)
	}
	if r.PostForm.Has("client_secret") {
		t.Error("client_secret is in the form as well as in the Authorization header")
	}
}

func TestRefreshSuccess(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name          string
		contentType   string // default application/json
		body          string
		wantRefresh   string
		wantType      string
		wantScope     string
		wantExpiry    time.Time
		wantRefreshAt time.Time
	}{
		{name: "rotated", body: `{"access_token":"at1","token_type":"Bearer","expires_in":60,"refresh_token":"rt_new","scope":"openid profile"}`,
			wantRefresh: "rt_new", wantType: "Bearer", wantScope: "openid profile", wantExpiry: now.Add(time.Minute)},
		{name: "not rotated", body: `{"access_token":"at1","token_type":"Bearer","expires_in":60}`,
			wantType: "Bearer", wantExpiry: now.Add(time.Minute)},
		{name: "same refresh token sent back", body: `{"access_token":"at1","token_type":"Bearer","expires_in":60,"refresh_token":"` + testRefresh + `"}`,
			wantType: "Bearer", wantExpiry: now.Add(time.Minute)},
		{name: "refresh_token_expires_in number", body: `{"access_token":"at1","token_type":"Bearer","expires_in":60,"refresh_token":"rt_new","refresh_token_expires_in":3600}`,
			wantRefresh: "rt_new", wantType: "Bearer", wantExpiry: now.Add(time.Minute), wantRefreshAt: now.Add(time.Hour)},
		{name: "refresh_token_expires_in string", body: `{"access_token":"at1","token_type":"Bearer","expires_in":60,"refresh_token":"rt_new","refresh_token_expires_in":"3600"}`,
			wantRefresh: "rt_new", wantType: "Bearer", wantExpiry: now.Add(time.Minute), wantRefreshAt: now.Add(time.Hour)},
		{name: "refresh_token_expires_in zero", body: `{"access_token":"at1","expires_in":60,"refresh_token_expires_in":0}`,
			wantType: "Bearer", wantExpiry: now.Add(time.Minute)},
		{name: "expires_in string", body: `{"access_token":"at1","token_type":"Bearer","expires_in":"90"}`,
			wantType: "Bearer", wantExpiry: now.Add(90 * time.Second)},
		{name: "no expires_in", body: `{"access_token":"at1","token_type":"Bearer"}`,
			wantType: "Bearer"},
		{name: "lower-case bearer", body: `{"access_token":"at1","token_type":"bearer","expires_in":60}`,
			wantType: "Bearer", wantExpiry: now.Add(time.Minute)},
		{name: "no token_type", body: `{"access_token":"at1","expires_in":60}`,
			wantType: "Bearer", wantExpiry: now.Add(time.Minute)},
		{name: "other token_type kept", body: `{"access_token":"at1","token_type":"DPoP","expires_in":60}`,
			wantType: "DPoP", wantExpiry: now.Add(time.Minute)},
		{name: "form-encoded (GitHub)", contentType: "application/x-www-form-urlencoded",
			body:        "access_token=at1&token_type=bearer&expires_in=28800&refresh_token=rt_new&refresh_token_expires_in=15811200&scope=",
			wantRefresh: "rt_new", wantType: "Bearer", wantExpiry: now.Add(8 * time.Hour), wantRefreshAt: now.Add(15811200 * time.Second)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			srv, hits := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
				checkRefreshRequest(t, r)
				reply(200, ct, tc.body)(w, r)
			})
			p := newOAuthProvider(t, srv, nil, func() time.Time { return now })
			g, err := p.Refresh(context.Background(), testRefresh)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("%d requests; want 1", n)
			}
			want := provider.Grant{AccessToken: "at1", TokenType: tc.wantType, RefreshToken: tc.wantRefresh,
				Scope: tc.wantScope, Expiry: tc.wantExpiry, RefreshExpiry: tc.wantRefreshAt}
			if *g != want {
				t.Errorf("Grant\n got %+v\nwant %+v", *g, want)
			}
		})
	}
}

// A public client (no secret) sends client_id in the form, no Basic header.
func TestRefreshPublicClient(t *testing.T) {
	srv, hits := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if _, _, ok := r.BasicAuth(); ok {
			t.Error("a public client sent an Authorization header")
		}
		if got := r.PostForm.Get("client_id"); got != testClientID {
			t.Errorf("client_id=%q; want %q", got, testClientID)
		}
		reply(400, "application/json", `{"error":"invalid_grant"}`)(w, r)
	})
	p, err := provider.New(context.Background(), provider.Config{
		Endpoints: provider.Endpoints{AuthURL: srv.URL + "/authorize", TokenURL: srv.URL + "/token"},
		ClientID:  testClientID, RedirectURL: "http://127.0.0.1:1/cb",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Refresh(context.Background(), testRefresh); err == nil {
		t.Fatal("Refresh succeeded against invalid_grant")
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d requests; want 1", n)
	}
}

func TestAuthCodeURLPlainOAuth(t *testing.T) {
	srv, _ := newTokenServer(t, reply(500, "text/plain", ""))
	p := newOAuthProvider(t, srv, nil, nil)
	if p.OIDC() {
		t.Error("OIDC() = true without an issuer")
	}
	v := newVerifier(t)
	raw := p.AuthCodeURL("st", v, "the-nonce")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme+"://"+u.Host+u.Path != srv.URL+"/authorize" {
		t.Errorf("AuthCodeURL %q is not on the authorization endpoint", raw)
	}
	for k, want := range map[string]string{"response_type": "code", "client_id": testClientID, "state": "st",
		"redirect_uri": "http://127.0.0.1:1/bff/callback", "code_challenge_method": "S256"} {
		if got := q.Get(k); got != want {
			t.Errorf("%s=%q; want %q", k, got, want)
		}
	}
	if c := q.Get("code_challenge"); len(c) != 43 || c == v {
		t.Errorf("code_challenge=%q; want the 43-character S256 of the verifier", c)
	}
	if q.Has("nonce") {
		t.Errorf("plain OAuth AuthCodeURL carries a nonce: %q", raw)
	}
}

// newVerifier returns a verifier and checks its RFC 7636 shape.
func newVerifier(t *testing.T) string {
	t.Helper()
	v := provider.NewVerifier()
	if len(v) < 43 || len(v) > 128 || v == provider.NewVerifier() {
		t.Fatalf("NewVerifier() = %q: want 43-128 random characters", v)
	}
	return v
}

// A server whose discovery lists only client_secret_post gets the
// credentials in the form, in one request.
func TestDiscoveredClientSecretPost(t *testing.T) {
	var issuer string
	srv, hits := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			reply(200, "application/json", `{"issuer":"`+issuer+`","authorization_endpoint":"`+issuer+`/authorize",`+
				`"token_endpoint":"`+issuer+`/token","jwks_uri":"`+issuer+`/jwks",`+
				`"token_endpoint_auth_methods_supported":["client_secret_post"]}`)(w, r)
		case "/token":
			r.ParseForm()
			if _, _, ok := r.BasicAuth(); ok {
				t.Error("Authorization header sent to a client_secret_post server")
			}
			if id, s := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"); id != testClientID || s != testClientSecret {
				t.Errorf("client_id=%q client_secret=%q in the form", id, s)
			}
			reply(400, "application/json", `{"error":"invalid_grant"}`)(w, r)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
	})
	issuer = srv.URL
	p, err := provider.New(context.Background(), provider.Config{Endpoints: provider.Endpoints{Issuer: issuer},
		ClientID: testClientID, ClientSecret: testClientSecret, RedirectURL: "http://127.0.0.1:1/cb"})
	if err != nil {
		t.Fatal(err)
	}
	if p.CanRevoke() {
		t.Error("CanRevoke() = true; discovery lists no revocation_endpoint")
	}
	hits.Store(0)
	if _, err := p.Refresh(context.Background(), testRefresh); err == nil {
		t.Fatal("Refresh succeeded against invalid_grant")
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d token requests; want 1", n)
	}
}
