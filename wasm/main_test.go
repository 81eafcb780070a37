//go:build js && wasm

package main

import (
	"strings"
	"syscall/js"
	"testing"
	"time"

	"github.com/tetherauth/tether/wasm/client"
)

// These tests run under Node:
//
//	GOOS=js GOARCH=wasm go test -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./wasm
//
// The BFF is a fake fetch written in JS that answers from a queue and
// records the requests.

const fakeBFF = `
const calls = [], queue = [];
const f = async (url, init) => {
  calls.push({ url: String(url), method: init.method, csrf: init.headers["X-CSRF"],
    credentials: init.credentials, body: init.body === undefined ? null : init.body,
    signal: init.signal instanceof AbortSignal });
  const r = queue.shift();
  if (!r) throw new TypeError("fake: no answer queued");
  return new Response(r.body, { status: r.status, headers: r.headers });
};
f.calls = calls;
f.answer = (status, body, headers) => queue.push({ status, body, headers });
return f;`

// events records what the bridge emits and, in f.setToken, what it pushes
// to the page's copy of the token; f.log has both in order.
const recorder = `
const events = [], pushes = [], log = [];
const f = (type, expiresAt, reason, retryAfter) => { events.push({ type, expiresAt, reason, retryAfter }); log.push(type); };
f.setToken = (token, until) => { pushes.push({ token, until }); log.push("set(" + token + ")"); };
Object.assign(f, { events, pushes, log });
return f;`

func newFunc(t *testing.T, body string) js.Value {
	t.Helper()
	return global.Get("Function").New(body).Invoke()
}

// configured returns a bridge whose client talks to a fake BFF.
func configured(t *testing.T) (*bridge, js.Value, js.Value) {
	t.Helper()
	fetch, emit := newFunc(t, fakeBFF), newFunc(t, recorder)
	b := &bridge{}
	origins := global.Get("Array").New("https://API.example:443", "http://localhost:8080")
	if err := b.call(js.Null(), []js.Value{js.ValueOf("configure"), js.ValueOf("/bff"), origins, fetch, emit, js.Null(), js.Null(), emit.Get("setToken")}); err != nil {
		t.Fatalf("configure: %v", js.ValueOf(err).Get("message"))
	}
	t.Cleanup(func() { b.c.Load().Close() })
	return b, fetch, emit
}

func (b *bridge) op(args ...any) js.Value {
	vs := make([]js.Value, len(args))
	for i, a := range args {
		vs[i] = js.ValueOf(a)
	}
	return js.ValueOf(b.call(js.Null(), vs))
}

// log is the recorder's pushes and events, in order.
func log(emit js.Value) string {
	return emit.Get("log").Call("join", " ").String()
}

func stringify(v js.Value) string { return global.Get("JSON").Call("stringify", v).String() }

