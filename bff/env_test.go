package bff

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every variable the BFF (any file of the package) and the tether command
// read is in EnvVars, and nothing else: a new variable without a line in
// `tether -h` fails here.
func TestEnvVarsComplete(t *testing.T) {
	read := map[string]bool{}
	name := regexp.MustCompile(`getenv\("(TETHER_[A-Z_]+)"\)`)
	quoted := regexp.MustCompile(`\{"(TETHER_[A-Z_]+)", &c\.`) // the table of durations in FromEnv
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, "_test.go") || f == "env.go" })
	for _, file := range append(files, "cmd/tether/main.go") {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []*regexp.Regexp{name, quoted} {
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				read[m[1]] = true
			}
		}
	}
	if len(read) < 20 {
		t.Fatalf("found only %d variables read in the sources: the pattern is stale", len(read))
	}
	listed := map[string]bool{}
	for _, v := range EnvVars {
		if listed[v.Name] {
			t.Errorf("%s is listed twice", v.Name)
		}
		listed[v.Name] = true
		if !read[v.Name] {
			t.Errorf("%s is in EnvVars but nothing reads it", v.Name)
		}
		if v.Meaning == "" || v.Default == "" {
			t.Errorf("%s has no meaning or default", v.Name)
		}
	}
	for v := range read {
		if !listed[v] {
			t.Errorf("%s is read but not in EnvVars (tether -h)", v)
		}
	}
}

// The defaults -h states are the ones the code applies.
func TestEnvVarsDefaults(t *testing.T) {
	want := map[string]time.Duration{
		"TETHER_REFRESH_BUFFER":     DefaultRefreshBuffer,
		"TETHER_SESSION_MAX_AGE":    DefaultSessionMaxAge,
		"TETHER_PROVIDER_TIMEOUT":   DefaultProviderTimeout,
		"TETHER_RETRY_AFTER":        DefaultRetryAfter,
		"TETHER_FORCE_MIN_AGE":      DefaultForceMinAge,
		"TETHER_SESSION_IDLE":       DefaultSessionIdle,
		"TETHER_API_TIMEOUT":        DefaultAPITimeout,
		"TETHER_API_STREAM_TIMEOUT": DefaultAPIStreamTimeout,
		"TETHER_API_SESSION_CACHE":  DefaultAPISessionCache,
		"TETHER_RETRY_AFTER_MAX":    DefaultRetryAfterMax,
		"TETHER_PROBE_INTERVAL":     DefaultProbeInterval,
	}
	for _, v := range EnvVars {
		switch v.Name {
		case "TETHER_FORCE_RATE":
			if v.Default != strconv.Itoa(DefaultForceRate)+"/m" {
				t.Errorf("%s: -h says %q; the code's default is %d a minute", v.Name, v.Default, DefaultForceRate)
			}
		case "TETHER_API_MAX_BODY":
			if v.Default != "10MiB" || DefaultAPIMaxBody != 10<<20 {
				t.Errorf("%s: -h says %q; the code's default is %d bytes", v.Name, v.Default, DefaultAPIMaxBody)
			}
		case "TETHER_API_RETRY_BODY":
			if v.Default != "64KiB" || DefaultAPIRetryBody != 64<<10 {
				t.Errorf("%s: -h says %q; the code's default is %d bytes", v.Name, v.Default, DefaultAPIRetryBody)
			}
		case "TETHER_FORCE_BURST":
			if v.Default != strconv.Itoa(DefaultForceBurst) {
				t.Errorf("%s: -h says %q; the code's default is %d", v.Name, v.Default, DefaultForceBurst)
			}
		}
		d, ok := want[v.Name]
		if !ok {
			continue
		}
		delete(want, v.Name)
		got, err := time.ParseDuration(v.Default)
		if err != nil || got != d {
			t.Errorf("%s: -h says %q; the code's default is %v", v.Name, v.Default, d)
		}
	}
	for name := range want {
		t.Errorf("%s is not in EnvVars", name)
	}
}

func TestEnvHelp(t *testing.T) {
	help := EnvHelp(EnvVars)
	lines := strings.Split(strings.TrimSuffix(help, "\n"), "\n")
	if len(lines) != len(EnvVars) {
		t.Fatalf("%d lines for %d variables:\n%s", len(lines), len(EnvVars), help)
	}
	for i, v := range EnvVars {
		if f := strings.Fields(lines[i]); len(f) == 0 || f[0] != v.Name || !strings.HasSuffix(lines[i], ")") ||
			!strings.Contains(lines[i], "(default: "+v.Default+")") && !strings.HasSuffix(lines[i], "(required)") {
			t.Errorf("line %q; want %s, its meaning and its default", lines[i], v.Name)
		}
	}
	if !strings.Contains(help, "TETHER_PUBLIC_URL") || !strings.Contains(help, "(required)") {
		t.Errorf("no required variable:\n%s", help)
	}
	but := EnvVarsBut("TETHER_PUBLIC_URL", "TETHER_ADDR")
	if len(but) != len(EnvVars)-2 || slices.ContainsFunc(but, func(v EnvVar) bool { return v.Name == "TETHER_ADDR" }) {
		t.Errorf("EnvVarsBut left %d of %d", len(but), len(EnvVars))
	}
}
