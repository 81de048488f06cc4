package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/hubmirror/hubmirror/weights"
)

// readerTests lists every top-level fixture in testdata (written by
// testdata/gen and testdata/gen_torch.py) with the sentinel error it must
// give, nil for a valid file, and the tensor the error must name.
var readerTests = []struct {
	file   string
	err    error
	tensor string
}{
	{file: "valid_all_dtypes.safetensors"},
	{file: "valid_scalar.safetensors"},
	{file: "valid_empty_tensor.safetensors"},
	{file: "valid_metadata.safetensors"},
	{file: "valid_no_tensors.safetensors"},
	{file: "valid_null_metadata.safetensors"},
	{file: "valid_header_order.safetensors"},
	{file: "valid_whitespace.safetensors"},
	{file: "valid_escaped_name.safetensors"},
	{file: "torch_dtypes.safetensors"},

	{file: "too_short.safetensors", err: ErrTooShort},
	{file: "empty_file.safetensors", err: ErrTooShort},
	{file: "header_too_large.safetensors", err: ErrHeaderTooLarge},
	{file: "header_length_max_u64.safetensors", err: ErrHeaderTooLarge},
	{file: "header_beyond_file.safetensors", err: ErrHeaderLength},
	{file: "header_empty.safetensors", err: ErrHeaderStart},
	{file: "header_leading_space.safetensors", err: ErrHeaderStart},
	{file: "header_array.safetensors", err: ErrHeaderStart},
	{file: "header_bad_utf8_name.safetensors", err: ErrHeaderUTF8},
	{file: "header_bad_utf8_metadata.safetensors", err: ErrHeaderUTF8},
	{file: "header_lone_surrogate.safetensors", err: ErrHeaderJSON},
	{file: "header_lone_low_surrogate.safetensors", err: ErrHeaderJSON},
	{file: "header_truncated_json.safetensors", err: ErrHeaderJSON},
	{file: "header_trailing_comma.safetensors", err: ErrHeaderJSON},
	{file: "header_trailing_junk.safetensors", err: ErrHeaderJSON},
	{file: "header_two_objects.safetensors", err: ErrHeaderJSON},
	{file: "header_nul_padding.safetensors", err: ErrHeaderJSON},
	{file: "metadata_string.safetensors", err: ErrMetadata},
	{file: "metadata_number_value.safetensors", err: ErrMetadata},
	{file: "metadata_nested.safetensors", err: ErrMetadata},
	{file: "entry_not_object.safetensors", err: ErrEntry, tensor: "t"},
	{file: "entry_missing_dtype.safetensors", err: ErrEntry, tensor: "t"},
	{file: "entry_missing_shape.safetensors", err: ErrEntry, tensor: "t"},
	{file: "entry_missing_offsets.safetensors", err: ErrEntry, tensor: "t"},
	{file: "entry_extra_key.safetensors", err: ErrEntry, tensor: "t"},
	{file: "entry_deep_nesting.safetensors", err: ErrEntry, tensor: "t"},
	{file: "dtype_number.safetensors", err: ErrEntry, tensor: "t"},
	{file: "dtype_unknown.safetensors", err: ErrDType, tensor: "t"},
	{file: "dtype_lowercase.safetensors", err: ErrDType, tensor: "t"},
	{file: "shape_negative.safetensors", err: ErrShape, tensor: "t"},
	{file: "shape_fraction.safetensors", err: ErrShape, tensor: "t"},
	{file: "shape_exponent.safetensors", err: ErrShape, tensor: "t"},
	{file: "shape_string.safetensors", err: ErrShape, tensor: "t"},
	{file: "shape_not_array.safetensors", err: ErrShape, tensor: "t"},
	{file: "shape_out_of_range.safetensors", err: ErrShape, tensor: "t"},
	{file: "shape_count_overflow.safetensors", err: ErrShape, tensor: "t"},
	{file: "shape_bytes_overflow.safetensors", err: ErrShape, tensor: "t"},
	{file: "offsets_one_value.safetensors", err: ErrDataOffsets, tensor: "t"},
	{file: "offsets_three_values.safetensors", err: ErrDataOffsets, tensor: "t"},
	{file: "offsets_negative.safetensors", err: ErrDataOffsets, tensor: "t"},
	{file: "offsets_fraction.safetensors", err: ErrDataOffsets, tensor: "t"},
	{file: "offsets_not_array.safetensors", err: ErrDataOffsets, tensor: "t"},
	{file: "offsets_out_of_range.safetensors", err: ErrDataOffsets, tensor: "t"},
	{file: "layout_gap_at_start.safetensors", err: ErrNotContiguous, tensor: "t"},
	{file: "layout_gap_between.safetensors", err: ErrNotContiguous, tensor: "b"},
	{file: "layout_overlap.safetensors", err: ErrNotContiguous, tensor: "b"},
	{file: "layout_end_before_begin.safetensors", err: ErrNotContiguous, tensor: "b"},
	{file: "size_too_few_bytes.safetensors", err: ErrDataSize, tensor: "t"},
	{file: "size_empty_with_bytes.safetensors", err: ErrDataSize, tensor: "t"},
	{file: "file_trailing_bytes.safetensors", err: ErrFileSize},
	{file: "file_missing_bytes.safetensors", err: ErrFileSize},
	{file: "duplicate_tensor.safetensors", err: ErrDuplicate, tensor: "t"},
	{file: "duplicate_metadata.safetensors", err: ErrDuplicate},
	{file: "duplicate_metadata_key.safetensors", err: ErrDuplicate},
	{file: "duplicate_entry_key.safetensors", err: ErrDuplicate, tensor: "t"},
}

