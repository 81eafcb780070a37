package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
)

// TestLoginThroughConsent: a person signs in on the dev provider's consent
// page, comes back connected as Alice, and the API call carries the token.
func TestLoginThroughConsent(t *testing.T) {
	s := startStack(t, stackOptions{})
	tab := newTab(t)
	net := recordNetwork(t, tab, false)
	p := openPage(t, tab, s)

	if st := p.read(); st.Status != "disconnected" || !p.visible(selConnect) {
		t.Fatalf("fresh page: %+v, #connect visible %v; want disconnected with #connect", st, p.visible(selConnect))
	}
	p.login(true)
	st := p.read()
	if !strings.Contains(st.StatusText, "Alice") {
		t.Errorf("#status says %q; want it to name Alice", st.StatusText)
	}
	if p.visible(selConnect) || p.visible(selBanner) {
		t.Errorf("connected page still shows #connect (%v) or the reconnect banner (%v)", p.visible(selConnect), p.visible(selBanner))
	}
	if got := s.stats(); got.CodesIssued != 1 || got.AuthorizationCode != 1 {
		t.Errorf("after one login: codes_issued %d, authorization_code %d; want 1 and 1", got.CodesIssued, got.AuthorizationCode)
	}

	r := p.callAPI()
	if r.Status != "200" || !strings.Contains(r.Text, "alice") {
		t.Fatalf("#call-api: %+v; want 200 with alice's profile", r)
	}
	// The same numbers through the dev provider's HTTP control API.
	got, err := s.ctl.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.APIOK != 1 || got.API401 != 0 {
		t.Errorf("/control/stats: api_ok %d, api_401 %d; want 1 and 0", got.APIOK, got.API401)
	}
	calls := net.matching("GET", s.d.DevURL+"/api/me")
	if len(calls) != 1 {
		t.Fatalf("DevTools saw %d GET /api/me; want 1:\n%s", len(calls), net.summary())
	}
	auth, _ := header(calls[0].Headers, "Authorization")
	if !strings.HasPrefix(auth, "Bearer "+devprovider.PrefixAccessToken) {
		t.Errorf("GET /api/me went with Authorization %q; want Bearer %s…", redact(auth), devprovider.PrefixAccessToken)
	}
	if ok := s.tokenRequests()["ok"]; ok < 1 || ok > 2 {
		t.Errorf("%d successful POST /bff/token for one login and one call; want 1 (2 at most)", ok)
	}
}

// TestSteadyState: across several access-token lifetimes, with the page
// calling the API every 2 s (#auto-call) and a loop calling tether.fetch
// every 250 ms, every call succeeds, no API ever sees an expired token,
// and every POST /bff/token brings a new token: one request per refresh,
// one refresh per refresh interval. The BFF refreshes a token once it is
// inside its buffer, which is capped at half the token's life, so a token
// is replaced every ttl/2 (plus the client's lag and jitter), not every ttl.
func TestSteadyState(t *testing.T) {
	const (
		ttl       = 4 * time.Second
		lifetimes = 4
		interval  = ttl / 2 // the BFF's refresh buffer for this token: half its life
	)
	s := startStack(t, stackOptions{accessTTL: ttl, autoApprove: true})
	tab := newTab(t)
	net := recordNetwork(t, tab, false)
	p := openPage(t, tab, s)
	p.login(false)
	p.waitFor(`window.tether.state().connected`, stepTimeout, "a first token")

	st0, tok0, bff0 := s.stats(), s.tokenTotal(), net.count("POST", s.d.URL+"/bff/token")
	evalJS[bool](p, `(() => {
		window.__e2eStatuses = [];
		window.__e2eLoop = setInterval(() => {
			window.tether.fetch(`+strconv.Quote(s.d.DevURL+"/api/me")+`)
				.then((r) => __e2eStatuses.push(r.status), (e) => __e2eStatuses.push(e.name));
		}, 250);
		return true;
	})()`)
	p.click(selAutoCall)
	time.Sleep(lifetimes * ttl)
	p.click(selAutoCall)
	statuses := evalJS[[]any](p, `(() => { clearInterval(window.__e2eLoop); return window.__e2eStatuses; })()`)
	time.Sleep(500 * time.Millisecond) // let the last calls land
	// A refresh falls due about every 2.4 s, so one may be in flight now:
	// DevTools sees it when it is sent, the BFF counts it just before it
	// answers. Take the end counts while no POST /bff/token is in flight.
	var (
		st1        devprovider.Stats
		tok1, bff1 int
	)
	for deadline := time.Now().Add(5 * time.Second); ; {
		sent, quiet := 0, true
		for _, r := range net.matching("POST", s.d.URL+"/bff/token") {
			sent++
			quiet = quiet && r.Finished
		}
		st1, tok1, bff1 = s.stats(), s.tokenTotal(), net.count("POST", s.d.URL+"/bff/token")
		if quiet && bff1 == sent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a POST /bff/token is still in flight 5 s after the calls stopped:\n%s", net.summary())
		}
		time.Sleep(50 * time.Millisecond)
	}

	bad := 0
	for _, v := range statuses {
		if v != float64(200) {
			bad++
		}
	}
	if len(statuses) < 40 || bad > 0 {
		t.Errorf("tether.fetch loop: %d calls, %d not 200 (%v); want ≥ 40, all 200", len(statuses), bad, statuses)
	}
	errs := 0
	for _, k := range p.read().Events {
		if k == "api-error" {
			errs++
		}
	}
	if errs > 0 {
		t.Errorf("the page logged %d api-error events", errs)
	}
	if n := st1.API401 - st0.API401; n != 0 {
		t.Errorf("the API answered 401 %d times; want 0", n)
	}
	if n := st1.APIOK - st0.APIOK; n < int64(len(statuses)) {
		t.Errorf("api_ok grew by %d for %d loop calls and the page's; want more", n, len(statuses))
	}
	tokens, refreshes := int64(tok1-tok0), st1.RefreshToken-st0.RefreshToken
	t.Logf("%d lifetimes of %v: %d POST /bff/token (DevTools %d), %d refreshes, %d API calls",
		lifetimes, ttl, tokens, bff1-bff0, refreshes, st1.APIOK-st0.APIOK)
	if tokens > refreshes+1 {
		t.Errorf("%d POST /bff/token for %d refreshes; want one request per new token (at most one spare)", tokens, refreshes)
	}
	if int64(bff1-bff0) != tokens {
		t.Errorf("DevTools saw %d POST /bff/token, the BFF counted %d", bff1-bff0, tokens)
	}
	if most := int64(lifetimes*ttl/interval) + 1; refreshes < lifetimes || refreshes > most {
		t.Errorf("%d refreshes in %d lifetimes of %v; want from %d (each token replaced before it expires) to %d (one per %v refresh interval)",
			refreshes, lifetimes, ttl, lifetimes, most, interval)
	}
	if bars := evalJS[int](p, `document.querySelectorAll("#timeline .token-bar").length`); bars < lifetimes {
		t.Errorf("the timeline shows %d token bars after %d lifetimes; want at least %d", bars, lifetimes, lifetimes)
	}
}

