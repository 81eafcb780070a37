package devprovider

import (
	"html/template"
	"net/http"
	"net/url"
)

// authRequest is an authorization request (RFC 6749 4.1.1, RFC 7636).
type authRequest struct {
	ResponseType        string
	ClientID            string
	RedirectURI         string
	Scope               string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	LoginHint           string
	AccessType          string // Google: offline asks for a refresh token
	Prompt              string // Google: consent forces the consent screen
}

func parseAuthRequest(v url.Values) authRequest {
	return authRequest{
		ResponseType:        v.Get("response_type"),
		ClientID:            v.Get("client_id"),
		RedirectURI:         v.Get("redirect_uri"),
		Scope:               v.Get("scope"),
		State:               v.Get("state"),
		Nonce:               v.Get("nonce"),
		CodeChallenge:       v.Get("code_challenge"),
		CodeChallengeMethod: v.Get("code_challenge_method"),
		LoginHint:           v.Get("login_hint"),
		AccessType:          v.Get("access_type"),
		Prompt:              v.Get("prompt"),
	}
}

// defaultScope is granted when the request names none.
const defaultScope = "openid profile email"

// allowedRedirect accepts any http loopback URL: this is a dev server.
func allowedRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Fragment != "" || u.User != nil {
		return false
	}
	return isLoopbackHost(u.Hostname())
}

// handleAuthorize serves GET /authorize (the request) and POST /authorize
// (the consent form, which repeats the request in hidden fields).
func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	values := r.URL.Query()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			p.errorPage(w, http.StatusBadRequest, "The form could not be read.")
			return
		}
		values = r.PostForm
	}
	ar := parseAuthRequest(values)
	if ar.ClientID != p.cfg.ClientID {
		p.errorPage(w, http.StatusBadRequest, "Unknown client_id.")
		return
	}
	if !allowedRedirect(ar.RedirectURI) {
		p.errorPage(w, http.StatusBadRequest, "redirect_uri must be an http://127.0.0.1, http://localhost or http://[::1] URL.")
		return
	}
	if ar.ResponseType != "code" {
		p.redirectError(w, r, ar, "unsupported_response_type", "response_type must be code")
		return
	}
	if ar.CodeChallenge == "" || ar.CodeChallengeMethod != "S256" {
		p.redirectError(w, r, ar, "invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
		return
	}
	if ar.Scope == "" {
		ar.Scope = defaultScope
	}

	if r.Method == http.MethodPost && values.Get("deny") != "" {
		p.redirectError(w, r, ar, "access_denied", "the user denied the request")
		return
	}
	subject := ""
	switch {
	case r.Method == http.MethodPost && values.Get("user") != "":
		if _, ok := lookupUser(values.Get("user")); !ok {
			p.errorPage(w, http.StatusBadRequest, "Unknown user.")
			return
		}
		subject = values.Get("user")
	case p.cfg.AutoApprove:
		subject = "alice"
		if _, ok := lookupUser(ar.LoginHint); ok {
			subject = ar.LoginHint
		}
	default:
		p.consentPage(w, r.URL.Path, ar)
		return
	}

	code := p.ledger.newCode(p.now(), authCode{
		clientID: ar.ClientID, redirectURI: ar.RedirectURI, challenge: ar.CodeChallenge,
		scope: ar.Scope, nonce: ar.Nonce, subject: subject,
		refresh: p.issuesRefresh(ar, subject),
	})
	p.stats.codesIssued.Add(1)
	p.redirect(w, r, ar, url.Values{"code": {code}})
}

// redirect sends the browser back to the client with params, state and iss.
func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, ar authRequest, params url.Values) {
	u, _ := url.Parse(ar.RedirectURI) // checked by allowedRedirect
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if ar.State != "" {
		q.Set("state", ar.State)
	}
	q.Set("iss", p.issuer) // RFC 9207
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, ar authRequest, code, desc string) {
	p.redirect(w, r, ar, url.Values{"error": {code}, "error_description": {desc}})
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// No form-action: Chrome applies it to the redirect that follows the
	// POST, and the client lives on another origin.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
}

// consentPage asks which user signs in; the form posts back to action
// (/authorize, or /login/oauth/authorize in the GitHub modes).
func (p *Provider) consentPage(w http.ResponseWriter, action string, ar authRequest) {
	setPageHeaders(w)
	w.WriteHeader(http.StatusOK)
	consentTmpl.Execute(w, struct {
		Action string
		Req    authRequest
		Users  []User
	}{action, ar, Users})
}

func (p *Provider) errorPage(w http.ResponseWriter, status int, msg string) {
	setPageHeaders(w)
	w.WriteHeader(status)
	errorTmpl.Execute(w, msg)
}

const pageStyle = `<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:26rem;margin:4rem auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 2px 12px #0002}
h1{font-size:1.3rem;margin:0 0 .25rem}
.warn{font-size:.8rem;color:#8a5a00;background:#fff4d6;border-radius:6px;padding:.3rem .6rem;display:inline-block}
.meta{font-size:.85rem;color:#5a6272;word-break:break-all}
button{display:block;width:100%;font:inherit;padding:.7rem;margin:.6rem 0;border-radius:8px;border:1px solid #2b5fd9;background:#2b5fd9;color:#fff;cursor:pointer}
button.deny{background:#fff;color:#a32020;border-color:#d8b4b4}
</style>`

var consentTmpl = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Tether dev provider — sign in</title>` + pageStyle + `</head>
<body><main>
<h1>Tether dev provider</h1>
<p class="warn">Development only — never use in production</p>
<p><strong>{{.Req.ClientID}}</strong> asks for <strong>{{.Req.Scope}}</strong>.</p>
<p class="meta">Returning to {{.Req.RedirectURI}}</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="response_type" value="{{.Req.ResponseType}}">
<input type="hidden" name="client_id" value="{{.Req.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.Req.RedirectURI}}">
<input type="hidden" name="scope" value="{{.Req.Scope}}">
<input type="hidden" name="state" value="{{.Req.State}}">
<input type="hidden" name="nonce" value="{{.Req.Nonce}}">
<input type="hidden" name="code_challenge" value="{{.Req.CodeChallenge}}">
<input type="hidden" name="code_challenge_method" value="{{.Req.CodeChallengeMethod}}">
{{if .Req.AccessType}}<input type="hidden" name="access_type" value="{{.Req.AccessType}}">
{{end}}{{if .Req.Prompt}}<input type="hidden" name="prompt" value="{{.Req.Prompt}}">
{{end}}
{{range .Users}}<button type="submit" name="user" value="{{.Subject}}" id="login-{{.Subject}}">Sign in as {{.Name}}</button>
{{end}}<button type="submit" name="deny" value="1" class="deny" id="deny">Deny</button>
</form>
</main></body></html>
`))

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tether dev provider — error</title>` + pageStyle + `</head>
<body><main><h1>Tether dev provider</h1><p>{{.}}</p></main></body></html>
`))
