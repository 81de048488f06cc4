package safetensors

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestOpenIndex(t *testing.T) {
	s1, s2 := "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	tests := []struct {
		dir    string
		err    error
		file   string // file the error names: index or shard s1/s2
		tensor string
	}{
		{dir: "index_valid"},
		{dir: "torch_sharded"},
		{dir: "index_missing_tensor", err: ErrIndexMismatch, file: IndexFile, tensor: "d"},
		{dir: "index_extra_tensor", err: ErrIndexMismatch, file: s1, tensor: "b"},
		{dir: "index_wrong_shard", err: ErrIndexMismatch, file: s1, tensor: "b"},
		{dir: "index_name_dotdot", err: ErrShardName, file: IndexFile, tensor: "a"},
		{dir: "index_name_absolute", err: ErrShardName, file: IndexFile, tensor: "a"},
		{dir: "index_name_subdir", err: ErrShardName, file: IndexFile, tensor: "a"},
		{dir: "index_name_backslash", err: ErrShardName, file: IndexFile, tensor: "a"},
		{dir: "index_name_empty", err: ErrShardName, file: IndexFile, tensor: "a"},
		{dir: "index_duplicate_name", err: ErrDuplicate, file: IndexFile, tensor: "a"},
		{dir: "index_no_weight_map", err: ErrIndex, file: IndexFile},
		{dir: "index_empty_weight_map", err: ErrIndex, file: IndexFile},
		{dir: "index_value_not_string", err: ErrIndex, file: IndexFile, tensor: "a"},
		{dir: "index_not_json", err: ErrIndex, file: IndexFile},
		{dir: "index_bad_utf8", err: ErrIndex, file: IndexFile},
		{dir: "index_trailing_junk", err: ErrIndex, file: IndexFile},
		{dir: "index_corrupt_shard", err: ErrFileSize, file: s2},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			path := filepath.Join("testdata", tt.dir, IndexFile)
			g, err := OpenIndex(path)
			want := ""
			if tt.file != "" {
				want = filepath.Join("testdata", tt.dir, tt.file)
			}
			checkErr(t, err, tt.err, want, tt.tensor)
			if g != nil {
				defer g.Close()
				if g.Files[0] != path || len(g.Files) < 2 {
					t.Errorf("Files = %q", g.Files)
				}
			}
		})
	}
	tested := map[string]bool{"index_missing_shard_file": true} // see TestOpenIndexMissingShard
	for _, tt := range tests {
		tested[tt.dir] = true
	}
	dirs, _ := filepath.Glob(filepath.Join("testdata", "index_*"))
	for _, d := range dirs {
		if !tested[filepath.Base(d)] {
			t.Errorf("fixture %s is not tested", d)
		}
	}
}

func TestOpenIndexOrder(t *testing.T) {
	dir := filepath.Join("testdata", "index_valid")
	g, err := OpenIndex(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// weight_map names shard 2 first: its tensor comes first.
	if want := []string{"c", "a", "b"}; !reflect.DeepEqual(g.Names(), want) {
		t.Errorf("Names = %q, want %q", g.Names(), want)
	}
	want := []string{filepath.Join(dir, IndexFile), filepath.Join(dir, "model-00002-of-00002.safetensors"), filepath.Join(dir, "model-00001-of-00002.safetensors")}
	if !reflect.DeepEqual(g.Files, want) {
		t.Errorf("Files = %q, want %q", g.Files, want)
	}
	for _, tensor := range g.Tensors() {
		if !strings.HasSuffix(tensor.File, ".safetensors") {
			t.Errorf("%s: File %q", tensor.Name, tensor.File)
		}
	}
	if g.Metadata["format"] != "pt" {
		t.Errorf("Metadata = %v", g.Metadata)
	}
}

func TestOpenIndexMissingShard(t *testing.T) {
	_, err := OpenIndex(filepath.Join("testdata", "index_missing_shard_file", IndexFile))
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrFormat) {
		t.Errorf("err = %v, want a not-exist error", err)
	}
	if err == nil || !strings.Contains(err.Error(), "model-00002-of-00002.safetensors") {
		t.Errorf("error %q does not name the shard", err)
	}
	_, err = OpenIndex(filepath.Join("testdata", "no such dir", IndexFile))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want a not-exist error", err)
	}
}

// TestOpenIndexClosesOnError checks on Linux that a shard mapped before a
// later shard fails is unmapped again.
func TestOpenIndexClosesOnError(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "index_corrupt_shard"))
	if err != nil {
		t.Fatal(err)
	}
	shard1 := filepath.Join(dir, "model-00001-of-00002.safetensors")
	mapped := func() bool {
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(maps), shard1)
	}
	// Shard 1 alone opens and is mapped while open: the check can see it.
	g, err := Open(shard1)
	if err != nil {
		t.Fatal(err)
	}
	if !mapped() {
		t.Fatal("an open shard does not show in /proc/self/maps")
	}
	g.Close()
	if mapped() {
		t.Fatal("a closed shard is still mapped")
	}
	if _, err := OpenIndex(filepath.Join(dir, IndexFile)); !errors.Is(err, ErrFileSize) {
		t.Fatalf("err = %v, want ErrFileSize from shard 2", err)
	}
	if mapped() {
		t.Error("shard 1 is still mapped after OpenIndex failed")
	}
}

func TestPlainFileName(t *testing.T) {
	good := []string{"model.safetensors", "model-00001-of-00002.safetensors", "a..b", "...", "x y"}
	bad := []string{"", ".", "..", "../x", "a/b", `a\b`, "/abs", `C:\x`, "x\x00y", "./x"}
	for _, s := range good {
		if !plainFileName(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range bad {
		if plainFileName(s) {
			t.Errorf("%q accepted", s)
		}
	}
}
