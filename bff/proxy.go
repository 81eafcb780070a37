package bff

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// apiProxy is proxy mode: the BFF calls the configured APIs for the page
// with the session's access token, so the browser holds only its cookie.
// httputil.ReverseProxy does the forwarding (streamed bodies, SSE and
// protocol upgrades pass through); the refresh engine supplies the token,
// refreshes it once per session across replicas, and replaces it after an
// upstream 401.
type apiProxy struct {
	s         *Handler
	apiPath   string // where proxied calls arrive: Config.BasePath + "/api"
	routes    map[string]*apiRoute
	maxBody   int64
	retryBody int64
	stream    time.Duration
	forwarded bool
	hot       *hotRecords            // nil: every call reads the vault
	requests  *prometheus.CounterVec // tether_api_requests_total{route,result}
	retries   *prometheus.CounterVec // tether_api_retries_total{route}
}

// apiRoute is one configured upstream.
type apiRoute struct {
	name    string
	target  *url.URL // scheme, host, base path (no trailing slash)
	prefix  string   // the route's own path on the BFF: /bff/api/<name>
	proxy   *httputil.ReverseProxy
	ok      prometheus.Counter // requests{result="ok"}, the hot path's
	retried prometheus.Counter
}

// apiCall is one proxied request's state, carried in its context from the
// handler to the transport, ModifyResponse and the error handler.
type apiCall struct {
	c          *gin.Context
	route      *apiRoute
	sid        string
	token      string // the access token sent
	path, raw  string // the upstream path, decoded and escaped
	body       []byte // the buffered body, to send again after a 401
	replayable bool
	expiresAt  int64         // the token's expiry, Unix seconds; 0 = unknown
	degraded   time.Duration // > 0: the token was served degraded; retry the provider after this
	retried    bool          // sent again with a new token after an upstream 401
}

// use records the token a record holds as the one to send.
func (call *apiCall) use(rec *vault.Record) {
	call.token, call.expiresAt = rec.AccessToken, unix(rec.Expiry)
}

type apiCallKey struct{}

func callOf(ctx context.Context) *apiCall {
	call, _ := ctx.Value(apiCallKey{}).(*apiCall)
	return call
}

// newAPIProxy builds the proxy of cfg's routes, and registers its metrics.
func newAPIProxy(s *Handler) *apiProxy {
	cfg := s.cfg
	a := &apiProxy{
		apiPath: cfg.BasePath + strings.TrimPrefix(wire.PathAPI, wire.BasePath),
		s:       s, routes: map[string]*apiRoute{},
		maxBody: cfg.APIMaxBody, retryBody: cfg.APIRetryBody, stream: cfg.APIStreamTimeout, forwarded: cfg.APIForwarded,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_api_requests_total",
			Help: "Proxied API requests by route and result: ok (the upstream's answer, whatever its status, went back), or the BFF's error code.",
		}, []string{"route", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_api_retries_total",
			Help: "Proxied requests sent again after an upstream 401 and a forced refresh.",
		}, []string{"route"}),
	}
	a.hot = newHotRecords(cfg.APISessionCache, s.refresher)
	if a.hot != nil {
		s.events.watcher.Listen(vault.Listener{Ended: a.hot.ended, Subscribed: a.hot.clearAll})
	}
	s.metrics.reg.MustRegister(a.requests, a.retries)
	dialer := &net.Dialer{Timeout: cfg.APITimeout, KeepAlive: 30 * time.Second}
	tr := &apiTransport{a: a, base: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(cfg.APITimeout, 10*time.Second),
		ResponseHeaderTimeout: cfg.APITimeout,
		ExpectContinueTimeout: time.Second,
	}}
	for _, r := range cfg.APIRoutes {
		target, _ := upstreamURL(r.URL) // checked by Config.validate
		rt := &apiRoute{
			name: r.Name, target: target, prefix: a.apiPath + "/" + r.Name,
			ok: a.requests.WithLabelValues(r.Name, "ok"), retried: a.retries.WithLabelValues(r.Name),
		}
		rt.proxy = &httputil.ReverseProxy{
			Rewrite:        a.rewrite,
			Transport:      tr,
			ModifyResponse: a.modifyResponse,
			ErrorHandler:   a.errorHandler,
			ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		a.routes[r.Name] = rt
	}
	return a
}

