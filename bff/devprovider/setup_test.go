package devprovider_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tetherauth/tether/bff/devprovider"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one running provider and an x/oauth2 client for it.
type env struct {
	t    *testing.T
	p    *devprovider.Provider
	srv  *httptest.Server
	clk  *clock
	conf *oauth2.Config
	ctx  context.Context // carries srv.Client() for x/oauth2 and go-oidc
}

const redirectURI = "http://127.0.0.1:1/callback"

// newEnv starts a provider on 127.0.0.1 with an injected clock. cfg.Issuer
// and cfg.Now are filled in; AutoApprove is the caller's choice.
func newEnv(t *testing.T, cfg devprovider.Config) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	clk := newClock()
	cfg.Issuer = "http://" + srv.Listener.Addr().String()
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	p, err := devprovider.New(cfg)
	if err != nil {
		srv.Close()
		t.Fatalf("New: %v", err)
	}
	srv.Config.Handler = p
	srv.Start()
	t.Cleanup(func() {
		p.Close()
		srv.Close()
	})
	return &env{
		t: t, p: p, srv: srv, clk: clk,
		conf: &oauth2.Config{
			ClientID:     devprovider.DefaultClientID,
			ClientSecret: devprovider.DefaultClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:   srv.URL + "/authorize",
				TokenURL:  srv.URL + "/token",
				AuthStyle: oauth2.AuthStyleInHeader,
			},
			RedirectURL: redirectURI,
			Scopes:      []string{oidc.ScopeOpenID, "profile", "email"},
		},
		ctx: context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client()),
	}
}

// noRedirect is a client that returns 3xx responses instead of following them.
func (e *env) noRedirect() *http.Client {
	c := *e.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// authorize runs GET /authorize (AutoApprove must be on) and returns the
// code and the verifier that goes with it.
func (e *env) authorize(opts ...oauth2.AuthCodeOption) (code, verifier string) {
	e.t.Helper()
	verifier = oauth2.GenerateVerifier()
	opts = append(opts, oauth2.S256ChallengeOption(verifier))
	q := e.follow(e.conf.AuthCodeURL("st-1", opts...))
	if q.Get("state") != "st-1" || q.Get("iss") != e.srv.URL {
		e.t.Fatalf("redirect query %v; want state st-1 and iss %s", q, e.srv.URL)
	}
	if code = q.Get("code"); !strings.HasPrefix(code, devprovider.PrefixCode) {
		e.t.Fatalf("redirect query %v has no code", q)
	}
	return code, verifier
}

// follow GETs an authorization URL and returns the query of the 302
// Location, failing unless it points at redirectURI.
func (e *env) follow(authURL string) url.Values {
	e.t.Helper()
	res, err := e.noRedirect().Get(authURL)
	if err != nil {
		e.t.Fatalf("GET /authorize: %v", err)
	}
	res.Body.Close()
	return e.location(res)
}

func (e *env) location(res *http.Response) url.Values {
	e.t.Helper()
	if res.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize: status %d; want 302", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != redirectURI {
		e.t.Fatalf("Location %q; want it under %s", res.Header.Get("Location"), redirectURI)
	}
	return loc.Query()
}

// login runs the whole code flow with PKCE and returns the token.
func (e *env) login(opts ...oauth2.AuthCodeOption) *oauth2.Token {
	e.t.Helper()
	code, verifier := e.authorize(opts...)
	tok, err := e.conf.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		e.t.Fatalf("Exchange: %v", err)
	}
	return tok
}

// refresh asks for a new token with rt, as x/oauth2 does when a token has expired.
func (e *env) refresh(ctx context.Context, rt string) (*oauth2.Token, error) {
	return e.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
}

// do sends a request to the provider and decodes a JSON body into v (if not nil).
func (e *env) do(method, path string, hdr http.Header, v any) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if v != nil && len(body) > 0 {
		if err := json.Unmarshal(body, v); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, path, body, err)
		}
	}
	return res
}

// control POSTs to a /control/ endpoint and fails unless it answers 200.
func (e *env) control(pathAndQuery string, v any) {
	e.t.Helper()
	if res := e.do("POST", pathAndQuery, nil, v); res.StatusCode != http.StatusOK {
		e.t.Fatalf("POST %s: status %d", pathAndQuery, res.StatusCode)
	}
}

// me calls GET /api/me with the access token.
func (e *env) me(at string) (*http.Response, map[string]any) {
	e.t.Helper()
	var body map[string]any
	res := e.do("GET", "/api/me", http.Header{"Authorization": {"Bearer " + at}}, &body)
	return res, body
}

// wantGrantError fails unless err is an x/oauth2 RetrieveError with the
// given HTTP status and RFC 6749 error code.
func wantGrantError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v; want *oauth2.RetrieveError %d %s", err, status, code)
	}
	if re.Response.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("RetrieveError status %d code %q; want %d %q", re.Response.StatusCode, re.ErrorCode, status, code)
	}
	if cc := re.Response.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("error Cache-Control %q; want no-store", cc)
	}
}
