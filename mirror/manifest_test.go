package mirror

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGitOIDs(t *testing.T) {
	if got := GitBlobOID([]byte("hello\n")); got != "ce013625030ba8dba906f756967f9e9ca394464a" {
		t.Errorf("GitBlobOID(hello) = %s", got)
	}
	// Blob ids the Hub reports for LFS files of openai-community/gpt2
	// (huggingface_hub's list_repo_tree documentation).
	for _, c := range []struct {
		sha  string
		size int64
		oid  string
	}{
		{"d88b0d6a6ff9c3f8151f9d3228f57092aaea997f09af009eefd7373a77b5abb9", 497764107, "8095a62ccb4d806da7666fcda07467e2d150218e"},
		{"9be78edb5b928eba33aa88f431551348f7466ba9f5ef3daf1d552398722a5436", 548123560, "64eaa9c526867e404b68f2c5d66fd78e27026523"},
	} {
		if got := LFSOID(c.sha, c.size); got != c.oid {
			t.Errorf("LFSOID(%s, %d) = %s, want %s", c.sha[:8], c.size, got, c.oid)
		}
		if n := (Entry{SHA256: c.sha, Size: c.size}).PointerSize(); n != 134 {
			t.Errorf("pointer size %d, want 134", n)
		}
	}
}

// TestTreeOIDsMatchGit compares the tree ids the tree API reports with the
// ones git computes for the same files.
func TestTreeOIDsMatchGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	files := map[string]string{
		"config.json":             "{}\n",
		"a/b/c.txt":               "c",
		"a/b.txt":                 "b",
		"a-b/x":                   "x",
		"a.b":                     "dot",
		"sub/dir with space/ü.md": "unicode",
	}
	var entries []Entry
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, Entry{Path: p, Size: int64(len(content)), SHA256: strings.Repeat("0", 64), GitOID: GitBlobOID([]byte(content))})
	}
	sortEntries(entries)
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	root := git("write-tree")
	m := &Manifest{Files: entries}
	trees := m.treeOIDs()
	if trees[""] != root {
		t.Errorf("root tree %s, git says %s", trees[""], root)
	}
	for _, d := range []string{"a", "a/b", "a-b", "sub", "sub/dir with space"} {
		want := git("rev-parse", root+":"+d)
		if trees[d] != want {
			t.Errorf("tree %q = %s, git says %s", d, trees[d], want)
		}
	}
}

func validManifest() *Manifest {
	sha := strings.Repeat("a", 64)
	return &Manifest{
		Version: ManifestVersion, Repo: "org/name", Commit: strings.Repeat("1", 40), Created: time.Unix(0, 0).UTC(),
		Source: Source{Kind: "dir"},
		Files: []Entry{
			{Path: "a.txt", Size: 1, SHA256: sha, GitOID: strings.Repeat("b", 40)},
			{Path: "m.safetensors", Size: 100, SHA256: sha, GitOID: LFSOID(sha, 100), LFS: true},
		},
	}
}

func TestParseManifest(t *testing.T) {
	m := validManifest()
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(data, m.Repo, m.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != 2 || got.Files[1] != m.Files[1] {
		t.Errorf("round trip: %+v", got)
	}
	if _, err := ParseManifest(data, "org/other", m.Commit); !errors.Is(err, ErrCorrupt) {
		t.Errorf("manifest under another repo: %v", err)
	}
	mutations := map[string]func(m *Manifest){
		"version":       func(m *Manifest) { m.Version = 2 },
		"unsorted":      func(m *Manifest) { m.Files[0], m.Files[1] = m.Files[1], m.Files[0] },
		"duplicate":     func(m *Manifest) { m.Files[1] = m.Files[0] },
		"negative size": func(m *Manifest) { m.Files[0].Size = -1 },
		"bad sha":       func(m *Manifest) { m.Files[0].SHA256 = "xyz" },
		"bad oid":       func(m *Manifest) { m.Files[0].GitOID = "xyz" },
		"lfs oid":       func(m *Manifest) { m.Files[1].GitOID = strings.Repeat("c", 40) },
		"escaping path": func(m *Manifest) { m.Files[0].Path = "../a.txt" },
		"absolute path": func(m *Manifest) { m.Files[0].Path = "/a.txt" },
		"file and dir": func(m *Manifest) {
			m.Files = append(m.Files, Entry{Path: "m.safetensors/x", Size: 1, SHA256: m.Files[0].SHA256, GitOID: m.Files[0].GitOID})
		},
		"commit": func(m *Manifest) { m.Commit = "main" },
		"variant report": func(m *Manifest) {
			m.Variant = &Variant{Name: "int8", SourceCommit: strings.Repeat("2", 40), Report: "validation.json"}
		},
	}
	for name, mutate := range mutations {
		bad := validManifest()
		mutate(bad)
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
	for name, data := range map[string]string{
		"not json":      "{",
		"unknown field": strings.Replace(string(data), `"version"`, `"bogus": 1, "version"`, 1),
		"trailing type": `{"version": "1"}`,
	} {
		if _, err := ParseManifest([]byte(data), m.Repo, m.Commit); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestCommitIDDeterministic(t *testing.T) {
	a := validManifest().Files
	b := []Entry{a[1], a[0]}
	if CommitID(a, nil) != CommitID(b, nil) {
		t.Error("commit id depends on file order")
	}
	v := &Variant{Name: "int8", SourceCommit: strings.Repeat("2", 40), Report: "validation.json"}
	if CommitID(a, nil) == CommitID(a, v) {
		t.Error("a variant has the commit id of plain content")
	}
	c := append([]Entry(nil), a...)
	c[0].Size++
	if CommitID(a, nil) == CommitID(c, nil) || !IsCommitID(CommitID(a, nil)) {
		t.Error("commit id does not follow content, or is not 40 hex")
	}
}

func TestValidateNames(t *testing.T) {
	for _, id := range []string{"gpt2", "openai-community/gpt2", "a/b", "Org_1/model.v2"} {
		if err := ValidateRepoID(id); err != nil {
			t.Errorf("ValidateRepoID(%q) = %v", id, err)
		}
		dir := strings.TrimPrefix(repoDir(id), repoPrefix)
		if back, ok := repoFromDir(dir); !ok || back != id {
			t.Errorf("repoFromDir(%q) = %q, %v", dir, back, ok)
		}
	}
	for _, id := range []string{"", "a/b/c", "a--b/c", "a/b..c", "-a/b", "a/b.", "a b/c", "../x", "a/", "/a", strings.Repeat("a", 97)} {
		if err := ValidateRepoID(id); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateRepoID(%q) = %v", id, err)
		}
	}
	for _, r := range []string{"main", "v1.0", "refs/pr/1", "int8", "feature/x"} {
		if err := ValidateRevision(r); err != nil {
			t.Errorf("ValidateRevision(%q) = %v", r, err)
		}
	}
	for _, r := range []string{"", strings.Repeat("a", 40), "a..b", "/a", "a/", "a b", "a:b", ".", "..", "a//b"} {
		if err := ValidateRevision(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateRevision(%q) = %v", r, err)
		}
	}
	if k := RefKey("org/name", "refs/pr/1"); k != "repos/models--org--name/refs/refs%2Fpr%2F1" {
		t.Errorf("RefKey = %q", k)
	}
}
