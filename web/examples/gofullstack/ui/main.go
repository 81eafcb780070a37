//go:build js && wasm

// Command ui is the example's user interface, written in Go and compiled
// to WebAssembly: it starts wasm/tether and calls the API with
// &http.Client{Transport: t}, which attaches the user's token, refreshes
// it, retries once after a 401, and ends in a reconnect prompt when the
// grant is revoked. The page (app.uiTmpl) gives it the BFF's base path and
// the API in data attributes.
package main

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"syscall/js"
	"time"

	"github.com/tetherauth/tether/wasm/tether"
)

var doc = js.Global().Get("document")

func byID(id string) js.Value { return doc.Call("getElementById", id) }

func main() {
	data := doc.Get("body").Get("dataset")
	api := data.Get("api").String()
	t, err := tether.Start(tether.Options{
		BFF:        data.Get("bff").String(),
		APIOrigins: []string{data.Get("apiOrigin").String()},
		OnEvent:    onEvent,
	})
	if err != nil {
		byID("state").Set("textContent", "could not start: "+err.Error())
		return
	}
	byID("reconnect").Set("href", t.LoginURL("/ui"))
	client := &http.Client{Transport: t, Timeout: 30 * time.Second}
	call := byID("call")
	call.Call("addEventListener", "click", js.FuncOf(func(js.Value, []js.Value) any {
		go callAPI(client, api) // a js.FuncOf callback must not block
		return nil
	}))
	call.Set("disabled", false)
	doc.Get("body").Get("dataset").Set("ready", "1")
	select {}
}

// callAPI calls the API once and shows the outcome.
func callAPI(client *http.Client, api string) {
	status, result := byID("call-status"), byID("call-result")
	status.Set("textContent", "…")
	resp, err := client.Get(api)
	if err != nil {
		name := "error"
		switch {
		case errors.Is(err, tether.ErrReconnect):
			name = "reconnect required"
			showReconnect("")
		case errors.Is(err, tether.ErrUnavailable):
			name = "unavailable"
		}
		status.Get("dataset").Set("status", name)
		status.Set("textContent", name)
		result.Set("textContent", err.Error())
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	status.Get("dataset").Set("status", strconv.Itoa(resp.StatusCode))
	status.Set("textContent", resp.Status)
	result.Set("textContent", string(body))
}

// onEvent shows the client's events: the state line, the reconnect
// prompt, and a list.
func onEvent(e tether.Event) {
	li := doc.Call("createElement", "li")
	text := e.Kind
	if e.Reason != "" {
		text += " (" + e.Reason + ")"
	}
	li.Set("textContent", text)
	li.Get("dataset").Set("kind", e.Kind)
	byID("events").Call("append", li)
	state := byID("state")
	switch e.Kind {
	case tether.EventToken, tether.EventRecovered:
		state.Set("textContent", "connected")
	case tether.EventDegraded:
		state.Set("textContent", "the sign-in provider is unavailable; retrying")
	case tether.EventReconnect:
		showReconnect(e.Reason)
	}
}

func showReconnect(reason string) {
	if reason != "" {
		byID("reconnect-reason").Set("textContent", reason)
	}
	byID("state").Set("textContent", "signed out")
	byID("reconnect-banner").Set("hidden", false)
}
