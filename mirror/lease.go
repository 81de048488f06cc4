package mirror

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

// Coordination between writers (Push, and so pull --to, mirror and serve
// --upstream) and GC, through the store alone:
//
//	leases/<push id>/<sha256>   a push relies on this blob (empty object)
//	gc/running/<gc id>          a GC is running (rewritten while it runs)
//	gc/done/<gc id>             a GC ended (written when it ends)
//
// A push takes a lease on each blob before it checks whether the blob is
// present (and so before it uploads it), and deletes its leases once its
// manifest and ref are written. GC writes its running marker before it
// lists leases and manifests, never deletes a leased blob, and writes its
// done marker after its last delete. When all its blobs are in place, a
// push waits for the GCs running then to end, and if any GC ended after
// its first lease (by the store's clock, the done marker's time against
// the lease's), checks its blobs again, uploading any that is gone, before
// it writes its manifest. So either a GC listed the push's lease (the blob
// is kept), or the lease was written after the GC's running marker, and
// the GC ended after the lease: the push re-checks after it. See GC.
const (
	leasePrefix  = "leases/"
	gcRunPrefix  = "gc/running/"
	gcDonePrefix = "gc/done/"
)

// gcClockSlack covers the coarse times of some stores (S3 keeps whole
// seconds): a GC that ended this close before a push's first lease counts
// as ending after it.
const gcClockSlack = 2 * time.Second

// gcDoneKeep is how long done markers stay (GC deletes older ones); a push
// whose blobs take longer than this to upload re-checks them (see
// pusher.recheck).
const gcDoneKeep = time.Hour

// GCMarkerStale is the age (by the marker object's time) from which a GC
// marker counts as left behind by a GC that crashed: a push no longer waits
// for it, and GC deletes it. GC rewrites its marker while it runs, more
// often than this.
var GCMarkerStale = 10 * time.Minute

// gcMarkerRefresh is how often a running GC rewrites its marker.
var gcMarkerRefresh = time.Minute

// gcPoll is how often a push looks whether a GC it waits for has ended.
var gcPoll = 200 * time.Millisecond

// StaleLeaseAge is the age (by the lease object's time) from which GC
// deletes a lease as left behind by a push that crashed or was killed.
const StaleLeaseAge = 24 * time.Hour

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// leaser takes and releases the leases of one push.
type leaser struct {
	s     storage.Store
	id    string
	mu    sync.Mutex
	taken map[string]bool
	// tried holds every blob whose lease this push tried to write.
	tried map[string]bool
	// first is the store's time of the first lease, once one is taken,
	// and firstKey its key.
	first    time.Time
	firstKey string
	// began is when the leaser was made, by the local clock.
	began time.Time
}

func newLeaser(s storage.Store) *leaser {
	return &leaser{s: s, id: newID(), taken: map[string]bool{}, tried: map[string]bool{}, began: time.Now()}
}

func (l *leaser) key(sha string) string { return leasePrefix + l.id + "/" + sha }

// take writes the lease of the blob with the given sha256 (once).
func (l *leaser) take(ctx context.Context, sha string) error {
	l.mu.Lock()
	done := l.taken[sha]
	l.mu.Unlock()
	if done {
		return nil
	}
	// A Put that reports failure (a cancelled context, a dropped
	// connection) may still have written the lease: release deletes
	// every lease this push tried to write.
	l.mu.Lock()
	l.tried[sha] = true
	l.mu.Unlock()
	if err := storage.PutBytes(ctx, l.s, l.key(sha), nil); err != nil {
		return fmt.Errorf("taking the lease of blob %s: %w", sha, err)
	}
	l.mu.Lock()
	l.taken[sha] = true
	needFirst := l.first.IsZero()
	l.mu.Unlock()
	if needFirst {
		info, err := l.s.Stat(ctx, l.key(sha))
		if err != nil {
			return fmt.Errorf("the lease of blob %s: %w", sha, err)
		}
		l.mu.Lock()
		if l.first.IsZero() || info.ModTime.Before(l.first) {
			l.first, l.firstKey = info.ModTime, l.key(sha)
		}
		l.mu.Unlock()
	}
	return nil
}

