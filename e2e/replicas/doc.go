// Package replicas holds Tether's scale and fault tests: the real tether and
// devprovider binaries, built once per run, as separate processes (three BFF
// replicas, the dev provider) sharing a real redis-server, on loopback.
//
// The tests claim, each in a way that fails when it breaks:
//
//   - a refresh storm over three replicas refreshes every session exactly
//     once (TestRefreshStormExactlyOnce);
//   - a replica killed while it holds a session's refresh lock blocks the
//     others for at most one lease, and the session then either refreshes or
//     ends with reconnect_required, as the provider's reuse detection says
//     (TestLockHolderKilled);
//   - whatever the token endpoint does wrong, no session is deleted, valid
//     tokens keep being served, provider_unavailable comes only after a token
//     has expired, a caller waits about one provider timeout at most, and
//     everything recovers (TestProviderFaultMatrix); a slow provider still
//     costs one refresh per session (TestSlowProviderStorm);
//   - with Redis stopped, /bff/token answers 503 and /readyz fails, and every
//     session works again once Redis is back (TestRedisOutage).
//   - 1,000 sessions through a 20 s provider outage (503 with Retry-After:
//     3600, hanging, resetting): at most one provider call per probe
//     interval after the three that opened the circuit, every session
//     served a fresh token within 3 s of the provider's return, none lost,
//     no refresh token presented twice (TestOutageRecoveryAtScale).
//
// They need redis-server (apt-get install -y redis-server) and the Go
// toolchain on PATH. The package has test files only, and this comment.
package replicas
