package bff

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tetherauth/tether/shared/wire"
)

const (
	extID    = "abcdefghijklmnopabcdefghijklmnop"
	extChrom = "chrome-extension://" + extID
	extMoz   = "moz-extension://0b1e5b8a-6b0e-4d56-9a1e-3f0c2d8e7a61"
)

// TestExtensionOriginsFromEnv: TETHER_EXTENSION_ORIGINS takes exact
// extension origins, space- or comma-separated, and refuses anything else
// at start, naming the variable and the expected form.
func TestExtensionOriginsFromEnv(t *testing.T) {
	c, err := FromEnv(minimalEnv.with("TETHER_EXTENSION_ORIGINS", extChrom+", "+extMoz).get)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ExtensionOrigins) != 2 || c.ExtensionOrigins[0] != extChrom || c.ExtensionOrigins[1] != extMoz {
		t.Errorf("ExtensionOrigins = %q", c.ExtensionOrigins)
	}
	bad := map[string]string{
		"a trailing slash":          extChrom + "/",
		"a path":                    extChrom + "/popup.html",
		"a port":                    extChrom + ":443",
		"user info":                 "chrome-extension://me@" + extID,
		"upper case id":             "chrome-extension://" + strings.ToUpper(extID),
		"upper case scheme":         "Chrome-Extension://" + extID,
		"a short id":                "chrome-extension://abcdefghijklmnop",
		"letters past p":            "chrome-extension://abcdefghijklmnopabcdefghijklmnoz",
		"a web origin":              "https://" + extID + ".chromiumapp.org",
		"another scheme":            "safari-web-extension://" + extID,
		"a bare id":                 extID,
		"a wildcard":                "chrome-extension://*",
		"moz upper case":            strings.ToUpper(extMoz),
		"moz no dashes":             "moz-extension://0b1e5b8a6b0e4d569a1e3f0c2d8e7a61",
		"moz gecko id, not uuid":    "moz-extension://tether@example.com",
		"a query":                   extChrom + "?x",
		"a control character in it": extChrom[:30] + "\t" + extChrom[30:],
	}
	for name, v := range bad {
		_, err := FromEnv(minimalEnv.with("TETHER_EXTENSION_ORIGINS", v).get)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != "TETHER_EXTENSION_ORIGINS" {
			t.Errorf("%s (%q): err = %v; want a ConfigError for TETHER_EXTENSION_ORIGINS", name, v, err)
			continue
		}
		if !strings.Contains(err.Error(), "extension origin") {
			t.Errorf("%s: %v does not say what is expected", name, err)
		}
	}
}

// TestCleanExtensionReturnTo: a listed extension origin followed by a
// plain path, and nothing else.
func TestCleanExtensionReturnTo(t *testing.T) {
	origins := []string{extChrom, extMoz}
	good := []string{
		extChrom + "/signed-in.html",
		extChrom + "/",
		extChrom + "/pages/done.html",
		extChrom + "/a%20b.html",
		extMoz + "/signed-in.html",
		extChrom + "/" + strings.Repeat("a", maxReturnTo-len(extChrom)-1),
	}
	for _, s := range good {
		if got, ok := cleanExtensionReturnTo(s, origins); !ok || got != s {
			t.Errorf("cleanExtensionReturnTo(%q) = %q, %v; want it kept", s, got, ok)
		}
	}
	other := "chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba"
	bad := []string{
		"",
		extChrom,                  // no path
		other + "/signed-in.html", // not listed
		"chrome-extension://" + strings.ToUpper(extID) + "/x.html",
		"Chrome-Extension://" + extID + "/x.html",
		"CHROME-EXTENSION://" + extID + "/x.html",
		extChrom + ":443/x.html",                                        // a port
		"chrome-extension://evil@" + extID + "/x.html",                  // user info
		"chrome-extension://" + extID + "@evil.example/x",               // the id as user info
		"chrome-extension://" + extID + ".evil.example/x",               // the id as a subdomain
		"chrome-extension://" + extID + "x/x.html",                      // a longer id
		"https://" + extID + "/x.html",                                  // another scheme
		"http://" + extID + ".chromiumapp.org/x",                        // launchWebAuthFlow's
		"moz-extension://" + extID + "/x.html",                          // the id under the other scheme
		"javascript://" + extID + "/%0aalert(1)",                        // a script URL
		extChrom + "/x.html?next=https://evil.example",                  // a query
		extChrom + "/x.html?",                                           // an empty query
		extChrom + "/x.html#https://evil.example",                       // a fragment
		extChrom + "//evil.example/x",                                   // a network path after it
		extChrom + "/\\evil.example",                                    // a backslash
		extChrom + "/../../x",                                           // dot segments
		extChrom + "/a/%2e%2e/x",                                        // encoded dot segments
		extChrom + "/a/.%2E/x",                                          // half-encoded
		extChrom + "/./x",                                               // a dot segment
		extChrom + "/x\x00.html",                                        // a NUL
		extChrom + "/x\r\nLocation: https://evil.example/",              // header injection
		extChrom + "/x html",                                            // a space
		extChrom + "/x<script>",                                         // markup
		extChrom + "/x%zz",                                              // a broken escape
		extChrom + "/x%2",                                               // a short escape
		extChrom + "/é.html",                                            // non-ASCII
		" " + extChrom + "/x.html",                                      // leading space
		extChrom + "/" + strings.Repeat("a", maxReturnTo-len(extChrom)), // 513 bytes
		"//" + extID + "/x.html",
		"/" + extChrom + "/x.html",
	}
	for _, s := range bad {
		if got, ok := cleanExtensionReturnTo(s, origins); ok {
			t.Errorf("cleanExtensionReturnTo(%q) = %q; want it refused", s, got)
		}
	}
	if _, ok := cleanExtensionReturnTo(extChrom+"/x.html", nil); ok {
		t.Error("with no extension origins configured, an extension return_to was accepted")
	}
}

