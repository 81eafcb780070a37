package bff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/securecookie"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/internal/logbuf"
	"github.com/tetherauth/tether/shared/wire"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// clock is a settable clock shared by the dev provider and the BFFs of a
// test, so token lifetimes can be crossed without sleeping. It starts at
// the real time, so Redis TTLs and lock leases stay meaningful.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// stack is a dev provider and one or more BFF replicas on loopback, all
// real HTTP, sharing one vault.
type stack struct {
	t      testing.TB
	clock  *clock
	dev    *devprovider.Provider
	devURL string
	bffs   []*Handler
	urls   []string
	logs   *logbuf.Buffer
}

type stackOptions struct {
	replicas int
	redisURL string        // "" = the first replica's embedded Redis
	tune     func(*Config) // adjusts every replica's Config
	devTune  func(*devprovider.Config)
}

// listen opens a loopback listener on a free port.
func listen(t testing.TB) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// serve runs h on ln with the production server settings (Serve) until
// the test ends.
func serve(t testing.TB, ln net.Listener, h http.Handler) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Serve(ctx, ln, h); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	if o.replicas == 0 {
		o.replicas = 1
	}
	s := &stack{t: t, clock: newClock(), logs: &logbuf.Buffer{}}
	ln, devURL := listen(t)
	dcfg := devprovider.Config{Issuer: devURL, AutoApprove: true, Now: s.clock.Now}
	if o.devTune != nil {
		o.devTune(&dcfg)
	}
	dev, err := devprovider.New(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	serve(t, ln, dev)
	s.dev, s.devURL = dev, devURL

	vaultKey, sessionKey := randomKey(), randomKey()
	redisURL := o.redisURL
	for i := range o.replicas {
		ln, pub := listen(t)
		cfg := Config{
			PublicURL: pub, Endpoints: provider.Endpoints{Issuer: devURL},
			ClientID: devprovider.DefaultClientID, ClientSecret: devprovider.DefaultClientSecret,
			RedisURL: redisURL, VaultKey: vaultKey, SessionKeys: [][]byte{sessionKey},
			ProviderTimeout: 2 * time.Second, RetryAfter: time.Second,
			Logger: slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", i),
			Now:    s.clock.Now,
		}
		if o.tune != nil {
			o.tune(&cfg)
		}
		srv, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(func() { srv.Close() })
		if redisURL == "" {
			redisURL = srv.vault.(interface{ EmbeddedURL() string }).EmbeddedURL()
		}
		serve(t, ln, srv)
		s.bffs = append(s.bffs, srv)
		s.urls = append(s.urls, pub)
	}
	return s
}

// expire ends every current access token at the dev provider.
func (s *stack) expire() {
	s.t.Helper()
	if _, err := s.controls().Expire(context.Background(), ""); err != nil {
		s.t.Fatal(err)
	}
}

// revoke revokes every grant of subject at the dev provider.
func (s *stack) revoke(subject string) {
	s.t.Helper()
	if _, err := s.controls().Revoke(context.Background(), subject); err != nil {
		s.t.Fatal(err)
	}
}

// outage makes the dev provider's token endpoint misbehave in mode until
// the next call (delay: how long OutageSlow sleeps).
func (s *stack) outage(mode devprovider.OutageMode, delay time.Duration) {
	s.t.Helper()
	if _, err := s.controls().Outage(context.Background(), mode, 0, delay); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) controls() *devprovider.Controls { return &devprovider.Controls{URL: s.devURL} }

// browser is an HTTP client with a cookie jar that records everything it
// receives, so a test can assert no secret ever reached it.
type browser struct {
	t    testing.TB
	c    *http.Client
	mu   sync.Mutex
	seen bytes.Buffer
}

func (s *stack) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: s.t}
	b.c = &http.Client{Jar: jar, Transport: recordingTransport{b}, Timeout: 30 * time.Second}
	return b
}

type recordingTransport struct{ b *browser }

func (rt recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	rt.b.mu.Lock()
	fmt.Fprintf(&rt.b.seen, "%s %s -> %d\n", r.Method, r.URL.Path, resp.StatusCode)
	resp.Header.Write(&rt.b.seen)
	rt.b.seen.Write(body)
	rt.b.seen.WriteString("\n")
	rt.b.mu.Unlock()
	return resp, nil
}

func (b *browser) received() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen.String()
}

// login runs the whole authorization-code flow against bffURL and returns
// the final response (after the redirect to returnTo).
func (b *browser) login(bffURL, returnTo string) *http.Response {
	b.t.Helper()
	resp, err := b.c.Get(bffURL + wire.PathLogin + "?return_to=" + url.QueryEscape(returnTo))
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.RequestURI() != returnTo {
		b.t.Fatalf("login ended at %s (status %d); want %s", resp.Request.URL, resp.StatusCode, returnTo)
	}
	return resp
}

