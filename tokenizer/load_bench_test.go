package tokenizer

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLoadGemma3 loads gemma3's 33 MB tokenizer.json with LoadFile:
// "json" from the file gunzipped once beforehand (what bench/tokenize.sh
// times), "gz" from the gzipped file (gunzip included).
//
//	go test -run '^$' -bench LoadGemma3 -benchtime 5x ./tokenizer
func BenchmarkLoadGemma3(b *testing.B) {
	gz := filepath.Join(referenceDir, "tokenizers", "gemma3.json.gz")
	f, err := os.Open(gz)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	plain := filepath.Join(b.TempDir(), "tokenizer.json")
	if err := os.WriteFile(plain, data, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, path string }{{"json", plain}, {"gz", gz}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := LoadFile(c.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
