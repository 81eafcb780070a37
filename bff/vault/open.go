package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Open connects a vault to the Redis that rawURL names, pings it with ctx,
// and returns the vault or an error that names the URL without its
// passwords. The forms are:
//
//	""                                   an in-process miniredis on 127.0.0.1 with a random
//	                                     password (see EmbeddedURL)
//	redis://[[user]:pass@]host[:port][/db][?opt=v]    one server (go-redis ParseURL)
//	rediss://...                         the same over TLS
//	unix://[[user]:pass@]/path/to/socket[?db=n]       one server on a Unix socket
//	redis+cluster://[[user]:pass@]host:port[?addr=host2:port2&addr=...]
//	                                     Redis Cluster, seed nodes (go-redis ParseClusterURL);
//	                                     rediss+cluster:// for TLS
//	redis+sentinel://[[user]:pass@]host:port[/db]?master_name=NAME[&addr=host2:port2][&password=P]
//	                                     Sentinel failover (go-redis ParseFailoverURL): the
//	                                     userinfo is the sentinels' credentials, username= and
//	                                     password= the master's; rediss+sentinel:// for TLS
//
// Options other than those are go-redis's query parameters (dial_timeout,
// pool_size, ...). The embedded miniredis expires keys against the wall
// clock and keeps nothing across restarts: it suits one process, a demo or
// a test, and Close stops it.
func Open(ctx context.Context, rawURL string, key []byte, opts ...Option) (*Vault, error) {
	if rawURL == "" {
		return openEmbedded(ctx, key, opts...)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error's text repeats the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("vault: invalid redis URL: %w", err)
	}
	shown := redact(u)
	client, err := newClient(u)
	if err != nil {
		return nil, fmt.Errorf("vault: open %s: %w", shown, err)
	}
	v, err := New(client, key, opts...)
	if err != nil {
		client.Close()
		return nil, err
	}
	if err := v.rdb.Ping(ctx).Err(); err != nil {
		v.Close()
		return nil, fmt.Errorf("vault: open %s: %w", shown, err)
	}
	return v, nil
}

// openEmbedded starts a miniredis on a loopback port that answers only
// clients presenting a random password (any local process can reach the
// port: without it, one could read sealed records, FLUSHALL or plant
// locks).
func openEmbedded(ctx context.Context, key []byte, opts ...Option) (*Vault, error) {
	mr := miniredis.NewMiniRedis()
	mr.ClockTTL(true) // without it miniredis keys expire only on FastForward
	password := rand.Text()
	mr.RequireAuth(password)
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("vault: start embedded miniredis: %w", err)
	}
	client := redis.NewClient(&redis.Options{Addr: mr.Addr(), Password: password})
	v, err := New(client, key, opts...)
	if err != nil {
		client.Close()
		mr.Close()
		return nil, err
	}
	v.mr, v.mrPassword = mr, password
	if err := v.rdb.Ping(ctx).Err(); err != nil {
		v.Close()
		return nil, fmt.Errorf("vault: open embedded miniredis at %s: %w", mr.Addr(), err)
	}
	return v, nil
}

// newClient builds the go-redis client for u's scheme. It does not dial.
func newClient(u *url.URL) (redis.UniversalClient, error) {
	base, topology, _ := strings.Cut(u.Scheme, "+")
	if base != "redis" && base != "rediss" && !(base == "unix" && topology == "") {
		return nil, fmt.Errorf("unsupported scheme %q (want redis, rediss, unix, redis+cluster or redis+sentinel)", u.Scheme)
	}
	plain := *u
	plain.Scheme = base
	switch topology {
	case "":
		o, err := redis.ParseURL(plain.String())
		if err != nil {
			return nil, err
		}
		return redis.NewClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(plain.String())
		if err != nil {
			return nil, err
		}
		return redis.NewClusterClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(plain.String())
		if err != nil {
			return nil, err
		}
		if o.MasterName == "" {
			return nil, errors.New("sentinel URL needs ?master_name=")
		}
		return redis.NewFailoverClient(o), nil
	default:
		return nil, fmt.Errorf("unsupported scheme %q (want redis, rediss, unix, redis+cluster or redis+sentinel)", u.Scheme)
	}
}

// redact returns u as text with every password replaced by "xxxxx": the
// userinfo's and the password= and sentinel_password= query parameters.
func redact(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		q := c.Query()
		for name := range q {
			if strings.Contains(strings.ToLower(name), "password") {
				q.Set(name, "xxxxx")
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}
