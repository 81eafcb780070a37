package bff

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherauth/tether/bff/refresh"
)

// metrics are the BFF's Prometheus series. Each Handler has its own
// registry, so several can run in one process (tests, embedding).
type metrics struct {
	reg            *prometheus.Registry
	tokenRequests  *prometheus.CounterVec
	tokenOK        prometheus.Counter // tokenRequests{result="ok"}, the hot path's
	refreshes      *prometheus.CounterVec
	refreshLatency prometheus.Histogram
	lockWait       prometheus.Histogram
	logins         *prometheus.CounterVec
	revocations    prometheus.Counter
	backchannel    *prometheus.CounterVec
	circuit        *prometheus.GaugeVec
	eventStreams   prometheus.Gauge
	eventsSent     *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		tokenRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_token_requests_total",
			Help: "POST /bff/token answers by result: ok, degraded (current token served during a provider outage), or the error code.",
		}, []string{"result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_refreshes_total",
			Help: "Refresh attempts by outcome: ok, adopted (another replica refreshed), revoked, expired, unavailable, slow (callers answered before the provider; the refresh went on), store_failed, ended (the session ended while the provider answered), throttled (a forced refresh refused), idle (the session ended unused).",
		}, []string{"outcome"}),
		refreshLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tether_refresh_duration_seconds",
			Help:    "Time the provider took to answer a refresh.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tether_refresh_lock_wait_seconds",
			Help:    "Time spent taking a session's refresh lock (or adopting another replica's result).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_logins_total",
			Help: "Login callbacks by outcome.",
		}, []string{"outcome"}),
		revocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tether_revocations_total",
			Help: "Grants revoked at the provider on logout.",
		}),
		backchannel: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_backchannel_logouts_total",
			Help: "POST /bff/backchannel by outcome: ok, invalid (refused with 400), replay (a jti seen before), unavailable.",
		}, []string{"outcome"}),
		circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tether_provider_circuit",
			Help: "The provider's circuit breaker as this process sees it: 1 for the current state (closed, open, half_open), 0 for the others.",
		}, []string{"state"}),
		eventStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tether_event_streams",
			Help: "Event streams (GET /bff/events) open on this replica.",
		}),
		eventsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_events_sent_total",
			Help: "Events sent on event streams, by event (session_ended).",
		}, []string{"event"}),
	}
	for _, st := range refresh.CircuitStates {
		m.circuit.WithLabelValues(string(st))
	}
	m.eventsSent.WithLabelValues("session_ended")
	m.tokenOK = m.tokenRequests.WithLabelValues("ok")
	m.reg.MustRegister(m.tokenRequests, m.refreshes, m.refreshLatency, m.lockWait, m.logins, m.revocations, m.backchannel, m.circuit, m.eventStreams, m.eventsSent,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// The metrics observe the refresh engine.
var _ refresh.Observer = (*metrics)(nil)

// Refreshed counts a refresh attempt by outcome.
func (m *metrics) Refreshed(o refresh.Outcome) { m.refreshes.WithLabelValues(string(o)).Inc() }

// ProviderLatency records how long the provider took to answer a refresh.
func (m *metrics) ProviderLatency(d time.Duration) { m.refreshLatency.Observe(d.Seconds()) }

// LockWait records the time spent taking a session's refresh lock.
func (m *metrics) LockWait(d time.Duration) { m.lockWait.Observe(d.Seconds()) }

// The metrics show the provider's circuit breaker.
var _ refresh.CircuitObserver = (*metrics)(nil)

// Circuit sets the tether_provider_circuit gauge to state.
func (m *metrics) Circuit(state refresh.CircuitState) {
	for _, st := range refresh.CircuitStates {
		v := 0.0
		if st == state {
			v = 1
		}
		m.circuit.WithLabelValues(string(st)).Set(v)
	}
}