// TestExpiredTokenRetriedOnce: the provider expires the access token
// early; the next call meets one 401, the client refreshes once and
// retries once, and the call succeeds.
func TestExpiredTokenRetriedOnce(t *testing.T) {
	s := startStack(t, stackOptions{autoApprove: true})
	tab := newTab(t)
	net := recordNetwork(t, tab, false)
	p := openPage(t, tab, s)
	p.login(false)
	if r := p.callAPI(); r.Status != "200" {
		t.Fatalf("first call: %+v", r)
	}
	st0, tok0 := s.stats(), s.tokenTotal()
	me0, bff0 := net.count("GET", s.d.DevURL+"/api/me"), net.count("POST", s.d.URL+"/bff/token")

	if _, err := s.ctl.Expire(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	r := p.callAPI()
	if r.Status != "200" || !strings.Contains(r.Text, "alice") {
		t.Fatalf("call after /control/expire: %+v; want 200 after one retry", r)
	}
	st1 := s.stats()
	if d := st1.API401 - st0.API401; d != 1 {
		t.Errorf("api_401 grew by %d; want exactly 1", d)
	}
	if d := st1.APIOK - st0.APIOK; d != 1 {
		t.Errorf("api_ok grew by %d; want exactly 1 (the retry)", d)
	}
	if d := st1.RefreshToken - st0.RefreshToken; d != 1 {
		t.Errorf("refresh_token grew by %d; want exactly 1", d)
	}
	if d := s.tokenTotal() - tok0; d != 1 {
		t.Errorf("POST /bff/token grew by %d; want exactly 1 (the forced request)", d)
	}
	if me, bff := net.count("GET", s.d.DevURL+"/api/me")-me0, net.count("POST", s.d.URL+"/bff/token")-bff0; me != 2 || bff != 1 {
		t.Errorf("DevTools: %d GET /api/me and %d POST /bff/token; want 2 (401, retry) and 1:\n%s", me, bff, net.summary())
	}
	calls := net.matching("GET", s.d.DevURL+"/api/me")
	if n := len(calls); n >= 2 {
		refused, _ := header(calls[n-2].Headers, "Authorization")
		retried, _ := header(calls[n-1].Headers, "Authorization")
		if refused == "" || refused == retried {
			t.Errorf("the retry went with the refused token (%q, then %q); want a new one", redact(refused), redact(retried))
		}
	}
	p.waitFor(`document.querySelectorAll("#timeline .mark[data-kind=retry]").length >= 1`, 5*time.Second, "a retry mark on the timeline")
	if st := p.read(); st.Banner || st.Degraded || st.Status != "connected" {
		t.Errorf("after a recovered 401 the page shows %+v; want connected, no banner, no notice", st)
	}
}

// redact shortens a token for a message.
func redact(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
