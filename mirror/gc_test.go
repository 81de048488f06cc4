package mirror

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

func later(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }

func blobExists(t *testing.T, s storage.Store, sha string) bool {
	t.Helper()
	_, err := s.Stat(context.Background(), BlobKey(sha))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func fileSHA(t *testing.T, s storage.Store, repo, rev, path string) string {
	t.Helper()
	m, err := Resolve(context.Background(), s, repo, rev)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m.File(path)
	if !ok {
		t.Fatalf("%s@%s has no %s", repo, rev, path)
	}
	return e.SHA256
}

func TestGCLocal(t *testing.T) { testGC(t, newStore(t)) }
func TestGCS3(t *testing.T)    { testGC(t, s3Store(t)) }

// testGC: referenced blobs stay; unreferenced ones go once older than the
// grace period, with their sidecars; young ones stay; --dry-run deletes
// nothing; --keep-last drops the manifests of old commits of a revision.
func testGC(t *testing.T, s storage.Store) {
	ctx := context.Background()
	setChunkSize(t, testChunk)
	big := randomBytes(31, 3*testChunk+1)
	pushAt(t, s, "org/gone", "main", map[string][]byte{"big.bin": big, "a.txt": []byte("gone")}, t0, nil)
	pushAt(t, s, "org/kept", "main", map[string][]byte{"a.txt": []byte("kept"), "shared.txt": []byte("shared")}, t0, nil)
	pushAt(t, s, "org/gone2", "main", map[string][]byte{"shared.txt": []byte("shared")}, t0, nil)
	bigSHA := fileSHA(t, s, "org/gone", "main", "big.bin")
	goneSHA := fileSHA(t, s, "org/gone", "main", "a.txt")
	keptSHA := fileSHA(t, s, "org/kept", "main", "a.txt")
	sharedSHA := fileSHA(t, s, "org/kept", "main", "shared.txt")
	for _, repo := range []string{"org/gone", "org/gone2"} {
		if _, err := Remove(ctx, s, repo, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Stat(ctx, ChunksKey(bigSHA)); err != nil {
		t.Fatalf("big.bin has no sidecar: %v", err)
	}

	// Young: nothing goes.
	res, err := GC(ctx, s, GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeletedBlobs) != 0 || res.KeptYoung != 2 || res.ReferencedBlobs != 2 {
		t.Errorf("young: %+v", res)
	}
	// Old, dry run: reported, nothing deleted.
	res, err = GC(ctx, s, GCOptions{Grace: time.Hour, DryRun: true, Now: later(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeletedBlobs) != 2 || res.DeletedSidecars != 1 || !res.DryRun {
		t.Errorf("dry run: %+v", res)
	}
	if !blobExists(t, s, bigSHA) || !blobExists(t, s, goneSHA) {
		t.Fatal("dry run deleted blobs")
	}
	// Old: the unreferenced blobs and big.bin's sidecar go.
	res, err = GC(ctx, s, GCOptions{Grace: time.Hour, Now: later(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(big) + len("gone")); len(res.DeletedBlobs) != 2 || res.DeletedSidecars != 1 || res.FreedBytes <= want {
		t.Errorf("old: %+v (want 2 blobs, 1 sidecar, over %d bytes)", res, want)
	}
	if blobExists(t, s, bigSHA) || blobExists(t, s, goneSHA) || !blobExists(t, s, keptSHA) || !blobExists(t, s, sharedSHA) {
		t.Error("gc deleted the wrong blobs")
	}
	if _, err := s.Stat(ctx, ChunksKey(bigSHA)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("sidecar of a deleted blob: %v", err)
	}
	if rep, err := Verify(ctx, s, VerifyOptions{}); err != nil || len(rep.Damage) != 0 {
		t.Errorf("verify after gc: %v %+v", err, rep)
	}
	// No marker or lease is left behind but the done marker.
	if n := countKeys(t, s, leasePrefix) + countKeys(t, s, gcRunPrefix); n != 0 {
		t.Errorf("%d leases or running markers left", n)
	}
}

func TestGCKeepLast(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var commits []string
	for i := range 4 {
		r := pushAt(t, s, "org/a", "main", map[string][]byte{"w": []byte(strings.Repeat("v", i+1))}, t0.Add(time.Duration(i)*time.Hour), nil)
		commits = append(commits, r.Commit)
	}
	// dev names the oldest commit: it stays.
	pushAt(t, s, "org/a", "dev", map[string][]byte{"w": []byte("v")}, t0, nil)
	other := pushAt(t, s, "org/a", "other", map[string][]byte{"w": []byte("o")}, t0, nil)
	res, err := GC(ctx, s, GCOptions{KeepLast: 2, DryRun: true, Now: later(48 * time.Hour), Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DroppedManifests) != 1 || res.DroppedManifests[0].Commit != commits[1] {
		t.Fatalf("dry run keep-last 2: %+v", res.DroppedManifests)
	}
	if _, err := ReadManifest(ctx, s, "org/a", commits[1]); err != nil {
		t.Fatalf("dry run dropped a manifest: %v", err)
	}
	res, err = GC(ctx, s, GCOptions{KeepLast: 1, Now: later(48 * time.Hour), Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DroppedManifests) != 2 || len(res.DeletedBlobs) != 2 {
		t.Errorf("keep-last 1: %+v", res)
	}
	for i, c := range commits {
		_, err := ReadManifest(ctx, s, "org/a", c)
		if kept := i == 0 || i == 3; kept != (err == nil) {
			t.Errorf("commit %d: kept %v, manifest read: %v", i, kept, err)
		}
	}
	if _, err := ReadManifest(ctx, s, "org/a", other.Commit); err != nil {
		t.Error(err)
	}
	if rep, err := Verify(ctx, s, VerifyOptions{}); err != nil || len(rep.Damage) != 0 {
		t.Errorf("verify after gc: %v %+v", err, rep)
	}
}

// TestGCKeepsLeasedBlobs: a blob a running push holds a lease on survives
// a gc with no grace.
func TestGCKeepsLeasedBlobs(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustPut(t, s, BlobKey(storage.SHA256Hex([]byte("x"))), []byte("x"))
	l := newLeaser(s)
	if err := l.take(ctx, storage.SHA256Hex([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	res, err := GC(ctx, s, GCOptions{Now: later(time.Hour)})
	if err != nil || res.KeptLeased != 1 || len(res.DeletedBlobs) != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	l.release(ctx)
	res, err = GC(ctx, s, GCOptions{Now: later(time.Hour)})
	if err != nil || len(res.DeletedBlobs) != 1 {
		t.Fatalf("after release: %+v %v", res, err)
	}
}

// raceStore makes a push and a gc interleave in the one order a lease
// cannot cover: the gc lists the leases before the push writes its list
// lease, and deletes the blob after the push found it present.
type raceStore struct {
	storage.Store
	gc       bool
	sha      string
	listed   chan struct{} // the gc has listed the leases
	statted  chan struct{} // the push has found the blob present
	onceList *sync.Once
	onceStat *sync.Once
}

func (r *raceStore) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	err := r.Store.List(ctx, prefix, fn)
	if r.gc && prefix == leasePrefix {
		r.onceList.Do(func() { close(r.listed) })
	}
	return err
}

func (r *raceStore) Put(ctx context.Context, key string, src storage.Source, size int64, sum string) error {
	if !r.gc && strings.HasPrefix(key, leasePrefix) {
		<-r.listed // the push starts (its list lease) after the gc listed the leases
	}
	return r.Store.Put(ctx, key, src, size, sum)
}

func (r *raceStore) Stat(ctx context.Context, key string) (storage.Info, error) {
	info, err := r.Store.Stat(ctx, key)
	if !r.gc && key == BlobKey(r.sha) && err == nil {
		r.onceStat.Do(func() { close(r.statted) })
	}
	return info, err
}

func (r *raceStore) Delete(ctx context.Context, key string) error {
	if r.gc && key == BlobKey(r.sha) {
		<-r.statted
	}
	return r.Store.Delete(ctx, key)
}

// TestPushRepairsBlobDeletedByConcurrentGC: a push that found a blob
// present, which a gc that had listed the leases just before deleted,
// uploads it again before it writes its manifest: the manifest is complete.
func TestPushRepairsBlobDeletedByConcurrentGC(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	old := gcPoll
	gcPoll = 10 * time.Millisecond
	t.Cleanup(func() { gcPoll = old })
	content := []byte("reused content")
	pushAt(t, s, "org/old", "main", map[string][]byte{"w": content}, t0, nil)
	if _, err := Remove(ctx, s, "org/old", ""); err != nil {
		t.Fatal(err)
	}
	sha := storage.SHA256Hex(content)
	listed, statted := make(chan struct{}), make(chan struct{})
	once1, once2 := &sync.Once{}, &sync.Once{}
	gcStore := &raceStore{Store: s, gc: true, sha: sha, listed: listed, statted: statted, onceList: once1, onceStat: once2}
	pushStore := &raceStore{Store: s, sha: sha, listed: listed, statted: statted, onceList: once1, onceStat: once2}

	var gcRes *GCResult
	var gcErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		gcRes, gcErr = GC(ctx, gcStore, GCOptions{Now: later(time.Hour)})
	}()
	res, err := Push(ctx, pushStore, "org/new", bytesFiles(map[string][]byte{"w": content}), PushOptions{})
	<-done
	if gcErr != nil || len(gcRes.DeletedBlobs) != 1 {
		t.Fatalf("gc did not delete the blob: %+v %v", gcRes, gcErr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Present != 1 || res.Reuploaded != 1 {
		t.Errorf("push: %+v, want the blob found present, then uploaded again", res)
	}
	if rep, err := Verify(ctx, s, VerifyOptions{}); err != nil || len(rep.Damage) != 0 {
		t.Errorf("verify: %v %+v", err, rep.Damage)
	}
}

func TestGCConcurrentWithPushesLocal(t *testing.T) { testGCConcurrentWithPushes(t, newStore(t)) }
func TestGCConcurrentWithPushesS3(t *testing.T)    { testGCConcurrentWithPushes(t, s3Store(t)) }

// testGCConcurrentWithPushes: pushes reusing the blobs of repos that are
// removed meanwhile, with gc (no grace) running in a loop; afterwards
// every manifest is complete and verify finds nothing.
func testGCConcurrentWithPushes(t *testing.T, s storage.Store) {
	ctx := context.Background()
	old := gcPoll
	gcPoll = 5 * time.Millisecond
	t.Cleanup(func() { gcPoll = old })
	var pool [][]byte
	for i := range 10 {
		pool = append(pool, []byte(strings.Repeat("p", i+1)))
	}
	stop := make(chan struct{})
	gcDone := make(chan error, 1)
	gcRuns, deleted := 0, 0
	go func() {
		for {
			select {
			case <-stop:
				gcDone <- nil
				return
			default:
			}
			res, err := GC(ctx, s, GCOptions{Now: later(time.Hour)})
			if err != nil {
				gcDone <- err
				return
			}
			gcRuns++
			deleted += len(res.DeletedBlobs)
		}
	}()
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 3 {
				files := map[string][]byte{}
				for j := range 3 {
					files[string(rune('a'+j))] = pool[(i*7+j)%len(pool)]
				}
				repo := "org/r" + string(rune('a'+i))
				if _, err := Push(ctx, s, repo, bytesFiles(files), PushOptions{}); err != nil {
					errs <- err
					return
				}
				if i >= 1 {
					// Unreference blobs other pushes are about to reuse.
					if _, err := Remove(ctx, s, "org/r"+string(rune('a'+i-1)), ""); err != nil && !errors.Is(err, ErrRepoNotFound) {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, s, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damage) != 0 || rep.Manifests == 0 {
		t.Errorf("after %d gc runs that deleted %d blobs: %d manifests, damage %+v", gcRuns, deleted, rep.Manifests, rep.Damage)
	}
	t.Logf("%d gc runs deleted %d blobs; %d manifests left", gcRuns, deleted, rep.Manifests)
}

// TestGCRefusesWithUnreadableManifest: a manifest that does not parse
// lists unknown blobs, so gc deletes none and says why.
func TestGCRefusesWithUnreadableManifest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	pushAt(t, s, "org/a", "main", map[string][]byte{"w": []byte("a")}, t0, nil)
	mustPut(t, s, BlobKey(storage.SHA256Hex([]byte("orphan"))), []byte("orphan"))
	mustPut(t, s, ManifestKey("org/b", strings.Repeat("c", 40)), []byte("{not json"))
	res, err := GC(ctx, s, GCOptions{Now: later(time.Hour)})
	if !errors.Is(err, ErrCorrupt) || res != nil {
		t.Fatalf("gc with a corrupt manifest: %+v %v", res, err)
	}
	if !blobExists(t, s, storage.SHA256Hex([]byte("orphan"))) {
		t.Error("gc deleted a blob although a manifest could not be read")
	}
	if n := countKeys(t, s, gcRunPrefix); n != 0 {
		t.Errorf("a failed gc left %d running markers", n)
	}
}

// TestPushIgnoresStaleGCMarker: the marker of a gc that crashed does not
// hold pushes up once it is GCMarkerStale old; the next gc deletes it.
func TestPushIgnoresStaleGCMarker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newStore(t)
	old := GCMarkerStale
	GCMarkerStale = time.Nanosecond
	t.Cleanup(func() { GCMarkerStale = old })
	mustPut(t, s, gcRunPrefix+"crashed", []byte("x"))
	if _, err := Push(ctx, s, "org/a", bytesFiles(map[string][]byte{"w": []byte("a")}), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := GC(ctx, s, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, s, gcRunPrefix); n != 0 {
		t.Errorf("%d running markers left after gc", n)
	}
}