// FuzzExtensionReturnTo: whatever return_to says, an accepted one is a
// listed origin and a path, and a URL parser agrees.
func FuzzExtensionReturnTo(f *testing.F) {
	for _, s := range []string{extChrom + "/x.html", extChrom + "//evil", extChrom + "@evil/", extChrom + ":1/x", extChrom + "/x?y", extMoz + "/a/../b"} {
		f.Add(s)
	}
	origins := []string{extChrom, extMoz}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := cleanExtensionReturnTo(s, origins)
		if !ok {
			return
		}
		u, err := url.Parse(got)
		if err != nil || (u.Scheme+"://"+u.Host != extChrom && u.Scheme+"://"+u.Host != extMoz) || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || !strings.HasPrefix(u.Path, "/") || strings.Contains(u.Path, "//") {
			t.Fatalf("cleanExtensionReturnTo(%q) accepted %q", s, got)
		}
	})
}

// TestLoginReturnsToExtension: with TETHER_EXTENSION_ORIGINS, the whole
// flow ends with a redirect to the extension's page (the session cookie is
// set on the BFF, HttpOnly), and a non-listed extension is 400
// invalid_return_to at /bff/login; without it, every extension is.
func TestLoginReturnsToExtension(t *testing.T) {
	s := newStack(t, stackOptions{tune: func(c *Config) { c.ExtensionOrigins = []string{extChrom} }})
	b := s.newBrowser()
	target := extChrom + "/signed-in.html"
	var final *url.URL
	b.c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if r.URL.Scheme == "chrome-extension" {
			final = r.URL
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := b.c.Get(s.urls[0] + wire.PathLogin + "?return_to=" + url.QueryEscape(target))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || final == nil || final.String() != target || resp.Header.Get("Location") != target {
		t.Fatalf("login: %d, Location %q; want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), target)
	}
	var session bool
	for _, c := range resp.Cookies() {
		if c.Value != "" && c.MaxAge >= 0 && !strings.HasPrefix(c.Name, "tether_login") {
			session = true
			if !c.HttpOnly {
				t.Errorf("cookie %s is not HttpOnly", c.Name)
			}
		}
	}
	if !session {
		t.Errorf("the callback set no session cookie: %v", resp.Header["Set-Cookie"])
	}
	if tok := b.mustToken(s.urls[0], nil); tok.AccessToken == "" {
		t.Error("no token after signing in for the extension")
	}
	s.assertNoSecrets(b)

	for _, rt := range []string{
		"chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba/signed-in.html",
		extChrom + "/signed-in.html?x=https://evil.example",
		extChrom + "@evil.example/",
		"https://evil.example/",
	} {
		w := httptest.NewRecorder()
		s.bffs[0].ServeHTTP(w, httptest.NewRequest(http.MethodGet, wire.PathLogin+"?return_to="+url.QueryEscape(rt), nil))
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"invalid_return_to"`) {
			t.Errorf("return_to %q: %d %s; want 400 invalid_return_to", rt, w.Code, w.Body)
		}
	}

	plain := newStack(t, stackOptions{})
	w := httptest.NewRecorder()
	plain.bffs[0].ServeHTTP(w, httptest.NewRequest(http.MethodGet, wire.PathLogin+"?return_to="+url.QueryEscape(target), nil))
	if w.Code != http.StatusBadRequest {
		t.Errorf("without TETHER_EXTENSION_ORIGINS, return_to %q: %d; want 400", target, w.Code)
	}
}

// TestExtensionErrorPageRetry: when the provider refuses a login that
// started in an extension's tab, the error page's "Try again" starts a
// login that returns to the same extension page, not to "/".
func TestExtensionErrorPageRetry(t *testing.T) {
	s := newStack(t, stackOptions{tune: func(c *Config) { c.ExtensionOrigins = []string{extChrom} }})
	b := s.newBrowser()
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	target := extChrom + "/signed-in.html"
	resp, err := b.c.Get(s.urls[0] + wire.PathLogin + "?return_to=" + url.QueryEscape(target))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || loc.Query().Get("state") == "" {
		t.Fatalf("login: %d, Location %q; want 302 to the provider with a state", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = b.c.Get(s.urls[0] + wire.PathCallback + "?error=access_denied&state=" + url.QueryEscape(loc.Query().Get("state")))
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, resp)
	want := `href="` + wire.PathLogin + `?return_to=` + url.QueryEscape(target) + `"`
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, want) {
		t.Errorf("callback with error: %d\n%s\nwant a link %s", resp.StatusCode, page, want)
	}
}
