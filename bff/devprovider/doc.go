// Package devprovider is a local OAuth 2.0 authorization server, OpenID
// Connect provider and sample API for Tether's `make run`, its demo page and
// its tests.
//
// It is NEVER for production: it knows two fixed users (alice and bob),
// approves any loopback redirect URI, exposes unauthenticated /control/
// endpoints that revoke grants and break the token endpoint on purpose, and
// keeps everything in memory.
//
// # Endpoints
//
//	GET  /.well-known/openid-configuration  discovery (OIDC, RFC 8414)
//	GET  /authorize                         code flow; PKCE S256 required
//	POST /authorize                         the consent page's form
//	POST /token                             authorization_code, refresh_token
//	POST /revoke                            RFC 7009
//	GET  /userinfo                          {"sub","name","email"}
//	GET  /jwks                              the RS256 signing key
//	GET  /api/me                            sample API, RFC 6750 401s
//	GET  /api/public                        no auth; says whether Authorization arrived
//	GET  /logout?subject=alice[&sid=]       the provider's own logout: a back-channel
//	                                        logout token per provider session
//	POST /control/revoke?subject=alice      revoke all of a user's grants (&backchannel=1:
//	                                        and send a logout token naming the user)
//	POST /control/backchannel?subject=[&sid=]  only send a logout token
//	POST /control/expire[?subject=]         expire access tokens now
//	POST /control/outage?mode=&seconds=&delay=  break /token for a while
//	GET  /control/stats                     counters (see Stats)
//	POST /control/reset-stats               zero the counters
//
// # Tokens and grants
//
// A grant is what one approved login produces. Access tokens ("dev_at_…")
// and refresh tokens ("dev_rt_…") are opaque random strings; the prefixes
// let leak scanners in tests find them. Every refresh rotates the refresh
// token. Presenting a refresh token that was already rotated is reuse
// (RFC 9700): the answer is invalid_grant and the whole grant, with all its
// access and refresh tokens, is revoked. Replaying an authorization code
// likewise revokes what it produced.
//
// The refresh lifetime (Config.RefreshTTL) counts from the login: rotation
// does NOT extend it, and refresh_token_expires_in in every token response
// is the seconds left until the grant's end.
//
// # Quirks
//
// Config.Quirks (TETHER_DEV_QUIRKS) makes it behave like a real provider on
// the wire: QuirksGitHub (a GitHub App: GitHub's paths, form-encoded token
// answers unless Accept: application/json, errors with HTTP 200, no OpenID
// Connect, GET /api/v3/user, DELETE /api/v3/applications/{client_id}/grant),
// QuirksGitHubOAuthApp (the same, with tokens that never expire and no
// refresh token) and QuirksGoogle (a refresh token only with
// access_type=offline, at the first consent or with prompt=consent; no
// rotation). See Quirks for the details.
//
// # CORS
//
// /api/ and /control/ answer CORS requests from Config.AllowOrigins, or,
// when that is empty, from any http://127.0.0.1:*, http://localhost:* or
// http://[::1]:* origin, for convenience in development.
package devprovider
