package torch

import (
	"archive/zip"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// fixture is one entry of testdata/expected.json, written by gen.py from
// what torch.load returned for the file.
type fixture struct {
	Path    string `json:"path"`
	Open    string `json:"open"`
	Note    string `json:"note"`
	Tensors []struct {
		Name       string  `json:"name"`
		DType      string  `json:"dtype"`
		Shape      []int64 `json:"shape"`
		Contiguous bool    `json:"contiguous"`
		Hex        string  `json:"hex"`
		ByteOffset int64   `json:"byte_offset"`
	} `json:"tensors"`
	Tied    [][]string `json:"tied"`
	Globals []string   `json:"globals"`
}

func loadFixtures(t *testing.T) []fixture {
	t.Helper()
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx []fixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	if len(fx) < 20 {
		t.Fatalf("expected.json lists %d fixtures; regenerate with testdata/gen.py", len(fx))
	}
	return fx
}

// copyLayout reports whether a fixture's contiguous tensors are still
// copied (big-endian data is swapped, deflated records are decompressed).
func copyLayout(path string) bool {
	return strings.Contains(path, "big_endian") || strings.Contains(path, "deflated")
}

// TestFixtures checks every tensor of every fixture bit-exactly against what
// torch.load returned, plus names, order, dtypes, shapes, storage offsets,
// tied groups, globals and which tensors are zero-copy views.
func TestFixtures(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		t.Run(fx.Path, func(t *testing.T) {
			path := filepath.Join("testdata", fx.Path)
			var g *weights.Graph
			var err error
			if fx.Open == "index" {
				g, err = OpenIndex(path)
			} else {
				g, err = Open(path)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if fx.Open == "index" && (len(g.Files) != 3 || g.Files[0] != path) {
				t.Errorf("files %q, want the index and its two shards, each once", g.Files)
			}
			var names []string
			for _, e := range fx.Tensors {
				names = append(names, e.Name)
			}
			if got := g.Names(); !slices.Equal(got, names) {
				t.Fatalf("names\n got %q\nwant %q", got, names)
			}
			for i, e := range fx.Tensors {
				tt := g.Tensors()[i]
				if tt.DType.String() != e.DType || !slices.Equal(tt.Shape, e.Shape) {
					t.Errorf("%s: %v%v, want %s%v", e.Name, tt.DType, tt.Shape, e.DType, e.Shape)
					continue
				}
				got, err := tt.Bytes()
				if err != nil {
					t.Errorf("%s: %v", e.Name, err)
					continue
				}
				want, _ := hex.DecodeString(e.Hex)
				if !bytes.Equal(got, want) {
					t.Errorf("%s: bytes differ from torch's\n got %x\nwant %x", e.Name, got, want)
				}
				if tt.StorageOffset != e.ByteOffset {
					t.Errorf("%s: storage offset %d, want %d", e.Name, tt.StorageOffset, e.ByteOffset)
				}
				_, isView := tt.Data.(weights.Memory)
				copied := copyLayout(fx.Path) && (strings.Contains(fx.Path, "deflated") || tt.DType.Size() > 1)
				if wantView := e.Contiguous && !copied; isView != wantView && len(want) > 0 {
					t.Errorf("%s: zero-copy view %v, want %v (contiguous %v)", e.Name, isView, wantView, e.Contiguous)
				}
				if tt.File == "" || !slices.Contains(g.Files, tt.File) {
					t.Errorf("%s: File %q not among %q", e.Name, tt.File, g.Files)
				}
			}
			tied := g.TiedGroups()
			if len(tied) != len(fx.Tied) || (len(tied) > 0 && !reflect.DeepEqual(tied, fx.Tied)) {
				t.Errorf("tied groups %q, want %q", tied, fx.Tied)
			}
			if !slices.Equal(g.Globals, fx.Globals) {
				t.Errorf("globals\n got %q\nwant %q", g.Globals, fx.Globals)
			}
		})
	}
}

// TestContiguousViewAliasesFile checks that a contiguous tensor's bytes are
// the file's bytes, not a copy.
func TestContiguousViewAliasesFile(t *testing.T) {
	data, err := os.ReadFile("testdata/zip_views.bin")
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(data, "zip_views.bin")
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := g.Tensor("row_slice")
	b, err := tt.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !aliases(b, data) {
		t.Fatal("row_slice is not a view of the checkpoint bytes")
	}
	tr, _ := g.Tensor("transposed")
	b1, _ := tr.Bytes()
	b2, _ := tr.Bytes()
	if aliases(b1, data) || &b1[0] == &b2[0] {
		t.Fatal("a strided view should gather into a new buffer on every call")
	}
}

func aliases(b, data []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i := range data {
		if &data[i] == &b[0] {
			return i+len(b) <= len(data)
		}
	}
	return false
}

// TestOpenIndexErrors covers the index checks: unsafe shard names, names
// missing from their shard, malformed JSON.
func TestOpenIndexErrors(t *testing.T) {
	dir := t.TempDir()
	shard, err := os.ReadFile("testdata/zip_default.bin")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.bin"), shard, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"parent":      `{"weight_map": {"0.weight": "../a.bin"}}`,
		"absolute":    `{"weight_map": {"0.weight": "/etc/passwd"}}`,
		"subdir":      `{"weight_map": {"0.weight": "sub/a.bin"}}`,
		"backslash":   `{"weight_map": {"0.weight": "..\\a.bin"}}`,
		"empty":       `{"weight_map": {}}`,
		"not json":    `{"weight_map": `,
		"missing":     `{"weight_map": {"0.weight": "a.bin", "no.such.tensor": "a.bin"}}`,
		"wrong shard": `{"weight_map": {"0.weight": "a.bin", "1.weight": "b.bin"}}`,
	}
	if err := os.WriteFile(filepath.Join(dir, "b.bin"), shard, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, js := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".index.json")
		if err := os.WriteFile(p, []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := OpenIndex(p)
		if name == "wrong shard" {
			// Both shards hold every name: the duplicate is the error.
			if !errors.Is(err, weights.ErrDuplicate) {
				t.Errorf("%s: %v, want a duplicate name error", name, err)
			}
			continue
		}
		if !errors.Is(err, ErrIndex) {
			t.Errorf("%s: %v, want ErrIndex", name, err)
		}
	}
	good := filepath.Join(dir, "good.index.json")
	os.WriteFile(good, []byte(`{"metadata": {"total_size": 1}, "weight_map": {"0.weight": "a.bin"}}`), 0o644)
	g, err := OpenIndex(good)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Len() != 11 || !slices.Equal(g.Files, []string{good, filepath.Join(dir, "a.bin")}) {
		t.Fatalf("%d tensors from %q", g.Len(), g.Files)
	}
}

