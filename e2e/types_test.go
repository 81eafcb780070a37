package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The example type-checks against the package's index.d.ts under
// `tsc --noEmit --strict`, including typecheck/api.ts, which uses the
// whole API and marks mistakes with @ts-expect-error (an unused directive
// is itself an error, so a mistake the types stopped catching fails here).
func TestTypesExample(t *testing.T) {
	dir := exampleDir(t)
	cmd := exec.Command(nodeBin(dir, "tsc"), "--noEmit", "--strict", "-p", ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc --noEmit --strict on the example: %v\n%s", err, out)
	}
}

// With the @ts-expect-error directives taken out, typecheck/api.ts must
// fail to compile with an error on each line they marked, and nowhere else:
// tether.fetch(42), a misspelt event name in a typed listener, a detail
// member of another event, an unknown option, ...
func TestTypesRejectMistakes(t *testing.T) {
	dir := exampleDir(t)
	src, err := os.ReadFile(filepath.Join(dir, "typecheck", "api.ts"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	var want []int // 1-based lines that must not compile
	for i, l := range lines {
		if strings.TrimSpace(l) == "" || !strings.HasPrefix(strings.TrimSpace(l), "// @ts-expect-error") {
			continue
		}
		lines[i] = strings.Replace(l, "// @ts-expect-error", "// mistake:", 1)
		want = append(want, i+2)
	}
	if len(want) < 5 {
		t.Fatalf("typecheck/api.ts marks %d mistakes; want the fixture's (at least 5)", len(want))
	}
	// A project of its own: the bad file only, the package's types by path.
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "bad.ts"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	types := filepath.Join(dir, "node_modules", "@tetherauth", "tether", "index.d.ts")
	cfg, _ := json.Marshal(map[string]any{
		"compilerOptions": map[string]any{
			"target": "ES2022", "module": "ESNext", "moduleResolution": "bundler", "lib": []string{"ES2022", "DOM"},
			"types": []string{}, "strict": true, "noEmit": true, "skipLibCheck": false,
			"paths": map[string][]string{"@tetherauth/tether": {types}},
		},
		"files": []string{"bad.ts"},
	})
	if err := os.WriteFile(filepath.Join(tmp, "tsconfig.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nodeBin(dir, "tsc"), "-p", tmp)
	cmd.Dir = tmp
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("tsc accepted the mistakes:\n%s", out)
	}
	var got []int
	for _, m := range regexp.MustCompile(`(?m)^bad\.ts\((\d+),\d+\): error (TS\d+)`).FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(m[1])
		if !slices.Contains(got, n) {
			got = append(got, n)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("tsc found errors on lines %v; want exactly %v (the marked mistakes):\n%s", got, want, out)
	}
	t.Logf("tsc rejected the %d marked mistakes, each on its line", len(got))
}
