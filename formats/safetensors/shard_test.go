package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

var errSource = errors.New("source failed")

// failingTensor is an F32 tensor of shape [n] whose source fails.
func failingTensor(name string, n int64) *weights.Tensor {
	return &weights.Tensor{Name: name, DType: weights.F32, Shape: []int64{n},
		Data: weights.SourceFunc(func() ([]byte, error) { return nil, errSource })}
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	tensors := append(randomTensors(t, 3), failingTensor("zz.fails", 4))
	err := WriteFile(path, tensors, nil)
	if !errors.Is(err, errSource) {
		t.Fatalf("err = %v, want the source's error", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "zz.fails") {
		t.Errorf("error %q does not name the file and tensor", err)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("left behind: %q", names)
	}

	// An existing file stays as it was.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, tensors, nil); err == nil {
		t.Fatal("no error")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("existing file changed to %q", b)
	}
	if names := listDir(t, dir); !reflect.DeepEqual(names, []string{"model.safetensors"}) {
		t.Errorf("dir holds %q", names)
	}

	// A directory that does not exist.
	if err := WriteFile(filepath.Join(dir, "nope", "x.safetensors"), tensors[:1], nil); err == nil {
		t.Error("no error writing into a missing directory")
	}
}

func TestWriteRefuses(t *testing.T) {
	ok, _ := weights.NewTensor("ok", weights.F32, []int64{1}, make([]byte, 4))
	tests := []struct {
		name    string
		tensors []*weights.Tensor
		meta    map[string]string
	}{
		{"duplicate", []*weights.Tensor{ok, ok}, nil},
		{"nil tensor", []*weights.Tensor{nil}, nil},
		{"metadata name", []*weights.Tensor{{Name: "__metadata__", DType: weights.U8, Shape: []int64{0}, Data: weights.Memory{}}}, nil},
		{"invalid dtype", []*weights.Tensor{{Name: "x", DType: weights.Invalid, Shape: []int64{0}, Data: weights.Memory{}}}, nil},
		{"negative dim", []*weights.Tensor{{Name: "x", DType: weights.U8, Shape: []int64{-1}, Data: weights.Memory{}}}, nil},
		{"bad utf8 name", []*weights.Tensor{{Name: "x\xff", DType: weights.U8, Shape: []int64{0}, Data: weights.Memory{}}}, nil},
		{"bad utf8 metadata", []*weights.Tensor{ok}, map[string]string{"k": "\xff"}},
		{"no data", []*weights.Tensor{{Name: "x", DType: weights.U8, Shape: []int64{0}}}, nil},
		{"wrong byte count", []*weights.Tensor{{Name: "x", DType: weights.F32, Shape: []int64{2}, Data: weights.Memory(make([]byte, 4))}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteFile(filepath.Join(dir, "x.safetensors"), tt.tensors, tt.meta); err == nil {
				t.Error("no error")
			}
			if names := listDir(t, dir); len(names) != 0 {
				t.Errorf("left behind: %q", names)
			}
		})
	}
}

// countingWriter counts bytes written.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestWriteStreamsOneTensorAtATime checks that the writer asks a tensor for
// its bytes only when every tensor before it is written, so lazy sources are
// held one at a time.
func TestWriteStreamsOneTensorAtATime(t *testing.T) {
	w := &countingWriter{}
	var calls []int64 // bytes written when each source was asked
	var tensors []*weights.Tensor
	for i, name := range []string{"a", "b", "c", "d"} {
		size := int64(1000 * (i + 1))
		tensors = append(tensors, &weights.Tensor{Name: name, DType: weights.U8, Shape: []int64{size},
			Data: weights.SourceFunc(func() ([]byte, error) {
				calls = append(calls, w.n)
				return make([]byte, size), nil
			})})
	}
	n, err := Write(w, tensors, nil)
	if err != nil {
		t.Fatal(err)
	}
	header := n - 10000
	want := []int64{header, header + 1000, header + 3000, header + 6000}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("sources asked when %v bytes were written, want %v", calls, want)
	}
}

