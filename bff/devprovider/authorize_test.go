package devprovider_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/internal/logbuf"
)

func TestConsentPage(t *testing.T) {
	e := newEnv(t, devprovider.Config{})
	const hostile = `"><script>alert(1)</script>`
	verifier := oauth2.GenerateVerifier()
	authURL := e.conf.AuthCodeURL(hostile, oauth2.S256ChallengeOption(verifier))

	res, err := e.noRedirect().Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("consent page: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{"Tether dev provider", "Sign in as Alice Liddell", "Sign in as Bob Builder", ">Deny<",
		"never use in production", "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if bytes.Contains(page, []byte("<script>")) {
		t.Error("consent page reflects the state unescaped")
	}

	// The page's form: the hidden fields plus the button pressed.
	form := url.Values{}
	u, _ := url.Parse(authURL)
	for k, v := range u.Query() {
		form[k] = v
	}
	submit := func(button, value string) url.Values {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set(button, value)
		res, err := e.noRedirect().PostForm(e.srv.URL+"/authorize", f)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return e.location(res)
	}
	q := submit("user", "bob")
	if q.Get("state") != hostile || q.Get("code") == "" {
		t.Fatalf("approve: %v; want a code and the state back intact", q)
	}
	e.conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	tok, err := e.conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, me := e.me(tok.AccessToken); me["subject"] != "bob" {
		t.Errorf("signed in as %v; want bob", me["subject"])
	}
	if q := submit("deny", "1"); q.Get("error") != "access_denied" || q.Get("state") != hostile || q.Has("code") {
		t.Errorf("deny: %v; want error=access_denied and the state", q)
	}
}

func TestAuthorizeRejects(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	ok := url.Values{
		"response_type": {"code"}, "client_id": {devprovider.DefaultClientID},
		"redirect_uri": {redirectURI}, "state": {"s"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
	}
	cases := []struct {
		name      string
		key, val  string
		status    int
		wantError string // the error= on the redirect, for 302
	}{
		{"unknown client", "client_id", "other", 400, ""},
		{"foreign redirect", "redirect_uri", "http://evil.example/cb", 400, ""},
		{"https redirect", "redirect_uri", "https://127.0.0.1/cb", 400, ""},
		{"implicit flow", "response_type", "token", 302, "unsupported_response_type"},
		{"no challenge", "code_challenge", "", 302, "invalid_request"},
		{"plain method", "code_challenge_method", "plain", 302, "invalid_request"},
		{"no method", "code_challenge_method", "", 302, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range ok {
				q[k] = v
			}
			q.Set(c.key, c.val)
			res, err := e.noRedirect().Get(e.srv.URL + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != c.status {
				t.Fatalf("status %d; want %d", res.StatusCode, c.status)
			}
			if c.status == 302 {
				if got := e.location(res); got.Get("error") != c.wantError || got.Get("state") != "s" || got.Has("code") {
					t.Errorf("redirect %v; want error=%s and state", got, c.wantError)
				}
			}
		})
	}
}

func TestCORS(t *testing.T) {
	cases := []struct {
		name    string
		allow   []string
		origin  string
		allowed bool
	}{
		{"listed", []string{"http://127.0.0.1:8080"}, "http://127.0.0.1:8080", true},
		{"not listed", []string{"http://127.0.0.1:8080"}, "http://127.0.0.1:8081", false},
		{"loopback by default", nil, "http://localhost:5555", true},
		{"foreign never by default", nil, "http://evil.example", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, devprovider.Config{AllowOrigins: c.allow})
			res := e.do("OPTIONS", "/api/me", http.Header{
				"Origin":                         {c.origin},
				"Access-Control-Request-Method":  {"GET"},
				"Access-Control-Request-Headers": {"authorization"},
			}, nil)
			acao := res.Header.Get("Access-Control-Allow-Origin")
			if !c.allowed {
				if acao != "" || res.StatusCode != 403 {
					t.Errorf("preflight: %d ACAO %q; want 403 and no ACAO", res.StatusCode, acao)
				}
				return
			}
			if res.StatusCode != 204 || acao != c.origin ||
				!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
			}
			res = e.do("GET", "/api/me", http.Header{"Origin": {c.origin}}, nil)
			if res.StatusCode != 401 || res.Header.Get("Access-Control-Allow-Origin") != c.origin ||
				res.Header.Get("Access-Control-Expose-Headers") != "WWW-Authenticate" || res.Header.Get("Vary") != "Origin" {
				t.Errorf("GET /api/me: %d %v", res.StatusCode, res.Header)
			}
		})
	}
}

