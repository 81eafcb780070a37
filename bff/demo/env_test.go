package demo

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tetherauth/tether/bff"
)

// EnvHelp lists every BFF variable but those the demo sets itself, and
// every variable the demo sets is among those it leaves out.
func TestEnvHelp(t *testing.T) {
	help := EnvHelp()
	for _, v := range bff.EnvVars {
		n := strings.Count(help, "\n  "+v.Name+" ")
		if slices.Contains(fixedVars, v.Name) && !slices.ContainsFunc(demoVars, func(d bff.EnvVar) bool { return d.Name == v.Name }) {
			if n != 0 {
				t.Errorf("%s is listed, but the demo sets it", v.Name)
			}
			continue
		}
		if n != 1 {
			t.Errorf("%s is listed %d times; want once:\n%s", v.Name, n, help)
		}
	}
	src, err := os.ReadFile("demo.go")
	if err != nil {
		t.Fatal(err)
	}
	set := regexp.MustCompile(`"(TETHER_[A-Z_]+)":|fixed\["(TETHER_[A-Z_]+)"\]`).FindAllStringSubmatch(string(src), -1)
	if len(set) < 5 {
		t.Fatalf("found %d variables the demo sets: the pattern is stale", len(set))
	}
	for _, m := range set {
		if v := m[1] + m[2]; !slices.Contains(fixedVars, v) {
			t.Errorf("the demo sets %s, but EnvHelp lists it as the user's", v)
		}
	}
	// What the demo reads itself is in its own list.
	for _, m := range regexp.MustCompile(`o\.Getenv\("(TETHER_[A-Z_]+)"\)`).FindAllStringSubmatch(string(src), -1) {
		if !slices.ContainsFunc(demoVars, func(d bff.EnvVar) bool { return d.Name == m[1] }) {
			t.Errorf("the demo reads %s, but EnvHelp does not list it among the demo's", m[1])
		}
	}
}
