package bff

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// The live event stream, GET /bff/events (wire.PathEvents): a
// Server-Sent Events stream per session that tells the page, within a
// Redis round trip, that its session ended, whatever ended it and on
// whichever replica (a logout in another tab, a revocation a refresh
// noticed, the idle timeout, a back-channel logout, an operator). The
// vault announces every tombstone it writes; each replica holds one
// subscription to those announcements (vault.Watcher) and hands them to
// its streams. A stream gets one event, session_ended {"reason"}, and
// closes.
//
// Access: the session cookie, and a request from the app's own origin
// (an EventSource cannot send X-CSRF; a page of another origin, a sibling
// subdomain included, must not hold the user's streams open). Without a
// session: 401 at once, with no Redis access at all, so a loop of
// anonymous requests costs the replica a cookie check. A session that had
// already ended: 200 and its one session_ended event (and the cookie is
// rewritten to say why, as POST /bff/token does), so a browser that
// reconnects after the end learns why from the stream it asked for.
//
// Bounds: EventsPerSession streams per session per replica (4) and
// EventsMaxStreams per replica (10,000); past them 429 too_many_streams.
// Refusing the newcomer, not evicting the oldest: an EventSource reconnects
// by itself when its stream is closed, so an evicted tab would come back
// and evict the next, round and round, while a non-200 answer stops an
// EventSource for good (the client then retries slowly, see tether.js).

// Defaults of the event stream's settings (Config.Events…).
const (
	DefaultEventsHeartbeat  = 25 * time.Second
	DefaultEventsRetry      = 5 * time.Second
	DefaultEventsPerSession = vault.DefaultMaxPerSession
	DefaultEventsMaxStreams = vault.DefaultMaxWatches
)

// eventsWriteWait bounds each write to a stream: a client that stopped
// reading is cut then.
const eventsWriteWait = 10 * time.Second

// eventsTooManyRetry is the Retry-After of a 429 too_many_streams.
const eventsTooManyRetry = 30 * time.Second

// eventStreams is the replica's side of the event stream: its watcher and
// the signal that ends every stream (shutdown).
type eventStreams struct {
	watcher   *vault.Watcher
	heartbeat time.Duration
	retry     time.Duration
	closing   chan struct{}
	closeOnce sync.Once
	origin    string   // the app's origin (scheme://host[:port])
	others    []string // Config.ExtensionOrigins: extensions' pages may hold streams too
}

// newEventStreams fills the defaults and opens the watcher (which
// subscribes at the first stream, or when proxy mode's session cache
// listens).
func newEventStreams(cfg Config, v sessionVault) *eventStreams {
	e := &eventStreams{
		heartbeat: cfg.EventsHeartbeat, retry: cfg.EventsRetry,
		closing: make(chan struct{}), others: cfg.ExtensionOrigins,
	}
	if e.heartbeat <= 0 {
		e.heartbeat = DefaultEventsHeartbeat
	}
	if e.retry <= 0 {
		e.retry = DefaultEventsRetry
	}
	if u, err := url.Parse(cfg.PublicURL); err == nil {
		e.origin = u.Scheme + "://" + u.Host
	}
	log := cfg.Logger
	e.watcher = v.Watcher(vault.WatcherConfig{
		MaxWatches: cfg.EventsMaxStreams, MaxPerSession: cfg.EventsPerSession,
		OnError: func(err error) { log.Warn("event streams: the ended-sessions subscription", "err", err) },
	})
	return e
}

// close ends every stream and the subscription. Calling it again does
// nothing.
func (e *eventStreams) close() {
	e.closeOnce.Do(func() { close(e.closing) })
	e.watcher.Close()
}

// CloseStreams ends every open event stream (GET /bff/events) at once:
// browsers reconnect, to another replica or to this one once it is back.
// Serve calls it when it shuts down (http.Server.RegisterOnShutdown),
// since a stream would otherwise hold the shutdown for its whole grace;
// an application that serves Register'ed routes with its own http.Server
// registers it the same way. Close calls it too.
func (s *Handler) CloseStreams() {
	s.events.closeOnce.Do(func() { close(s.events.closing) })
}

