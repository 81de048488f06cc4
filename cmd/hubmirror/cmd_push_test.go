package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

func pushRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// safetensorsOf returns a safetensors file that holds data as one U8
// tensor "w".
func safetensorsOf(data []byte) []byte {
	header := fmt.Sprintf(`{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}`, len(data), len(data))
	for len(header)%8 != 0 {
		header += " "
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

// pushModelDir writes a model directory named name with a big weight file.
func pushModelDir(t *testing.T, name string, weightSize int) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	files := map[string][]byte{
		"config.json":         []byte(`{"model_type": "gpt2"}`),
		"model.safetensors":   safetensorsOf(pushRandom(1, weightSize)),
		"tokenizer/vocab.txt": []byte("a\nb\nc\n"),
	}
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

func pushJSON(t *testing.T, args ...string) (pushReport, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"hubmirror", "push", "--json"}, args...), &out, &errb)
	var rep pushReport
	if code == 0 {
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("push output %q: %v", out.String(), err)
		}
	}
	return rep, errb.String(), code
}

func TestPushCommand(t *testing.T) {
	dir, files := pushModelDir(t, "tiny", 1<<20)
	dst := filepath.Join(t.TempDir(), "mirror")
	rep, stderr, code := pushJSON(t, dir, "file://"+dst, "--repo-id", "org/tiny")
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	if rep.Repo != "org/tiny" || rep.Revision != "main" || rep.Files != 3 || rep.Uploaded != 3 || !rep.ManifestWritten || !mirror.IsCommitID(rep.Commit) {
		t.Errorf("first push: %+v", rep.PushResult)
	}
	rep2, _, code := pushJSON(t, dir, dst, "--repo", "org/tiny")
	if code != 0 || rep2.Uploaded != 0 || rep2.ManifestWritten || rep2.RefUpdated || rep2.Commit != rep.Commit {
		t.Errorf("second push: exit %d %+v", code, rep2.PushResult)
	}
	// local/<the directory's name> is the default repo id, as for mirror.
	if rep3, stderr, code := pushJSON(t, dir, dst); code != 0 || rep3.Repo != "local/tiny" {
		t.Errorf("push without --repo: exit %d %+v %s", code, rep3.PushResult, stderr)
	}
	// A variant with its report, then a copy of both into another mirror.
	qdir, _ := pushModelDir(t, "q", 1000)
	report := filepath.Join(t.TempDir(), "report.json")
	os.WriteFile(report, []byte(`{"passed": true}`), 0o644)
	v, stderr, code := pushJSON(t, qdir, dst, "--repo", "org/tiny", "--variant", "int8", "--report", report)
	if code != 0 || v.Revision != "int8" {
		t.Fatalf("variant push: exit %d %+v %s", code, v.PushResult, stderr)
	}
	other := filepath.Join(t.TempDir(), "other")
	for _, rev := range []string{"main", "int8"} {
		c, stderr, code := pushJSON(t, "file://"+dst, "file://"+other, "--repo", "org/tiny", "--revision", rev)
		if code != 0 {
			t.Fatalf("copy %s: exit %d %s", rev, code, stderr)
		}
		want := rep.Commit
		if rev == "int8" {
			want = v.Commit
		}
		if c.Commit != want {
			t.Errorf("copy of %s: commit %s, want %s", rev, c.Commit, want)
		}
	}
	s, err := storage.NewLocal(other, false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mirror.Resolve(context.Background(), s, "org/tiny", "main")
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range files {
		e, _ := m.File(p)
		rc, err := mirror.OpenFile(context.Background(), s, e, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("copied %s differs: %v", p, err)
		}
	}

	for _, args := range [][]string{
		{dir},
		{dir, dst, "extra"},
		{dir, dst, "--repo", "a/b/c"},
		{dir, dst, "--repo-id", "a/b/c"},
		{dir, dst, "--repo", "a/b", "--repo-id", "a/b"}, // the hidden alias and the flag
		{dir, dst, "--workers", "0"},
		{dir, dst, "--jobs", "2", "--workers", "2"},
		{dir, dst, "--of", "main"},
		{dir, dst, "--part-size", "1MiB"},
		{"file://" + dst, other},
	} {
		if _, _, code := pushJSON(t, args...); code != exitUsage {
			t.Errorf("push %v: exit %d, want %d", args, code, exitUsage)
		}
	}
	if _, _, code := pushJSON(t, filepath.Join(t.TempDir(), "missing"), dst, "--repo", "a/b"); code != exitError {
		t.Errorf("push of a missing directory: exit %d", code)
	}
}

// TestPushHelperProcess is not a test: TestPushKilled runs the test binary
// with HUBMIRROR_PUSH_HELPER set to run the command in a process it can kill.
func TestPushHelperProcess(t *testing.T) {
	args := os.Getenv("HUBMIRROR_PUSH_HELPER")
	if args == "" {
		return
	}
	os.Exit(run(context.Background(), append([]string{"hubmirror"}, strings.Split(args, "\x1f")...), os.Stdout, os.Stderr))
}

// TestPushKilled kills a push process while it uploads, checks that no
// manifest and only complete, verified blobs are visible, then reruns it.
func TestPushKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 MiB")
	}
	dir, files := pushModelDir(t, "big", 200<<20)
	dst := filepath.Join(t.TempDir(), "mirror")
	cmd := exec.Command(os.Args[0], "-test.run=^TestPushHelperProcess$")
	cmd.Env = append(os.Environ(), "HUBMIRROR_PUSH_HELPER="+strings.Join([]string{"push", dir, dst, "--repo", "org/big", "--jobs", "1"}, "\x1f"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killWhenStaged(t, cmd, dst, 10<<20, "the push finished or never started uploading the big file before the deadline")
	s, err := storage.NewLocal(dst, false)
	if err != nil {
		t.Fatal(err)
	}
	visible := onlyCompleteBlobs(t, s, "killed push")
	if visible[mirror.BlobKey(storage.SHA256Hex(files["model.safetensors"]))] {
		t.Error("the blob being uploaded when the push was killed is visible")
	}
	rep, stderr, code := pushJSON(t, dir, dst, "--repo", "org/big")
	if code != 0 || !rep.ManifestWritten || rep.Uploaded == 0 || rep.Uploaded+rep.Present != 3 {
		t.Fatalf("rerun: exit %d %+v %s", code, rep.PushResult, stderr)
	}
	m, err := mirror.Resolve(context.Background(), s, "org/big", "main")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Files {
		if _, err := mirror.VerifyBlob(context.Background(), s, e); err != nil {
			t.Error(err)
		}
	}
	var n int
	s.List(context.Background(), "", func(i storage.Info) error {
		if !strings.HasPrefix(i.Key, "leases/") { // the killed push's
			n++
		}
		return nil
	})
	if n != 3+1+2 { // three blobs, the big one's chunk sidecar, a manifest, a ref
		t.Errorf("%d objects after the rerun, want 6", n)
	}
}

// onlyCompleteBlobs checks what an interrupted push or pull left visible in
// s: complete blobs that match their sha256, and chunk sidecars only of
// those (a sidecar is written after its blob). It returns the visible keys.
func onlyCompleteBlobs(t *testing.T, s storage.Store, what string) map[string]bool {
	t.Helper()
	visible := map[string]bool{}
	if err := s.List(context.Background(), "", func(i storage.Info) error { visible[i.Key] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for k := range visible {
		if strings.HasPrefix(k, "leases/") {
			continue // the killed process's leases on blobs (gc deletes them when stale)
		}
		if sum, ok := strings.CutPrefix(k, "blobs/chunks/"); ok {
			if !visible[mirror.BlobKey(sum)] {
				t.Errorf("%s left the sidecar %s without its blob", what, k)
			}
			continue
		}
		sum, ok := strings.CutPrefix(k, "blobs/sha256/")
		if !ok {
			t.Errorf("%s left %s visible", what, k)
			continue
		}
		data, _ := storage.ReadAll(context.Background(), s, k, 1<<30)
		if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
			t.Errorf("%s left a partial blob visible: %s", what, k)
		}
	}
	return visible
}

// killWhenStaged kills cmd once its upload into the local mirror at dst has
// started: a temporary file under the store's staging directory has grown
// past size. It fails the test with msg when that does not happen within a
// minute.
func killWhenStaged(t *testing.T, cmd *exec.Cmd, dst string, size int64, msg string) {
	t.Helper()
	staging := filepath.Join(dst, storage.TempDir)
	deadline := time.Now().Add(60 * time.Second)
	killed := false
	for time.Now().Before(deadline) && !killed {
		ents, _ := os.ReadDir(staging)
		for _, e := range ents {
			if info, err := e.Info(); err == nil && info.Size() > size {
				cmd.Process.Kill()
				killed = true
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Wait()
	if !killed {
		t.Fatal(msg)
	}
}
