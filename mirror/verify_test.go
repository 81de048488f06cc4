package mirror

import (
	"context"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/storage"
)

func TestVerifyLocal(t *testing.T) { testVerify(t, newStore(t)) }
func TestVerifyS3(t *testing.T)    { testVerify(t, s3Store(t)) }

// testVerify: verify finds nothing in a sound mirror, then names each of a
// flipped byte in a blob, a missing blob, a damaged sidecar, a sidecar
// that lies about its blob, a blob of the wrong size and a dangling ref,
// all in one run; --quick finds all but the ones that need the content.
func testVerify(t *testing.T, s storage.Store) {
	ctx := context.Background()
	data, big := chunkMirror(t, s) // org/model: big.bin (with a sidecar), config.json
	other := randomBytes(22, 3*testChunk+5)
	lying := randomBytes(23, 2*testChunk+7)
	pushAt(t, s, "org/other", "main", map[string][]byte{"a.bin": other, "b.bin": lying, "c.txt": []byte("hello"), "d.txt": []byte("sized")}, t0, nil)
	rep, err := Verify(ctx, s, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damage) != 0 || rep.Repos != 2 || rep.Manifests != 2 || rep.Refs != 2 || rep.Blobs != 6 {
		t.Fatalf("sound mirror: %+v", rep)
	}
	m, err := Resolve(ctx, s, "org/other", "main")
	if err != nil {
		t.Fatal(err)
	}
	aBin, _ := m.File("a.bin")
	bBin, _ := m.File("b.bin")

	dTxt, _ := m.File("d.txt")
	cfg, _ := mustResolve(t, s, "org/model").File("config.json")

	// A flipped byte in big.bin's blob.
	flipped := append([]byte(nil), data...)
	flipped[len(flipped)/2] ^= 1
	mustPut(t, s, BlobKey(big.SHA256), flipped)
	// config.json's blob is missing.
	if err := s.Delete(ctx, BlobKey(cfg.SHA256)); err != nil {
		t.Fatal(err)
	}
	// a.bin's sidecar has a flipped byte.
	side, err := storage.ReadAll(ctx, s, ChunksKey(aBin.SHA256), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	side[60] ^= 1
	mustPut(t, s, ChunksKey(aBin.SHA256), side)
	// b.bin's sidecar is well-formed but holds other chunk hashes.
	sums := chunkSums(lying, testChunk)
	sums[1][0] ^= 1
	mustPut(t, s, ChunksKey(bBin.SHA256), encodeChunks(bBin.SHA256, bBin.Size, testChunk, sums))
	// d.txt's blob has the wrong size.
	mustPut(t, s, BlobKey(dTxt.SHA256), []byte("size"))
	// A ref to a commit without a manifest.
	mustPut(t, s, RefKey("org/other", "gone"), []byte(strings.Repeat("ab", 20)))

	want := map[string]string{
		BlobKey(big.SHA256):         "sha256",
		BlobKey(cfg.SHA256):         "missing blob",
		ChunksKey(aBin.SHA256):      "damaged chunk sidecar",
		ChunksKey(bBin.SHA256):      "does not match its blob",
		BlobKey(dTxt.SHA256):        "has 4 bytes",
		RefKey("org/other", "gone"): "dangling ref",
	}
	check := func(quick bool, skip ...string) {
		t.Helper()
		rep, err := Verify(ctx, s, VerifyOptions{Quick: quick})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, d := range rep.Damage {
			if _, dup := got[d.Key]; dup {
				t.Errorf("quick=%v: %s named twice", quick, d.Key)
			}
			got[d.Key] = d.Problem
		}
		for key, what := range want {
			if contains(skip, key) {
				if _, ok := got[key]; ok {
					t.Errorf("quick=%v: %s reported: %s", quick, key, got[key])
				}
				continue
			}
			if !strings.Contains(got[key], what) {
				t.Errorf("quick=%v: %s: got %q, want a problem saying %q", quick, key, got[key], what)
			}
		}
		if len(got) != len(want)-len(skip) {
			t.Errorf("quick=%v: %d damaged objects, want %d: %+v", quick, len(got), len(want)-len(skip), rep.Damage)
		}
	}
	check(false)
	check(true, BlobKey(big.SHA256), ChunksKey(bBin.SHA256))

	// Only the named repo.
	rep, err = Verify(ctx, s, VerifyOptions{Repos: []string{"org/model"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damage) != 2 || rep.Repos != 1 {
		t.Errorf("org/model alone: %+v", rep.Damage)
	}
	if _, err := Verify(ctx, s, VerifyOptions{Repos: []string{"org/none"}}); err == nil {
		t.Error("verify of a repo that does not exist succeeded")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustPut(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if err := storage.PutBytes(context.Background(), s, key, data); err != nil {
		t.Fatal(err)
	}
}

func mustResolve(t *testing.T, s storage.Store, repo string) *Manifest {
	t.Helper()
	m, err := Resolve(context.Background(), s, repo, "main")
	if err != nil {
		t.Fatal(err)
	}
	return m
}