// mustRecheck waits for the GCs running now to end, then reports whether
// any GC ended after the push's first lease (or the push is older than
// done markers are kept), so that its blobs must be checked again.
func (l *leaser) mustRecheck(ctx context.Context) (bool, error) {
	l.mu.Lock()
	first, firstKey := l.first, l.firstKey
	l.mu.Unlock()
	if first.IsZero() {
		return false, nil // no blob
	}
	now, err := storeClock(ctx, l.s, firstKey)
	if err != nil {
		return false, fmt.Errorf("renewing a lease: %w", err)
	}
	if _, err := waitForGC(ctx, l.s, now); err != nil {
		return false, err
	}
	if time.Since(l.began) > gcDoneKeep/2 {
		return true, nil
	}
	found := false
	err = l.s.List(ctx, gcDonePrefix, func(i storage.Info) error {
		if !i.ModTime.Before(first.Add(-gcClockSlack)) {
			found = true
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return false, err
	}
	return found, nil
}

// release deletes the push's leases (best effort: GC deletes leases a push
// left behind once they are StaleLeaseAge old).
func (l *leaser) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	l.mu.Lock()
	shas := make([]string, 0, len(l.tried))
	for sha := range l.tried {
		shas = append(shas, sha)
	}
	l.mu.Unlock()
	for _, sha := range shas {
		_ = l.s.Delete(ctx, l.key(sha))
	}
}

// waitForGC waits until every GC running now (by its marker) has ended, or
// its marker is stale, and reports whether there was one.
// storeNow tells the time by the store's clock: a marker's or lease's age
// is measured against the store's own times, whatever this machine's clock
// says.
func waitForGC(ctx context.Context, s storage.Store, storeNow func() time.Time) (bool, error) {
	running, err := gcMarkers(ctx, s, storeNow())
	if err != nil || len(running) == 0 {
		return false, err
	}
	for len(running) > 0 {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-time.After(gcPoll):
		}
		now, err := gcMarkers(ctx, s, storeNow())
		if err != nil {
			return true, err
		}
		still := map[string]bool{}
		for k := range running {
			if now[k] {
				still[k] = true
			}
		}
		running = still
	}
	return true, nil
}

// gcMarkers returns the keys of the GC markers that are not stale at now
// (the store's time).
func gcMarkers(ctx context.Context, s storage.Store, now time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.List(ctx, gcRunPrefix, func(i storage.Info) error {
		if now.Sub(i.ModTime) < GCMarkerStale {
			out[i.Key] = true
		}
		return nil
	})
	return out, err
}

// leases returns the blobs under a lease younger than StaleLeaseAge, and
// the keys of stale leases.
func leases(ctx context.Context, s storage.Store) (map[string]bool, []string, error) {
	leased := map[string]bool{}
	var stale []string
	err := s.List(ctx, leasePrefix, func(i storage.Info) error {
		rest := strings.TrimPrefix(i.Key, leasePrefix)
		_, sha, ok := strings.Cut(rest, "/")
		if !ok || storage.ValidateSHA256(sha) != nil {
			return nil
		}
		if time.Since(i.ModTime) >= StaleLeaseAge {
			stale = append(stale, i.Key)
			return nil
		}
		leased[sha] = true
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, nil, err
	}
	return leased, stale, nil
}

// storeClock writes key (an empty object) and returns a clock that tells
// the store's time: the object's modification time plus the time elapsed
// here since.
func storeClock(ctx context.Context, s storage.Store, key string) (func() time.Time, error) {
	if err := storage.PutBytes(ctx, s, key, nil); err != nil {
		return nil, err
	}
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	base := time.Now()
	return func() time.Time { return info.ModTime.Add(time.Since(base)) }, nil
}
