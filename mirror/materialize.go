package mirror

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/hubmirror/hubmirror/storage"
)

// MaterializeOptions configure Materialize.
type MaterializeOptions struct {
	// Jobs is the number of files written at once; 0 means 4.
	Jobs int
	// Verify re-hashes files already in the directory instead of trusting
	// a file of the right size.
	Verify bool
	// Fsync syncs each file before it is renamed into place.
	Fsync bool
	// Only, when set, selects the files to write by path (the others are
	// not read); nil writes them all.
	Only func(path string) bool
}

// MaterializeResult says what Materialize did.
type MaterializeResult struct {
	Manifest *Manifest
	// Written counts the files read from the mirror; Present those already
	// in the directory.
	Written      int
	WrittenBytes int64
	Present      int
}

// Materialize writes the files of repo at revision (see Resolve) from the
// mirror in s into dir as a plain directory tree, creating dir. Every file
// is read through the verifying reader of OpenFile into a temporary file
// beside its destination and renamed into place only when its sha256
// matched, so a file under its final name is always complete and right.
// Files already in dir with the manifest's size are kept (re-hashed with
// Verify), so a second call writes nothing and an interrupted one resumes;
// files of dir the manifest does not list are left alone. Writes stay
// inside dir (os.Root): a manifest path cannot escape it.
func Materialize(ctx context.Context, s storage.Store, repo, revision, dir string, opts MaterializeOptions) (*MaterializeResult, error) {
	m, err := Resolve(ctx, s, repo, revision)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror: materialize %s@%s: %w", repo, revision, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("mirror: materialize %s@%s: %w", repo, revision, err)
	}
	defer root.Close()
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	res := &MaterializeResult{Manifest: m}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, e := range m.Files {
		if opts.Only != nil && !opts.Only(e.Path) {
			continue
		}
		g.Go(func() error {
			written, err := materializeFile(gctx, s, root, e, opts)
			if err != nil {
				return fmt.Errorf("mirror: materialize %s@%s: %s: %w", repo, m.Commit, e.Path, err)
			}
			mu.Lock()
			if written {
				res.Written++
				res.WrittenBytes += e.Size
			} else {
				res.Present++
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return res, nil
}

// materializeFile writes e into root unless it is there already.
func materializeFile(ctx context.Context, s storage.Store, root *os.Root, e Entry, opts MaterializeOptions) (bool, error) {
	if ok, err := presentFile(root, e, opts.Verify); err != nil || ok {
		return false, err
	}
	if d := path.Dir(e.Path); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return false, err
		}
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(e.Path), ".hubmirror-"+hex.EncodeToString(rnd[:])+".tmp")
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return false, err
	}
	done := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !done {
			_ = root.Remove(tmp)
		}
	}()
	rc, err := OpenFile(ctx, s, e, 0, -1)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if _, err := io.Copy(f, storage.ContextReader(ctx, rc)); err != nil {
		return false, err
	}
	if opts.Fsync {
		if err := f.Sync(); err != nil {
			return false, err
		}
	}
	err = f.Close()
	f = nil
	if err != nil {
		return false, err
	}
	if err := root.Rename(tmp, e.Path); err != nil {
		return false, err
	}
	done = true
	return true, nil
}

// presentFile reports whether root holds e as a regular file of its size
// (and, with verify, its sha256).
func presentFile(root *os.Root, e Entry, verify bool) (bool, error) {
	st, err := root.Lstat(e.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() || st.Size() != e.Size {
		return false, nil
	}
	if !verify {
		return true, nil
	}
	f, err := root.Open(e.Path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == e.SHA256, nil
}
