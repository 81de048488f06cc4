package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/mirror"
)

type catalogLine struct {
	Line     int    `json:"line"`
	Entry    string `json:"entry"`
	RepoType string `json:"repo_type"`
	Passed   bool   `json:"passed"`
	Error    string `json:"error"`
	Code     *int   `json:"code"`
	Report   *struct {
		Source struct {
			Repo   string `json:"repo"`
			Commit string `json:"commit"`
		} `json:"source"`
	} `json:"report"`
}

func catalogLines(t *testing.T, out string) []catalogLine {
	t.Helper()
	var lines []catalogLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var cl catalogLine
		if err := json.Unmarshal([]byte(l), &cl); err != nil {
			t.Fatalf("not a JSON line: %q (%v)", l, err)
		}
		lines = append(lines, cl)
	}
	return lines
}

// Two shards of one catalog mirror its union into one store; a failing
// entry (a repo the Hub lacks, a repo type not mirrored) fails its shard's
// exit code while the other entries of the shard are mirrored; each entry
// gives one JSON line.
func TestMirrorCatalogShards(t *testing.T) {
	hub := hubtest.New(t)
	commits := map[string]string{}
	for _, name := range []string{"a", "b", "c", "d"} {
		repo := hub.AddRepo("org/" + name)
		repo.AddFile("config.json", []byte(`{"model_type": "gpt2", "name": "`+name+`"}`))
		repo.AddFile("weights.bin", pushRandom(uint64(name[0]), 4096))
		commits["org/"+name] = repo.Commit()
	}
	data := hub.AddRepo("datasets/org/e")
	data.AddFile("train.csv", []byte("a,b\n1,2\n"))
	commits["datasets/org/e"] = data.Commit()
	t.Setenv("HF_ENDPOINT", hub.URL())
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_CACHE", "")
	cat := filepath.Join(t.TempDir(), "catalog.txt")
	os.WriteFile(cat, []byte(`# entries 0..5
org/a
org/b@main      # index 1
org/c

org/missing
org/d --repo-type model
org/e --repo-type dataset
`), 0o644)
	to := filepath.Join(t.TempDir(), "mirror")

	// Shard 0: org/a, org/c, org/d (indices 0, 2, 4): all pass.
	out, stderr, code := runCLI(t, "mirror", "--catalog", cat, "--shard", "0/2", "--parallel", "2", "--to", to, "--json")
	if code != 0 {
		t.Fatalf("shard 0: exit %d: %s\n%s", code, stderr, out)
	}
	lines := catalogLines(t, out)
	var got []string
	for _, l := range lines {
		if !l.Passed || l.Report == nil || l.Report.Source.Commit != commits[l.Report.Source.Repo] {
			t.Errorf("shard 0: %+v", l)
		}
		got = append(got, l.Entry)
	}
	sort.Strings(got)
	if strings.Join(got, " ") != "org/a@main org/c@main org/d@main" {
		t.Errorf("shard 0 mirrored %v", got)
	}

	// Shard 1: org/b and the dataset pass; org/missing fails.
	out, stderr, code = runCLI(t, "mirror", "--catalog", cat, "--shard", "1/2", "--to", to, "--json")
	if code != exitError {
		t.Fatalf("shard 1: exit %d, want %d: %s\n%s", code, exitError, stderr, out)
	}
	lines = catalogLines(t, out)
	if len(lines) != 4 {
		t.Fatalf("shard 1: %d lines, want 3 entries and the error:\n%s", len(lines), out)
	}
	byLine := map[int]catalogLine{}
	for _, l := range lines[:3] {
		byLine[l.Line] = l
	}
	if l := byLine[3]; !l.Passed || l.Entry != "org/b@main" {
		t.Errorf("org/b: %+v", l)
	}
	if l := byLine[6]; l.Passed || l.Entry != "org/missing@main" || !strings.Contains(l.Error, "step pull") {
		t.Errorf("org/missing: %+v", l)
	}
	if l := byLine[8]; !l.Passed || l.RepoType != "dataset" || l.Report == nil || l.Report.Source.Commit != commits["datasets/org/e"] {
		t.Errorf("the dataset entry: %+v", l)
	}
	if last := lines[3]; last.Code == nil || *last.Code != exitError || !strings.Contains(last.Error, "1 of 3 catalog entries failed") {
		t.Errorf("the closing error line: %+v", last)
	}

	// The store holds the union of the shards.
	s := openMirror(t, to)
	repos, err := mirror.ListRepos(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(repos, " ") != "datasets/org/e org/a org/b org/c org/d" {
		t.Errorf("the mirror holds %v", repos)
	}
	for repo, commit := range commits {
		if m, err := mirror.Resolve(context.Background(), s, repo, "main"); err != nil || m.Commit != commit {
			t.Errorf("%s: %v", repo, err)
		}
	}

	// Without --json: a line per entry and a summary.
	out, _, code = runCLI(t, "mirror", "--catalog", cat, "--shard", "1/2", "--to", to)
	if code != exitError || !strings.Contains(squeeze(out), "ok line 3 org/b@main") || !strings.Contains(squeeze(out), "FAILED line 6 org/missing@main") ||
		!strings.Contains(out, "3 entries (shard 1/2 of 6 entries), 2 passed, 1 failed") {
		t.Errorf("text output: exit %d\n%s", code, out)
	}
}

func TestMirrorCatalogUsage(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	os.WriteFile(good, []byte("org/a\n"), 0o644)
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("org/a\n# fine\norg/b --quantize int3\n"), 0o644)
	to := filepath.Join(dir, "mirror")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--catalog", bad}, "bad.txt:3: --quantize"},
		{[]string{"--catalog", good, "org/a"}, "takes no REPO"},
		{[]string{"--catalog", good, "--shard", "2/2"}, "--shard"},
		{[]string{"--catalog", good, "--shard", "1"}, "--shard"},
		{[]string{"--catalog", good, "--parallel", "0"}, "--parallel"},
		{[]string{"--catalog", good, "--revision", "v1"}, "--revision"},
		{[]string{"org/a", "--shard", "0/2"}, "--shard goes with --catalog"},
		{[]string{"--catalog", filepath.Join(dir, "nope.txt")}, "nope.txt"},
	} {
		_, stderr, code := runCLI(t, append([]string{"mirror", "--to", to}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q: %s", tc.args, code, exitUsage, tc.want, stderr)
		}
	}
}