// allSentinels are the sentinels a malformed file can give; each test checks
// that an error matches exactly one of them.
var allSentinels = []error{ErrTooShort, ErrHeaderTooLarge, ErrHeaderLength, ErrHeaderUTF8, ErrHeaderStart,
	ErrHeaderJSON, ErrMetadata, ErrEntry, ErrDType, ErrShape, ErrDataOffsets, ErrNotContiguous, ErrDataSize,
	ErrFileSize, ErrDuplicate, ErrIndex, ErrShardName, ErrIndexMismatch}

// checkErr asserts that err is the format error want, names file and
// tensor, and matches no other sentinel.
func checkErr(t *testing.T, err, want error, file, tensor string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not match %v", err, want)
	}
	if !errors.Is(err, ErrFormat) {
		t.Errorf("error %q does not match ErrFormat", err)
	}
	for _, s := range allSentinels {
		if s != want && errors.Is(err, s) {
			t.Errorf("error %q also matches %v", err, s)
		}
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %q is not an *Error", err)
	}
	if e.File != file {
		t.Errorf("Error.File = %q, want %q", e.File, file)
	}
	if e.Tensor != tensor {
		t.Errorf("Error.Tensor = %q, want %q", e.Tensor, tensor)
	}
	if file != "" && !strings.Contains(err.Error(), file) {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestReader(t *testing.T) {
	for _, tt := range readerTests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			g, err := Open(path)
			checkErr(t, err, tt.err, path, tt.tensor)
			if g != nil {
				checkGraph(t, g, path, data)
				if err := g.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}

			g, err = Parse(data, "mem:"+tt.file)
			checkErr(t, err, tt.err, "mem:"+tt.file, tt.tensor)
			if g != nil {
				checkGraph(t, g, "mem:"+tt.file, data)
			}

			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h, err := ReadHeader(f, int64(len(data)))
			checkErr(t, err, tt.err, path, tt.tensor)
			if h != nil && len(h.Tensors) != 0 && h.Tensors[len(h.Tensors)-1].End+h.DataStart != int64(len(data)) {
				t.Errorf("ReadHeader: last tensor ends at %d, file has %d bytes", h.Tensors[len(h.Tensors)-1].End+h.DataStart, len(data))
			}

			g, err = ReadGraph(f, int64(len(data)), path)
			checkErr(t, err, tt.err, path, tt.tensor)
			if g != nil {
				checkGraph(t, g, path, data)
			}
		})
	}
}