func TestTokenAndPushes(t *testing.T) {
	b, fetch, emit := configured(t)
	fetch.Call("answer", 200, `{"access_token":"tok-1","token_type":"Bearer","expires_at":4000000000,"expires_in":600,"refresh_buffer":60}`)
	before := now()
	tok, err := await(b.op("token"))
	after := now()
	if err != nil || tok.String() != "tok-1" {
		t.Fatalf("token() = %v, %v; want tok-1", tok, err)
	}
	// The copy arrives before the Promise resolves: until is the expiry
	// less 5s of skew.
	pushes := emit.Get("pushes")
	if pushes.Length() != 1 || pushes.Index(0).Get("token").String() != "tok-1" {
		t.Fatalf("pushes %s; want tok-1", stringify(pushes))
	}
	if until := int64(pushes.Index(0).Get("until").Float()); until < before+595_000 || until > after+595_000 {
		t.Errorf("until %d; want Date.now() + 595s, between %d and %d", until, before+595_000, after+595_000)
	}
	call := fetch.Get("calls").Index(0)
	if got := call.Get("url").String(); got != "/bff/token" {
		t.Errorf("fetched %s; want /bff/token", got)
	}
	if call.Get("method").String() != "POST" || call.Get("csrf").String() != "1" || call.Get("credentials").String() != "same-origin" || !call.Get("signal").Bool() {
		t.Errorf("request %s; want POST, X-CSRF: 1, same-origin, a timeout signal", js.Global().Get("JSON").Call("stringify", call))
	}
	if !call.Get("body").IsNull() {
		t.Errorf("an unforced request has a body")
	}
	cases := []struct {
		origin string
		want   bool
	}{
		{"https://api.example", true},
		{"HTTPS://API.EXAMPLE", true},
		{"http://localhost:8080", true},
		{"https://other.example", false},
		{"http://api.example", false},
		{"null", false},
		{"", false},
	}
	for _, c := range cases {
		if got := b.op("allowed", c.origin); got.Type() != js.TypeBoolean || got.Bool() != c.want {
			t.Errorf("allowed(%q) = %v; want %v", c.origin, got, c.want)
		}
	}
	st := b.op("state")
	if !st.Index(0).Bool() || st.Index(1).Int() != 4000000000 || st.Index(2).Bool() || st.Index(3).String() != "" {
		t.Errorf("state() = %v", js.Global().Get("JSON").Call("stringify", st))
	}
	ev := emit.Get("events")
	if ev.Length() != 1 || ev.Index(0).Get("type").String() != "token" || ev.Index(0).Get("expiresAt").Int() != 4000000000 {
		t.Errorf("events %s; want one token event", js.Global().Get("JSON").Call("stringify", ev))
	}
	// Recovery sends the refused token in a JSON body.
	fetch.Call("answer", 200, `{"access_token":"tok-2","token_type":"Bearer","expires_in":600}`)
	tok, err = await(b.op("recover", "tok-1"))
	if err != nil || tok.String() != "tok-2" {
		t.Fatalf("recover() = %v, %v; want tok-2", tok, err)
	}
	body := fetch.Get("calls").Index(1).Get("body").String()
	if body != `{"force":true,"rejected":"tok-1"}` {
		t.Errorf("forced request body %s", body)
	}
	// Logout withdraws the copy before the event, in the same call.
	b.op("logout")
	if got, want := log(emit), "set(tok-1) token set() set(tok-2) recovered token set() logout"; got != want {
		t.Errorf("pushes and events %q; want %q", got, want)
	}
}

func TestReconnectRejects(t *testing.T) {
	b, fetch, emit := configured(t)
	fetch.Call("answer", 401, `{"error":"reconnect_required","reason":"revoked","message":"log in again"}`)
	_, err := await(b.op("token"))
	if err == nil || !strings.Contains(err.Error(), "TetherReconnectRequired") {
		t.Fatalf("token() error %v; want TetherReconnectRequired", err)
	}
	// Fails fast: no answer is queued, so a request would fail differently.
	p := b.op("token")
	var reason string
	catchFn := js.FuncOf(func(_ js.Value, args []js.Value) any {
		reason = args[0].Get("name").String() + ":" + args[0].Get("reason").String()
		return nil
	})
	defer catchFn.Release()
	if _, err := await(p.Call("catch", catchFn)); err != nil {
		t.Fatal(err)
	}
	if reason != "TetherReconnectRequired:revoked" {
		t.Errorf("second token() rejected with %q", reason)
	}
	if n := fetch.Get("calls").Length(); n != 1 {
		t.Errorf("%d requests; want 1", n)
	}
	if ev := emit.Get("events"); ev.Length() != 1 || ev.Index(0).Get("type").String() != "reconnect" || ev.Index(0).Get("reason").String() != "revoked" {
		t.Errorf("events %s; want one reconnect(revoked)", js.Global().Get("JSON").Call("stringify", ev))
	}
	if n := emit.Get("pushes").Length(); n != 0 {
		t.Errorf("%d pushes without a token; want none", n)
	}
}