// handle answers /bff/api/<route>/<path> (CSRF already checked).
func (a *apiProxy) handle(c *gin.Context) {
	r := c.Request
	rt, path, raw, msg := a.match(r.URL)
	if rt == nil {
		a.fail(c, "", wire.ErrNotFound, "", msg, 0)
		return
	}
	if msg != "" {
		a.fail(c, rt.name, wire.ErrInvalidRequest, "", msg, 0)
		return
	}
	if r.ContentLength > a.maxBody {
		a.fail(c, rt.name, wire.ErrRequestTooLarge, "", "the request body is over "+strconv.FormatInt(a.maxBody, 10)+" bytes", 0)
		return
	}
	sid := sessionID(c)
	if sid == "" {
		// No session, or one that ended: say which, as /bff/token does.
		reason := endedReason(c)
		a.fail(c, rt.name, wire.ErrReconnectRequired, reason, reconnectMessage(reason), 0)
		return
	}
	call := &apiCall{c: c, route: rt, sid: sid, path: path, raw: raw, replayable: true}
	now := a.s.cfg.Now()
	if rec := a.hot.get(sid, now); rec != nil {
		call.use(rec)
	} else {
		gen := a.hot.mark()
		res, err := a.s.refresher.Token(r.Context(), sid, refresh.Want{})
		if err != nil {
			a.failRefresh(c, rt.name, err)
			return
		}
		a.hot.put(sid, res, now, gen)
		call.use(res.Record)
		if res.Degraded {
			call.degraded = res.RetryAfter
		}
	}
	if code, msg := a.readBody(c, call); code != "" {
		a.fail(c, rt.name, code, "", msg, 0)
		return
	}
	// The whole request is in: the exchange may now last up to the stream
	// timeout (the server's own read and write timeouts would cut an SSE
	// stream or a WebSocket; a hijacked connection keeps these deadlines).
	// A protocol upgrade (WebSocket) loses the deadlines when its
	// connection is hijacked: its context ends it instead.
	ctx := context.WithValue(r.Context(), apiCallKey{}, call)
	if call.replayable {
		deadline := time.Now().Add(a.stream)
		rc := http.NewResponseController(c.Writer)
		rc.SetReadDeadline(deadline)
		rc.SetWriteDeadline(deadline)
		if r.Header.Get("Upgrade") != "" {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
	}
	// noStore set these; ModifyResponse sets the upstream answer's own.
	h := c.Writer.Header()
	h.Del("Cache-Control")
	h.Del("Pragma")
	rt.proxy.ServeHTTP(c.Writer, r.WithContext(ctx))
}

// match finds the route of a /bff/api/ URL and the upstream path. A nil
// route means no such route (404); a message with a route means the path
// is refused (400): a dot segment (.. or ., also %2e%2e), an encoded slash
// or backslash, an empty segment (//host), a control character.
func (a *apiProxy) match(u *url.URL) (rt *apiRoute, path, raw, msg string) {
	esc := u.EscapedPath()
	rest, ok := strings.CutPrefix(esc, a.apiPath+"/")
	if !ok {
		return nil, "", "", "no such API route"
	}
	name, sub, slash := strings.Cut(rest, "/")
	if rt = a.routes[name]; rt == nil {
		return nil, "", "", "no such API route"
	}
	if !slash {
		raw = rt.target.EscapedPath()
		if raw == "" {
			raw = "/"
		}
		path, _ = url.PathUnescape(raw)
		return rt, path, raw, ""
	}
	if !cleanSubpath(sub) {
		return rt, "", "", "the path may not contain . or .. segments, empty segments, encoded slashes or control characters"
	}
	raw = rt.target.EscapedPath() + "/" + sub
	path, err := url.PathUnescape(raw)
	if err != nil {
		return rt, "", "", "the path is not properly escaped"
	}
	return rt, path, raw, ""
}

// cleanSubpath reports whether sub (escaped, after the route's name and
// its slash) stays inside the route: no dot segment in any spelling, no
// empty segment but a trailing one, no encoded / or \, no backslash, no
// control character.
func cleanSubpath(sub string) bool {
	if sub == "" {
		return true
	}
	for i, last := 0, strings.Count(sub, "/"); ; i++ {
		seg, more, _ := strings.Cut(sub, "/")
		if seg == "" && i < last {
			return false
		}
		dec, err := url.PathUnescape(seg)
		if err != nil || dec == "." || dec == ".." {
			return false
		}
		for j := 0; j < len(dec); j++ {
			if b := dec[j]; b == '/' || b == '\\' || b < 0x20 || b == 0x7f {
				return false
			}
		}
		if i == last {
			return true
		}
		sub = more
	}
}

// readBody bounds the request body and keeps it, when it is small enough,
// so the request can be sent again after a 401. A larger body streams and
// the request is not retried.
func (a *apiProxy) readBody(c *gin.Context, call *apiCall) (code, msg string) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody {
		return "", ""
	}
	r.Body = http.MaxBytesReader(c.Writer, r.Body, a.maxBody)
	if r.ContentLength > a.retryBody {
		call.replayable = false
		return "", ""
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, a.retryBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return wire.ErrRequestTooLarge, "the request body is over " + strconv.FormatInt(a.maxBody, 10) + " bytes"
		}
		return wire.ErrInvalidRequest, "could not read the request body"
	}
	if int64(len(buf)) > a.retryBody { // chunked, and longer than the retry buffer
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		call.replayable = false
		return "", ""
	}
	call.body = buf
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(buf)), int64(len(buf))
	return "", ""
}

