package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/storage"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// modelDir writes a small model directory and returns it with its files.
func modelDir(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"config.json":              []byte(`{"model_type": "bert", "hidden_size": 8}` + "\n"),
		"tokenizer.json":           randomBytes(1, 200<<10),
		"model.safetensors":        randomBytes(2, 3<<20+17),
		"sub/dir/weights.bin":      randomBytes(3, 1<<20),
		"sub/README.md":            []byte("# readme\n"),
		"empty.txt":                nil,
		"shared-a.bin":             []byte("same bytes in two files"),
		"shared-b/copy.bin":        []byte("same bytes in two files"),
		".git/HEAD":                []byte("ref: refs/heads/main\n"),
		".cache/huggingface/x.lck": []byte("lock"),
	}
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	delete(files, ".git/HEAD")
	delete(files, ".cache/huggingface/x.lck")
	return dir, files
}

func newStore(t *testing.T) storage.Store {
	s, err := storage.NewLocal(filepath.Join(t.TempDir(), "mirror"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// objects returns every object of s with its version.
func objects(t *testing.T, s storage.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.List(context.Background(), "", func(i storage.Info) error { out[i.Key] = i.Version; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkBlobs verifies that every blob in s hashes to its key: no partial
// or unverified object is visible.
func checkBlobs(t *testing.T, s storage.Store) int {
	t.Helper()
	n := 0
	for key := range objects(t, s) {
		sum, ok := strings.CutPrefix(key, "blobs/sha256/")
		if !ok {
			continue
		}
		data, err := storage.ReadAll(context.Background(), s, key, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(data)
		if hex.EncodeToString(h[:]) != sum {
			t.Errorf("blob %s holds content with another hash", key)
		}
		n++
	}
	return n
}

func pushDir(t *testing.T, s storage.Store, repo, dir string, opts PushOptions) *PushResult {
	t.Helper()
	files, err := DirFiles(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Push(context.Background(), s, repo, files, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestPushDir(t *testing.T) {
	s := newStore(t)
	dir, files := modelDir(t)
	res := pushDir(t, s, "org/model", dir, PushOptions{Source: Source{Kind: "dir", Location: dir}})
	if res.Files != len(files) || res.Uploaded != len(files)-1 || res.Present != 1 || !res.ManifestWritten || !res.RefUpdated {
		t.Errorf("first push: %+v (the two identical files share a blob)", res)
	}
	m, err := Resolve(context.Background(), s, "org/model", "main")
	if err != nil {
		t.Fatal(err)
	}
	if m.Commit != res.Commit || len(m.Files) != len(files) {
		t.Fatalf("manifest: commit %s files %d", m.Commit, len(m.Files))
	}
	for p, data := range files {
		e, ok := m.File(p)
		if !ok {
			t.Errorf("manifest lacks %s", p)
			continue
		}
		if e.Size != int64(len(data)) || e.SHA256 != storage.SHA256Hex(data) {
			t.Errorf("%s: entry %+v", p, e)
		}
		wantLFS := strings.HasSuffix(p, ".safetensors") || strings.HasSuffix(p, ".bin")
		if e.LFS != wantLFS {
			t.Errorf("%s: lfs %v, want %v", p, e.LFS, wantLFS)
		}
		if !e.LFS && e.GitOID != GitBlobOID(data) {
			t.Errorf("%s: git oid %s, want %s", p, e.GitOID, GitBlobOID(data))
		}
		rc, err := OpenFile(context.Background(), s, e, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: read back %d bytes, %v", p, len(got), err)
		}
	}
	if n := checkBlobs(t, s); n != len(files)-1 {
		t.Errorf("%d blobs, want %d", n, len(files)-1)
	}

	// A second push uploads and writes nothing.
	before := objects(t, s)
	res2 := pushDir(t, s, "org/model", dir, PushOptions{})
	if res2.Uploaded != 0 || res2.ManifestWritten || res2.RefUpdated || res2.Commit != res.Commit {
		t.Errorf("second push: %+v", res2)
	}
	after := objects(t, s)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("second push changed the store:\n%v\n%v", before, after)
	}

	// The same content in another repo shares every blob.
	res3 := pushDir(t, s, "other", dir, PushOptions{Revision: "v1"})
	if res3.Uploaded != 0 || res3.Commit != res.Commit {
		t.Errorf("push to another repo: %+v", res3)
	}
	repos, err := ListRepos(context.Background(), s)
	if err != nil || strings.Join(repos, ",") != "org/model,other" {
		t.Errorf("ListRepos = %v, %v", repos, err)
	}
	if _, err := Resolve(context.Background(), s, "other", "main"); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("Resolve(other, main) = %v, want ErrRevisionNotFound", err)
	}
	if _, err := Resolve(context.Background(), s, "nobody/here", "main"); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("Resolve(missing repo) = %v, want ErrRepoNotFound", err)
	}
	for _, rev := range []string{"v1", "refs/heads/v1", res.Commit} {
		if m, err := Resolve(context.Background(), s, "other", rev); err != nil || m.Commit != res.Commit {
			t.Errorf("Resolve(other, %s) = %v", rev, err)
		}
	}

	// Changed content: a new commit, the ref moves, old commit stays.
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"changed": true}`), 0o644)
	res4 := pushDir(t, s, "org/model", dir, PushOptions{})
	if res4.Commit == res.Commit || res4.Uploaded != 1 || !res4.RefUpdated {
		t.Errorf("push of changed content: %+v", res4)
	}
	if _, err := Resolve(context.Background(), s, "org/model", res.Commit); err != nil {
		t.Errorf("old commit: %v", err)
	}
}

// failAfter is a file source whose reader fails after n bytes, once.
func failingFiles(t *testing.T, dir string, failPath string, n int64, fail error) []PushFile {
	files, err := DirFiles(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if files[i].Path != failPath {
			continue
		}
		open := files[i].Open
		files[i].Open = func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := open(ctx)
			if err != nil {
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{io.MultiReader(io.LimitReader(rc, n), errReader{fail}), rc}, nil
		}
	}
	return files
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// cancelReader cancels a context after n bytes.
type cancelReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	if int64(len(p)) > c.n && c.n > 0 {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// testInterruptedPush: a push that fails mid-upload leaves no manifest, no
// ref and only complete blobs; a rerun completes it and uploads only what is
// missing.
func testInterruptedPush(t *testing.T, s storage.Store) {
	dir, files := modelDir(t)
	boom := errors.New("disk pulled")
	_, err := Push(context.Background(), s, "org/m", failingFiles(t, dir, "model.safetensors", 1<<20, boom), PushOptions{Jobs: 1})
	if !errors.Is(err, boom) {
		t.Fatalf("interrupted push: %v, want the source's error", err)
	}
	for k := range objects(t, s) {
		if !strings.HasPrefix(k, "blobs/") {
			t.Errorf("interrupted push left %s", k)
		}
	}
	partial := checkBlobs(t, s)
	if _, err := Resolve(context.Background(), s, "org/m", "main"); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("after an interrupted push: %v, want ErrRepoNotFound", err)
	}

	// Cancelled mid-upload of the biggest file (the reader cancels the
	// context after 2 MiB).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	all, _ := DirFiles(dir, nil)
	for i := range all {
		if all[i].Path == "model.safetensors" {
			// Its sha256 is known (as from a Hub listing), so the only
			// read is the upload, which the context cancels half-way.
			all[i].SHA256 = storage.SHA256Hex(files["model.safetensors"])
			open := all[i].Open
			all[i].Open = func(ctx context.Context) (io.ReadCloser, error) {
				rc, err := open(ctx)
				if err != nil {
					return nil, err
				}
				return struct {
					io.Reader
					io.Closer
				}{&cancelReader{r: rc, n: 2 << 20, cancel: cancel}, rc}, nil
			}
		}
	}
	_, err = Push(ctx, s, "org/m", all, PushOptions{Jobs: 2})
	if err == nil {
		t.Fatal("cancelled push succeeded")
	}
	for k := range objects(t, s) {
		// A lease whose PUT was still in flight on the server when the
		// push gave up can outlive the push's release; it names no
		// manifest and gc removes it once stale.
		if !strings.HasPrefix(k, "blobs/") && !strings.HasPrefix(k, leasePrefix) {
			t.Errorf("cancelled push left %s", k)
		}
	}
	checkBlobs(t, s)

	res := pushDir(t, s, "org/m", dir, PushOptions{})
	if !res.ManifestWritten || res.Present < partial || res.Uploaded == 0 {
		t.Errorf("rerun: %+v (blobs already there: %d)", res, partial)
	}
	if n := checkBlobs(t, s); n != len(files)-1 {
		t.Errorf("%d blobs after rerun, want %d", n, len(files)-1)
	}
	res2 := pushDir(t, s, "org/m", dir, PushOptions{})
	if res2.Uploaded != 0 || res2.ManifestWritten {
		t.Errorf("push after completion: %+v", res2)
	}
}

func TestInterruptedPushLocal(t *testing.T) { testInterruptedPush(t, newStore(t)) }

// streamFile is a non-seekable source with what a Hub listing tells.
func streamFile(p string, data []byte, sha, oid string, lfs bool) PushFile {
	return PushFile{
		Path: p, Size: int64(len(data)), SHA256: sha, GitOID: oid, LFS: lfs,
		Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(io.MultiReader(bytes.NewReader(data))), nil
		},
	}
}

func TestPushStreams(t *testing.T) {
	s := newStore(t)
	big := randomBytes(5, 3<<20)
	small := []byte(`{"a": 1}`)
	mid := randomBytes(6, 300<<10)
	files := []PushFile{
		streamFile("model.safetensors", big, storage.SHA256Hex(big), "", true),                             // LFS: sha256 known
		streamFile("config.json", small, "", GitBlobOID(small), false),                                     // regular: git oid known
		streamFile("vocab.txt", mid, "", "", false),                                                        // nothing known, spooled to a file
		streamFile("lfs/unknown.bin", randomBytes(7, 100), "", LFSOID(strings.Repeat("0", 64), 100), true), // wrong oid declared
	}
	commit := strings.Repeat("ab", 20)
	_, err := Push(context.Background(), s, "hub/model", files, PushOptions{Commit: commit, SpoolMemory: 100 << 10, TempDir: t.TempDir()})
	if !errors.Is(err, storage.ErrHashMismatch) || !strings.Contains(err.Error(), "lfs/unknown.bin") {
		t.Fatalf("push with a wrong declared oid: %v", err)
	}
	files = files[:3]
	res, err := Push(context.Background(), s, "hub/model", files, PushOptions{Commit: commit, SpoolMemory: 100 << 10, TempDir: t.TempDir(), Source: Source{Kind: "hub"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != commit {
		t.Errorf("commit %s, want the given %s", res.Commit, commit)
	}
	m, err := Resolve(context.Background(), s, "hub/model", "")
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := m.File("vocab.txt"); e.SHA256 != storage.SHA256Hex(mid) || e.GitOID != GitBlobOID(mid) {
		t.Errorf("spooled file: %+v", e)
	}
	// A stream whose content does not match its declared sha256.
	bad := streamFile("model.safetensors", randomBytes(8, 1000), storage.SHA256Hex(big[:1000]), "", true)
	if _, err := Push(context.Background(), s, "hub/model2", []PushFile{bad}, PushOptions{}); !errors.Is(err, storage.ErrHashMismatch) {
		t.Errorf("mismatching stream: %v", err)
	}
	if _, err := Resolve(context.Background(), s, "hub/model2", ""); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("after a refused push: %v", err)
	}
	// Git oid mismatch of a regular file.
	badOID := streamFile("c.json", small, "", strings.Repeat("f", 40), false)
	if _, err := Push(context.Background(), s, "hub/model3", []PushFile{badOID}, PushOptions{}); !errors.Is(err, storage.ErrHashMismatch) {
		t.Errorf("mismatching git oid: %v", err)
	}
	// Commit given twice with other content is refused.
	other := streamFile("x", []byte("x"), "", "", false)
	if _, err := Push(context.Background(), s, "hub/model", []PushFile{other}, PushOptions{Commit: commit}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("same commit, other content: %v", err)
	}
}

func TestPushVariant(t *testing.T) {
	s := newStore(t)
	dir, _ := modelDir(t)
	base := pushDir(t, s, "org/model", dir, PushOptions{})
	qdir := t.TempDir()
	q := randomBytes(9, 1<<20)
	os.WriteFile(filepath.Join(qdir, "model.safetensors"), q, 0o644)
	os.WriteFile(filepath.Join(qdir, "config.json"), []byte(`{"quantized": "int8"}`), 0o644)
	files, _ := DirFiles(qdir, nil)
	report := []byte(`{"passed": true, "max_abs_error": 0.01}`)

	if _, err := Push(context.Background(), s, "org/model", files, PushOptions{Variant: &VariantSpec{Name: "int8", SourceRevision: "nope", Report: report}}); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("variant of a missing revision: %v", err)
	}
	if _, err := Push(context.Background(), s, "org/model", files, PushOptions{Variant: &VariantSpec{Name: "int8", SourceRevision: "main"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("variant without a report: %v", err)
	}
	if _, err := Push(context.Background(), s, "org/model", files, PushOptions{Variant: &VariantSpec{Name: "int8", SourceRevision: "main", Report: []byte("{")}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("variant with a report that is not JSON: %v", err)
	}
	res, err := Push(context.Background(), s, "org/model", files, PushOptions{Variant: &VariantSpec{Name: "int8", SourceRevision: "main", Report: report}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Resolve(context.Background(), s, "org/model", "int8")
	if err != nil {
		t.Fatal(err)
	}
	if m.Commit != res.Commit || m.Variant == nil || m.Variant.SourceCommit != base.Commit || m.Variant.Report != ReportPath || m.Source.Kind != "variant" {
		t.Errorf("variant manifest: %+v %+v", m, m.Variant)
	}
	e, ok := m.File(ReportPath)
	if !ok || e.SHA256 != storage.SHA256Hex(report) {
		t.Errorf("report entry %+v", e)
	}
	if _, err := Resolve(context.Background(), s, "org/model", "refs/convert/int8"); err != nil {
		t.Errorf("refs/convert/int8: %v", err)
	}
	again, err := Push(context.Background(), s, "org/model", files, PushOptions{Variant: &VariantSpec{Name: "int8", SourceRevision: base.Commit, Report: report}})
	if err != nil || again.Commit != res.Commit || again.Uploaded != 0 {
		t.Errorf("repeated variant push: %+v %v", again, err)
	}
	// A variant name never replaces a branch, nor a branch a variant.
	if _, err := Push(context.Background(), s, "org/model", files, PushOptions{Variant: &VariantSpec{Name: "main", SourceRevision: base.Commit, Report: report}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("variant over a branch: %v", err)
	}
	if _, err := Push(context.Background(), s, "org/model", files, PushOptions{Revision: "int8"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("branch over a variant: %v", err)
	}
	refs, err := ListRefs(context.Background(), s, "org/model")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range refs {
		names = append(names, fmt.Sprintf("%s:%v", r.Name, r.Variant))
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "int8:true,main:false" {
		t.Errorf("refs %v", names)
	}
}

func TestOpenFileDetectsCorruption(t *testing.T) {
	s := newStore(t)
	dir, files := modelDir(t)
	pushDir(t, s, "org/model", dir, PushOptions{})
	m, _ := Resolve(context.Background(), s, "org/model", "")
	e, _ := m.File("model.safetensors")
	data := append([]byte(nil), files["model.safetensors"]...)
	data[len(data)/2] ^= 1
	// Replace the blob behind the store's back (bypassing Put's check).
	blobPath := filepath.Join(strings.TrimPrefix(s.Location(), "file://"), filepath.FromSlash(BlobKey(e.SHA256)))
	if err := os.WriteFile(blobPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := OpenFile(context.Background(), s, e, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, ErrCorrupt) || len(got) >= len(data) {
		t.Errorf("reading a corrupt blob: %d of %d bytes, %v", len(got), len(data), err)
	}
	if _, err := VerifyBlob(context.Background(), s, e); !errors.Is(err, ErrCorrupt) {
		t.Errorf("VerifyBlob: %v", err)
	}
	os.Remove(blobPath)
	if _, err := OpenFile(context.Background(), s, e, 0, -1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("missing blob: %v", err)
	}
}