// tokenResult is one POST /bff/token answer.
type tokenResult struct {
	status int
	header http.Header
	tok    wire.TokenResponse
	err    wire.ErrorBody
}

// token calls POST /bff/token with an optional JSON body.
func (b *browser) token(bffURL string, req *wire.TokenRequest) tokenResult {
	return b.tokenAt(bffURL+wire.BasePath, req)
}

// mustToken calls POST /bff/token and requires a 200.
func (b *browser) mustToken(bffURL string, req *wire.TokenRequest) wire.TokenResponse {
	b.t.Helper()
	return b.mustTokenAt(bffURL+wire.BasePath, req)
}

// tokenAt calls POST base/token, for a BFF mounted at base (a URL), with
// an optional JSON body.
func (b *browser) tokenAt(base string, req *wire.TokenRequest) tokenResult {
	var body io.Reader
	if req != nil {
		j, _ := json.Marshal(req)
		body = bytes.NewReader(j)
	}
	r, _ := http.NewRequest(http.MethodPost, base+"/token", body)
	r.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
	r.Header.Set("Content-Type", "application/json")
	resp, err := b.c.Do(r)
	if err != nil {
		b.t.Errorf("POST %s/token: %v", base, err)
		return tokenResult{}
	}
	defer resp.Body.Close()
	res := tokenResult{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		json.Unmarshal(raw, &res.tok)
	} else {
		json.Unmarshal(raw, &res.err)
	}
	return res
}

// mustTokenAt calls POST base/token and requires a 200.
func (b *browser) mustTokenAt(base string, req *wire.TokenRequest) wire.TokenResponse {
	b.t.Helper()
	r := b.tokenAt(base, req)
	if r.status != http.StatusOK {
		b.t.Fatalf("POST %s/token = %d %+v; want 200", base, r.status, r.err)
	}
	return r.tok
}

// jsonCall performs a BFF JSON request with the CSRF header.
func (b *browser) jsonCall(method, u string, out any) int {
	b.t.Helper()
	r, _ := http.NewRequest(method, u, nil)
	r.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
	resp, err := b.c.Do(r)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// callAPI calls the dev provider's /api/me with an access token.
func (s *stack) callAPI(token string) int {
	s.t.Helper()
	r, _ := http.NewRequest(http.MethodGet, s.devURL+"/api/me", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sid returns the session id inside b's cookie for replica i, decoded
// with the server's own keys (the test plays the server here), or "".
func (s *stack) sid(b *browser) string {
	s.t.Helper()
	srv := s.bffs[0]
	u, _ := url.Parse(s.urls[0])
	var pairs [][]byte
	for _, k := range srv.cfg.SessionKeys {
		pairs = append(pairs, derive(k, "tether cookie hmac"), derive(k, "tether cookie aes"))
	}
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name != srv.cookieName {
			continue
		}
		values := map[any]any{}
		if err := securecookie.DecodeMulti(c.Name, c.Value, &values, securecookie.CodecsFromPairs(pairs...)...); err != nil {
			s.t.Fatalf("decoding the session cookie: %v", err)
		}
		sid, _ := values[keySID].(string)
		return sid
	}
	return ""
}

// hasRecord reports whether the vault holds a record for sid.
func (s *stack) hasRecord(sid string) bool {
	s.t.Helper()
	_, err := s.bffs[0].vault.Get(context.Background(), sid)
	if err != nil && !errors.Is(err, vault.ErrNotFound) {
		s.t.Fatal(err)
	}
	return err == nil
}

// jwtPattern matches a JWT: two base64url JSON segments ({"… is eyJ) and
// a signature. Random base64 may contain "eyJ"; it does not look like this.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+`)

// assertNoSecrets fails if a refresh token, an ID token or the client
// secret shows up in what the browser received or in the logs.
func (s *stack) assertNoSecrets(b *browser) {
	s.t.Helper()
	for name, text := range map[string]string{"browser": b.received(), "logs": s.logs.String()} {
		for _, needle := range []string{"dev_rt_", devprovider.DefaultClientSecret} {
			if strings.Contains(text, needle) {
				s.t.Errorf("%s saw %q (a refresh token or the client secret)", name, needle)
			}
		}
		if jwt := jwtPattern.FindString(text); jwt != "" {
			s.t.Errorf("%s saw a JWT (an ID token): %.20s…", name, jwt)
		}
	}
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// recordAt is a record whose token was issued at iat and lives life (0: no
// expiry).
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