// checkGraph checks the invariants of a graph read from data: tensors in
// offset order, contiguous, sized by dtype and shape, each tensor's bytes
// the file's bytes at its place.
func checkGraph(t *testing.T, g *weights.Graph, name string, data []byte) {
	t.Helper()
	if name != "" && !reflect.DeepEqual(g.Files, []string{name}) {
		t.Errorf("Files = %q, want [%q]", g.Files, name)
	}
	n := binary.LittleEndian.Uint64(data)
	pos := 8 + int(n)
	for _, tensor := range g.Tensors() {
		b, err := tensor.Bytes()
		if err != nil {
			t.Fatalf("%s: %v", tensor.Name, err)
		}
		if !bytes.Equal(b, data[pos:pos+len(b)]) {
			t.Errorf("%s: bytes differ from the file's at %d", tensor.Name, pos)
		}
		if tensor.File != name {
			t.Errorf("%s: File = %q, want %q", tensor.Name, tensor.File, name)
		}
		pos += len(b)
	}
	if pos != len(data) {
		t.Errorf("tensors end at %d, file has %d bytes", pos, len(data))
	}
}

// TestReaderTableCoversTestdata fails when a fixture has no row in
// readerTests, so a new fixture cannot go untested.
func TestReaderTableCoversTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tt := range readerTests {
		listed[tt.file] = true
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no row in readerTests", f)
		}
	}
	if len(files) != len(readerTests) {
		t.Errorf("%d fixtures, %d rows", len(files), len(readerTests))
	}
}

func TestValidFiles(t *testing.T) {
	open := func(t *testing.T, name string) *weights.Graph {
		t.Helper()
		g, err := Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		return g
	}
	t.Run("all dtypes", func(t *testing.T) {
		g := open(t, "valid_all_dtypes.safetensors")
		if g.Len() != len(weights.DTypes()) {
			t.Fatalf("%d tensors, want one per dtype (%d)", g.Len(), len(weights.DTypes()))
		}
		seen := map[weights.DType]bool{}
		for _, tensor := range g.Tensors() {
			seen[tensor.DType] = true
			if !reflect.DeepEqual(tensor.Shape, []int64{2, 3}) {
				t.Errorf("%s: shape %v", tensor.Name, tensor.Shape)
			}
			if strings.ToUpper(tensor.Name) != tensor.DType.String() {
				t.Errorf("tensor %s has dtype %v", tensor.Name, tensor.DType)
			}
		}
		if len(seen) != len(weights.DTypes()) {
			t.Errorf("dtypes seen: %v", seen)
		}
		if !reflect.DeepEqual(g.Metadata, map[string]string{"format": "pt"}) {
			t.Errorf("Metadata = %v", g.Metadata)
		}
	})
	t.Run("scalar", func(t *testing.T) {
		g := open(t, "valid_scalar.safetensors")
		tensor, ok := g.Tensor("scalar")
		if !ok || len(tensor.Shape) != 0 || tensor.Shape == nil {
			t.Fatalf("scalar: %v (shape %#v)", tensor, tensor.Shape)
		}
		v, err := tensor.Float32s()
		if err != nil || len(v) != 1 || v[0] != 3.5 {
			t.Errorf("scalar = %v, %v; want [3.5]", v, err)
		}
	})
	t.Run("empty tensors", func(t *testing.T) {
		g := open(t, "valid_empty_tensor.safetensors")
		if want := []string{"a", "empty", "empty2", "b"}; !reflect.DeepEqual(g.Names(), want) {
			t.Errorf("Names = %q, want %q", g.Names(), want)
		}
		e, _ := g.Tensor("empty2")
		if b, err := e.Bytes(); err != nil || len(b) != 0 || !reflect.DeepEqual(e.Shape, []int64{3, 0}) {
			t.Errorf("empty2: %v %d bytes, %v", e.Shape, len(b), err)
		}
	})
	t.Run("metadata", func(t *testing.T) {
		g := open(t, "valid_metadata.safetensors")
		want := map[string]string{"format": "pt", "note": `ünïcödé "quoted" \ back`, "empty": ""}
		if !reflect.DeepEqual(g.Metadata, want) {
			t.Errorf("Metadata = %q, want %q", g.Metadata, want)
		}
	})
	t.Run("no tensors", func(t *testing.T) {
		g := open(t, "valid_no_tensors.safetensors")
		if g.Len() != 0 || g.Metadata != nil {
			t.Errorf("%d tensors, metadata %v", g.Len(), g.Metadata)
		}
	})
	t.Run("null metadata", func(t *testing.T) {
		g := open(t, "valid_null_metadata.safetensors")
		if g.Metadata != nil || g.Len() != 1 {
			t.Errorf("metadata %v, %d tensors", g.Metadata, g.Len())
		}
	})
	t.Run("offset order", func(t *testing.T) {
		g := open(t, "valid_header_order.safetensors")
		if want := []string{"z_first", "a_second", "c_third"}; !reflect.DeepEqual(g.Names(), want) {
			t.Errorf("Names = %q, want %q", g.Names(), want)
		}
	})
	t.Run("escaped name", func(t *testing.T) {
		g := open(t, "valid_escaped_name.safetensors")
		if _, ok := g.Tensor("a\"b\\cé\n𝄞"); !ok {
			t.Errorf("Names = %q", g.Names())
		}
	})
}

