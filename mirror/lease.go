package mirror

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

// Coordination between writers (Push, and so pull --to, mirror and serve
// --upstream) and GC, through the store alone:
//
//	leases/<push id>.list       a push relies on these blobs (one sha256 a line)
//	leases/<push id>/<sha256>   a push is uploading this blob (empty object)
//	gc/running/<gc id>          a GC is running (rewritten while it runs)
//	gc/done/<gc id>             a GC ended (written when it ends)
//
// A push writes its list lease (empty) before it checks whether any blob is
// present: the lease's time, by the store's clock, is the push's start. It
// writes a blob lease before it uploads a blob it found missing (so that a
// GC running meanwhile keeps the upload; a blob found present needs none,
// which makes a rerun that uploads nothing cost no request per blob for
// leases). When all its blobs are in place it rewrites the list lease with
// every blob of its manifest, waits for the GCs running then to end, and if
// any GC ended after its start (the done marker's time against the list
// lease's first time), checks its blobs again, uploading any that is gone,
// before it writes its manifest. It deletes its leases once its manifest
// and ref are written.
//
// GC writes its running marker before it lists leases and manifests, never
// deletes a blob a lease or a manifest names, and writes its done marker
// after its last delete. For a GC G and a push P: if G ended before P's
// start, P checked its blobs after G's deletes. If G's marker came after
// P's full list lease, G lists that lease (or, once P deleted it, P's
// manifest) and keeps the blobs. Otherwise G ran, at least in part, between
// P's start and P's full list lease: P waits for G to end, finds its done
// marker younger than its start, and checks and repairs its blobs after
// G's last delete, and every GC that starts after that sees the full list.
// See GC.
//
// Leases are written without fsync (storage.WithoutSync: on a local store
// a lease costs a file and a rename, not two fsyncs): a lease only keeps a
// GC from deleting the blobs of a push under way, and only while that push
// runs. Other processes see it as soon as it is written, fsync or not, so
// a GC running meanwhile honours it. Only a crash of the machine can lose
// it, and that kills the push too (on a local store) or leaves it running
// elsewhere against a store that kept the lease (a bucket, where a PUT is
// durable anyway). A push that dies leaves blobs no manifest refers to,
// which a GC may delete: nothing refers to them. What must survive a crash
// is what refers to blobs, the manifest, and it is written only after
// every blob it names is durable (Push syncs the blobs' directories first,
// storage.SyncBatch).
const (
	leasePrefix  = "leases/"
	leaseListExt = ".list"
	gcRunPrefix  = "gc/running/"
	gcDonePrefix = "gc/done/"
)

// gcClockSlack covers the coarse times of some stores (S3 keeps whole
// seconds): a GC that ended this close before a push's start counts as
// ending after it.
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

// maxLeaseList bounds the size of a list lease GC reads: 64 bytes per blob
// of a push of a million files.
const maxLeaseList = 65 << 20

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// leaser takes and releases the leases of one push.
type leaser struct {
	s  storage.Store
	id string
	mu sync.Mutex
	// taken holds the blobs with a blob lease; tried every blob whose
	// lease this push tried to write.
	taken map[string]bool
	tried map[string]bool
	// listTried: the list lease may have been written.
	listTried bool
	// first is the store's time of the list lease written by start.
	first time.Time
	// began is when the leaser was made, by the local clock.
	began time.Time
}

func newLeaser(s storage.Store) *leaser {
	return &leaser{s: s, id: newID(), taken: map[string]bool{}, tried: map[string]bool{}, began: time.Now()}
}

func (l *leaser) key(sha string) string { return leasePrefix + l.id + "/" + sha }
func (l *leaser) listKey() string       { return leasePrefix + l.id + leaseListExt }

// start writes the push's list lease, empty, and notes its time: the push
// starts there. It is called before any blob is checked.
func (l *leaser) start(ctx context.Context) error {
	l.mu.Lock()
	l.listTried = true
	l.mu.Unlock()
	if err := storage.PutBytes(storage.WithoutSync(ctx), l.s, l.listKey(), nil); err != nil {
		return fmt.Errorf("writing the push's lease: %w", err)
	}
	info, err := l.s.Stat(ctx, l.listKey())
	if err != nil {
		return fmt.Errorf("the push's lease: %w", err)
	}
	l.mu.Lock()
	l.first = info.ModTime
	l.mu.Unlock()
	return nil
}

