package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// IncompleteUpload is an upload that was begun and neither completed nor
// aborted: an S3 multipart upload left behind by a process that crashed or
// was killed mid-Put. The bucket keeps (and bills) its parts until it is
// aborted.
type IncompleteUpload struct {
	Key       string    `json:"key"`
	Initiated time.Time `json:"initiated"`
}

// UploadAborter is a Store that can hold incomplete uploads (S3).
type UploadAborter interface {
	// AbortIncompleteUploads aborts the incomplete uploads of keys that
	// begin with prefix and were begun at least olderThan ago, and
	// returns them. It stops at the first error, returning what it
	// aborted until then.
	AbortIncompleteUploads(ctx context.Context, prefix string, olderThan time.Duration) ([]IncompleteUpload, error)
}

// Unwrapper is a Store that decorates another (Retry, Limit, Timeout).
type Unwrapper interface {
	Unwrap() Store
}

// AbortIncompleteUploads aborts the incomplete uploads of keys under prefix
// begun at least olderThan ago in s, or in the store s decorates (see
// Unwrapper); a store without incomplete uploads (Local) has none to abort.
// Keep olderThan well above the longest Put, or it aborts uploads in
// progress (of other processes).
func AbortIncompleteUploads(ctx context.Context, s Store, prefix string, olderThan time.Duration) ([]IncompleteUpload, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	for {
		if a, ok := s.(UploadAborter); ok {
			return a.AbortIncompleteUploads(ctx, prefix, olderThan)
		}
		u, ok := s.(Unwrapper)
		if !ok {
			return nil, nil
		}
		s = u.Unwrap()
	}
}

func (l *limited) Unwrap() Store  { return l.Store }
func (r *retrying) Unwrap() Store { return r.Store }

// AbortIncompleteUploads implements UploadAborter.
func (s *S3) AbortIncompleteUploads(ctx context.Context, prefix string, olderThan time.Duration) ([]IncompleteUpload, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type upload struct {
		object, id string
		initiated  time.Time
	}
	var stale []upload
	for u := range s.client.ListIncompleteUploads(ctx, s.bucket, s.prefix+prefix, true) {
		if u.Err != nil {
			return nil, s.mapErr("list incomplete uploads", prefix, u.Err)
		}
		if _, ok := strings.CutPrefix(u.Key, s.prefix); !ok || time.Since(u.Initiated) < olderThan {
			continue
		}
		stale = append(stale, upload{u.Key, u.UploadID, u.Initiated})
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("storage: list incomplete uploads %q: %w", prefix, err)
	}
	core := minio.Core{Client: s.client}
	var done []IncompleteUpload
	for _, u := range stale {
		key := strings.TrimPrefix(u.object, s.prefix)
		if err := core.AbortMultipartUpload(ctx, s.bucket, u.object, u.id); err != nil {
			return done, s.mapErr("abort upload", key, err)
		}
		done = append(done, IncompleteUpload{Key: key, Initiated: u.initiated})
	}
	return done, nil
}