// TestRejectsCorruptedCheckpoints flips, truncates and rewrites parts of
// valid checkpoints: every result must be an error or a graph whose tensors
// all read back, never a panic.
func TestRejectsCorruptedCheckpoints(t *testing.T) {
	for _, name := range []string{"zip_views.bin", "legacy_views.bin", "zip_deflated.bin", "zip_big_endian.bin"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(data); i += 1 + len(data)/4000 {
			for _, mut := range []func([]byte) []byte{
				func(b []byte) []byte { b[i] ^= 0xff; return b },
				func(b []byte) []byte { return b[:i] },
				func(b []byte) []byte { b[i] = 0x7f; return b },
			} {
				b := mut(bytes.Clone(data))
				g, err := Parse(b, name)
				if err != nil {
					continue
				}
				readAll(g)
			}
		}
	}
}

func readAll(g *weights.Graph) {
	for _, t := range g.Tensors() {
		_, _ = t.Bytes()
	}
}

// TestUnpickleProtocols reads one value tree pickled by Python with every
// protocol 0-5 and compares a canonical print of the result with Python's.
func TestUnpickleProtocols(t *testing.T) {
	b, err := os.ReadFile("testdata/values.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Canon string   `json:"canon"`
		Files []string `json:"files"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want.Files) != 6 {
		t.Fatalf("values.json lists %d files", len(want.Files))
	}
	for _, f := range want.Files {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		var rec globalRecorder
		u := &unpickler{data: data, file: f, findGlobal: rec.find}
		v, err := u.load()
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if u.pos != len(data) {
			t.Errorf("%s: stopped at %d of %d bytes", f, u.pos, len(data))
		}
		if got := canon(v); got != want.Canon {
			t.Errorf("%s:\n got %s\nwant %s", f, got, want.Canon)
		}
	}
}

// canon prints a value like gen.py's canon.
func canon(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(v, 10)
	case *big.Int:
		return v.String()
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eIN") {
			s += ".0"
		}
		return s
	case string:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSuffix(buf.String(), "\n")
	case []byte:
		return "b:" + hex.EncodeToString(v)
	case pyTuple:
		return "(" + join(v) + ")"
	case *pyList:
		return "[" + join(v.items) + "]"
	case *pyDict:
		parts := make([]string, len(v.keys))
		for i := range v.keys {
			parts[i] = canon(v.keys[i]) + ":" + canon(v.values[i])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case *pySet:
		parts := make([]string, len(v.items))
		for i, x := range v.items {
			parts[i] = canon(x)
		}
		sort.Strings(parts)
		return "set(" + strings.Join(parts, ",") + ")"
	}
	return fmt.Sprintf("<%T>", v)
}

func join(items []any) string {
	parts := make([]string, len(items))
	for i, x := range items {
		parts[i] = canon(x)
	}
	return strings.Join(parts, ",")
}

// TestUnpickleOpcodes covers opcodes Python's pickler no longer writes and
// the error paths of single opcodes.
func TestUnpickleOpcodes(t *testing.T) {
	ok := map[string]struct {
		pickle string
		want   string
	}{
		"py2 STRING escapes":   {"S'a\\n\\x41\\101\\'b'\n.", `"a\nAA'b"`},
		"py2 BINSTRING":        {"T\x03\x00\x00\x00abc.", `"abc"`},
		"py2 SHORT_BINSTRING":  {"U\x02hi.", `"hi"`},
		"INT booleans":         {"(I01\nI00\nI-7\nt.", "(True,False,-7)"},
		"LONG text":            {"L-123456789012345678901234567890L\n.", "-123456789012345678901234567890"},
		"LONG4":                {"\x80\x02\x8b\x02\x00\x00\x00\xff\x7f.", "32767"},
		"LONG1 negative":       {"\x80\x02\x8a\x01\xff.", "-1"},
		"LONG1 empty":          {"\x80\x02\x8a\x00.", "0"},
		"PUT GET":              {"(lp0\nI1\nag0\na.", "[1,[...]]"},
		"DUP":                  {"\x80\x02K\x052\x86.", "(5,5)"},
		"POP_MARK":             {"\x80\x02K\x01(K\x02K\x031.", "1"},
		"POP pops a mark":      {"\x80\x02K\x01(0.", "1"},
		"DICT":                 {"(S'a'\nI1\nd.", `{"a":1}`},
		"EMPTY_SET ADDITEMS":   {"\x80\x04\x8f(K\x01K\x02\x90.", "set(1,2)"},
		"FROZENSET":            {"\x80\x04(K\x01\x91.", "set(1)"},
		"FRAME":                {"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x07.", "7"},
		"BINBYTES8":            {"\x80\x04\x8e\x01\x00\x00\x00\x00\x00\x00\x00z.", "b:7a"},
		"BYTEARRAY8":           {"\x80\x05\x96\x01\x00\x00\x00\x00\x00\x00\x00z.", "b:7a"},
		"BINFLOAT":             {"\x80\x02G\x3f\xf8\x00\x00\x00\x00\x00\x00.", "1.5"},
		"NEWOBJ OrderedDict":   {"\x80\x02ccollections\nOrderedDict\n)\x81.", "{}"},
		"NEWOBJ_EX":            {"\x80\x04ccollections\nOrderedDict\n)}\x92.", "{}"},
		"OrderedDict of pairs": {"\x80\x02ccollections\nOrderedDict\n](K\x01K\x02\x86e\x85R.", "{1:2}"},
		"torch.Size":           {"\x80\x02ctorch\nSize\n(K\x02K\x03t\x85R.", "(2,3)"},
		"BUILD on dict":        {"\x80\x02}}b.", "{}"},
		"duplicate key":        {"\x80\x02}(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00aK\x02u.", `{"a":2}`},
	}
	for name, c := range ok {
		u := &unpickler{data: []byte(c.pickle), file: name, findGlobal: lookupGlobal}
		v, err := u.load()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var got string
		if l, isList := v.(*pyList); isList && len(l.items) == 2 && l.items[1] == any(l) {
			got = "[" + canon(l.items[0]) + ",[...]]" // a list holding itself
		} else {
			got = canon(v)
		}
		if got != c.want {
			t.Errorf("%s: got %s, want %s", name, got, c.want)
		}
	}
	bad := map[string]struct {
		pickle string
		want   error
	}{
		"PROTO 6":                 {"\x80\x06N.", ErrPickle},
		"truncated BININT":        {"\x80\x02J\x01\x02", ErrPickle},
		"odd SETITEMS":            {"\x80\x02}(K\x01u.", ErrPickle},
		"APPEND to dict":          {"\x80\x02}K\x01a.", ErrPickle},
		"SETITEM on list":         {"\x80\x02]K\x01K\x02s.", ErrPickle},
		"TUPLE without MARK":      {"\x80\x02K\x01t.", ErrPickle},
		"STACK_GLOBAL of ints":    {"\x80\x04K\x01K\x02\x93.", ErrPickle},
		"REDUCE of non-callable":  {"\x80\x02K\x01)R.", ErrBadArguments},
		"REDUCE with list args":   {"\x80\x02ctorch\nSize\n]R.", ErrPickle},
		"NEWOBJ of Size":          {"\x80\x02ctorch\nSize\n)\x81.", ErrBadArguments},
		"BUILD on list":           {"\x80\x02]}b.", ErrBadArguments},
		"BUILD with int state":    {"\x80\x02}K\x01b.", ErrBadArguments},
		"PERSID without loader":   {"P0\n.", ErrPickle},
		"READONLY_BUFFER":         {"\x80\x05\x98.", ErrPickle},
		"STRING unquoted":         {"Sabc\n.", ErrPickle},
		"UNICODE bad escape":      {"V\\u12\n.", ErrPickle},
		"FLOAT garbage":           {"Fx\n.", ErrPickle},
		"LONG4 negative":          {"\x80\x02\x8b\xff\xff\xff\xff.", ErrPickle},
		"GET not a number":        {"g-1\n.", ErrPickle},
		"no newline":              {"I1", ErrPickle},
		"empty":                   {"", ErrPickle},
		"_codecs non latin1":      {"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00\xe2\x82\xacX\x06\x00\x00\x00latin1\x86R.", ErrBadArguments},
		"device of int":           {"\x80\x02ctorch\ndevice\nK\x01\x85R.", ErrBadArguments},
		"rebuild_from_type func":  {"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n(ctorch\nSize\nctorch\nTensor\n)NtR.", ErrBadArguments},
		"forbidden via torch.nn":  {"\x80\x02ctorch.nn\nLinear\n.", ErrForbiddenGlobal},
		"forbidden torch.load":    {"\x80\x02ctorch\nload\n.", ErrForbiddenGlobal},
		"forbidden tensor method": {"\x80\x02ctorch._utils\n_rebuild_qtensor\n.", ErrForbiddenGlobal},
	}
	for name, c := range bad {
		u := &unpickler{data: []byte(c.pickle), file: name, findGlobal: lookupGlobal}
		_, err := u.load()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestAllowedGlobals(t *testing.T) {
	all := AllowedGlobals()
	for _, g := range []string{"torch._utils._rebuild_tensor_v2", "torch.FloatStorage", "collections.OrderedDict", "torch.float16", "_codecs.encode"} {
		if !slices.Contains(all, g) {
			t.Errorf("%s missing from AllowedGlobals", g)
		}
	}
	for _, g := range all {
		i := strings.LastIndex(g, ".")
		if _, err := lookupGlobal(g[:i], g[i+1:]); err != nil {
			t.Errorf("AllowedGlobals lists %s, lookup says %v", g, err)
		}
		for _, bad := range []string{"os.", "builtins.eval", "builtins.exec", "getattr", "_load_from_bytes", "import"} {
			if strings.Contains(g, bad) {
				t.Errorf("allowlist holds %s", g)
			}
		}
	}
}

func TestGatherAndSwap(t *testing.T) {
	// A 2x3 float64 matrix [[0,1,2],[3,4,5]] viewed transposed, and
	// expanded.
	src := make([]byte, 6*8)
	for i := range 6 {
		putF64(src[8*i:], float64(i))
	}
	got := gather(src, 0, 8, []int64{3, 2}, []int64{1, 3}, 6)
	want := []float64{0, 3, 1, 4, 2, 5}
	for i, w := range want {
		if f := getF64(got[8*i:]); f != w {
			t.Fatalf("transposed[%d] = %v, want %v", i, f, w)
		}
	}
	got = gather(src, 8, 8, []int64{2, 1, 3}, []int64{0, 7, 1}, 6)
	want = []float64{1, 2, 3, 1, 2, 3}
	for i, w := range want {
		if f := getF64(got[8*i:]); f != w {
			t.Fatalf("expanded[%d] = %v, want %v", i, f, w)
		}
	}
	b := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	swapBytes(b, 4)
	if !bytes.Equal(b, []byte{4, 3, 2, 1, 8, 7, 6, 5}) {
		t.Fatalf("swap4: %v", b)
	}
	swapBytes(b, 8)
	if !bytes.Equal(b, []byte{5, 6, 7, 8, 1, 2, 3, 4}) {
		t.Fatalf("swap8: %v", b)
	}
	swapBytes(b, 2)
	if !bytes.Equal(b, []byte{6, 5, 8, 7, 2, 1, 4, 3}) {
		t.Fatalf("swap2: %v", b)
	}
}

func putF64(b []byte, f float64) {
	u := math.Float64bits(f)
	for i := range 8 {
		b[i] = byte(u >> (8 * i))
	}
}

func getF64(b []byte) float64 {
	var u uint64
	for i := range 8 {
		u |= uint64(b[i]) << (8 * i)
	}
	return math.Float64frombits(u)
}

// referenceDir is the shared folder of reference checkpoints, beside the
// repository.
const referenceDir = "../../../shared/reference"

// TestReference reads the shared reference checkpoints (written by torch
// 1.13 from real model code) and checks values torch.load returned for them.
func TestReference(t *testing.T) {
	if _, err := os.Stat(referenceDir); err != nil {
		t.Skip("no shared reference checkpoints:", err)
	}
	type check struct {
		name  string
		shape []int64
		first []float32
		last  float32
		sum   float64
	}
	cases := map[string]struct {
		n      int
		checks []check
		tied   [][]string
	}{
		"bert-tiny": {39, []check{
			{"embeddings.word_embeddings.weight", []int64{1000, 64}, []float32{-0.025539878755807877, 0.05141359195113182, -0.017657579854130745}, -0.0193670392036438, 1.7531034822397586},
			{"encoder.layer.1.output.LayerNorm.bias", []int64{64}, []float32{-0.06368319690227509, 0.0495213083922863, -0.03455621004104614}, 0.09237464517354965, -0.26835888222558424},
			{"pooler.dense.weight", []int64{64, 64}, []float32{0.036330606788396835, 0.02666810154914856, 0.016710273921489716}, -0.07068530470132828, 0.16374799571622134},
		}, nil},
		"gpt2-tiny": {29, []check{
			{"transformer.wte.weight", []int64{1000, 64}, []float32{-0.01056103128939867, -0.010035010054707527, 0.027544992044568062}, 0.03634423017501831, -2.40701924567702},
			{"transformer.h.0.attn.c_attn.weight", []int64{64, 192}, []float32{0.06823664158582687, -0.07667028903961182, -0.009073814377188683}, 0.26397180557250977, -3.807790499850853},
			{"lm_head.weight", []int64{1000, 64}, []float32{-0.01056103128939867, -0.010035010054707527, 0.027544992044568062}, 0.03634423017501831, -2.40701924567702},
			{"transformer.ln_f.weight", []int64{64}, []float32{0.9458320140838623, 0.944449782371521, 1.1891045570373535}, 1.0238338708877563, 63.80963796377182},
		}, [][]string{{"transformer.wte.weight", "lm_head.weight"}}},
	}
	for model, c := range cases {
		t.Run(model, func(t *testing.T) {
			g, err := Open(filepath.Join(referenceDir, model, "pytorch_model.bin"))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if g.Len() != c.n {
				t.Errorf("%d tensors, want %d", g.Len(), c.n)
			}
			for _, k := range c.checks {
				tt, ok := g.Tensor(k.name)
				if !ok {
					t.Errorf("no tensor %s", k.name)
					continue
				}
				vals, err := tt.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(tt.Shape, k.shape) || !slices.Equal(vals[:3], k.first) || vals[len(vals)-1] != k.last {
					t.Errorf("%s: %v %v..%v, want %v %v..%v", k.name, tt.Shape, vals[:3], vals[len(vals)-1], k.shape, k.first, k.last)
				}
				var sum float64
				for _, v := range vals {
					sum += float64(v)
				}
				if math.Abs(sum-k.sum) > 1e-9*math.Max(1, math.Abs(k.sum)) {
					t.Errorf("%s: sum %v, want %v", k.name, sum, k.sum)
				}
			}
			if tied := g.TiedGroups(); !reflect.DeepEqual(tied, c.tied) && (len(tied) != 0 || len(c.tied) != 0) {
				t.Errorf("tied groups %q, want %q", tied, c.tied)
			}
		})
	}
}

// zipOf builds a zip archive from (name, method, data) entries.
func zipOf(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	w.RegisterCompressor(99, func(out io.Writer) (io.WriteCloser, error) { return nopWriteCloser{out}, nil })
	for _, e := range entries {
		fw, err := w.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type zipEntry struct {
	name   string
	method uint16
	data   []byte
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// TestParseContainers covers the container checks of both formats.
func TestParseContainers(t *testing.T) {
	good, err := os.ReadFile("testdata/zip_default.bin")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	var storage0 []byte
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/data/0") {
			rc, _ := f.Open()
			storage0, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	// A pickle {'w': 4 floats of storage "0"}.
	one := []byte("\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89NtRs.")
	four := storage0[:16]
	tar := make([]byte, 600)
	copy(tar[257:], "ustar")
	bad := zipOf(t, zipEntry{"a/data.pkl", zip.Store, one}, zipEntry{"a/data/0", zip.Store, four})
	i := bytes.Index(bad, one[len(one)-4:])
	bad[i] ^= 1 // corrupt data.pkl after its CRC was written
	cases := map[string]struct {
		data []byte
		want error
	}{
		"empty":         {nil, ErrFormat},
		"tar":           {tar, ErrUnsupported},
		"torchscript":   {zipOf(t, zipEntry{"m/data.pkl", zip.Store, one}, zipEntry{"m/constants.pkl", zip.Store, one}), ErrUnsupported},
		"no data.pkl":   {zipOf(t, zipEntry{"a/other.pkl", zip.Store, one}), ErrFormat},
		"top-level pkl": {zipOf(t, zipEntry{"data.pkl", zip.Store, one}), ErrFormat},
		"two folders":   {zipOf(t, zipEntry{"a/data.pkl", zip.Store, one}, zipEntry{"b/data.pkl", zip.Store, one}), ErrFormat},
		"duplicate":     {zipOf(t, zipEntry{"a/data.pkl", zip.Store, one}, zipEntry{"a/data/0", zip.Store, four}, zipEntry{"a/data/0", zip.Store, four}), ErrFormat},
		"odd method":    {zipOf(t, zipEntry{"a/data.pkl", zip.Store, one}, zipEntry{"a/data/0", 99, four}), ErrUnsupported},
		"pickle method": {zipOf(t, zipEntry{"a/data.pkl", 99, one}, zipEntry{"a/data/0", zip.Store, four}), ErrUnsupported},
		"short storage": {zipOf(t, zipEntry{"a/data.pkl", zip.Store, one}, zipEntry{"a/data/0", zip.Store, four[:12]}), ErrStorage},
		"bad crc":       {bad, ErrFormat},
		"little":        {zipOf(t, zipEntry{"a/data.pkl", zip.Store, one}, zipEntry{"a/byteorder", zip.Store, []byte("little")}, zipEntry{"a/data/0", zip.Store, four}), nil},
		"deflated pkl":  {zipOf(t, zipEntry{"a/data.pkl", zip.Deflate, one}, zipEntry{"a/data/0", zip.Deflate, four}), nil},
	}
	for name, c := range cases {
		g, err := Parse(c.data, name)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			w, _ := g.Tensor("w")
			b, err := w.Bytes()
			if err != nil || !bytes.Equal(b, four) {
				t.Errorf("%s: %x, %v; want %x", name, b, err, four)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}