// An entry's --quantize builds that entry's variants (validated, pushed
// beside it); an entry without one gets the command line's (none here).
func TestMirrorCatalogEntryVariants(t *testing.T) {
	hub := hubtest.New(t)
	for _, name := range []string{"acme/tiny", "acme/plain"} {
		repo := hub.AddRepo(name)
		for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} {
			b, err := os.ReadFile(filepath.Join(fixtureModels, "llama-tiny-st", f))
			if err != nil {
				t.Fatal(err)
			}
			repo.AddFile(f, b)
		}
	}
	t.Setenv("HF_ENDPOINT", hub.URL())
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_CACHE", "")
	cat := filepath.Join(t.TempDir(), "catalog.txt")
	os.WriteFile(cat, []byte("acme/tiny --quantize fp16\nacme/plain\n"), 0o644)
	to := filepath.Join(t.TempDir(), "mirror")
	out, stderr, code := runCLI(t, "mirror", "--catalog", cat, "--to", to, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	if lines := catalogLines(t, out); len(lines) != 2 || !lines[0].Passed || !lines[1].Passed {
		t.Fatalf("%s", out)
	}
	s := openMirror(t, to)
	ctx := context.Background()
	if _, err := mirror.Resolve(ctx, s, "acme/tiny", "fp16"); err != nil {
		t.Errorf("acme/tiny has no fp16 variant: %v", err)
	}
	if _, err := mirror.Resolve(ctx, s, "acme/plain", "fp16"); err == nil {
		t.Error("acme/plain got the other entry's variant")
	}
}
