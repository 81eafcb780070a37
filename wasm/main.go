//go:build js && wasm

// Command wasm is Tether's browser client compiled to WebAssembly. It holds
// only the syscall/js bindings: the policy is in package client. It asks
// the BFF for tokens with the page's fetch and reads them with the
// browser's JSON parser, so the binary carries neither net/http nor
// encoding/json; nor time, context or fmt (see package client's doc and
// size_test.go for the budget).
//
// Its first act is to hand its bridge, one function, to the function
// that web/tether.js puts at globalThis.__tether_handshake just before
// go.run and deletes right after: go.run runs main until it blocks, so the
// handshake exists only while no other script can run, and tether.js
// defines it as its own data property, so that an accessor another script
// put there earlier is replaced, not called (or, if it cannot be replaced,
// tether.js refuses to start). The bridge is passed as an argument, never
// set as a property (a setter on Object.prototype would see it), and is
// kept only in tether.js's closure: no other script can reach it.
//
//	call(op, ...args), where op is one of
//	    "configure", bff, apiOrigins, fetch, emit, lock, announce, setToken, credentials -> undefined | Error
//	        bff: base path ("/bff"); apiOrigins: array of origins;
//	        fetch: the page's own fetch; emit(type, expiresAt, reason,
//	        retryAfterSeconds); lock(run) -> Promise, runs run() (which
//	        returns a Promise) under navigator.locks; announce(news)
//	        tells sibling tabs "refreshing", "refreshed" or "unchanged"
//	        (never a token), and may return a Promise that the refresh
//	        request waits for (the tabs' acknowledgement of "refreshing");
//	        setToken(token, untilMs) receives the
//	        client's usable token ("" for none, or while a refresh holds
//	        new calls) whenever it changes, and the Date.now() from which
//	        it must not be used without calling "token" (see
//	        client.Config.OnToken); it is called before the event of the
//	        same change, in the same task. lock, announce and setToken may
//	        be null. credentials is the fetch credentials mode of the
//	        requests to the BFF: "include" (an extension's worker, whose
//	        BFF is another origin), else "same-origin".
//	    "allowed", origin           -> boolean: is origin (URL.origin) an API origin
//	    "token"                     -> Promise<string>
//	    "recover", rejected         -> Promise<string>, after an API's 401
//	    "news", kind                a sibling tab's news (client.Client.News)
//	    "nosession"                 GET /bff/session said there is none (client.Client.NoSession)
//	    "ended", reason             the event stream said the session ended (client.Client.Ended)
//	    "prefetch", "visible", "login", "restart", "logout" -> undefined
//	    "state"                     -> [connected, expiresAt, degraded, reason]
//
// Promises reject with an Error named TetherReconnectRequired (reason),
// TetherUnavailable (reason, retryAfter in seconds) or TetherError.
//
// One call function rather than one per operation: every js.FuncOf
// closure costs binary size (size_test.go keeps the budget). There is no
// synchronous hot path into Go: a JS-to-Go call costs 20 to 60 µs, so
// tether.js keeps what setToken and "allowed" told it and calls into Go
// only when its copy runs out.
package main

import (
	"sync"
	"sync/atomic"
	"syscall/js"

	"github.com/tetherauth/tether/shared/wire"
	"github.com/tetherauth/tether/wasm/client"
)

var (
	global    = js.Global()
	jsObject  = global.Get("Object")
	jsPromise = global.Get("Promise")
	jsError   = global.Get("Error")
)

// requestTimeout bounds every request to the BFF, in milliseconds.
const requestTimeout = 30_000

// handshake is the global through which main hands over its bridge.
const handshake = "__tether_handshake"

func main() {
	hand := global.Get(handshake)
	if hand.Type() != js.TypeFunction {
		println("tether: start me with Tether.start (web/tether.js)")
		return
	}
	b := &bridge{}
	hand.Invoke(js.FuncOf(b.call)) // lives as long as the page
	select {}
}

// bridge is what JS calls.
type bridge struct {
	c           atomic.Pointer[client.Client]
	bff         string   // base path of the BFF, e.g. "/bff"
	fetch       js.Value // the page's original fetch
	credentials string   // "same-origin" or "include"
}

// call runs the operation named by its first argument.
func (b *bridge) call(_ js.Value, args []js.Value) any {
	if len(args) == 0 {
		return jsError.New("tether: call needs an operation")
	}
	op := str(args, 0)
	args = args[1:]
	if op == "configure" {
		return b.configure(args)
	}
	c := b.c.Load()
	if c == nil {
		return jsError.New("tether: not configured")
	}
	switch op {
	case "allowed":
		return c.Allowed(str(args, 0))
	case "token":
		return promise(c.Token)
	case "recover":
		rejected := str(args, 0)
		return promise(func() (string, error) { return c.Recover(rejected) })
	case "news":
		c.News(str(args, 0))
	case "nosession":
		c.NoSession()
	case "ended":
		c.Ended(str(args, 0))
	case "prefetch":
		c.Prefetch()
	case "visible":
		c.Visible()
	case "login":
		c.Reset()
	case "restart":
		c.Reset()
		c.Prefetch()
	case "logout":
		c.Logout()
	case "state":
		s := c.State()
		return []any{s.Connected, s.ExpiresAt, s.Degraded, s.Reason}
	default:
		return jsError.New("tether: no operation " + op)
	}
	return nil
}