func TestAPIWithoutToken(t *testing.T) {
	e := newEnv(t, devprovider.Config{})
	var pub map[string]bool
	e.do("GET", "/api/public", nil, &pub)
	if !pub["ok"] || pub["authorization_header"] {
		t.Errorf("/api/public without header: %v", pub)
	}
	e.do("GET", "/api/public", http.Header{"Authorization": {"Bearer x"}}, &pub)
	if !pub["authorization_header"] {
		t.Errorf("/api/public with header: %v", pub)
	}
	res, _ := e.me("")
	if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != `Bearer realm="tether-dev"` {
		t.Errorf("no token: %d %q; want 401 with no error code (RFC 6750 3.1)", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if res, _ := e.me("dev_at_forged"); res.StatusCode != 401 ||
		!strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("forged token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if s := e.p.Stats(); s.API401 != 2 || s.APIOK != 0 {
		t.Errorf("Stats = %+v; want api_401 2", s)
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	var buf logbuf.Buffer
	e := newEnv(t, devprovider.Config{AutoApprove: true, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	code, verifier := e.authorize()
	tok, err := e.conf.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.refresh(e.ctx, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	e.me(tok.AccessToken)
	logs := buf.String()
	if !strings.Contains(logs, "grant_type=refresh_token") || !strings.Contains(logs, "path=/api/me") {
		t.Errorf("logs lack the expected lines:\n%s", logs)
	}
	for _, secret := range []string{"dev_at_", "dev_rt_", "dev_code_", verifier, devprovider.DefaultClientSecret, "st-1"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []devprovider.Config{
		{},
		{Issuer: "127.0.0.1:9090"},
		{Issuer: "ftp://127.0.0.1"},
		{Issuer: "http://127.0.0.1", AccessTTL: -1},
		{Issuer: "http://127.0.0.1", AllowOrigins: []string{"http://127.0.0.1:8080/"}},
	} {
		if _, err := devprovider.New(cfg); err == nil || !strings.HasPrefix(err.Error(), "devprovider: ") {
			t.Errorf("New(%+v) = %v; want a devprovider: error", cfg, err)
		}
	}
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, devprovider.Config{})
	var d map[string]any
	res := e.do("GET", "/.well-known/openid-configuration", nil, &d)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	for key, want := range map[string]string{
		"issuer": e.srv.URL, "revocation_endpoint": e.srv.URL + "/revoke", "jwks_uri": e.srv.URL + "/jwks",
	} {
		if d[key] != want {
			t.Errorf("%s = %v; want %s", key, d[key], want)
		}
	}
	for key, want := range map[string]string{
		"code_challenge_methods_supported":      "[S256]",
		"token_endpoint_auth_methods_supported": "[client_secret_basic client_secret_post]",
		"response_types_supported":              "[code]",
		"subject_types_supported":               "[public]",
	} {
		if got := fmtList(d[key]); got != want {
			t.Errorf("%s = %s; want %s", key, got, want)
		}
	}
}

func fmtList(v any) string {
	l, _ := v.([]any)
	s := make([]string, len(l))
	for i, x := range l {
		s[i], _ = x.(string)
	}
	return "[" + strings.Join(s, " ") + "]"
}