// handleEvents answers GET /bff/events.
func (s *Handler) handleEvents(c *gin.Context) {
	if !s.events.sameOrigin(c.Request) {
		writeError(c, wire.ErrOriginNotAllowed, "", "the event stream answers this app's own pages only")
		return
	}
	sid := sessionID(c)
	if sid == "" {
		// No Redis here: an anonymous loop costs a cookie check.
		reason := endedReason(c)
		if reason == wire.ReasonNoSession {
			writeError(c, wire.ErrReconnectRequired, reason, reconnectMessage(reason))
			return
		}
		s.streamEnded(c, reason)
		return
	}
	// Watch before reading the session: an end that comes after the read
	// is then announced to this watch, or found by its read-back.
	x, err := s.events.watcher.Watch(sid)
	if errors.Is(err, vault.ErrTooManyWatches) {
		c.Header(wire.HeaderRetryAfter, strconv.Itoa(seconds(eventsTooManyRetry)))
		writeError(c, wire.ErrTooManyStreams, "", "too many event streams are open for this session or on this server")
		return
	}
	if err != nil { // the Handler is closing
		c.Header(wire.HeaderRetryAfter, strconv.Itoa(seconds(min(s.cfg.RetryAfter, s.cfg.RetryAfterMax))))
		writeError(c, wire.ErrStorageUnavailable, "", "the event stream is shutting down on this server")
		return
	}
	defer x.Stop()
	_, err = s.vault.Get(c.Request.Context(), sid)
	var ended *vault.EndedError
	switch {
	case errors.As(err, &ended):
		reason := knownReason(ended.Reason)
		s.endCookie(c, reason)
		s.streamEnded(c, reason)
		return
	case errors.Is(err, vault.ErrNotFound):
		s.clearCookie(c)
		writeError(c, wire.ErrReconnectRequired, wire.ReasonNoSession, reconnectMessage(wire.ReasonNoSession))
		return
	case err != nil:
		s.log.Error("events: reading the vault", "err", err)
		c.Header(wire.HeaderRetryAfter, strconv.Itoa(seconds(min(s.cfg.RetryAfter, s.cfg.RetryAfterMax))))
		writeStorageError(c, err)
		return
	}
	s.stream(c, x)
}

// stream holds the stream open, with heartbeats, until the session ends
// (one session_ended event), the client goes, or the replica shuts down.
// The server's write timeout would cut it: each write gets a deadline of
// its own instead (eventsWriteWait), and the read deadline is cleared (a
// GET has no body to wait for).
func (s *Handler) stream(c *gin.Context, x *vault.Watch) {
	sw, ok := s.startStream(c)
	if !ok {
		return
	}
	s.metrics.eventStreams.Inc()
	defer s.metrics.eventStreams.Dec()
	tick := time.NewTicker(s.events.heartbeat)
	defer tick.Stop()
	done := c.Request.Context().Done()
	for {
		select {
		case e := <-x.C:
			sw.sessionEnded(knownReason(e.Reason))
			s.metrics.eventsSent.WithLabelValues(wire.EventSessionEnded).Inc()
			return
		case <-tick.C:
			if !sw.write(":\n\n") {
				return
			}
		case <-done:
			return
		case <-s.events.closing:
			return
		}
	}
}

// streamEnded answers with a stream of one session_ended event.
func (s *Handler) streamEnded(c *gin.Context, reason string) {
	if sw, ok := s.startStream(c); ok {
		sw.sessionEnded(reason)
		s.metrics.eventsSent.WithLabelValues(wire.EventSessionEnded).Inc()
	}
}

// sseWriter writes a stream's fields, each write bounded by
// eventsWriteWait and flushed.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startStream sends the stream's headers and its retry advice: the
// configured delay plus up to half of it again, so that the browsers of a
// replica that went away do not all come back in the same instant.
func (s *Handler) startStream(c *gin.Context) (sseWriter, bool) {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	sw := sseWriter{w: c.Writer, rc: http.NewResponseController(c.Writer)}
	sw.rc.SetReadDeadline(time.Time{}) // not every ResponseWriter can; then the server's stands
	c.Status(http.StatusOK)
	retry := s.events.retry + rand.N(s.events.retry/2+1)
	return sw, sw.write("retry: " + strconv.FormatInt(retry.Milliseconds(), 10) + "\n\n")
}

func (sw sseWriter) write(field string) bool {
	sw.rc.SetWriteDeadline(time.Now().Add(eventsWriteWait))
	if _, err := sw.w.Write([]byte(field)); err != nil {
		return false
	}
	return sw.rc.Flush() == nil
}

func (sw sseWriter) sessionEnded(reason string) {
	data, _ := json.Marshal(wire.SessionEnded{Reason: reason})
	sw.write("event: " + wire.EventSessionEnded + "\ndata: " + string(data) + "\n\n")
}

// sameOrigin reports whether r comes from the app's own pages: an Origin
// header, when there is one, must be the app's origin (PublicURL) or one
// of Config.ExtensionOrigins (as a login's return_to may be); without one, Sec-Fetch-Site must be same-origin or none (typed in), or
// absent (a client that is not a browser, or an older one: the cookie is
// SameSite=Lax, so a cross-site page's request does not carry it anyway).
func (e *eventStreams) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return strings.EqualFold(o, e.origin) || slices.Contains(e.others, o)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}
