package client

import (
	"errors"
	"strconv"
	"testing"
)

func TestNormalizeOrigin(t *testing.T) {
	cases := []struct {
		in, want string // want "" means an error
	}{
		{"https://api.example", "https://api.example"},
		{"https://API.Example:443/", "https://api.example"},
		{"HTTP://localhost:80", "http://localhost"},
		{"http://localhost:8080", "http://localhost:8080"},
		{"https://api.example:80", "https://api.example:80"},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"http://[::1]:9000", "http://[::1]:9000"},
		{"https://[2001:DB8::1]", "https://[2001:db8::1]"},
		{"null", ""},
		{"", ""},
		{"api.example", ""},
		{"ftp://api.example", ""},
		{"https://", ""},
		{"https://api.example/path", ""},
		{"https://api.example?q=1", ""},
		{"https://api.example#f", ""},
		{"https://user@api.example", ""},
		{"https://api.example:", ""},
		{"https://api.example:0443", ""},
		{"https://api.example:65536", ""},
		{"https://api example", ""},
		{"https://api.example\\@evil", ""},
		{"https://[::1", ""},
		{"https://[::1]x", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := NormalizeOrigin(c.in)
			if c.want == "" {
				if !errors.Is(err, ErrBadOrigin) {
					t.Errorf("NormalizeOrigin(%q) = %q, %v; want ErrBadOrigin", c.in, got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

func TestAllowListContains(t *testing.T) {
	list, err := newAllowList([]string{"https://API.example:443", "http://localhost:8080", "http://[::1]:9000"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		origin string
		want   bool
	}{
		{"https://api.example", true},
		{"https://api.example:443", true},
		{"HTTPS://Api.Example", true},
		{"https://api.example:8443", false},
		{"http://api.example", false},
		{"https://api.example.evil", false},
		{"https://evil.api.example", false},
		{"https://api.example/", false},
		{"https://api.example/x", false},
		{"https://u@api.example", false},
		{"null", false},
		{"", false},
		{"http://localhost:8080", true},
		{"http://LOCALHOST:8080", true},
		{"http://localhost", false},
		{"http://[::1]:9000", true},
		{"http://[::2]:9000", false},
	}
	for _, c := range cases {
		t.Run(c.origin, func(t *testing.T) {
			if got := list.contains(c.origin); got != c.want {
				t.Errorf("contains(%q) = %v; want %v", c.origin, got, c.want)
			}
		})
	}
}

func TestNewRejectsBadOrigin(t *testing.T) {
	_, err := New(Config{
		Source: &fakeSource{}, APIOrigins: []string{"https://ok.example", "null"},
		Now: func() int64 { return 0 }, AfterFunc: func(int64, func()) Timer { return stuckTimer{} },
		Rand: func() float64 { return 0 },
	})
	if !errors.Is(err, ErrBadOrigin) {
		t.Fatalf("New with a null origin: %v; want ErrBadOrigin", err)
	}
}

func TestASCIIHelpers(t *testing.T) {
	for _, n := range []int64{0, 7, -7, 1234567890, -9223372036854775808} {
		if got, want := itoa(n), strconv.FormatInt(n, 10); got != want {
			t.Errorf("itoa(%d) = %q; want %q", n, got, want)
		}
	}
	if !equalFold("HTTPS", "https") || equalFold("https", "http") || equalFold("K", "\u212a") {
		t.Error("equalFold")
	}
	if index("ab://c", "://") != 2 || index("ab", "://") != -1 {
		t.Error("index")
	}
}
