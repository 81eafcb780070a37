package bff

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// A browser extension signs in through a tab of its own: the tab opens
// /bff/login?return_to=chrome-extension://<id>/signed-in.html, the user
// signs in at the provider, the callback sets the session cookie on this
// site (HttpOnly, as for a page) and sends the tab back to the extension's
// page, which closes itself. The extension's service worker then asks
// /bff/token with the cookie, which the browser sends because the
// extension has host permission for this site. Only the origins listed in
// Config.ExtensionOrigins (TETHER_EXTENSION_ORIGINS) may be returned to,
// and only with a plain path.

// Extension origin schemes: Chromium's (Chrome, Edge, Brave, Opera) and
// Firefox's.
const (
	schemeChromeExtension = "chrome-extension://"
	schemeMozExtension    = "moz-extension://"
)

// checkExtensionOrigin accepts exactly chrome-extension://<id> (32 letters
// a to p, as Chromium derives ids) or moz-extension://<uuid> (the
// lower-case 8-4-4-4-12 form Firefox uses); nothing before or after: no
// path, no slash, no port, no user.
func checkExtensionOrigin(o string) error {
	if id, ok := strings.CutPrefix(o, schemeChromeExtension); ok {
		if len(id) != 32 || strings.Trim(id, "abcdefghijklmnop") != "" {
			return fmt.Errorf("%q is not an extension origin: a Chromium extension id is 32 letters a to p, like chrome-extension://abcdefghijklmnopabcdefghijklmnop (the id chrome://extensions shows)", o)
		}
		return nil
	}
	if id, ok := strings.CutPrefix(o, schemeMozExtension); ok {
		if !isLowerUUID(id) {
			return fmt.Errorf("%q is not an extension origin: Firefox's is moz-extension:// and the extension's internal UUID in lower case, like moz-extension://0b1e5b8a-6b0e-4d56-9a1e-3f0c2d8e7a61 (about:debugging shows it)", o)
		}
		return nil
	}
	return fmt.Errorf("%q is not an extension origin like chrome-extension://<id> or moz-extension://<uuid>", o)
}

// isLowerUUID reports whether s is a UUID in lower-case hex, 8-4-4-4-12.
func isLowerUUID(s string) bool {
	return isTenantID(s) && strings.ToLower(s) == s
}

// cleanExtensionReturnTo accepts one of origins, byte for byte, followed
// by a path: "/" and then only unreserved characters, sub-delimiters, ":",
// "@", "%" and "/" (RFC 3986 pchar), no "//", no "." or ".." segment, no
// query, no fragment, no backslash, no control character; at most
// maxReturnTo bytes in all. Anything else, including the same origin in
// another case or with a port or user, is refused.
func cleanExtensionReturnTo(s string, origins []string) (string, bool) {
	if len(s) > maxReturnTo || len(origins) == 0 {
		return "", false
	}
	i := strings.Index(s, "://")
	if i < 0 {
		return "", false
	}
	end := strings.IndexByte(s[i+3:], '/')
	if end < 0 {
		return "", false
	}
	origin, path := s[:i+3+end], s[i+3+end:]
	if !slices.Contains(origins, origin) || !cleanExtensionPath(path) {
		return "", false
	}
	// What a browser makes of it must be that origin and that path.
	u, err := url.Parse(s)
	if err != nil || u.Scheme+"://"+u.Host != origin || u.User != nil || u.Port() != "" ||
		u.Opaque != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.EscapedPath() != path {
		return "", false
	}
	return s, true
}

// cleanExtensionPath reports whether p is a plain absolute path (see
// cleanExtensionReturnTo).
func cleanExtensionPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." || strings.EqualFold(seg, "%2e") || strings.EqualFold(seg, "%2e%2e") ||
			strings.EqualFold(seg, ".%2e") || strings.EqualFold(seg, "%2e.") {
			return false
		}
	}
	if strings.Contains(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		ch := p[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", ch) >= 0:
		case ch == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// returnTo is cleanReturnTo, and an extension's page when
// Config.ExtensionOrigins lists its origin.
func (s *Handler) returnTo(q string) (string, bool) {
	if r, ok := cleanReturnTo(q); ok {
		return r, true
	}
	return cleanExtensionReturnTo(q, s.cfg.ExtensionOrigins)
}