// configure builds the client.
func (b *bridge) configure(args []js.Value) any {
	if b.c.Load() != nil {
		return jsError.New("tether: already configured")
	}
	b.bff = str(args, 0)
	if b.bff == "" {
		b.bff = wire.BasePath
	}
	var origins []string
	if list := arg(args, 1); list.InstanceOf(global.Get("Array")) {
		for i := 0; i < list.Length(); i++ {
			origins = append(origins, str([]js.Value{list.Index(i)}, 0))
		}
	}
	b.credentials = "same-origin"
	if str(args, 7) == "include" {
		b.credentials = "include"
	}
	b.fetch = arg(args, 2)
	if b.fetch.Type() != js.TypeFunction {
		b.fetch = global.Get("fetch")
	}
	cfg := client.Config{
		Source:     source{b},
		APIOrigins: origins,
		Now:        now,
		AfterFunc:  afterFunc,
		Rand:       func() float64 { return global.Get("Math").Call("random").Float() },
		// The fetch gives up at requestTimeout; the lock wait adds to it.
		RequestTimeout: 2 * requestTimeout,
	}
	if emit := arg(args, 3); emit.Type() == js.TypeFunction {
		cfg.OnEvent = func(e client.Event) {
			emit.Invoke(e.Kind, e.ExpiresAt, e.Reason, seconds(e.RetryAfter))
		}
	}
	if lock := arg(args, 4); lock.Type() == js.TypeFunction {
		cfg.Lock = locker{lock}
	}
	if announce := arg(args, 5); announce.Type() == js.TypeFunction {
		cfg.Peers = peers{announce}
	}
	if setToken := arg(args, 6); setToken.Type() == js.TypeFunction {
		cfg.OnToken = func(token string, until int64) { setToken.Invoke(token, until) }
	}
	c, err := client.New(cfg)
	if err != nil {
		return jsError.New("tether: " + err.Error())
	}
	b.c.Store(c)
	return nil
}

// promise returns a Promise settled by f, which runs on a goroutine: a
// js.FuncOf callback must not block.
func promise(f func() (string, error)) js.Value {
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := f()
			if err != nil {
				reject.Invoke(toJSError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	defer executor.Release() // the Promise constructor has called it
	return jsPromise.New(executor)
}

// toJSError turns a client error into an Error the page can tell apart by
// name. The client returns its error types unwrapped, so a type switch
// does (errors.As would add reflectlite).
func toJSError(err error) js.Value {
	name, reason, retryAfter := "TetherError", "", int64(0)
	switch err := err.(type) {
	case *client.ReconnectError:
		name, reason = "TetherReconnectRequired", err.Reason
	case *client.UnavailableError:
		name, reason, retryAfter = "TetherUnavailable", err.Reason, err.RetryAfter
	}
	e := jsError.New(err.Error())
	e.Set("name", name)
	e.Set("reason", reason)
	e.Set("retryAfter", seconds(retryAfter))
	return e
}

// seconds turns milliseconds into the seconds JS callers see.
func seconds(ms int64) float64 { return float64(ms) / 1000 }

// locker runs f inside the page's lock(run) hook (navigator.locks): run
// returns a Promise that settles when f is done.
type locker struct{ lock js.Value }

func (l locker) WithLock(f func() error) error {
	var ferr error
	run := js.FuncOf(func(js.Value, []js.Value) any {
		return promise(func() (string, error) {
			ferr = f()
			return "", nil
		})
	})
	defer run.Release()
	if _, err := await(l.lock.Invoke(run)); err != nil {
		return err
	}
	return ferr
}

// peers passes news to the page's announce hook (a BroadcastChannel),
// and waits for the Promise it returns, if any: the other tabs' word that
// they hold their calls.
type peers struct{ announce js.Value }

func (p peers) Announce(news string) {
	if v := p.announce.Invoke(news); v.Type() == js.TypeObject {
		await(v)
	}
}

var (
	_ client.TokenSource = source{}
	_ client.Locker      = locker{}
	_ client.Peers       = peers{}
)

// arg returns args[i], or undefined.
func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

// str returns args[i] if it is a string, else "" (Value.String would give
// "<number: 1>").
func str(args []js.Value, i int) string {
	if v := arg(args, i); v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}

// catch turns an exception thrown by JS code that Go called (a js.Error
// panic) into *err, so that a misbehaving page cannot crash the client.
func catch(err *error) {
	if r := recover(); r != nil {
		e, ok := r.(js.Error)
		if !ok {
			panic(r)
		}
		*err = rejection("wasm: " + e.Error())
	}
}

// now is the client's clock: Unix milliseconds.
func now() int64 { return int64(global.Get("Date").Call("now").Float()) }

// maxTimeout is the longest delay setTimeout honours; a longer one fires
// at once.
const maxTimeout = 1<<31 - 1

// afterFunc is the client's timer: setTimeout, whose callback starts f on
// a goroutine.
func afterFunc(ms int64, f func()) client.Timer {
	t := &timer{}
	t.fn = js.FuncOf(func(js.Value, []js.Value) any {
		if t.end() {
			go f()
		}
		return nil
	})
	t.id = global.Call("setTimeout", t.fn, min(max(ms, 0), maxTimeout))
	return t
}

// timer is a pending setTimeout.
type timer struct {
	mu   sync.Mutex
	id   js.Value
	fn   js.Func
	over bool
}

// end marks the timer fired or stopped and releases its callback; it
// reports whether the timer was still pending.
func (t *timer) end() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.over {
		return false
	}
	t.over = true
	t.fn.Release()
	return true
}

// Stop cancels the timer; it reports whether it was still pending.
func (t *timer) Stop() bool {
	if !t.end() {
		return false
	}
	global.Call("clearTimeout", t.id)
	return true
}
