package mirror

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

// requestCounting counts a store's requests by kind, and the keys written
// and deleted.
type requestCounting struct {
	storage.Store
	mu                sync.Mutex
	n                 map[string]int
	puts, deletes     []string
	beforeManifestPut func()
}

func newRequestCounting(s storage.Store) *requestCounting {
	return &requestCounting{Store: s, n: map[string]int{}}
}

func (c *requestCounting) count(kind, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[kind]++
	switch kind {
	case "put":
		c.puts = append(c.puts, key)
	case "delete":
		c.deletes = append(c.deletes, key)
	}
}

func (c *requestCounting) Put(ctx context.Context, key string, src storage.Source, size int64, sum string) error {
	c.count("put", key)
	if c.beforeManifestPut != nil && strings.Contains(key, "/manifests/") {
		c.beforeManifestPut()
	}
	return c.Store.Put(ctx, key, src, size, sum)
}

func (c *requestCounting) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	c.count("get", key)
	return c.Store.Get(ctx, key, offset, length)
}

func (c *requestCounting) Stat(ctx context.Context, key string) (storage.Info, error) {
	c.count("stat", key)
	return c.Store.Stat(ctx, key)
}

func (c *requestCounting) Delete(ctx context.Context, key string) error {
	c.count("delete", key)
	return c.Store.Delete(ctx, key)
}

func (c *requestCounting) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	c.count("list", prefix)
	return c.Store.List(ctx, prefix, fn)
}

// A rerun of a push whose manifest exists and whose blobs are all present
// writes no lease per blob: its lease writes and deletes are those of its
// one list lease, whatever the number of files, and it makes about one
// request per file (the blob's Stat).
func TestPushRerunCostsNoLeasePerBlob(t *testing.T) {
	for _, n := range []int{10, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			files := map[string][]byte{}
			for i := range n {
				files[fmt.Sprintf("f/%04d.txt", i)] = []byte(fmt.Sprintf("content of file %d", i))
			}
			first, err := Push(ctx, s, "org/big", bytesFiles(files), PushOptions{StaleUploadAge: -1})
			if err != nil {
				t.Fatal(err)
			}
			counting := newRequestCounting(s)
			res, err := Push(ctx, counting, "org/big", bytesFiles(files), PushOptions{StaleUploadAge: -1})
			if err != nil {
				t.Fatal(err)
			}
			if res.Commit != first.Commit || res.Uploaded != 0 || res.ManifestWritten || res.RefUpdated {
				t.Fatalf("the rerun was not a no-op: %+v", res)
			}
			for _, k := range counting.puts {
				if !strings.HasPrefix(k, leasePrefix) || !strings.HasSuffix(k, leaseListExt) {
					t.Errorf("the rerun wrote %s", k)
				}
			}
			if len(counting.puts) != 2 || len(counting.deletes) != 1 {
				t.Errorf("the rerun wrote %d and deleted %d objects, want its list lease written twice and deleted once: %v %v",
					len(counting.puts), len(counting.deletes), counting.puts, counting.deletes)
			}
			total := 0
			for _, k := range counting.n {
				total += k
			}
			// One Stat per file; the rest does not grow with n.
			if total > n+12 {
				t.Errorf("the rerun of %d files made %d requests: %v", n, total, counting.n)
			}
			t.Logf("%d files: %d requests %v", n, total, counting.n)
			if n := countKeys(t, s, leasePrefix); n != 0 {
				t.Errorf("%d leases left", n)
			}
		})
	}
}

// A gc that starts after a push wrote its list lease, and before its
// manifest, keeps the push's blobs, which it found present and took no blob
// lease on.
func TestGCKeepsBlobsOfPushListLease(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	files := map[string][]byte{"a": []byte("reused a"), "b": []byte("reused b")}
	pushAt(t, s, "org/old", "main", files, t0, nil)
	if _, err := Remove(ctx, s, "org/old", ""); err != nil {
		t.Fatal(err)
	}
	counting := newRequestCounting(s)
	var gcRes *GCResult
	var gcErr error
	counting.beforeManifestPut = func() {
		gcRes, gcErr = GC(ctx, s, GCOptions{Now: later(time.Hour)})
	}
	res, err := Push(ctx, counting, "org/new", bytesFiles(files), PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if gcErr != nil || gcRes == nil {
		t.Fatalf("gc: %v", gcErr)
	}
	if res.Present != 2 || len(gcRes.DeletedBlobs) != 0 || gcRes.KeptLeased != 2 {
		t.Errorf("push %+v; gc %+v: want both blobs present and kept by the list lease", res, gcRes)
	}
	for _, k := range counting.puts {
		if strings.HasPrefix(k, leasePrefix) && !strings.HasSuffix(k, leaseListExt) {
			t.Errorf("a blob lease for a present blob: %s", k)
		}
	}
	if rep, err := Verify(ctx, s, VerifyOptions{}); err != nil || len(rep.Damage) != 0 {
		t.Errorf("verify: %v %+v", err, rep)
	}
}

// GC reads list leases: the blobs listed are kept until the lease is
// released or stale; lines that are not a sha256 name nothing.
func TestGCReadsListLeases(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	x, y := storage.SHA256Hex([]byte("x")), storage.SHA256Hex([]byte("y"))
	mustPut(t, s, BlobKey(x), []byte("x"))
	mustPut(t, s, BlobKey(y), []byte("y"))
	l := newLeaser(s)
	if err := l.start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.mustRecheck(ctx, []string{x, x}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, leasePrefix+"other"+leaseListExt, []byte("not a sha\n\n"))
	res, err := GC(ctx, s, GCOptions{Now: later(time.Hour)})
	if err != nil || res.KeptLeased != 1 || len(res.DeletedBlobs) != 1 || res.DeletedBlobs[0].SHA256 != y {
		t.Fatalf("%+v %v", res, err)
	}
	l.release(ctx)
	res, err = GC(ctx, s, GCOptions{Now: later(time.Hour)})
	if err != nil || len(res.DeletedBlobs) != 1 || res.DeletedBlobs[0].SHA256 != x {
		t.Fatalf("after release: %+v %v", res, err)
	}
}
