package mirror

import (
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/storage"
)

// TestTreePageCursor: whatever the page size, following treePage's
// cursors lists every entry under a directory exactly once, the same as a
// listing in one page, including around names that sort between a
// directory and its contents ("a-c" sorts after "a" and before "a/b").
func TestTreePageCursor(t *testing.T) {
	paths := []string{"a-c", "a.txt", "a/b", "a/x/y", "a/x/z/w", "a/x0", "a0/q", "b", "c/d/e/f", "c/d/g", "c/h"}
	sort.Strings(paths)
	m := &Manifest{Commit: strings.Repeat("1", 40)}
	for _, p := range paths {
		m.Files = append(m.Files, Entry{Path: p, Size: 1, SHA256: strings.Repeat("0", 64), GitOID: GitBlobOID([]byte(p))})
	}
	trees := m.treeOIDs()
	// What each listing must hold.
	want := func(dir string, recursive bool) []string {
		prefix := ""
		if dir != "" {
			prefix = dir + "/"
		}
		set := map[string]bool{}
		for _, p := range paths {
			rest, ok := strings.CutPrefix(p, prefix)
			if !ok {
				continue
			}
			parts := strings.Split(rest, "/")
			for i := 1; i < len(parts); i++ {
				if recursive || i == 1 {
					set[prefix+strings.Join(parts[:i], "/")+"/"] = true
				}
			}
			if recursive || len(parts) == 1 {
				set[p] = true
			}
		}
		var out []string
		for p := range set {
			out = append(out, p)
		}
		sort.Strings(out)
		return out
	}
	for _, dir := range []string{"", "a", "a/x", "c", "c/d"} {
		for _, recursive := range []bool{false, true} {
			w := want(dir, recursive)
			for limit := 1; limit <= len(w)+1; limit++ {
				var got []string
				cur, pages := treeCursor{}, 0
				for {
					page, next, more := treePage(m, trees, dir, recursive, cur, limit, nil)
					pages++
					if len(page) > limit || len(page) == 0 && more || pages > len(w)+2 {
						t.Fatalf("dir %q recursive %v limit %d: page %d of %d entries, more %v", dir, recursive, limit, pages, len(page), more)
					}
					for _, e := range page {
						p := e.Path
						if e.Type == hubproto.TypeDirectory {
							p += "/"
							if e.OID != trees[e.Path] || e.OID == "" {
								t.Errorf("directory %s: oid %q, want %q", e.Path, e.OID, trees[e.Path])
							}
						}
						got = append(got, p)
					}
					if !more {
						break
					}
					// The cursor goes through its encoding, as in a Link.
					var ok bool
					if cur, ok = decodeTreeCursor(next.encode()); !ok {
						t.Fatalf("cursor %+v does not decode", next)
					}
				}
				sorted := append([]string(nil), got...)
				sort.Strings(sorted)
				if fmt.Sprint(sorted) != fmt.Sprint(w) {
					t.Errorf("dir %q recursive %v limit %d: listed %v, want %v", dir, recursive, limit, got, w)
				}
				// A directory comes before everything in it.
				for i, p := range got {
					if strings.HasSuffix(p, "/") {
						for _, q := range got[:i] {
							if strings.HasPrefix(q, p) {
								t.Errorf("dir %q recursive %v limit %d: %s listed before its directory %s", dir, recursive, limit, q, p)
							}
						}
					}
				}
			}
		}
	}
	for _, bad := range []string{"!!", "MQ", "LTEuMA"} { // not base64, "1" without a '.', "-1.0"
		if _, ok := decodeTreeCursor(bad); ok {
			t.Errorf("cursor %q decodes", bad)
		}
	}
}

// BenchmarkTreePage lists one page of 1000 entries from the middle of a
// dataset of 20,000 files, recursively and at the top level: a page costs
// its own entries, not the repo's size.
func BenchmarkTreePage(b *testing.B) {
	m := &Manifest{Commit: strings.Repeat("1", 40)}
	for i := range 20000 {
		p := fmt.Sprintf("data/%s/part-%02d/%05d.parquet", []string{"test", "train", "validation"}[i%3], i/1000, i)
		m.Files = append(m.Files, Entry{Path: p, Size: 100, SHA256: strings.Repeat("0", 64), GitOID: strings.Repeat("2", 40)})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	trees := m.treeOIDs()
	for _, c := range []struct {
		name      string
		dir       string
		recursive bool
	}{{"recursive", "", true}, {"top", "", false}, {"subdir", "data/train", false}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page, _, _ := treePage(m, trees, c.dir, c.recursive, treeCursor{file: 10000}, 1000, nil)
				if len(page) == 0 {
					b.Fatal("empty page")
				}
			}
		})
	}
}

// BenchmarkServeTreeFirstPage serves the first page of the recursive tree
// of a 20,000-file dataset (manifest cached), JSON encoding included.
func BenchmarkServeTreeFirstPage(b *testing.B) {
	m := &Manifest{Commit: strings.Repeat("1", 40)}
	for i := range 20000 {
		p := fmt.Sprintf("data/%s/part-%02d/%05d.parquet", []string{"test", "train", "validation"}[i%3], i/1000, i)
		m.Files = append(m.Files, Entry{Path: p, Size: 100, SHA256: strings.Repeat("0", 64), GitOID: strings.Repeat("2", 40)})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	st, err := storage.NewLocal(b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	s := NewServer(st, ServerOptions{})
	s.remember("org/big", m)
	url := "/api/models/org/big/tree/" + m.Commit + "?recursive=true"
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", url, nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
