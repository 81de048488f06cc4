package hubclient_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient"
)

// FuzzFilter: every fnmatch pattern compiles (fnmatch has no syntax
// errors) and matching never panics.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{"*", "[!a-c-e]x", "[z-a]", "[]]", "[", "a\\b/", "{a,b}", "[[:alpha:]]", "\xff["} {
		f.Add(s, "a/b.txt")
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		flt, err := hubclient.NewFilter([]string{pattern}, []string{pattern})
		if err != nil {
			t.Fatalf("pattern %q: %v", pattern, err)
		}
		if flt.Match(path) {
			t.Fatalf("pattern %q both includes and excludes %q, yet matched", pattern, path)
		}
	})
}

// FuzzValidateRepoPath: an accepted path stays inside the directory it is
// joined to and is already clean.
func FuzzValidateRepoPath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../../b", "/etc", "a\\b", "a\x00", "./a", "a/", "C:x", "..", "...", "a/.../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if hubclient.ValidateRepoPath(p) != nil {
			return
		}
		base := "/base/dir"
		joined := filepath.Join(base, filepath.FromSlash(p))
		if !strings.HasPrefix(joined, base+"/") {
			t.Fatalf("%q escapes: %s", p, joined)
		}
		if filepath.Clean(p) != p {
			t.Fatalf("%q is not clean", p)
		}
	})
}
