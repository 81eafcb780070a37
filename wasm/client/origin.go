package client

// ErrBadOrigin is returned for an API origin that is not of the form
// scheme://host[:port] with an http or https scheme.
var ErrBadOrigin error = constError("client: bad origin")

// origin is an exact web origin; the port is empty when it is the scheme's
// default.
type origin struct {
	scheme, host, port string
}

// NormalizeOrigin returns the canonical form of an origin such as
// "https://API.example:443/": lower-case scheme and host, no default port,
// no trailing slash. It refuses "null", paths, queries, fragments, user
// info, non-ASCII hosts (use their punycode form) and schemes other than
// http and https.
func NormalizeOrigin(s string) (string, error) {
	trimmed := s
	if n := len(trimmed); n > 0 && trimmed[n-1] == '/' {
		trimmed = trimmed[:n-1]
	}
	o, ok := parseOrigin(trimmed)
	if !ok {
		return "", &wrapError{"client: " + s + " is not scheme://host[:port] with http or https", ErrBadOrigin}
	}
	canon := lower(o.scheme) + "://" + lower(o.host)
	if o.port != "" {
		canon += ":" + o.port
	}
	return canon, nil
}

// parseOrigin splits an origin into its parts without allocating. The
// scheme and host keep the caller's case; a default port comes back empty.
func parseOrigin(s string) (o origin, ok bool) {
	i := index(s, "://")
	if i < 0 || i+3 == len(s) {
		return origin{}, false
	}
	scheme, rest := s[:i], s[i+3:]
	var def string
	switch {
	case equalFold(scheme, "https"):
		def = "443"
	case equalFold(scheme, "http"):
		def = "80"
	default:
		return origin{}, false
	}
	host, port := rest, ""
	if rest[0] == '[' { // IPv6 literal
		end := indexByte(rest, ']')
		if end < 0 {
			return origin{}, false
		}
		host, rest = rest[:end+1], rest[end+1:]
		if rest != "" {
			if rest[0] != ':' || len(rest) == 1 {
				return origin{}, false
			}
			port = rest[1:]
		}
		if !validHost(host[1:len(host)-1], true) {
			return origin{}, false
		}
	} else {
		if i := lastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
			if port == "" {
				return origin{}, false
			}
		}
		if !validHost(host, false) {
			return origin{}, false
		}
	}
	if !validPort(port) {
		return origin{}, false
	}
	if port == def {
		port = ""
	}
	return origin{scheme: scheme, host: host, port: port}, true
}

// validHost accepts the characters of a DNS name or IPv4 address, or of an
// IPv6 address between brackets.
func validHost(h string, v6 bool) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.':
		case c == '-' || c == '_':
			if v6 {
				return false
			}
		case c == ':':
			if !v6 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// validPort accepts "" or 1 to 5 digits without a leading zero, at most 65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	if len(p) > 5 || p[0] == '0' {
		return false
	}
	n, ok := atoi(p)
	return ok && n <= 65535
}

// matches reports whether a parsed origin equals o, ignoring case.
func (o origin) matches(p origin) bool {
	return o.port == p.port && equalFold(o.host, p.host) && equalFold(o.scheme, p.scheme)
}

// allowList is a fixed set of origins.
type allowList []origin

// newAllowList normalises every origin; it fails on the first bad one.
func newAllowList(origins []string) (allowList, error) {
	list := make(allowList, 0, len(origins))
	for _, s := range origins {
		canon, err := NormalizeOrigin(s)
		if err != nil {
			return nil, err
		}
		o, _ := parseOrigin(canon)
		list = append(list, o)
	}
	return list, nil
}

// contains reports whether s, an origin as the browser serialises it, is in
// the list. It does not allocate.
func (l allowList) contains(s string) bool {
	p, ok := parseOrigin(s)
	if !ok {
		return false
	}
	for _, o := range l {
		if o.matches(p) {
			return true
		}
	}
	return false
}
