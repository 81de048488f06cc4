package torch

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// benchCheckpoint returns a ~500 MB pytorch_model.bin: the file named by
// HUBMIRROR_TORCH_BENCH_FILE (bench/torch_load.sh sets it, so Go and Python
// read the same file), or one bench/torch_make_checkpoint.py writes into a
// temporary folder. Without python3 and torch the benchmark is skipped.
func benchCheckpoint(b *testing.B, legacy bool) string {
	b.Helper()
	env := "HUBMIRROR_TORCH_BENCH_FILE"
	if legacy {
		env = "HUBMIRROR_TORCH_BENCH_LEGACY_FILE"
	}
	if p := os.Getenv(env); p != "" {
		return p
	}
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		b.Skipf("%s with torch is needed to write the benchmark checkpoint: %v", python, err)
	}
	script, err := filepath.Abs("../../bench/torch_make_checkpoint.py")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "pytorch_model.bin")
	args := []string{script, path}
	if legacy {
		args = append(args, "--legacy")
	}
	cmd := exec.Command(python, args...)
	cmd.Dir = dir // an empty folder: no stray module shadows the standard library
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", script, err, out)
	}
	return path
}

// BenchmarkOpenAndRead opens a ~500 MB checkpoint, reads every tensor and
// touches every byte, then closes it: the work torch.load does.
func BenchmarkOpenAndRead(b *testing.B) { benchOpenAndRead(b, false) }

// BenchmarkOpenAndReadLegacy is BenchmarkOpenAndRead for the legacy format.
func BenchmarkOpenAndReadLegacy(b *testing.B) { benchOpenAndRead(b, true) }

func benchOpenAndRead(b *testing.B, legacy bool) {
	path := benchCheckpoint(b, legacy)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	var sink uint64
	for b.Loop() {
		g, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range g.Tensors() {
			data, err := t.Bytes()
			if err != nil {
				b.Fatal(err)
			}
			sink += touch(data)
		}
		if err := g.Close(); err != nil {
			b.Fatal(err)
		}
	}
	if sink == 1 {
		b.Log(sink)
	}
}

// BenchmarkOpen is the cost of reading the container and the pickle alone.
func BenchmarkOpen(b *testing.B) {
	path := benchCheckpoint(b, false)
	for b.Loop() {
		g, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		g.Close()
	}
}

// touch reads every byte of b.
func touch(b []byte) uint64 {
	var s uint64
	i := 0
	for ; i+32 <= len(b); i += 32 {
		s += binary.LittleEndian.Uint64(b[i:]) ^ binary.LittleEndian.Uint64(b[i+8:]) ^
			binary.LittleEndian.Uint64(b[i+16:]) ^ binary.LittleEndian.Uint64(b[i+24:])
	}
	for ; i < len(b); i++ {
		s += uint64(b[i])
	}
	return s
}
