//go:build js && wasm

package main

import (
	"syscall/js"

	"github.com/tetherauth/tether/shared/wire"
	"github.com/tetherauth/tether/wasm/client"
)

// source asks the BFF for tokens with the page's fetch.
type source struct{ b *bridge }

// RequestToken posts to /bff/token; with force, the body is
// {"force":true,"rejected":"..."}, built by JSON.stringify.
func (s source) RequestToken(force bool, rejected string) (_ wire.TokenResponse, err error) {
	defer catch(&err)
	init := jsObject.New()
	init.Set("method", "POST")
	init.Set("credentials", s.b.credentials)
	init.Set("cache", "no-store")
	if timeout := global.Get("AbortSignal").Get("timeout"); timeout.Type() == js.TypeFunction {
		init.Set("signal", timeout.Call("call", global.Get("AbortSignal"), requestTimeout))
	}
	headers := jsObject.New()
	headers.Set(wire.HeaderCSRF, wire.CSRFValue)
	if force {
		body := jsObject.New()
		body.Set(client.FieldForce, true)
		body.Set(client.FieldRejected, rejected)
		init.Set("body", global.Get("JSON").Call("stringify", body))
		headers.Set("Content-Type", "application/json")
	}
	init.Set("headers", headers)
	resp, err := await(s.b.fetch.Invoke(s.b.bff+"/token", init))
	if err != nil {
		return wire.TokenResponse{}, err
	}
	status := resp.Get("status").Int()
	parsed, jsonErr := await(resp.Call("json"))
	if status == 200 {
		if jsonErr != nil {
			return wire.TokenResponse{}, jsonErr
		}
		return client.DecodeToken(object{parsed})
	}
	re := &client.ResponseError{Status: status}
	if h := resp.Get("headers").Call("get", wire.HeaderRetryAfter); h.Type() == js.TypeString {
		re.RetryAfter = client.ParseRetryAfter(h.String())
	}
	if jsonErr == nil {
		re.Body = client.DecodeError(object{parsed})
	}
	return wire.TokenResponse{}, re
}

// await waits for a Promise (or a plain value) on the calling goroutine,
// which must not be the one running a js.FuncOf callback.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	onOK := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{v: arg(args, 0)}
		return nil
	})
	onErr := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{err: rejection("wasm: " + global.Call("String", arg(args, 0)).String())}
		return nil
	})
	defer onOK.Release()
	defer onErr.Release()
	jsPromise.Call("resolve", p).Call("then", onOK, onErr)
	r := <-ch
	return r.v, r.err
}

// rejection is a rejected Promise's value as text. (The errors package
// would add 2 KB to the gzipped binary.)
type rejection string

func (r rejection) Error() string { return string(r) }

// object reads a JSON.parse result for client.DecodeToken.
type object struct{ v js.Value }

func (o object) get(name string) js.Value {
	if o.v.Type() != js.TypeObject {
		return js.Undefined()
	}
	return o.v.Get(name)
}

func (o object) String(name string) (string, bool) {
	if v := o.get(name); v.Type() == js.TypeString {
		return v.String(), true
	}
	return "", false
}

func (o object) Number(name string) (float64, bool) {
	if v := o.get(name); v.Type() == js.TypeNumber {
		return v.Float(), true
	}
	return 0, false
}

func (o object) Bool(name string) (bool, bool) {
	if v := o.get(name); v.Type() == js.TypeBoolean {
		return v.Bool(), true
	}
	return false, false
}

var _ client.Object = object{}
