package bff

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tetherauth/tether/shared/wire"
)

// FuzzReturnTo: whatever return_to says, the login either refuses it or
// redirects to a path on this origin.
func FuzzReturnTo(f *testing.F) {
	for _, s := range []string{"/", "/app?x=1", "//evil", "/\\evil", "https://evil", "/%2F%2Fevil", "/\x00", "javascript:x", "/a/../..//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := cleanReturnTo(s)
		if !ok {
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\r\n\t") {
			t.Fatalf("cleanReturnTo(%q) accepted %q", s, got)
		}
		// What a browser would resolve it to must stay on this origin.
		base, _ := url.Parse("https://app.example/")
		if r := base.ResolveReference(u); r.Host != "app.example" {
			t.Fatalf("cleanReturnTo(%q) = %q resolves to host %q", s, got, r.Host)
		}
	})
}

// FuzzTokenBody: any body to POST /bff/token is either understood or a
// clear 400, and never a panic.
func FuzzTokenBody(f *testing.F) {
	for _, s := range []string{"", "{}", `{"force":true,"rejected":"x"}`, `{"force":true}`, "[", "null", `{"force":"1"}`, `{"rejected":123}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, wire.PathToken, strings.NewReader(string(body)))
		req, err := readTokenRequest(r)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if req.Force && req.Rejected == "" {
			t.Fatalf("accepted force without rejected: %q", body)
		}
	})
}

// FuzzCallbackQuery: any callback query without the browser's state is
// refused with invalid_state or a readable page, creates no session, and
// never answers 5xx.
func FuzzCallbackQuery(f *testing.F) {
	for _, s := range []string{"", "code=x&state=y", "error=access_denied", "state=&code=", "code=%zz", "state=a&state=b&code=c", "error=%3Cscript%3E&error_description=" + strings.Repeat("x", 500)} {
		f.Add(s)
	}
	s := newStack(f, stackOptions{tune: func(c *Config) { c.Logger = discardLogger() }})
	h := s.bffs[0]
	f.Fuzz(func(t *testing.T, query string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path, r.URL.RawQuery = wire.PathCallback, query
		h.ServeHTTP(w, r)
		if w.Code >= 500 || (w.Code != 400 && w.Code != 302) {
			t.Fatalf("callback?%q = %d", query, w.Code)
		}
		if w.Code == 302 {
			t.Fatalf("callback?%q logged someone in without a login", query)
		}
		if c := w.Header().Get("Set-Cookie"); strings.Contains(c, "Max-Age") && !strings.Contains(c, "Max-Age=0") && w.Code != 302 {
			// A refused callback must not mint a session cookie.
			t.Fatalf("callback?%q set a cookie %q", query, c)
		}
	})
}

// FuzzSessionCookie: whatever the session cookie holds, /bff/token
// answers 401 no_session (or, for the real cookie, 200) and never panics
// or deletes the real session.
func FuzzSessionCookie(f *testing.F) {
	s := newStack(f, stackOptions{tune: func(c *Config) { c.Logger = discardLogger() }})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	sid := s.sid(b)
	var real string
	for _, c := range b.c.Jar.Cookies(mustURL(s.urls[0])) {
		real = c.Value
	}
	name := s.bffs[0].cookieName
	f.Add(real)
	f.Add(real[:len(real)/2])
	f.Add("")
	f.Add("MTcwMDAwMDAwMHxkZWFkYmVlZnw=")
	h := s.bffs[0]
	f.Fuzz(func(t *testing.T, value string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, wire.PathToken, nil)
		r.Header.Set(wire.HeaderCSRF, "1")
		r.Header.Set("Cookie", name+"="+value)
		h.ServeHTTP(w, r)
		switch {
		case value == real && w.Code == 200:
		case w.Code == 401 && strings.Contains(w.Body.String(), wire.ReasonNoSession):
		default:
			t.Fatalf("cookie %q: %d %s", value, w.Code, w.Body.String())
		}
		if _, err := s.bffs[0].vault.Get(t.Context(), sid); err != nil {
			t.Fatalf("the real session is gone: %v", err)
		}
	})
}
