//go:build js && wasm

package tether

import "syscall/js"

// pageURL is the page's URL, against which a relative BFF base resolves.
func pageURL() string {
	loc := js.Global().Get("location")
	if loc.Type() != js.TypeObject {
		return ""
	}
	return loc.Get("href").String()
}
