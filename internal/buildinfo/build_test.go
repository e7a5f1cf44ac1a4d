package buildinfo

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the module root, from this package's directory.
const repoRoot = "../.."

// TestDocumentedBuildCommand builds cmd/ctm with the README's build command
// (its $(...) replaced by fixed values, its ./cmd/... by ./cmd/ctm) and
// checks that -version says the version, commit and date given.
func TestDocumentedBuildCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^go build -trimpath -ldflags .*$`).Find(readme)
	if line == nil {
		t.Fatal("README.md has no line starting `go build -trimpath -ldflags`")
	}
	const ver, rev, date = "v9.8.7-test", "0123456789abcdef0123456789abcdef01234567", "2031-02-03T04:05:06Z"
	values := map[string]string{"git describe": ver, "git rev-parse": rev, "date ": date}
	cmdline := regexp.MustCompile(`\$\([^)]*\)`).ReplaceAllStringFunc(string(line), func(sub string) string {
		for prefix, v := range values {
			if strings.HasPrefix(sub[2:], prefix) {
				return v
			}
		}
		t.Fatalf("README build command: unexpected substitution %s", sub)
		return ""
	})
	args := shellWords(t, cmdline)
	out := t.TempDir()
	for i, a := range args {
		switch a {
		case "bin/":
			args[i] = out + string(filepath.Separator)
		case "./cmd/...":
			args[i] = "./cmd/ctm"
		}
	}
	if args[0] != "go" || !strings.Contains(cmdline, "-o bin/ ./cmd/...") {
		t.Fatalf("README build command %q: want go build ... -o bin/ ./cmd/...", line)
	}
	build := exec.CommandContext(t.Context(), "go", args[1:]...)
	build.Dir = repoRoot
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b)
	}
	got, err := exec.CommandContext(t.Context(), filepath.Join(out, "ctm"), "-version").Output()
	if err != nil {
		t.Fatalf("ctm -version: %v", err)
	}
	for _, want := range []string{ver, "commit " + rev, "built " + date, "go1."} {
		if !strings.Contains(string(got), want) {
			t.Errorf("ctm -version = %q; want %q in it", got, want)
		}
	}
}

// shellWords splits a command line as sh would for plain words and
// double-quoted strings (all the README's build command uses).
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, inWord = !inQuote, true
		case r == ' ' && !inQuote:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
			}
			inWord = false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inQuote {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