// TestReconnectWithdrawsToken: a reconnect at the refresh point withdraws
// the copy before the reconnect event. The token lives 1s: the refresh
// timer fires after about 0.7s.
func TestReconnectWithdrawsToken(t *testing.T) {
	b, fetch, emit := configured(t)
	fetch.Call("answer", 200, `{"access_token":"tok-1","token_type":"Bearer","expires_in":1}`)
	fetch.Call("answer", 401, `{"error":"reconnect_required","reason":"revoked"}`)
	if _, err := await(b.op("token")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300 && emit.Get("events").Length() < 2; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := log(emit), "set(tok-1) token set() reconnect"; got != want {
		t.Errorf("pushes and events %q; want %q", got, want)
	}
}

func TestUnavailableHonoursRetryAfter(t *testing.T) {
	b, fetch, emit := configured(t)
	headers := js.Global().Get("Object").New()
	headers.Set("Retry-After", "7")
	fetch.Call("answer", 503, `{"error":"provider_unavailable","message":"later"}`, headers)
	p := b.op("token")
	var name string
	var retryAfter float64
	catchFn := js.FuncOf(func(_ js.Value, args []js.Value) any {
		name, retryAfter = args[0].Get("name").String(), args[0].Get("retryAfter").Float()
		return nil
	})
	defer catchFn.Release()
	if _, err := await(p.Call("catch", catchFn)); err != nil {
		t.Fatal(err)
	}
	if name != "TetherUnavailable" || retryAfter < 7 {
		t.Errorf("token() rejected with %s, retryAfter %v; want TetherUnavailable, >= 7", name, retryAfter)
	}
	ev := emit.Get("events")
	if ev.Length() != 1 || ev.Index(0).Get("type").String() != "degraded" || ev.Index(0).Get("reason").String() != "provider_unavailable" {
		t.Errorf("events %s; want one degraded", js.Global().Get("JSON").Call("stringify", ev))
	}
}

func TestBadAnswers(t *testing.T) {
	cases := []struct {
		name, body string
	}{
		{"not JSON", "<html>oops</html>"},
		{"null", "null"},
		{"no token", `{"token_type":"Bearer"}`},
		{"header injection", `{"access_token":"a\r\nX: y","token_type":"Bearer"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, fetch, emit := configured(t)
			fetch.Call("answer", 200, c.body)
			if tok, err := await(b.op("token")); err == nil {
				t.Fatalf("token() = %v; want an error", tok)
			}
			if p := emit.Get("pushes"); p.Length() != 0 {
				t.Errorf("pushes %s after a bad answer", stringify(p))
			}
		})
	}
}

func TestConfigureErrors(t *testing.T) {
	b := &bridge{}
	bad := global.Get("Array").New("null")
	if v := b.op("configure", "/bff", bad); v.Type() != js.TypeObject || !strings.Contains(v.Get("message").String(), "scheme://host") {
		t.Errorf("configure with a null origin = %v; want an Error", v)
	}
	if v := b.op("token"); !strings.Contains(v.Get("message").String(), "not configured") {
		t.Errorf("token before configure = %v", v)
	}
	if v := b.call(js.Null(), nil); !strings.Contains(js.ValueOf(v).Get("message").String(), "operation") {
		t.Errorf("call() without an operation = %v", v)
	}
	if v := b.op("allowed", "https://api.example"); !strings.Contains(v.Get("message").String(), "not configured") {
		t.Errorf("allowed before configure = %v", v)
	}
}

func TestTimer(t *testing.T) {
	fired := make(chan struct{})
	afterFunc(5, func() { close(fired) })
	<-fired
	stopped := afterFunc(5, func() { t.Error("a stopped timer fired") })
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop reports wrong")
	}
	done := make(chan struct{})
	afterFunc(20, func() { close(done) })
	<-done
	var _ client.Timer = stopped
}

// TestNoSession: told by the page that GET /bff/session found none, the
// client rejects token calls at once, without a request, and says why.
func TestNoSession(t *testing.T) {
	b, fetch, emit := configured(t)
	b.op("nosession")
	if _, err := await(b.op("token")); err == nil || !strings.Contains(err.Error(), "TetherReconnectRequired") {
		t.Fatalf("token() error %v; want TetherReconnectRequired", err)
	}
	if n := fetch.Get("calls").Length(); n != 0 {
		t.Errorf("%d requests; want none", n)
	}
	if got := log(emit); got != "reconnect" || emit.Get("events").Index(0).Get("reason").String() != "no_session" {
		t.Errorf("events %q; want one reconnect(no_session)", got)
	}
}

// TestNews: the announce hook gets news, never a token, and the refresh
// request waits for the Promise it returns; news from another tab reaches
// the client.
func TestNews(t *testing.T) {
	fetch, emit := newFunc(t, fakeBFF), newFunc(t, recorder)
	announce := newFunc(t, `
const f = (news) => { f.news.push(news); if (news === "refreshing") return new Promise((r) => { f.release = r; }); };
f.news = [];
return f;`)
	b := &bridge{}
	origins := global.Get("Array").New("https://api.example")
	if err := b.call(js.Null(), []js.Value{js.ValueOf("configure"), js.ValueOf("/bff"), origins, fetch, emit, js.Null(), announce, emit.Get("setToken")}); err != nil {
		t.Fatalf("configure: %v", js.ValueOf(err).Get("message"))
	}
	t.Cleanup(func() { b.c.Load().Close() })
	fetch.Call("answer", 200, `{"access_token":"tok-1","token_type":"Bearer","expires_in":600,"refresh_buffer":60}`)
	if tok, err := await(b.op("token")); err != nil || tok.String() != "tok-1" {
		t.Fatalf("token() = %v, %v", tok, err)
	}
	if n := announce.Get("news").Length(); n != 0 {
		t.Errorf("a first token was announced: %s", stringify(announce.Get("news")))
	}

	// A 401: the forced request is a refresh; it leaves once the other
	// tabs answered (the Promise), and its end is announced.
	fetch.Call("answer", 200, `{"access_token":"tok-2","token_type":"Bearer","expires_in":600,"refresh_buffer":60}`)
	p := b.op("recover", "tok-1")
	for i := 0; i < 100 && announce.Get("release").IsUndefined(); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if n := fetch.Get("calls").Length(); n != 1 {
		t.Fatalf("%d requests before the tabs answered; want still 1", n)
	}
	announce.Call("release")
	if tok, err := await(p); err != nil || tok.String() != "tok-2" {
		t.Fatalf("recover() = %v, %v", tok, err)
	}
	if got := stringify(announce.Get("news")); got != `["refreshing","refreshed"]` {
		t.Errorf("news %s; want refreshing, refreshed", got)
	}

	// Another tab refreshes: the copy is withdrawn, then this tab asks.
	b.op("news", "refreshing")
	if last := emit.Get("pushes").Index(emit.Get("pushes").Length() - 1); last.Get("token").String() != "" {
		t.Errorf("last push %s while another tab refreshes; want the copy withdrawn", stringify(last))
	}
	fetch.Call("answer", 200, `{"access_token":"tok-3","token_type":"Bearer","expires_in":600,"refresh_buffer":60}`)
	b.op("news", "refreshed")
	for i := 0; i < 200 && emit.Get("pushes").Index(emit.Get("pushes").Length()-1).Get("token").String() != "tok-3"; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if n := fetch.Get("calls").Length(); n != 3 {
		t.Errorf("%d requests; want 3", n)
	}
	if seq := log(emit); strings.Contains(stringify(announce.Get("news")), "tok-") || !strings.HasSuffix(seq, "set(tok-3) token") {
		t.Errorf("pushes and events %q, news %s", seq, stringify(announce.Get("news")))
	}
}

// TestCredentials: the token request's credentials mode is "same-origin"
// unless configure's ninth argument is "include" (an extension's worker,
// whose BFF is another origin); anything else keeps "same-origin".
func TestCredentials(t *testing.T) {
	for _, c := range []struct {
		arg  any
		want string
	}{{"include", "include"}, {"same-origin", "same-origin"}, {"omit", "same-origin"}, {nil, "same-origin"}, {1, "same-origin"}} {
		fetch, emit := newFunc(t, fakeBFF), newFunc(t, recorder)
		b := &bridge{}
		origins := global.Get("Array").New("https://api.example")
		if err := b.call(js.Null(), []js.Value{js.ValueOf("configure"), js.ValueOf("https://bff.example/bff"), origins, fetch, emit, js.Null(), js.Null(), js.Null(), js.ValueOf(c.arg)}); err != nil {
			t.Fatalf("configure: %v", js.ValueOf(err).Get("message"))
		}
		fetch.Call("answer", 200, `{"access_token":"tok-1","token_type":"Bearer","expires_in":600}`)
		if _, err := await(b.op("token")); err != nil {
			t.Fatalf("token(): %v", err)
		}
		call := fetch.Get("calls").Index(0)
		if got := call.Get("credentials").String(); got != c.want {
			t.Errorf("credentials argument %v: the request's credentials are %q; want %q", c.arg, got, c.want)
		}
		if got := call.Get("url").String(); got != "https://bff.example/bff/token" {
			t.Errorf("fetched %s; want the absolute BFF URL", got)
		}
		b.c.Load().Close()
	}
}
