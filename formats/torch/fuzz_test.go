package torch

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// maxSeed leaves the largest hostile files (the 20,000-opcode bombs, which
// TestHostile covers) out of the fuzz corpus: the fuzzer would spend its time
// mutating and minimizing them.
const maxSeed = 64 << 10

// seedFiles is every committed fixture up to maxSeed bytes: checkpoints,
// shards, hostile files and plain pickles.
func seedFiles(f *testing.F) []string {
	var files []string
	err := filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".bin") || strings.HasSuffix(path, ".pkl")) {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Size() <= maxSeed {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	if len(files) < 50 {
		f.Fatalf("only %d seed files", len(files))
	}
	return files
}

// pickleSeeds returns the pickles inside a seed file: the file itself, and
// for zip checkpoints their data.pkl.
func pickleSeeds(data []byte) [][]byte {
	out := [][]byte{data}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return out
	}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "data.pkl") {
			if rc, err := f.Open(); err == nil {
				if b, err := io.ReadAll(io.LimitReader(rc, 1<<20)); err == nil {
					out = append(out, b)
				}
				rc.Close()
			}
		}
	}
	return out
}

// FuzzUnpickle runs the unpickler on arbitrary bytes with a persistent-id
// loader that hands out small zero-filled storages, then builds and reads a
// graph from whatever it produced.
func FuzzUnpickle(f *testing.F) {
	for _, path := range seedFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range pickleSeeds(data) {
			f.Add(p)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rec globalRecorder
		u := &unpickler{data: data, file: "fuzz", findGlobal: rec.find, persistentLoad: fuzzStorage}
		v, err := u.load()
		if err != nil {
			checkErr(t, err)
			return
		}
		if u.pos > len(data) {
			t.Fatalf("read to %d of %d bytes", u.pos, len(data))
		}
		g, err := buildGraph(&pickled{result: v, globals: rec.names, size: len(data)}, "fuzz")
		if err != nil {
			checkErr(t, err)
			return
		}
		readAllStrict(t, g)
	})
}

func fuzzStorage(pid any) (any, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) < 5 {
		return nil, fmt.Errorf("%w: fuzz persistent id", ErrBadArguments)
	}
	st, key, numel, err := storageArgs(t)
	if err != nil {
		return nil, err
	}
	nbytes, err := weights.ByteSize(st.dtype, []int64{numel})
	if err != nil || nbytes > 1<<16 {
		return nil, fmt.Errorf("%w: fuzz storage too large", ErrStorage)
	}
	root := &rootStorage{key: key, id: "fuzz#" + key, dtype: st.dtype, numel: numel, nbytes: nbytes,
		data: make([]byte, nbytes), fileSize: 1 << 20}
	return &storageRef{root: root, dtype: st.dtype, nbytes: nbytes}, nil
}

// FuzzOpenBytes runs Parse on arbitrary bytes and reads every tensor of
// whatever it accepts.
func FuzzOpenBytes(f *testing.F) {
	for _, path := range seedFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data, "fuzz.bin")
		if err != nil {
			checkErr(t, err)
			return
		}
		readAllStrict(t, g)
	})
}

// checkErr insists that every error is one of the package's kinds.
func checkErr(t *testing.T, err error) {
	t.Helper()
	for _, kind := range []error{ErrFormat, ErrPickle, ErrForbiddenGlobal, ErrBadArguments, ErrStorage, ErrUnsupported, ErrNotStateDict, weights.ErrDuplicate} {
		if errors.Is(err, kind) {
			return
		}
	}
	t.Fatalf("error of no known kind: %v", err)
}

// readAllStrict reads every tensor; only a deflated record that fails to
// decompress may fail, and the result must match dtype and shape.
func readAllStrict(t *testing.T, g *weights.Graph) {
	t.Helper()
	for _, tt := range g.Tensors() {
		b, err := tt.Bytes()
		if err != nil {
			if errors.Is(err, ErrFormat) {
				continue
			}
			t.Fatalf("%s: %v", tt.Name, err)
		}
		if int64(len(b)) != tt.NumBytes() {
			t.Fatalf("%s: %d bytes for %v%v", tt.Name, len(b), tt.DType, tt.Shape)
		}
	}
}
