package safetensors

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	nlp "github.com/nlpodyssey/safetensors"

	"github.com/hubmirror/hubmirror/weights"
)

// addTestdata seeds f with every testdata file whose name has the suffix.
func addTestdata(f *testing.F, suffix string) {
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, suffix) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f.Add(b)
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
}

// FuzzParse feeds the reader arbitrary files. It must never panic or give
// anything but a format error; what it accepts must satisfy the format's
// invariants, survive a round trip through the writer, and (F8 aside) be
// read the same way by the oracle library.
func FuzzParse(f *testing.F) {
	addTestdata(f, ".safetensors")
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data, "fuzz")
		h, herr := ReadHeader(bytes.NewReader(data), int64(len(data)))
		if (err == nil) != (herr == nil) {
			t.Fatalf("Parse: %v; ReadHeader: %v", err, herr)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v (%T) is not a format error", err, err)
			}
			return
		}
		if len(h.Tensors) != g.Len() {
			t.Fatalf("ReadHeader: %d tensors, Parse: %d", len(h.Tensors), g.Len())
		}
		pos := h.DataStart
		hasF8 := false
		for i, tensor := range g.Tensors() {
			b, err := tensor.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if h.Tensors[i].Begin+h.DataStart != pos || !bytes.Equal(b, data[pos:pos+int64(len(b))]) {
				t.Fatalf("%s: not the file's bytes at %d", tensor.Name, pos)
			}
			pos += int64(len(b))
			hasF8 = hasF8 || tensor.DType == weights.F8E4M3 || tensor.DType == weights.F8E5M2
		}
		if pos != int64(len(data)) {
			t.Fatalf("tensors end at %d of %d bytes", pos, len(data))
		}

		// Round trip through the writer.
		var buf bytes.Buffer
		if _, err := Write(&buf, g.Tensors(), g.Metadata); err != nil {
			t.Fatalf("writer refuses what the reader accepted: %v", err)
		}
		g2, err := Parse(buf.Bytes(), "rewritten")
		if err != nil {
			t.Fatalf("reader refuses what the writer wrote: %v", err)
		}
		if g2.Len() != g.Len() || len(g2.Metadata) != len(g.Metadata) {
			t.Fatalf("round trip: %d tensors, %d metadata; had %d, %d", g2.Len(), len(g2.Metadata), g.Len(), len(g.Metadata))
		}
		for k, v := range g.Metadata {
			if g2.Metadata[k] != v {
				t.Fatalf("round trip: metadata %q = %q, had %q", k, g2.Metadata[k], v)
			}
		}
		for _, want := range g.Tensors() {
			got, ok := g2.Tensor(want.Name)
			if !ok || got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) {
				t.Fatalf("round trip: %q became %v", want.Name, got)
			}
			gb, _ := got.Bytes()
			wb, _ := want.Bytes()
			if !bytes.Equal(gb, wb) {
				t.Fatalf("round trip: %q bytes differ", want.Name)
			}
		}

		// The oracle reads what we accept the same way.
		if hasF8 {
			return
		}
		st, err := nlp.Deserialize(data)
		if err != nil {
			t.Fatalf("oracle rejects a file we accept: %v", err)
		}
		if st.Len() != g.Len() {
			t.Fatalf("oracle: %d tensors, we: %d", st.Len(), g.Len())
		}
		for _, want := range g.Tensors() {
			v, ok := st.Tensor(want.Name)
			wb, _ := want.Bytes()
			if !ok || v.DType().String() != want.DType.String() || !bytes.Equal(v.Data(), wb) {
				t.Fatalf("oracle reads %q differently", want.Name)
			}
		}
	})
}

// FuzzReadIndex feeds the index parser arbitrary files: no panic, only
// format errors, and what it accepts names each tensor once and only plain
// shard file names.
func FuzzReadIndex(f *testing.F) {
	addTestdata(f, ".index.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := ReadIndex(bytes.NewReader(data), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not a format error", err)
			}
			return
		}
		names := map[string]bool{}
		for _, e := range idx.WeightMap {
			if names[e.Tensor] {
				t.Fatalf("%q twice", e.Tensor)
			}
			names[e.Tensor] = true
			if !slices.Contains(idx.Shards, e.File) {
				t.Fatalf("shard %q not listed", e.File)
			}
		}
		for _, s := range idx.Shards {
			if !plainFileName(s) || filepath.Base(s) != s {
				t.Fatalf("shard name %q accepted", s)
			}
		}
	})
}
