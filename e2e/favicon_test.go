package e2e

import (
	"io"
	"net/http"
	"testing"
)

// TestFavicon: the page names its icon and the web directory serves it, and
// /favicon.ico too (asked for by browsers on pages without a link), so a
// load logs no 404.
func TestFavicon(t *testing.T) {
	s := startStack(t, stackOptions{})
	for path, ctype := range map[string]string{"/favicon.ico": "image/x-icon", "/favicon.svg": "image/svg+xml"} {
		res, err := http.Get(s.d.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != ctype || len(body) < 100 {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %s", path, res.StatusCode, res.Header.Get("Content-Type"), len(body), ctype)
		}
	}
	tab := newTab(t)
	p := openPage(t, tab, s)
	if href := evalJS[string](p, `(document.querySelector("link[rel=icon]") || {}).href || ""`); href != s.d.URL+"/favicon.svg" {
		t.Errorf("the page's icon link is %q; want %s/favicon.svg", href, s.d.URL)
	}
}
