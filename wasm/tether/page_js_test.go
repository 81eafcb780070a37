//go:build js && wasm

package tether

import (
	"syscall/js"
	"testing"
)

// Under Node (GOOS=js GOARCH=wasm go test -exec=go_js_wasm_exec): a BFF
// base that is a path resolves against the page's location.
func TestBFFPathResolvesAgainstThePage(t *testing.T) {
	old := js.Global().Get("location")
	t.Cleanup(func() { js.Global().Set("location", old) })
	js.Global().Set("location", map[string]any{"href": "http://127.0.0.1:8080/app/page?x=1#top"})
	for in, want := range map[string]string{
		"":                        "http://127.0.0.1:8080/bff",
		"/auth/":                  "http://127.0.0.1:8080/auth",
		"https://app.example/bff": "https://app.example/bff",
	} {
		got, err := resolveBFF(in)
		if err != nil || got != want {
			t.Errorf("resolveBFF(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