// rewrite makes the upstream request: the route's scheme, host and path
// (the Host header is the route's), the query as sent, the session's
// access token; no cookie, no X-CSRF, and X-Forwarded-* only when
// configured (ReverseProxy has removed the client's, and hop-by-hop
// headers).
func (a *apiProxy) rewrite(pr *httputil.ProxyRequest) {
	call := callOf(pr.In.Context())
	out := pr.Out
	out.URL.Scheme, out.URL.Host = call.route.target.Scheme, call.route.target.Host
	out.URL.Path, out.URL.RawPath = call.path, call.raw
	out.URL.User, out.URL.Fragment, out.URL.RawFragment = nil, "", ""
	out.Host = ""
	h := out.Header
	h.Del("Cookie")
	h.Del(wire.HeaderCSRF)
	h.Del("X-Real-Ip")
	h.Set(wire.HeaderAuthorization, wire.TokenTypeBearer+" "+call.token)
	if a.forwarded {
		pr.SetXForwarded()
	}
}

// modifyResponse cleans the upstream's answer before it goes back: no
// cookie the upstream sets reaches the BFF's origin (it could replace the
// session cookie), no CORS header (the answer is same-origin; nothing
// cross-site may read it), no Tether-* header but the BFF's own, none of
// the security headers the BFF set (nosniff, its CSP, no framing: the
// upstream's second value could void them); never cached; a redirect inside the route is rewritten to come back through
// the BFF (one elsewhere goes back as it is, and the browser follows it
// without the token).
func (a *apiProxy) modifyResponse(res *http.Response) error {
	call := callOf(res.Request.Context())
	own := call.c.Writer.Header() // the BFF's security headers: they stand alone
	h := res.Header
	for k := range h {
		if _, dup := own[k]; dup || k == "Set-Cookie" || k == "Set-Cookie2" || k == "Clear-Site-Data" ||
			strings.HasPrefix(k, "Access-Control-") || strings.HasPrefix(k, "Tether-") {
			delete(h, k)
		}
	}
	h["Cache-Control"] = []string{"no-store"}
	if loc := h.Get("Location"); loc != "" {
		h.Set("Location", a.location(call.route, res.Request.URL, loc))
	}
	if call.degraded > 0 {
		h.Set(wire.HeaderDegraded, strconv.Itoa(seconds(call.degraded)))
	}
	h[wire.HeaderExpiresAt] = []string{strconv.FormatInt(call.expiresAt, 10)}
	if call.retried {
		h[wire.HeaderRetried] = []string{"1"}
	}
	call.route.ok.Inc()
	return nil
}

// location is where a redirect of the upstream sends the browser: a URL
// under the route's base URL becomes the BFF's path for it; any other is
// made absolute (a relative one would otherwise land on the BFF's
// origin) and goes back as it is, to be followed without the token.
func (a *apiProxy) location(rt *apiRoute, base *url.URL, loc string) string {
	u, err := base.Parse(loc)
	if err != nil {
		return loc
	}
	if u.Scheme == rt.target.Scheme && u.Host == rt.target.Host && u.User == nil {
		sub, ok := strings.CutPrefix(u.EscapedPath(), rt.target.EscapedPath())
		if ok && (sub == "" || sub[0] == '/') && cleanSubpath(strings.TrimPrefix(sub, "/")) {
			p := rt.prefix + sub
			if u.RawQuery != "" {
				p += "?" + u.RawQuery
			}
			return p
		}
	}
	return u.String()
}

