package mirror

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

// coarseStore reports the store time of every blob as mod, as S3 does for
// a blob uploaded within the whole second mod, and uploads a leased blob
// (as a push does) once a GC has listed the leases.
type coarseStore struct {
	storage.Store
	mod    time.Time
	upload func()
	once   sync.Once
}

func (c *coarseStore) coarse(i storage.Info) storage.Info {
	if strings.HasPrefix(i.Key, blobPrefix) {
		i.ModTime = c.mod
	}
	return i
}

func (c *coarseStore) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	err := c.Store.List(ctx, prefix, func(i storage.Info) error { return fn(c.coarse(i)) })
	if prefix == leasePrefix {
		c.once.Do(c.upload)
	}
	return err
}

func (c *coarseStore) Stat(ctx context.Context, key string) (storage.Info, error) {
	i, err := c.Store.Stat(ctx, key)
	return c.coarse(i), err
}

// TestGCKeepsBlobUploadedAfterItStarted: a push takes a blob's lease and
// uploads it just after a GC listed the leases (so the GC does not see the
// lease); the store stamps the blob with the whole second the GC started
// in. `gc --grace 0s` keeps it: a server pulling through serves it before
// the push's manifest is written.
func TestGCKeepsBlobUploadedAfterItStarted(t *testing.T) {
	ctx := context.Background()
	sec := time.Now().Truncate(time.Second)
	content := []byte("uploaded while gc runs")
	sha := storage.SHA256Hex(content)
	l := newLeaser(newStore(t))
	s := &coarseStore{Store: l.s, mod: sec}
	s.upload = func() {
		if err := l.take(ctx, sha); err != nil {
			t.Error(err)
		}
		mustPut(t, l.s, BlobKey(sha), content)
	}
	// The GC starts 0.5s into the second, the upload comes after.
	res, err := GC(ctx, s, GCOptions{Now: func() time.Time { return sec.Add(500 * time.Millisecond) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeletedBlobs) != 0 {
		t.Errorf("gc deleted %+v, a blob uploaded after it started", res.DeletedBlobs)
	}
	if _, err := l.s.Stat(ctx, BlobKey(sha)); err != nil {
		t.Errorf("the blob: %v", err)
	}
	// Once older than the slack, an unleased blob no manifest lists goes.
	l.release(ctx)
	s.mod = sec.Add(-3 * time.Second)
	if res, err := GC(ctx, s, GCOptions{Now: func() time.Time { return sec.Add(500 * time.Millisecond) }}); err != nil || len(res.DeletedBlobs) != 1 {
		t.Errorf("the blob, 3.5s old and unleased: %+v %v", res, err)
	}
}

// TestPushStoredWhenSafe: a push finds a blob present, which a GC that
// listed the leases just before deletes; Stored, which lets a pull-through
// server read the blob, is called for it only once the push has uploaded
// it again (see TestPushRepairsBlobDeletedByConcurrentGC).
func TestPushStoredWhenSafe(t *testing.T) {
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

	done := make(chan struct{})
	var gcRes *GCResult
	var gcErr error
	go func() {
		defer close(done)
		gcRes, gcErr = GC(ctx, gcStore, GCOptions{Now: later(time.Hour)})
	}()
	var mu sync.Mutex
	var stored []string
	stat := func(e Entry) {
		if e.Path == "w" {
			<-done // the GC's delete comes first
		}
		_, err := s.Stat(ctx, BlobKey(e.SHA256))
		mu.Lock()
		stored = append(stored, fmt.Sprintf("%s: %v", e.Path, err))
		mu.Unlock()
	}
	res, err := Push(ctx, pushStore, "org/new", bytesFiles(map[string][]byte{"w": content, "x": []byte("new")}), PushOptions{Stored: stat})
	<-done
	if gcErr != nil || len(gcRes.DeletedBlobs) != 1 {
		t.Fatalf("gc did not delete the blob: %+v %v", gcRes, gcErr)
	}
	if err != nil || res.Reuploaded != 1 {
		t.Fatalf("push: %+v %v", res, err)
	}
	slices.Sort(stored)
	if want := []string{"w: <nil>", "x: <nil>"}; !slices.Equal(stored, want) {
		t.Errorf("the blobs in the store when Stored was called: %q, want %q", stored, want)
	}
}
