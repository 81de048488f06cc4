package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Local is a Store in a directory of the local file system. A key is the
// path of a file below the directory. Put writes a temporary file under
// TempDir, fsyncs it, renames it into place and fsyncs the directory, so an
// object appears whole or not at all, also across a crash (a Put's context
// may ask for fewer fsyncs: WithoutSync, WithSyncBatch). All access goes
// through an os.Root, so neither a key nor a symbolic link planted in the
// directory can reach outside it.
type Local struct {
	dir    string
	create bool

	mu   sync.Mutex
	root *os.Root
	// dirs holds the directories a Put created or found, so that the next
	// Put into them skips MkdirAll (its openat and mkdirat per segment);
	// one removed meanwhile is created again when a Put finds it gone.
	dirs sync.Map
	// fileSyncs and dirSyncs count the fsyncs (for tests).
	fileSyncs, dirSyncs atomic.Int64
}

// NewLocal returns a store in dir. With create, dir (and its parents) is
// created when the first object is put; without it, a missing dir is an
// error of NewLocal, so that a typo does not serve an empty mirror.
func NewLocal(dir string, create bool) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %s: %w", dir, err)
	}
	l := &Local{dir: abs, create: create}
	st, err := os.Stat(abs)
	switch {
	case err == nil && !st.IsDir():
		return nil, fmt.Errorf("storage: %s is not a directory", abs)
	case errors.Is(err, fs.ErrNotExist) && create:
		// Created by the first Put.
	case err != nil:
		return nil, fmt.Errorf("storage: %w", err)
	}
	return l, nil
}

// Location returns the file:// URL of the directory.
func (l *Local) Location() string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(l.dir)}).String()
}

// Close closes the directory handle.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.root == nil {
		return nil
	}
	err := l.root.Close()
	l.root = nil
	l.dirs.Clear()
	return err
}