// errorHandler answers when the upstream exchange failed: a refresh that
// failed after a 401 (the engine's error), an upstream that could not be
// reached or timed out, a body over the limit. A client that went away
// gets nothing.
func (a *apiProxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	call := callOf(r.Context())
	name := call.route.name
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.Is(err, refresh.ErrReconnect), errors.Is(err, refresh.ErrUnavailable), errors.Is(err, refresh.ErrThrottled), errors.Is(err, refresh.ErrStorage):
		a.failRefresh(call.c, name, err)
	case errors.As(err, &mbe):
		a.fail(call.c, name, wire.ErrRequestTooLarge, "", "the request body is over "+strconv.FormatInt(a.maxBody, 10)+" bytes", 0)
	case r.Context().Err() != nil:
		a.requests.WithLabelValues(name, "client_gone").Inc()
		call.c.Status(499) // logged as such; nothing is sent
	case errors.As(err, &ne) && ne.Timeout():
		a.s.log.Warn("api: the upstream did not answer in time", "route", name, "err", redactURL(err))
		a.fail(call.c, name, wire.ErrUpstreamTimeout, "", "the API did not answer in time", 0)
	default:
		a.s.log.Warn("api: the upstream failed", "route", name, "err", redactURL(err))
		a.fail(call.c, name, wire.ErrUpstreamUnavailable, "", "the API could not be reached", 0)
	}
}

// failRefresh answers for an error of the refresh engine, as /bff/token
// does: reconnect_required leaves a cookie that says why the session
// ended; 503s and 429s say when to retry.
func (a *apiProxy) failRefresh(c *gin.Context, route string, err error) {
	code, reason, retryAfter := wireError(err)
	if code == wire.ErrStorageUnavailable {
		retryAfter = a.s.cfg.RetryAfter
	}
	if code == wire.ErrReconnectRequired {
		if reason == wire.ReasonNoSession {
			a.s.clearCookie(c)
		} else {
			a.s.endCookie(c, reason)
		}
	}
	a.fail(c, route, code, reason, err.Error(), retryAfter)
}

// fail sends the BFF's own answer on a proxied route: the contract's
// error body, with its code in Tether-Error.
func (a *apiProxy) fail(c *gin.Context, route, code, reason, msg string, retryAfter time.Duration) {
	if route != "" {
		a.requests.WithLabelValues(route, code).Inc()
	}
	h := c.Writer.Header()
	h.Set(wire.HeaderError, code)
	h.Set("Cache-Control", "no-store")
	if retryAfter > 0 {
		h.Set(wire.HeaderRetryAfter, strconv.Itoa(seconds(retryAfter)))
	}
	c.JSON(wire.Status(code), wire.ErrorBody{Error: code, Reason: reason, Message: msg})
	c.Abort()
}

// redactURL drops the URL (and so the query) from a transport error.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// apiTransport sends proxied requests. After an upstream 401 it asks the
// refresh engine for a token other than the rejected one (one refresh per
// session across replicas, however many requests were refused) and, when
// the body could be kept, sends the request once more with it.
type apiTransport struct {
	a    *apiProxy
	base *http.Transport
}

func (t *apiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	call := callOf(req.Context())
	gen := t.a.hot.mark()
	fresh, err := t.a.s.refresher.Token(req.Context(), call.sid, refresh.Want{Force: true, Rejected: call.token})
	if err != nil {
		t.a.hot.forget(call.sid)
		res.Body.Close()
		return nil, err // errorHandler answers for the engine
	}
	t.a.hot.put(call.sid, fresh, t.a.s.cfg.Now(), gen)
	if !call.replayable || fresh.Record.AccessToken == call.token {
		// Not replayable: the next request has the new token. The same
		// token: a forced refresh issued it moments ago (the engine does
		// not replace it again so soon), so the 401 is the API's answer.
		return res, nil
	}
	io.CopyN(io.Discard, res.Body, 4<<10) // keep the connection when the answer is short
	res.Body.Close()
	call.use(fresh.Record)
	call.retried = true
	call.degraded = 0
	if fresh.Degraded {
		call.degraded = fresh.RetryAfter
	}
	retry := req.Clone(req.Context())
	retry.Header.Set(wire.HeaderAuthorization, wire.TokenTypeBearer+" "+call.token)
	if call.body != nil {
		retry.Body = io.NopCloser(bytes.NewReader(call.body))
		retry.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(call.body)), nil }
	}
	call.route.retried.Inc()
	return t.base.RoundTrip(retry)
}

// mountAPI registers /bff/api/<route>/… on g (the CSRF-checked group)
// when routes are configured.
func (s *Handler) mountAPI(g *gin.RouterGroup) {
	if len(s.cfg.APIRoutes) == 0 {
		return
	}
	a := newAPIProxy(s)
	s.api = a
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		g.Handle(m, strings.TrimPrefix(wire.PathAPI, wire.BasePath)+"/*path", a.handle)
	}
}

// forget drops what the proxy keeps of a session that ended here.
func (a *apiProxy) forget(sid string) {
	if a != nil {
		a.hot.forget(sid)
	}
}
