package pipeline

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCatalog(t *testing.T) {
	cat := `# models to mirror
org/a

org/b@v1.0   # a tag
org/c --quantize int8,fp16 --repo-type model
org/d --quantize=bf16 --quantize int8
  gpt2@0123456789012345678901234567890123456789
`
	entries, err := ParseCatalog(strings.NewReader(cat), "cat.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line, index int
		spec        string
		quant       string
	}{{2, 0, "org/a@main", ""}, {4, 1, "org/b@v1.0", ""}, {5, 2, "org/c@main", "int8,fp16"}, {6, 3, "org/d@main", "bf16,int8"}, {7, 4, "gpt2@0123456789012345678901234567890123456789", ""}}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(entries), len(want), entries)
	}
	for i, w := range want {
		e := entries[i]
		var q []string
		for _, s := range e.Quantize {
			q = append(q, string(s))
		}
		if e.Line != w.line || e.Index != w.index || e.Spec() != w.spec || strings.Join(q, ",") != w.quant || e.RepoType != "model" {
			t.Errorf("entry %d: %+v, want %+v", i, e, w)
		}
	}
}

func TestParseCatalogErrors(t *testing.T) {
	for _, tc := range []struct{ cat, want string }{
		{"org/a\nnot a repo!\n", "cat.txt:2:"},
		{"org/a\n\n# c\norg/b --quantize int4\n", "cat.txt:4: --quantize"},
		{"org/a --repo-type model --repo-type model\n", "cat.txt:1: --repo-type given twice"},
		{"org/a --repo-type modle\n", "cat.txt:1: --repo-type: repo type \"modle\""},
		{"datasets/org/a --repo-type space\n", "cat.txt:1: repo \"datasets/org/a\" is a dataset, but the repo type is space"},
		{"org/a --revision v1\n", "cat.txt:1: unknown \"--revision\""},
		{"org/a --quantize\n", "cat.txt:1: --quantize needs a value"},
		{"--quantize int8 org/a\n", "cat.txt:1: the line starts with"},
		{"# nothing\n\n", "cat.txt: no entries"},
		{"org/a\n" + strings.Repeat("x", maxCatalogLine+1) + "\n", "cat.txt:2: line longer"},
	} {
		_, err := ParseCatalog(strings.NewReader(tc.cat), "cat.txt")
		if err == nil || !errors.Is(err, ErrCatalog) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one with %q", tc.cat, err, tc.want)
		}
	}
}

// The shards of a catalog are disjoint and together hold every entry.
func TestShardCatalog(t *testing.T) {
	var b strings.Builder
	for i := range 11 {
		b.WriteString("# comment\norg/m" + string(rune('a'+i)) + "\n")
	}
	entries, err := ParseCatalog(strings.NewReader(b.String()), "c")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 11, 12} {
		seen := map[string]int{}
		for i := range n {
			shard, err := ShardCatalog(entries, i, n)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range shard {
				if e.Index%n != i {
					t.Errorf("shard %d/%d holds entry %d", i, n, e.Index)
				}
				seen[e.Repo]++
			}
		}
		if len(seen) != len(entries) {
			t.Errorf("N=%d: the shards hold %d of %d entries", n, len(seen), len(entries))
		}
		for repo, k := range seen {
			if k != 1 {
				t.Errorf("N=%d: %s in %d shards", n, repo, k)
			}
		}
	}
	for _, bad := range [][2]int{{2, 2}, {-1, 2}, {0, 0}} {
		if _, err := ShardCatalog(entries, bad[0], bad[1]); err == nil {
			t.Errorf("shard %d/%d accepted", bad[0], bad[1])
		}
	}
}
