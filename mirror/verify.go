package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/hubmirror/hubmirror/storage"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Repos limits the check to these repos (and the blobs their
	// manifests list); none means every repo.
	Repos []string
	// Quick checks that blobs exist with the right size and that sidecars
	// are well-formed, without reading blob contents.
	Quick bool
	// Jobs is the number of blobs checked at once; 0 means 4.
	Jobs int
}

// Damage is one damaged object of a mirror.
type Damage struct {
	// Key is the object that is damaged (or missing).
	Key string `json:"key"`
	// Problem says what is wrong with it.
	Problem string `json:"problem"`
	// Where names a manifest file that uses the object (repo@commit:path),
	// for blobs and sidecars.
	Where string `json:"where,omitempty"`
}

// VerifyReport is what Verify checked and found.
type VerifyReport struct {
	Repos     int   `json:"repos"`
	Manifests int   `json:"manifests"`
	Refs      int   `json:"refs"`
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
	Quick     bool  `json:"quick"`
	// Damage lists every damaged object, sorted by key; empty when the
	// mirror is sound.
	Damage []Damage `json:"damage"`
}

// ErrDamaged is returned (wrapped) by callers that turn a report with
// damage into a failure.
var ErrDamaged = errors.New("mirror is damaged")

// Verify checks the mirror: every manifest parses and is stored under its
// commit; every ref holds a commit whose manifest exists; every blob a
// manifest lists exists with the size (and, unless Quick, the sha256) the
// manifest gives; every chunk sidecar is well-formed and (unless Quick)
// holds the chunk hashes of its blob. It reads each manifest once and each
// distinct blob once, and lists every damaged object, not only the first.
// An error is returned only when the store cannot be read (or a named repo
// does not exist); damage is in the report.
func Verify(ctx context.Context, s storage.Store, opts VerifyOptions) (*VerifyReport, error) {
	repos := opts.Repos
	if len(repos) == 0 {
		var err error
		if repos, err = ListRepos(ctx, s); err != nil {
			return nil, err
		}
	}
	rep := &VerifyReport{Quick: opts.Quick, Damage: []Damage{}}
	type use struct {
		e     Entry
		where string
	}
	blobs := map[string]use{}
	var order []string
	for _, repo := range repos {
		commits, refs, err := existingRepo(ctx, s, repo)
		if err != nil {
			return nil, err
		}
		rep.Repos++
		have := map[string]bool{}
		for _, c := range commits {
			rep.Manifests++
			have[c] = true
			m, err := ReadManifest(ctx, s, repo, c)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					return nil, err
				}
				rep.Damage = append(rep.Damage, Damage{Key: ManifestKey(repo, c), Problem: err.Error()})
				continue
			}
			for _, f := range m.Files {
				where := repo + "@" + c + ":" + f.Path
				if u, ok := blobs[f.SHA256]; ok {
					if u.e.Size != f.Size {
						rep.Damage = append(rep.Damage, Damage{Key: ManifestKey(repo, c),
							Problem: fmt.Sprintf("%s: blob %s has size %d here and %d in %s", f.Path, f.SHA256, f.Size, u.e.Size, u.where)})
					}
					continue
				}
				blobs[f.SHA256] = use{f, where}
				order = append(order, f.SHA256)
			}
		}
		for _, name := range refs {
			rep.Refs++
			c, err := ReadRef(ctx, s, repo, name)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					return nil, err
				}
				rep.Damage = append(rep.Damage, Damage{Key: RefKey(repo, name), Problem: err.Error()})
				continue
			}
			if !have[c] {
				rep.Damage = append(rep.Damage, Damage{Key: RefKey(repo, name),
					Problem: fmt.Sprintf("dangling ref: %s of %s names commit %s, which has no manifest", name, repo, c)})
			}
		}
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, sha := range order {
		u := blobs[sha]
		rep.Blobs++
		rep.Bytes += u.e.Size
		g.Go(func() error {
			ds, err := verifyBlob(gctx, s, u.e, opts.Quick)
			if err != nil {
				return err
			}
			mu.Lock()
			for _, d := range ds {
				d.Where = u.where
				rep.Damage = append(rep.Damage, d)
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.SliceStable(rep.Damage, func(i, j int) bool { return rep.Damage[i].Key < rep.Damage[j].Key })
	return rep, nil
}

// verifyBlob checks one blob and its sidecar; it returns the damage found,
// or an error when the store cannot be read.
func verifyBlob(ctx context.Context, s storage.Store, e Entry, quick bool) ([]Damage, error) {
	key := BlobKey(e.SHA256)
	var out []Damage
	info, err := s.Stat(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return []Damage{{Key: key, Problem: "missing blob"}}, nil
	}
	if err != nil {
		return nil, err
	}
	sizeOK := info.Size == e.Size
	if !sizeOK {
		out = append(out, Damage{Key: key, Problem: fmt.Sprintf("blob has %d bytes, the manifest says %d", info.Size, e.Size)})
	}
	idx, err := readChunks(ctx, s, e)
	switch {
	case err == nil, errors.Is(err, storage.ErrNotFound):
	case errors.Is(err, ErrBadChunks):
		out = append(out, Damage{Key: ChunksKey(e.SHA256), Problem: "damaged chunk sidecar: " + err.Error()})
		idx = nil
	default:
		return nil, err
	}
	if quick || !sizeOK {
		return out, nil
	}
	rc, err := s.Get(ctx, key, 0, -1)
	if errors.Is(err, storage.ErrNotFound) {
		return append(out, Damage{Key: key, Problem: "missing blob (deleted while verifying)"}), nil
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h := sha256.New()
	var w io.Writer = h
	var chunks *chunkHasher
	if idx != nil {
		chunks = newChunkHasher(idx.chunkSize)
		w = io.MultiWriter(h, chunks)
	}
	n, err := io.Copy(w, storage.ContextReader(ctx, rc))
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return append(out, Damage{Key: key, Problem: "reading the blob: " + err.Error()}), nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != e.Size || got != e.SHA256 {
		return append(out, Damage{Key: key, Problem: fmt.Sprintf("blob content has %d bytes with sha256 %s, not its name", n, got)}), nil
	}
	if idx != nil {
		sums, ok := chunks.result(e.Size)
		if !ok || len(sums) != len(idx.sums) {
			out = append(out, Damage{Key: ChunksKey(e.SHA256), Problem: "chunk sidecar does not match its blob: chunk count"})
		} else {
			for i := range sums {
				if sums[i] != idx.sums[i] {
					out = append(out, Damage{Key: ChunksKey(e.SHA256), Problem: fmt.Sprintf("chunk sidecar does not match its blob: chunk %d", i)})
					break
				}
			}
		}
	}
	return out, nil
}
