//go:build !(js && wasm)

package tether

// pageURL is empty outside a browser: the BFF's base must be absolute.
func pageURL() string { return "" }
