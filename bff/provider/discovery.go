package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Discovery is an issuer's OpenID Connect discovery document as it was
// fetched. Given back to New (Config.Discovery), it stands for a fresh
// fetch: a BFF that starts while the provider is down can still reach the
// token endpoint the last good copy names.
type Discovery struct {
	Document []byte    // the document as served
	Fetched  time.Time // when it was fetched
}

// ErrDiscovery wraps a failure to get a usable discovery document from
// the issuer: unreachable, a timeout, an answer other than 200, a body
// that is not a JSON object or that go-oidc cannot read. The provider may
// be down; trying again later may succeed. It wraps ErrUnavailable. (A
// document that states another issuer is a configuration error: it does
// not wrap ErrDiscovery.)
var ErrDiscovery = fmt.Errorf("discovery failed: %w", ErrUnavailable)

// maxDiscovery bounds the size of a discovery document.
const maxDiscovery = 1 << 20

// wellKnown is the discovery URL of issuer, as go-oidc builds it.
func wellKnown(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// fetchDiscovery GETs the issuer's discovery document. Errors wrap
// ErrDiscovery.
func (p *Provider) fetchDiscovery(ctx context.Context, issuer string) (*Discovery, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wellKnown(issuer), nil)
	if err != nil {
		return nil, fmt.Errorf("provider: discovery at %s: %w", issuer, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("provider: discovery at %s: %w: %w", issuer, ErrDiscovery, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscovery+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("provider: discovery at %s: %w: reading the document: %w", issuer, ErrDiscovery, err)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("provider: discovery at %s: %w: HTTP %d", issuer, ErrDiscovery, resp.StatusCode)
	case len(body) > maxDiscovery:
		return nil, fmt.Errorf("provider: discovery at %s: %w: the document is over %d bytes", issuer, ErrDiscovery, maxDiscovery)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("provider: discovery at %s: %w: the document is not a JSON object", issuer, ErrDiscovery)
	}
	return &Discovery{Document: body, Fetched: p.now()}, nil
}

// Discovery returns the discovery document the Provider was built from,
// fetched or given; nil without an issuer.
func (p *Provider) Discovery() *Discovery { return p.discovery }

// discoveryClient is p's HTTP client, except that it answers the issuer's
// discovery URL with doc from memory: go-oidc reads the document through
// it, and later fetches the signing keys through it from the network.
func (p *Provider) discoveryClient(issuer string, doc []byte) (*http.Client, error) {
	u, err := url.Parse(wellKnown(issuer))
	if err != nil {
		return nil, fmt.Errorf("provider: issuer %q: %w", issuer, err)
	}
	next := p.client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c := *p.client
	c.Transport = servedDocument{url: u.String(), doc: doc, next: next}
	return &c, nil
}

// servedDocument answers GET url with doc and passes every other request
// on to next.
type servedDocument struct {
	url  string
	doc  []byte
	next http.RoundTripper
}

func (s servedDocument) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet || r.URL.String() != s.url {
		return s.next.RoundTrip(r)
	}
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":   {"application/json"},
			"Content-Length": {strconv.Itoa(len(s.doc))},
		},
		Body: io.NopCloser(bytes.NewReader(s.doc)), ContentLength: int64(len(s.doc)), Request: r,
	}, nil
}

// isIssuerMismatch reports go-oidc's refusal of a document that states
// another issuer.
func isIssuerMismatch(err error) bool {
	var m *oidc.IssuerMismatchError
	return errors.As(err, &m)
}
