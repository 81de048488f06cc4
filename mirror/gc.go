package mirror

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

// GCOptions configure GC.
type GCOptions struct {
	// KeepLast, when > 0, keeps the newest KeepLast commits (by manifest
	// creation time) of each revision name they were pushed as
	// (Source.Revision) and drops the manifests of older ones, except
	// commits a ref reaches (see Remove). 0 drops no manifest.
	KeepLast int
	// Grace: a blob (or sidecar) no manifest lists is deleted only when
	// its modification time is at least Grace old (plus 2s, the coarse
	// times some stores keep) when GC starts.
	Grace time.Duration
	// DryRun computes what GC would do and changes nothing.
	DryRun bool
	// StaleUploadAge is the age from which an incomplete upload of a blob
	// is aborted; 0 means DefaultStaleUploadAge.
	StaleUploadAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultGCGrace is the default of `hubmirror gc --grace`.
const DefaultGCGrace = 24 * time.Hour

// DroppedManifest is a manifest GC dropped (--keep-last).
type DroppedManifest struct {
	Repo     string    `json:"repo"`
	Commit   string    `json:"commit"`
	Revision string    `json:"revision"`
	Created  time.Time `json:"created"`
}

// DeletedBlob is a blob GC deleted.
type DeletedBlob struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// GCResult says what GC did (or, for a dry run, would do).
type GCResult struct {
	DryRun           bool              `json:"dry_run"`
	DroppedManifests []DroppedManifest `json:"dropped_manifests"`
	DeletedBlobs     []DeletedBlob     `json:"deleted_blobs"`
	// DeletedSidecars counts chunk sidecars deleted, with their blob or
	// as orphans.
	DeletedSidecars int `json:"deleted_sidecars"`
	// FreedBytes is the size of the deleted blobs and sidecars.
	FreedBytes int64 `json:"freed_bytes"`
	// ReferencedBlobs counts the blobs the kept manifests list.
	ReferencedBlobs int `json:"referenced_blobs"`
	// KeptYoung counts the unreferenced blobs and sidecars kept because
	// they are younger than the grace period; KeptLeased those a running
	// push holds a lease on.
	KeptYoung  int `json:"kept_young"`
	KeptLeased int `json:"kept_leased"`
	// StaleLeases counts leases of pushes that died, deleted.
	StaleLeases    int                        `json:"stale_leases"`
	AbortedUploads []storage.IncompleteUpload `json:"aborted_uploads,omitempty"`
}

// GC frees what no revision needs: with KeepLast, the manifests of old
// commits of each revision; then the blobs (and their chunk sidecars) that
// no manifest lists, no running push holds a lease on, and that are at
// least Grace old; and the incomplete uploads of blobs older than
// StaleUploadAge. It never deletes a manifest a ref reaches.
//
// GC is safe while pushes (push, pull --to, mirror, serve --upstream) run
// on the same store, whatever Grace is (see lease.go): it writes its
// running marker gc/running/<id>, then lists the leases, then the
// manifests, keeps every blob a lease or a manifest names, and writes
// gc/done/<id> after its last delete. A push writes its list lease before
// it checks any blob, a blob lease before it uploads one, and once all its
// blobs are in place rewrites its list lease with all of them, waits for
// running GCs to end and, if one ended after the push started, checks its
// blobs again (uploading any that is gone) before it writes its manifest.
// Either the GC read the push's full list (the blobs are kept), or it ran
// before that list and ended after the push started, and the push repairs
// what the GC deleted. Grace is a second safety, for writers that take no
// leases (versions before leases).
//
// A manifest that cannot be read makes GC fail before it deletes any blob:
// its blobs are unknown (hubmirror verify names it; rm drops it).
func GC(ctx context.Context, s storage.Store, opts GCOptions) (*GCResult, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if opts.KeepLast < 0 || opts.Grace < 0 {
		return nil, fmt.Errorf("mirror: gc: negative --keep-last or --grace: %w", ErrInvalid)
	}
	res := &GCResult{DryRun: opts.DryRun, DroppedManifests: []DroppedManifest{}, DeletedBlobs: []DeletedBlob{}}
	if !opts.DryRun {
		stop, err := startGCMarker(ctx, s)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	start := now()
	leased, staleLeases, err := leases(ctx, s)
	if err != nil {
		return nil, err
	}
	repos, err := ListRepos(ctx, s)
	if err != nil {
		return nil, err
	}
	referenced := map[string]bool{}
	for _, repo := range repos {
		if err := gcRepo(ctx, s, repo, opts, res, referenced); err != nil {
			return nil, err
		}
	}
	res.ReferencedBlobs = len(referenced)

	// A blob uploaded after start can carry a store time up to
	// gcClockSlack older (S3 keeps whole seconds): without the slack, a
	// blob whose lease this GC listed too early to see, uploaded just
	// after it started, would look Grace old with a short Grace and be
	// deleted under a push (which uploads it again before its manifest,
	// but a pull-through server reads it before that).
	cutoff := start.Add(-opts.Grace - gcClockSlack)
	keep := func(sha string, mod time.Time) bool {
		switch {
		case referenced[sha]:
			return true
		case leased[sha]:
			res.KeptLeased++
			return true
		case !mod.Before(cutoff):
			res.KeptYoung++
			return true
		}
		return false
	}
	var doomed []storage.Info
	blobs := map[string]bool{}
	err = s.List(ctx, blobPrefix, func(i storage.Info) error {
		sha := strings.TrimPrefix(i.Key, blobPrefix)
		if storage.ValidateSHA256(sha) != nil {
			return nil
		}
		blobs[sha] = true
		if !keep(sha, i.ModTime) {
			doomed = append(doomed, i)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	doomedSet := map[string]bool{}
	for _, i := range doomed {
		doomedSet[strings.TrimPrefix(i.Key, blobPrefix)] = true
	}
	var sidecars []storage.Info
	err = s.List(ctx, chunksPrefix, func(i storage.Info) error {
		sha := strings.TrimPrefix(i.Key, chunksPrefix)
		switch {
		case storage.ValidateSHA256(sha) != nil, referenced[sha], leased[sha]:
		case blobs[sha]:
			// A sidecar goes with its blob.
			if doomedSet[sha] {
				sidecars = append(sidecars, i)
			}
		case !keep(sha, i.ModTime):
			sidecars = append(sidecars, i) // an orphan
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(doomed, func(i, j int) bool { return doomed[i].Key < doomed[j].Key })
	for _, i := range doomed {
		if !opts.DryRun {
			if err := s.Delete(ctx, i.Key); err != nil {
				return res, err
			}
		}
		res.DeletedBlobs = append(res.DeletedBlobs, DeletedBlob{SHA256: strings.TrimPrefix(i.Key, blobPrefix), Size: i.Size})
		res.FreedBytes += i.Size
	}
	for _, i := range sidecars {
		if !opts.DryRun {
			if err := s.Delete(ctx, i.Key); err != nil {
				return res, err
			}
		}
		res.DeletedSidecars++
		res.FreedBytes += i.Size
	}
	if opts.DryRun {
		res.StaleLeases = len(staleLeases)
		return res, nil
	}
	for _, k := range staleLeases {
		if err := s.Delete(ctx, k); err != nil {
			return res, err
		}
		res.StaleLeases++
	}
	age := opts.StaleUploadAge
	if age <= 0 {
		age = DefaultStaleUploadAge
	}
	aborted, err := storage.AbortIncompleteUploads(ctx, s, blobPrefix, age)
	res.AbortedUploads = aborted
	if err != nil {
		return res, err
	}
	return res, nil
}

// gcRepo drops the manifests of repo that KeepLast does not keep, and adds
// the blobs of the kept ones to referenced.
func gcRepo(ctx context.Context, s storage.Store, repo string, opts GCOptions, res *GCResult, referenced map[string]bool) error {
	commits, _, _, err := repoKeys(ctx, s, repo)
	if err != nil {
		return err
	}
	reached, err := reachable(ctx, s, repo)
	if err != nil {
		return err
	}
	type man struct {
		commit  string
		rev     string
		created time.Time
		files   []string
	}
	var all []man
	for _, c := range commits {
		m, err := ReadManifest(ctx, s, repo, c)
		if errors.Is(err, ErrRevisionNotFound) || errors.Is(err, ErrRepoNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("mirror: gc: %w (no blob is deleted while a manifest cannot be read)", err)
		}
		mm := man{commit: c, rev: m.Source.Revision, created: m.Created}
		for _, f := range m.Files {
			mm.files = append(mm.files, f.SHA256)
		}
		all = append(all, mm)
	}
	drop := map[string]bool{}
	if opts.KeepLast > 0 {
		byRev := map[string][]man{}
		for _, m := range all {
			if m.rev != "" {
				byRev[m.rev] = append(byRev[m.rev], m)
			}
		}
		for rev, ms := range byRev {
			sort.SliceStable(ms, func(i, j int) bool { return ms[i].created.After(ms[j].created) })
			for k, m := range ms {
				if k >= opts.KeepLast && !reached[m.commit] {
					drop[m.commit] = true
					res.DroppedManifests = append(res.DroppedManifests, DroppedManifest{Repo: repo, Commit: m.commit, Revision: rev, Created: m.created})
				}
			}
		}
	}
	for _, m := range all {
		if drop[m.commit] {
			if !opts.DryRun {
				if err := s.Delete(ctx, ManifestKey(repo, m.commit)); err != nil {
					return err
				}
			}
			continue
		}
		for _, sha := range m.files {
			referenced[sha] = true
		}
	}
	return nil
}

// startGCMarker writes this GC's running marker and rewrites it while GC
// runs, and deletes done markers older than gcDoneKeep and stale running
// markers; stop writes the done marker and deletes the running one.
func startGCMarker(ctx context.Context, s storage.Store) (func(), error) {
	id := newID()
	run := gcRunPrefix + id
	write := func(ctx context.Context, key string) error {
		return storage.PutBytes(ctx, s, key, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	}
	if err := write(ctx, run); err != nil {
		return nil, fmt.Errorf("mirror: gc: writing its marker: %w", err)
	}
	// Ages by the store's clock: the marker's own time.
	info, err := s.Stat(ctx, run)
	if err != nil {
		_ = s.Delete(context.WithoutCancel(ctx), run)
		return nil, fmt.Errorf("mirror: gc: its marker: %w", err)
	}
	var old []string
	err = s.List(ctx, "gc/", func(i storage.Info) error {
		if strings.HasPrefix(i.Key, gcDonePrefix) && info.ModTime.Sub(i.ModTime) > gcDoneKeep ||
			strings.HasPrefix(i.Key, gcRunPrefix) && info.ModTime.Sub(i.ModTime) > GCMarkerStale {
			old = append(old, i.Key)
		}
		return nil
	})
	if err != nil {
		_ = s.Delete(context.WithoutCancel(ctx), run)
		return nil, err
	}
	for _, k := range old {
		_ = s.Delete(ctx, k)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(gcMarkerRefresh)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = write(ctx, run)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		// The done marker first: while neither exists, a push would
		// believe no GC ran.
		_ = write(ctx, gcDonePrefix+id)
		_ = s.Delete(ctx, run)
	}, nil
}