// TestViewsAliasTheMapping checks that Open hands out views of one mapping
// rather than copies: consecutive tensors are adjacent in memory.
func TestViewsAliasTheMapping(t *testing.T) {
	g, err := Open(filepath.Join("testdata", "torch_dtypes.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var prevEnd uintptr
	for _, tensor := range g.Tensors() {
		m, ok := tensor.Data.(weights.Memory)
		if !ok {
			t.Fatalf("%s: Data is %T, want weights.Memory", tensor.Name, tensor.Data)
		}
		if len(m) == 0 {
			continue
		}
		if cap(m) != len(m) {
			t.Errorf("%s: cap %d > len %d: an append could overwrite the next tensor", tensor.Name, cap(m), len(m))
		}
		start := uintptr(unsafePointer(m))
		if prevEnd != 0 && start != prevEnd {
			t.Errorf("%s: starts at %#x, previous tensor ended at %#x", tensor.Name, start, prevEnd)
		}
		prevEnd = start + uintptr(len(m))
	}
}

// messWith returns a copy of the fixture changed by f, in the way of
// archive/zip's tests.
func messWith(t *testing.T, fixture string, f func(b []byte) []byte) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	return f(append([]byte(nil), b...))
}

func replaceOnce(t *testing.T, old, new string) func([]byte) []byte {
	return func(b []byte) []byte {
		if bytes.Count(b, []byte(old)) < 1 {
			t.Fatalf("%q not in fixture", old)
		}
		if len(old) != len(new) {
			t.Fatalf("replacement must keep the length")
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
}

func TestCorrupted(t *testing.T) {
	const fixture = "valid_all_dtypes.safetensors"
	headerLen := func(delta int64) func([]byte) []byte {
		return func(b []byte) []byte {
			n := binary.LittleEndian.Uint64(b)
			binary.LittleEndian.PutUint64(b, uint64(int64(n)+delta))
			return b
		}
	}
	tests := []struct {
		name   string
		mess   func([]byte) []byte
		err    error
		tensor string
	}{
		{"header length +8", headerLen(8), ErrHeaderJSON, ""},
		{"header length -8", headerLen(-8), ErrHeaderJSON, ""},
		{"header length huge", headerLen(1 << 40), ErrHeaderTooLarge, ""},
		{"header length past end", func(b []byte) []byte { return headerLen(int64(len(b)))(b) }, ErrHeaderLength, ""},
		{"cut to 7 bytes", func(b []byte) []byte { return b[:7] }, ErrTooShort, ""},
		{"cut inside header", func(b []byte) []byte { return b[:40] }, ErrHeaderLength, ""},
		{"drop last byte", func(b []byte) []byte { return b[:len(b)-1] }, ErrFileSize, ""},
		{"append a byte", func(b []byte) []byte { return append(b, 0) }, ErrFileSize, ""},
		{"unknown dtype", replaceOnce(t, `"dtype":"F32"`, `"dtype":"F31"`), ErrDType, "f32"},
		{"shape grows", replaceOnce(t, `"u8":{"dtype":"U8","shape":[2,3]`, `"u8":{"dtype":"U8","shape":[2,4]`), ErrDataSize, "u8"},
		{"offset moves", replaceOnce(t, `"data_offsets":[0,48]`, `"data_offsets":[1,48]`), ErrNotContiguous, "u64"},
		{"name gets a bad byte", replaceOnce(t, `"bf16"`, "\"bf\xc06\""), ErrHeaderUTF8, ""},
		{"name duplicated", replaceOnce(t, `"i16"`, `"i32"`), ErrDuplicate, "i32"},
		{"key renamed", replaceOnce(t, `"shape"`, `"shope"`), ErrEntry, "u64"},
		{"metadata value number", replaceOnce(t, `"pt"`, `1234`), ErrMetadata, ""},
		{"header brace removed", replaceOnce(t, `{"__`, ` "__`), ErrHeaderStart, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := messWith(t, fixture, tt.mess)
			_, err := Parse(b, "messed")
			checkErr(t, err, tt.err, "messed", tt.tensor)
		})
	}
	// The format has no checksum: changed data bytes still make a valid
	// file, with the changed bytes.
	b := messWith(t, fixture, func(b []byte) []byte { b[len(b)-2] ^= 0xff; return b })
	g, err := Parse(b, "data changed")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := g.Tensors()[g.Len()-1].Bytes(); v[len(v)-2] != b[len(b)-2] {
		t.Errorf("changed byte not seen")
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Open(filepath.Join("testdata", "shape_negative.safetensors"))
	want := `safetensors: testdata/shape_negative.safetensors: tensor "t": invalid shape: shape: "-2" is not a non-negative integer`
	if err == nil || err.Error() != filepath.FromSlash(want) {
		t.Errorf("error = %q, want %q", err, want)
	}
	long := strings.Repeat("x", 1000)
	e := &Error{File: "f", Tensor: long, Err: ErrEntry}
	if len(e.Error()) > 300 {
		t.Errorf("error message of %d bytes for a long name", len(e.Error()))
	}
}

func TestReadHeaderIOError(t *testing.T) {
	_, err := ReadHeader(failingReaderAt{}, 100)
	if err == nil || errors.Is(err, ErrFormat) || !errors.Is(err, errDisk) {
		t.Errorf("err = %v, want the reader's error and no format error", err)
	}
	// A reader that fails inside the header.
	data, _ := os.ReadFile(filepath.Join("testdata", "valid_all_dtypes.safetensors"))
	_, err = ReadHeader(&failAfter{data: data, limit: 100}, int64(len(data)))
	if err == nil || errors.Is(err, ErrFormat) || !errors.Is(err, errDisk) {
		t.Errorf("err = %v, want the reader's error and no format error", err)
	}
	// A size larger than what the reader holds.
	_, err = ReadHeader(bytes.NewReader(data[:4]), int64(len(data)))
	if err == nil || errors.Is(err, ErrFormat) {
		t.Errorf("err = %v, want an I/O error", err)
	}
}

var errDisk = errors.New("disk on fire")

type failingReaderAt struct{}

func (failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, errDisk }

// failAfter reads data but fails for any read that reaches past limit.
type failAfter struct {
	data  []byte
	limit int64
}

func (f *failAfter) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.limit {
		return 0, errDisk
	}
	return copy(p, f.data[off:]), nil
}

func TestJSONReaderUTF8(t *testing.T) {
	valid := []string{"", "abc", "é", "日本語", "𝄞x𝄞", strings.Repeat("ü€𝄞", 100)}
	invalid := []string{"\xff", "a\xc3", "\xe2\x82", "\xf0\x9d\x84", "\xed\xa0\x80" /* surrogate */, "\xc0\xaf", "ab\x80cd"}
	read := func(s string, chunk int) error {
		u := &jsonReader{r: &chunkReader{s: s, n: chunk}}
		buf := make([]byte, 64)
		for {
			_, err := u.Read(buf)
			if err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	}
	for chunk := 1; chunk <= 5; chunk++ {
		for _, s := range valid {
			if err := read(s, chunk); err != nil {
				t.Errorf("%q in chunks of %d: %v", s, chunk, err)
			}
		}
		for _, s := range invalid {
			if err := read(s, chunk); !errors.Is(err, errBadUTF8) {
				t.Errorf("%q in chunks of %d: err = %v, want invalid UTF-8", s, chunk, err)
			}
		}
	}
}

// chunkReader returns s n bytes at a time.
type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.s) == 0 {
		return 0, io.EOF
	}
	k := min(c.n, len(p), len(c.s))
	copy(p, c.s[:k])
	c.s = c.s[k:]
	return k, nil
}

func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func TestJSONReaderSqueezesSpace(t *testing.T) {
	in := "{ \n\t \"a  b\\\"  c\"  :   [ 1 ,\r\n 2 ]   }   \n"
	want := "{ \"a  b\\\"  c\" : [ 1 ,\r2 ] } "
	for chunk := 1; chunk <= 4; chunk++ {
		b, err := io.ReadAll(&jsonReader{r: &chunkReader{s: in, n: chunk}})
		if err != nil || string(b) != want {
			t.Errorf("chunks of %d: %q, %v; want %q", chunk, b, err, want)
		}
	}
}

// TestHeaderPaddingMemory checks that whitespace padding costs no memory:
// a header of 8 MB of spaces is parsed in a few kilobytes.
func TestHeaderPaddingMemory(t *testing.T) {
	const pad = 4 << 20
	h := `{"t":` + strings.Repeat(" ", pad) + `{"dtype":"U8","shape":[2],"data_offsets":[0,2]}` + strings.Repeat(" ", pad) + "}"
	data := append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h+"ab"...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g, err := Parse(data, "padded")
	runtime.ReadMemStats(&after)
	if err != nil || g.Len() != 1 {
		t.Fatalf("Parse: %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("parsing a header of %d MB of padding allocated %d bytes", 2*pad>>20, alloc)
	}
}

func TestJSONReaderSurrogates(t *testing.T) {
	valid := []string{`"\ud834\udd1e"`, `"\uD83D\uDE00x"`, `"\\ud800"`, `"\u00e9\ud7ff\ue000"`, `"a" "\udbff\udfff"`}
	invalid := []string{`"\ud800"`, `"\udc00"`, `"\ud800\ud800"`, `"\ud800\n"`, `"\ud800x\udc00"`, `"\ud800\u0041"`, `"ok" "\udfff"`}
	for chunk := 1; chunk <= 5; chunk++ {
		for _, s := range valid {
			if _, err := io.ReadAll(&jsonReader{r: &chunkReader{s: s, n: chunk}}); err != nil {
				t.Errorf("%s in chunks of %d: %v", s, chunk, err)
			}
		}
		for _, s := range invalid {
			if _, err := io.ReadAll(&jsonReader{r: &chunkReader{s: s, n: chunk}}); !errors.Is(err, errSurrogate) {
				t.Errorf("%s in chunks of %d: err = %v, want a surrogate error", s, chunk, err)
			}
		}
	}
}