// openRoot returns the os.Root of the directory, creating the directory when
// forWrite and the store was opened with create. A missing directory on a
// read returns (nil, nil): the store is empty.
func (l *Local) openRoot(forWrite bool) (*os.Root, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.root != nil {
		return l.root, nil
	}
	r, err := os.OpenRoot(l.dir)
	if errors.Is(err, fs.ErrNotExist) {
		if !forWrite {
			return nil, nil
		}
		if !l.create {
			return nil, fmt.Errorf("storage: %w", err)
		}
		if err := os.MkdirAll(l.dir, 0o755); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		r, err = os.OpenRoot(l.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	l.root = r
	return r, nil
}

// Put implements Store.
func (l *Local) Put(ctx context.Context, key string, src Source, size int64, sum string) (err error) {
	if err := checkPut(key, size, sum); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	root, err := l.openRoot(true)
	if err != nil {
		return err
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	tmpName := TempDir + "/" + hex.EncodeToString(rnd[:])
	var f *os.File
	err = l.inDir(root, TempDir, func() error {
		f, err = root.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			_ = root.Remove(tmpName)
		}
	}()

	r, err := src(ctx)
	if err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	defer r.Close()
	vr := NewVerifyReader(&ctxReader{ctx: ctx, r: r}, size, sum)
	if _, err := io.Copy(f, vr); err != nil {
		if vr.Err() != nil {
			err = vr.Err()
		}
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	if !vr.Verified() {
		// io.Copy stops at EOF, which VerifyReader only returns when the
		// stream was complete and matched; this is a guard.
		return fmt.Errorf("storage: put %s: stream not verified: %w", key, ErrHashMismatch)
	}
	noSync := withoutSync(ctx)
	if !noSync {
		l.fileSyncs.Add(1)
		if err := f.Sync(); err != nil {
			return fmt.Errorf("storage: put %s: %w", key, err)
		}
	}
	if err := f.Close(); err != nil {
		f = nil
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	f = nil

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	dir := path.Dir(key)
	if err := l.inDir(root, dir, func() error { return root.Rename(tmpName, key) }); err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	switch b := syncBatchOf(ctx); {
	case noSync:
	case b != nil:
		b.add(l, dir)
	default:
		l.syncDir(dir)
	}
	return nil
}

// Syncs returns how many file and directory fsyncs the store's Puts made
// (for tests and benchmarks).
func (l *Local) Syncs() (files, dirs int64) { return l.fileSyncs.Load(), l.dirSyncs.Load() }

// inDir runs op, which creates a file in dir: after creating dir unless a
// Put found it already, and again after creating it when op finds it gone.
func (l *Local) inDir(root *os.Root, dir string, op func() error) error {
	mkdir := func() error {
		if dir == "." {
			return nil
		}
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		l.dirs.Store(dir, true)
		return nil
	}
	if _, ok := l.dirs.Load(dir); !ok {
		if err := mkdir(); err != nil {
			return err
		}
		return op()
	}
	err := op()
	if errors.Is(err, fs.ErrNotExist) {
		l.dirs.Delete(dir)
		if err := mkdir(); err != nil {
			return err
		}
		err = op()
	}
	return err
}

// syncDir fsyncs dir, making the renames into it durable; best effort
// where unsupported.
func (l *Local) syncDir(dir string) {
	root, err := l.openRoot(false)
	if err != nil || root == nil {
		return
	}
	if d, err := root.Open(dir); err == nil {
		l.dirSyncs.Add(1)
		_ = d.Sync()
		d.Close()
	}
}

// ContextReader returns a reader of r that fails with ctx's error once ctx
// is cancelled, so that a copy from a reader that does not watch ctx (a
// file, a spool) stops between reads.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx: ctx, r: r} }

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Get implements Store.
func (l *Local) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("storage: get %s: %w", key, err)
	}
	root, err := l.openRoot(false)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, fmt.Errorf("storage: get %s: %w", key, ErrNotFound)
	}
	f, err := root.Open(key)
	if err != nil {
		return nil, fmt.Errorf("storage: get %s: %w", key, mapFSError(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: get %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("storage: get %s: %w", key, ErrNotFound)
	}
	if err := checkRange(key, offset, length, st.Size()); err != nil {
		f.Close()
		return nil, err
	}
	if length < 0 {
		length = st.Size() - offset
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("storage: get %s: %w", key, err)
		}
	}
	return &fileRange{f: f, lr: io.LimitedReader{R: f, N: length}, want: length}, nil
}

// fileRange reads a range of a file and fails when the file is shorter than
// the range. WriteTo hands the *os.File to the destination's ReadFrom, so a
// copy to a socket can use sendfile.
type fileRange struct {
	f    *os.File
	lr   io.LimitedReader
	want int64
	got  int64
}

func (r *fileRange) Read(p []byte) (int, error) {
	n, err := r.lr.Read(p)
	r.got += int64(n)
	if err == io.EOF && r.got < r.want {
		return n, fmt.Errorf("storage: %s: file ended after %d of %d bytes: %w", r.f.Name(), r.got, r.want, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (r *fileRange) WriteTo(w io.Writer) (int64, error) {
	n, err := io.Copy(w, &r.lr)
	r.got += n
	if err == nil && r.got < r.want {
		err = fmt.Errorf("storage: %s: file ended after %d of %d bytes: %w", r.f.Name(), r.got, r.want, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (r *fileRange) Close() error { return r.f.Close() }

// Stat implements Store.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("storage: stat %s: %w", key, err)
	}
	root, err := l.openRoot(false)
	if err != nil {
		return Info{}, err
	}
	if root == nil {
		return Info{}, fmt.Errorf("storage: stat %s: %w", key, ErrNotFound)
	}
	st, err := root.Stat(key)
	if err != nil {
		return Info{}, fmt.Errorf("storage: stat %s: %w", key, mapFSError(err))
	}
	if !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("storage: stat %s: %w", key, ErrNotFound)
	}
	if b := syncBatchOf(ctx); b != nil && !withoutSync(ctx) {
		// Found by a writer that will refer to it: its name may be
		// another writer's rename not made durable yet (see SyncBatch).
		b.add(l, path.Dir(key))
	}
	return fileInfo(key, st), nil
}

func fileInfo(key string, st fs.FileInfo) Info {
	h := sha256.Sum256(fmt.Appendf(nil, "%d/%d/%d", fileID(st), st.Size(), st.ModTime().UnixNano()))
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime(), Version: hex.EncodeToString(h[:8])}
}

// mapFSError turns "no such file" (also "not a directory" on a path through
// a file) into ErrNotFound.
func mapFSError(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	}
	return err
}

// List implements Store. It walks the directory that holds the prefix's last
// complete segment, so listing "repos/x/" reads only that subtree.
func (l *Local) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	root, err := l.openRoot(false)
	if err != nil {
		return err
	}
	if root == nil {
		return nil
	}
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	fsys := root.FS()
	var fnErr error
	err = fs.WalkDir(fsys, start, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while listing
			}
			return err
		}
		if d.IsDir() {
			if p == TempDir {
				return fs.SkipDir
			}
			// Prune directories that cannot hold a matching key.
			if p != "." && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(p, prefix) || ValidateKey(p) != nil {
			return nil
		}
		st, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(fileInfo(p, st)); err != nil {
			fnErr = err
			return fs.SkipAll
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("storage: list %q in %s: %w", prefix, l.Location(), err)
	}
	return nil
}

// Delete implements Store.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	root, err := l.openRoot(false)
	if err != nil {
		return err
	}
	if root == nil {
		return nil
	}
	st, err := root.Lstat(key)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	if st.IsDir() {
		return nil // a directory is not an object
	}
	if err := root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	return nil
}
