package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
)

// TestRevocationNeedsReconnect: the grant is revoked at the provider. The
// next call meets a 401, the one forced refresh is refused, and the page
// asks the user to reconnect; further clicks make no request at all until
// the user does, and then calls work again.
func TestRevocationNeedsReconnect(t *testing.T) {
	s := startStack(t, stackOptions{})
	tab := newTab(t)
	net := recordNetwork(t, tab, false)
	p := openPage(t, tab, s)
	p.login(true)
	if r := p.callAPI(); r.Status != "200" {
		t.Fatalf("first call: %+v", r)
	}
	st0 := s.stats()

	if _, err := s.ctl.Revoke(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if r := p.callAPI(); r.Status != "401" {
		t.Errorf("call after the revocation: %+v; want the API's 401 (no retry without a new token)", r)
	}
	p.waitFor(`document.querySelector("#status").dataset.state === "reconnect"`, 10*time.Second, "#status data-state=reconnect")
	p.waitFor(`!document.querySelector("#reconnect-banner").hidden`, 5*time.Second, "the reconnect banner")
	st := p.read()
	if !st.Banner || !strings.Contains(strings.ToLower(st.BannerText), "disconnected") {
		t.Errorf("reconnect banner visible %v, text %q; want it visible, saying disconnected", st.Banner, st.BannerText)
	}
	if st.Degraded {
		t.Error("a revocation shows the degraded notice; it is not an outage")
	}
	st1 := s.stats()
	if d := st1.RefreshToken - st0.RefreshToken; d != 1 {
		t.Errorf("refresh_token grew by %d after the revocation; want exactly 1 (refused)", d)
	}
	if d := st1.API401 - st0.API401; d != 1 {
		t.Errorf("api_401 grew by %d; want exactly 1", d)
	}

	// No loop: five more clicks fail at once, without a request.
	api0, tok0, bff0 := s.apiCalls(), s.tokenTotal(), net.count("POST", s.d.URL+"/bff/token")
	me0 := net.count("GET", s.d.DevURL+"/api/me")
	for i := range 5 {
		if r := p.callAPI(); r.Status != "error" || r.Error != "TetherReconnectRequired" {
			t.Errorf("click %d after the revocation: %+v; want error TetherReconnectRequired", i+1, r)
		}
	}
	time.Sleep(3 * time.Second)
	if d := s.apiCalls() - api0; d != 0 {
		t.Errorf("the API got %d more requests while a reconnect was required; want 0", d)
	}
	if d := s.tokenTotal() - tok0; d != 0 {
		t.Errorf("the BFF got %d more POST /bff/token while a reconnect was required; want 0", d)
	}
	if me, bff := net.count("GET", s.d.DevURL+"/api/me")-me0, net.count("POST", s.d.URL+"/bff/token")-bff0; me != 0 || bff != 0 {
		t.Errorf("DevTools saw %d GET /api/me and %d POST /bff/token while a reconnect was required; want none", me, bff)
	}
	if n := evalJS[int](p, `(window.demoEvents || []).filter((e) => e.kind === "reconnect").length`); n != 1 {
		t.Errorf("%d reconnect events; want exactly 1", n)
	}
	if n := p.marks("reconnect"); n == 0 {
		t.Error("no reconnect mark on the timeline")
	}

	// Reconnecting signs in again (consent page) and calls work.
	p.loginWith(selReconnect, true)
	if p.visible(selBanner) {
		t.Error("the reconnect banner is still shown after reconnecting")
	}
	if r := p.callAPI(); r.Status != "200" || !strings.Contains(r.Text, "alice") {
		t.Fatalf("call after reconnecting: %+v; want 200", r)
	}
	if got := s.stats(); got.AuthorizationCode != 2 {
		t.Errorf("authorization_code %d; want 2 (the login and the reconnect)", got.AuthorizationCode)
	}
}

// TestOutageIsNotRevocation: the provider's token endpoint fails (503, then
// hangs) while the access token is still valid: calls keep working. Once
// the token has expired the page says it is degraded, never that a
// reconnect is needed; when the outage ends it recovers by itself.
func TestOutageIsNotRevocation(t *testing.T) {
	const ttl = 6 * time.Second
	s := startStack(t, stackOptions{accessTTL: ttl, autoApprove: true, providerTimeout: time.Second, retryAfter: time.Second})
	tab := newTab(t)
	p := openPage(t, tab, s)
	before := time.Now() // the token is issued after this...
	p.login(false)
	p.waitFor(`window.tether.state().connected`, stepTimeout, "a first token")
	after := time.Now() // ...and before this
	answers0 := s.tokenRequests()
	if r := p.callAPI(); r.Status != "200" {
		t.Fatalf("first call: %+v", r)
	}
	setOutage := func(mode devprovider.OutageMode) {
		t.Helper()
		if _, err := s.d.Dev.SetOutage(mode, 0, 0); err != nil {
			t.Fatal(err)
		}
	}

	// While the token is valid, the outage costs nothing. (The client stops
	// using a token a little before its expiry, and the BFF rounds
	// expires_in down: stay 2 s clear of it.)
	setOutage(devprovider.Outage503)
	calls, timeoutHits := 0, int64(-1)
	for time.Since(before) < ttl-2*time.Second {
		if time.Since(before) > ttl/3 && timeoutHits < 0 {
			setOutage(devprovider.OutageTimeout)
			timeoutHits = s.stats().OutageHits
		}
		if r := p.callAPI(); r.Status != "200" {
			t.Fatalf("call %d during the outage, at most %v after the token was issued: %+v; want 200 while the token is valid",
				calls+1, time.Since(before).Round(time.Millisecond), r)
		}
		calls++
		time.Sleep(300 * time.Millisecond)
	}
	if calls < 4 || timeoutHits < 0 {
		t.Fatalf("only %d calls while the token was valid (timeout mode set: %v)", calls, timeoutHits >= 0)
	}

	// Expired: degraded, not reconnect.
	time.Sleep(time.Until(after.Add(ttl + 500*time.Millisecond)))
	p.waitFor(`(() => { const n = document.querySelector("#degraded-notice");
		return !n.hidden && n.getClientRects().length > 0; })()`, 20*time.Second, "the degraded notice")
	if r := p.callAPI(); r.Status == "200" || r.Error == "TetherReconnectRequired" {
		t.Errorf("call with an expired token during the outage: %+v; want a failure that is not a reconnect", r)
	}
	st := p.read()
	if st.Banner || st.Status == "reconnect" {
		t.Errorf("during the outage the page shows %+v; want no reconnect banner", st)
	}
	p.screenshot(t, "outage.png")
	// The BFF honours the 503's Retry-After, then calls the provider again:
	// make sure a hanging request was seen before the outage ends.
	deadline := time.Now().Add(15 * time.Second)
	for s.stats().OutageHits <= timeoutHits && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if s.stats().OutageHits <= timeoutHits {
		t.Fatal("the BFF never called the hanging token endpoint")
	}
	if st := p.read(); st.Banner || st.Status == "reconnect" {
		t.Errorf("after a provider timeout the page shows %+v; want no reconnect banner", st)
	}

	// The outage ends: the client recovers without anybody clicking.
	setOutage(devprovider.OutageNone)
	p.waitFor(`document.querySelector("#degraded-notice").hidden`, 30*time.Second, "the degraded notice to hide itself")
	p.waitFor(`window.tether.state().connected`, 5*time.Second, "a new token")
	if r := p.callAPI(); r.Status != "200" {
		t.Errorf("call after the outage: %+v; want 200", r)
	}
	st = p.read()
	if st.Banner || st.Status != "connected" {
		t.Errorf("after the outage the page shows %+v; want connected", st)
	}
	if p.marks("degraded") == 0 || p.marks("recovered") == 0 {
		t.Errorf("timeline marks: %d degraded, %d recovered; want both", p.marks("degraded"), p.marks("recovered"))
	}
	kinds := strings.Join(st.Events, " ")
	if !strings.Contains(kinds, "degraded") || !strings.Contains(kinds, "recovered") || strings.Contains(kinds, "reconnect") {
		t.Errorf("events %s; want degraded and recovered, and no reconnect", kinds)
	}
	if n := s.stats().API401; n != 0 {
		t.Errorf("the API answered 401 %d times; want 0 (an expired token is never sent)", n)
	}
	answers := s.tokenRequests()
	for _, code := range []string{"reconnect", "reconnect_required"} {
		if d := answers[code] - answers0[code]; d != 0 {
			t.Errorf("POST /bff/token answered %s %d times during the outage; want 0", code, d)
		}
	}
	if answers["degraded"]+answers["provider_unavailable"] == 0 {
		t.Errorf("POST /bff/token answers %v: none degraded or provider_unavailable", answers)
	}
}