// take writes the blob lease of the blob with the given sha256 (once),
// before the push uploads it.
func (l *leaser) take(ctx context.Context, sha string) error {
	l.mu.Lock()
	done := l.taken[sha]
	// A Put that reports failure (a cancelled context, a dropped
	// connection) may still have written the lease: release deletes
	// every lease this push tried to write.
	l.tried[sha] = true
	l.mu.Unlock()
	if done {
		return nil
	}
	if err := storage.PutBytes(storage.WithoutSync(ctx), l.s, l.key(sha), nil); err != nil {
		return fmt.Errorf("taking the lease of blob %s: %w", sha, err)
	}
	l.mu.Lock()
	l.taken[sha] = true
	l.mu.Unlock()
	return nil
}

// mustRecheck writes the list lease with every blob of the push (shas),
// waits for the GCs running now to end, then reports whether any GC ended
// after the push's start (or the push is older than done markers are
// kept), so that its blobs must be checked again.
func (l *leaser) mustRecheck(ctx context.Context, shas []string) (bool, error) {
	l.mu.Lock()
	first := l.first
	l.mu.Unlock()
	if first.IsZero() {
		return false, errors.New("mirror: push lease not started") // a bug of Push
	}
	var list bytes.Buffer
	seen := make(map[string]bool, len(shas))
	for _, sha := range shas {
		if !seen[sha] {
			seen[sha] = true
			list.WriteString(sha)
			list.WriteByte('\n')
		}
	}
	now, err := storeClock(storage.WithoutSync(ctx), l.s, l.listKey(), list.Bytes())
	if err != nil {
		return false, fmt.Errorf("writing the push's lease: %w", err)
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
	list := l.listTried
	l.mu.Unlock()
	for _, sha := range shas {
		_ = l.s.Delete(ctx, l.key(sha))
	}
	if list {
		_ = l.s.Delete(ctx, l.listKey())
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

// leases returns the blobs under a lease younger than StaleLeaseAge (a
// blob lease, or listed in a list lease), and the keys of stale leases.
func leases(ctx context.Context, s storage.Store) (map[string]bool, []string, error) {
	leased := map[string]bool{}
	var stale, lists []string
	err := s.List(ctx, leasePrefix, func(i storage.Info) error {
		rest := strings.TrimPrefix(i.Key, leasePrefix)
		id, sha, isBlob := strings.Cut(rest, "/")
		isList := !isBlob && strings.HasSuffix(id, leaseListExt)
		if isBlob && storage.ValidateSHA256(sha) != nil || !isBlob && !isList {
			return nil
		}
		switch {
		case time.Since(i.ModTime) >= StaleLeaseAge:
			stale = append(stale, i.Key)
		case isBlob:
			leased[sha] = true
		default:
			lists = append(lists, i.Key)
		}
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, nil, err
	}
	for _, key := range lists {
		if err := readLeaseList(ctx, s, key, leased); err != nil {
			return nil, nil, err
		}
	}
	return leased, stale, nil
}

// readLeaseList adds the blobs of the list lease under key to leased. A
// list deleted meanwhile adds nothing: its push wrote its manifest before
// it deleted it, and GC lists manifests after leases.
func readLeaseList(ctx context.Context, s storage.Store, key string, leased map[string]bool) error {
	rc, err := s.Get(ctx, key, 0, -1)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mirror: reading the lease %s: %w", key, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(io.LimitReader(storage.ContextReader(ctx, rc), maxLeaseList))
	for sc.Scan() {
		// A line that is not a sha256 (a lease written by something
		// else) names no blob.
		if sha := sc.Text(); storage.ValidateSHA256(sha) == nil {
			leased[sha] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("mirror: reading the lease %s: %w", key, err)
	}
	return nil
}

// storeClock writes data under key and returns a clock that tells the
// store's time: the object's modification time plus the time elapsed here
// since.
func storeClock(ctx context.Context, s storage.Store, key string, data []byte) (func() time.Time, error) {
	if err := storage.PutBytes(ctx, s, key, data); err != nil {
		return nil, err
	}
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	base := time.Now()
	return func() time.Time { return info.ModTime.Add(time.Since(base)) }, nil
}