func TestPlanShards(t *testing.T) {
	tests := []struct {
		sizes []int64
		max   int64
		want  [][]int
	}{
		// huggingface_hub's documented example: [6,6,2,6,2,2] GB with 10 GB.
		{[]int64{6, 6, 2, 6, 2, 2}, 10, [][]int{{0}, {1, 2}, {3, 4, 5}}},
		// A tensor over the limit gets its own shard, appended before the
		// shard still filling.
		{[]int64{2, 3, 20, 4, 5}, 10, [][]int{{2}, {0, 1, 3}, {4}}},
		{[]int64{20}, 10, [][]int{{0}}},
		{[]int64{5, 5, 5}, 10, [][]int{{0, 1}, {2}}},
		{[]int64{0, 0, 10, 0}, 10, [][]int{{0, 1, 2, 3}}},
		{[]int64{1, 2, 3}, 0, [][]int{{0, 1, 2}}},
		{[]int64{1, 2, 3}, -1, [][]int{{0, 1, 2}}},
		{nil, 10, [][]int{nil}},
	}
	for _, tt := range tests {
		if got := planShards(tt.sizes, tt.max); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("planShards(%v, %d) = %v, want %v", tt.sizes, tt.max, got, tt.want)
		}
	}
}

// TestWriteShardedMatchesPython writes the tensors of the torch-made sharded
// fixture, in the order the Python script held them, and expects the same
// files byte for byte: the same split, names, shard layout and index.
func TestWriteShardedMatchesPython(t *testing.T) {
	var fixture struct {
		Order     []string `json:"order"`
		ShardSize int64    `json:"shard_size"`
	}
	loadJSON(t, filepath.Join("testdata", "torch_sharded.json"), &fixture)
	src := filepath.Join("testdata", "torch_sharded")
	g, err := OpenIndex(filepath.Join(src, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var tensors []*weights.Tensor
	for _, name := range fixture.Order {
		tensor, ok := g.Tensor(name)
		if !ok {
			t.Fatalf("%s missing", name)
		}
		tensors = append(tensors, tensor)
	}
	dir := t.TempDir()
	paths, err := WriteSharded(dir, tensors, map[string]string{"format": "pt"}, fixture.ShardSize)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := listDir(t, src)
	var gotNames []string
	for _, p := range paths {
		gotNames = append(gotNames, filepath.Base(p))
	}
	if filepath.Base(paths[len(paths)-1]) != IndexFile {
		t.Errorf("index not last: %q", gotNames)
	}
	slices.Sort(gotNames)
	if !reflect.DeepEqual(gotNames, wantNames) {
		t.Fatalf("wrote %q, Python wrote %q", gotNames, wantNames)
	}
	for _, name := range wantNames {
		got, _ := os.ReadFile(filepath.Join(dir, name))
		want, _ := os.ReadFile(filepath.Join(src, name))
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from Python's:\n got %.400q\nwant %.400q", name, got, want)
		}
	}
}

func TestWriteSharded(t *testing.T) {
	tensors := randomTensors(t, 4)
	var total int64
	for _, tensor := range tensors {
		total += tensor.NumBytes()
	}
	check := func(t *testing.T, dir string, paths []string, wantShards int) {
		t.Helper()
		var g *weights.Graph
		var err error
		if wantShards == 1 {
			if !reflect.DeepEqual(paths, []string{filepath.Join(dir, SingleFile)}) {
				t.Fatalf("paths = %q", paths)
			}
			g, err = Open(paths[0])
		} else {
			if len(paths) != wantShards+1 {
				t.Fatalf("%d files, want %d shards and an index", len(paths), wantShards)
			}
			for i, p := range paths[:wantShards] {
				if want := filepath.Join(dir, ShardName(i+1, wantShards)); p != want {
					t.Errorf("shard %d is %s, want %s", i, p, want)
				}
			}
			g, err = OpenIndex(paths[wantShards])
		}
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if g.Len() != len(tensors) || g.NumBytes() != total {
			t.Errorf("%d tensors of %d bytes, wrote %d of %d", g.Len(), g.NumBytes(), len(tensors), total)
		}
		for _, want := range tensors {
			got, ok := g.Tensor(want.Name)
			wb, _ := want.Bytes()
			if !ok {
				t.Fatalf("%s missing", want.Name)
			}
			if gb, _ := got.Bytes(); !bytes.Equal(gb, wb) || got.DType != want.DType {
				t.Errorf("%s differs", want.Name)
			}
		}
		if len(listDir(t, dir)) != len(paths) {
			t.Errorf("dir holds %q, wrote %q", listDir(t, dir), paths)
		}
	}
	t.Run("unlimited", func(t *testing.T) {
		dir := t.TempDir()
		paths, err := WriteSharded(dir, tensors, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		check(t, dir, paths, 1)
	})
	t.Run("fits", func(t *testing.T) {
		dir := t.TempDir()
		paths, err := WriteSharded(dir, tensors, nil, total)
		if err != nil {
			t.Fatal(err)
		}
		check(t, dir, paths, 1)
	})
	t.Run("sharded", func(t *testing.T) {
		dir := t.TempDir()
		sizes := make([]int64, len(tensors))
		for i, tensor := range tensors {
			sizes[i] = tensor.NumBytes()
		}
		const max = 64
		want := len(planShards(sizes, max))
		if want < 3 {
			t.Fatalf("fixture gives %d shards only", want)
		}
		paths, err := WriteSharded(dir, tensors, map[string]string{"format": "pt"}, max)
		if err != nil {
			t.Fatal(err)
		}
		check(t, dir, paths, want)
		var index struct {
			Metadata  map[string]int64  `json:"metadata"`
			WeightMap map[string]string `json:"weight_map"`
		}
		loadJSON(t, paths[len(paths)-1], &index)
		if index.Metadata["total_size"] != total || len(index.WeightMap) != len(tensors) {
			t.Errorf("index metadata %v, %d names", index.Metadata, len(index.WeightMap))
		}
	})
	t.Run("failure removes shards", func(t *testing.T) {
		dir := t.TempDir()
		bad := append(append([]*weights.Tensor(nil), tensors...), failingTensor("fails", 40))
		if _, err := WriteSharded(dir, bad, nil, 64); !errors.Is(err, errSource) {
			t.Fatalf("err = %v, want the source's error", err)
		}
		if names := listDir(t, dir); len(names) != 0 {
			t.Errorf("left behind: %q", names)
		}
	})
	t.Run("invalid input writes nothing", func(t *testing.T) {
		dir := t.TempDir()
		bad := append(append([]*weights.Tensor(nil), tensors...), tensors[0])
		if _, err := WriteSharded(dir, bad, nil, 64); err == nil {
			t.Fatal("no error for a duplicate name")
		}
		if names := listDir(t, dir); len(names) != 0 {
			t.Errorf("left behind: %q", names)
		}
	})
}

// recordingWriter records the size of each write.
type recordingWriter struct {
	sizes []int
	data  []byte
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.sizes = append(r.sizes, len(p))
	r.data = append(r.data, p...)
	return len(p), nil
}

func TestAlignedWriter(t *testing.T) {
	rec := &recordingWriter{}
	a := &alignedWriter{w: rec, buf: make([]byte, 0, writeChunk)}
	var want []byte
	for i, n := range []int{8, 100, writeChunk - 50, 2*writeChunk + 3, 7, 0} {
		p := bytes.Repeat([]byte{byte(i)}, n)
		if k, err := a.Write(p); k != n || err != nil {
			t.Fatalf("Write = %d, %v", k, err)
		}
		want = append(want, p...)
	}
	if err := a.flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.data, want) {
		t.Fatal("bytes differ")
	}
	for i, n := range rec.sizes {
		if n != writeChunk && i != len(rec.sizes)-1 {
			t.Errorf("write %d of %d bytes", i, n)
		}
	}
}
