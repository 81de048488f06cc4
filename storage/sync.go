package storage

import (
	"context"
	"sync"
)

// Durability of the local backend's writes, chosen per Put through its
// context. By default a Local Put fsyncs the new file before it renames it
// into place and fsyncs the directory after, so that a Put that returned
// survives a crash of the machine (two fsyncs per object). A caller that
// needs less, or can group the directory syncs, says so with these; other
// backends ignore them (an S3 PUT is durable when it returns). Neither
// changes what other processes see: an object is whole and visible under
// its key as soon as Put returns, without an fsync.

type noSyncKey struct{}

type syncBatchKey struct{}

// WithoutSync returns a context whose Puts (on a Local store) skip both
// fsyncs: the object is written and renamed into place, atomic and visible
// at once, but a crash of the machine may lose it (or, with it, leave an
// empty or partial file under its key on some file systems). For objects
// whose loss in a crash is harmless because their writer dies with it (a
// push's leases, package mirror), never for content another object refers
// to.
func WithoutSync(ctx context.Context) context.Context {
	return context.WithValue(ctx, noSyncKey{}, true)
}

func withoutSync(ctx context.Context) bool {
	v, _ := ctx.Value(noSyncKey{}).(bool)
	return v
}

// SyncBatch defers the directory syncs of the Puts made with a context of
// WithSyncBatch until Sync: each file is still fsynced before it is renamed
// into place, so it is whole once its name is durable, but the renames
// become durable only when Sync has synced their directories, once each
// however many objects went into it. A writer that makes other objects
// refer to these (a manifest to its blobs) calls Sync first. A Stat with
// the batch's context (and not WithoutSync) that finds an object adds its
// directory too: the object may be another writer's, renamed into place
// with its directory sync still deferred, and a writer that found it
// present and refers to it must make it durable as well. Safe for
// concurrent use.
type SyncBatch struct {
	mu   sync.Mutex
	dirs map[syncDir]bool
}

type syncDir struct {
	l   *Local
	dir string
}

// NewSyncBatch returns an empty batch.
func NewSyncBatch() *SyncBatch { return &SyncBatch{dirs: map[syncDir]bool{}} }

// WithSyncBatch returns a context whose Puts (on a Local store) leave their
// directory sync to b.
func WithSyncBatch(ctx context.Context, b *SyncBatch) context.Context {
	return context.WithValue(ctx, syncBatchKey{}, b)
}

func syncBatchOf(ctx context.Context) *SyncBatch {
	b, _ := ctx.Value(syncBatchKey{}).(*SyncBatch)
	return b
}

func (b *SyncBatch) add(l *Local, dir string) {
	b.mu.Lock()
	b.dirs[syncDir{l, dir}] = true
	b.mu.Unlock()
}

// Sync fsyncs every directory a Put of the batch renamed an object into
// since the last Sync (best effort where directories cannot be synced, as
// a Put's own directory sync), and reports how many it synced.
func (b *SyncBatch) Sync() int {
	b.mu.Lock()
	dirs := b.dirs
	b.dirs = map[syncDir]bool{}
	b.mu.Unlock()
	for d := range dirs {
		d.l.syncDir(d.dir)
	}
	return len(dirs)
}
