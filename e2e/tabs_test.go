package e2e

import (
	"strconv"
	"testing"
	"time"
)

// TestTwoTabsShareOneRefresh: two tabs of one browser (one session cookie)
// take turns asking the BFF (Web Locks) and tell each other that a refresh
// starts and ends (BroadcastChannel, never the token): when the token
// reaches its refresh point, one refresh serves both tabs, and the other
// tab asks the BFF for the new token (a read from the vault).
func TestTwoTabsShareOneRefresh(t *testing.T) {
	const ttl = 6 * time.Second
	s := startStack(t, stackOptions{accessTTL: ttl, autoApprove: true})
	tab1 := newTab(t)
	p1 := openPage(t, tab1, s)
	p1.login(false)
	p1.waitFor(`window.tether.state().connected`, stepTimeout, "tab 1's first token")
	p2 := openPage(t, siblingTab(t, tab1), s)
	p2.waitFor(`document.querySelector("#status").dataset.state === "connected"`, stepTimeout, "tab 2 connected with the same cookie")
	p2.waitFor(`window.tether.state().connected`, stepTimeout, "tab 2's first token")

	// Both tabs hold the same token; from here on, watch one refresh.
	expiry := func(p *page) int64 { return evalJS[int64](p, `window.tether.state().expiresAt`) }
	e1, e2 := expiry(p1), expiry(p2)
	for deadline := time.Now().Add(ttl); e1 != e2 && time.Now().Before(deadline); e1, e2 = expiry(p1), expiry(p2) {
		time.Sleep(100 * time.Millisecond) // a refresh happened while tab 2 was loading
	}
	if e1 != e2 || e1 == 0 {
		t.Fatalf("tabs hold tokens expiring at %d and %d; want the same one", e1, e2)
	}
	st0, tok0 := s.stats(), s.tokenTotal()
	waitNew := func(p *page, name string) {
		p.waitFor(`window.tether.state().expiresAt > `+strconv.FormatInt(e1, 10), ttl+5*time.Second, name+" to hold a new token")
	}
	waitNew(p1, "tab 1")
	waitNew(p2, "tab 2")
	st1, tok1 := s.stats(), s.tokenTotal()
	if e1, e2 := expiry(p1), expiry(p2); e1 != e2 {
		t.Errorf("after the refresh the tabs hold tokens expiring at %d and %d; want the same one", e1, e2)
	}
	for i, p := range []*page{p1, p2} {
		if r := p.callAPI(); r.Status != "200" {
			t.Errorf("tab %d after the refresh: %+v; want 200", i+1, r)
		}
	}
	t.Logf("one refresh point, two tabs: %d POST /bff/token, %d refreshes", tok1-tok0, st1.RefreshToken-st0.RefreshToken)
	if d := st1.RefreshToken - st0.RefreshToken; d != 1 {
		t.Errorf("refresh_token grew by %d; want exactly 1 for both tabs", d)
	}
	if d := tok1 - tok0; d != 2 {
		t.Errorf("POST /bff/token grew by %d; want 2 (the refresh, and the other tab's read of its token)", d)
	}
	if n := s.stats().API401; n != 0 {
		t.Errorf("api_401 = %d; want 0", n)
	}
}
