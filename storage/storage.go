// Package storage keeps opaque objects under string keys in a local directory
// or an S3-compatible bucket, behind one small interface, Store.
//
// Every write names the sha256 its bytes must have; a store hashes while it
// streams and refuses (and keeps nothing of) bytes that do not match. That
// makes content-addressed layouts (see package mirror) safe against corrupt
// sources and interrupted uploads: an object is either complete and verified
// under its key, or absent.
//
// Stores are opened from a URL with Open: a plain path or file:///path for a
// directory, s3://bucket/prefix for a bucket. Open wires the cross-cutting
// decorators (Retry, Limit) in one place.
package storage

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Store keeps objects under keys. It knows nothing about models; package
// mirror gives the keys their meaning.
//
// Keys are slash-separated, relative, UTF-8 strings; ValidateKey states the
// rules, and every method refuses an invalid key with ErrInvalidKey before it
// touches the backend. The same key is valid in every backend.
//
// All methods are safe for concurrent use. A method whose ctx is cancelled
// returns an error that wraps ctx.Err() (or ErrNotFound, etc. if it finished
// first).
type Store interface {
	// Put stores exactly size bytes of src under key, replacing any object
	// already there. sha256 is the lowercase hex SHA-256 the bytes must
	// have. Put opens src (once per attempt: a decorator such as Retry
	// opens it again to retry a failed Put) and closes what it opened.
	//
	// Put hashes the bytes while it streams them and makes the object
	// visible under key only when the hash matches. If it does not, Put
	// returns an error wrapping ErrHashMismatch; if the source ends before
	// size bytes, an error wrapping ErrShortRead; if it fails, its error.
	// In every failure (including a cancelled ctx) Put leaves nothing
	// visible: a later Stat, Get or List shows the old object under key if
	// there was one, or none, never a partial or unverified object. Readers
	// see either the old or the new object, never a mix. (One failure can
	// leave the new object: a response lost after the complete, verified
	// object was committed. The object is then correct, and a retry is
	// idempotent.)
	//
	// Put reads no more than size bytes from src. Put is idempotent:
	// putting the same bytes under the same key again succeeds and leaves
	// one object.
	Put(ctx context.Context, key string, src Source, size int64, sha256 string) error

	// Get returns a reader of length bytes of the object under key starting
	// at offset; length < 0 means up to the end. It returns ErrNotFound when
	// there is no object and ErrInvalidRange unless 0 <= offset <= size and,
	// for length >= 0, offset+length <= size. The reader delivers exactly the
	// bytes asked for or fails with an error (io.ErrUnexpectedEOF when the
	// object shrank underneath it). Get does not verify content: objects are
	// verified on the way in, and callers that need to re-verify (package
	// mirror) hash what they read. The caller must Close the reader.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)

	// Stat returns the object's Info, or ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)

	// List calls fn with the Info of every object whose key begins with
	// prefix (a plain string prefix: "a/b" matches "a/b/c" and "a/bc"; ""
	// matches everything). The order is unspecified. Objects put or deleted
	// while List runs may or may not be seen. If fn returns an error, List
	// stops and returns it. Only valid keys are listed; temporary or foreign
	// objects that are not valid keys are skipped.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// Delete removes the object under key. Deleting a key that has no
	// object is not an error, so Delete is idempotent.
	Delete(ctx context.Context, key string) error

	// Location returns the URL the store was opened from, for messages.
	Location() string

	// Close releases the store's resources. It does not wait for readers
	// returned by Get, which stay usable until closed.
	Close() error
}

// Source is the content of a Put: a function that returns a reader of the
// bytes from the first one. Put calls it once per attempt and closes the
// reader; every call must give the same bytes, so that a failed Put can be
// retried, also when the bytes are streamed from elsewhere (a source that
// downloads them opens a new download). A source that cannot give its bytes
// again fails with an error wrapping ErrNotRewindable (see StreamSource).
type Source func(ctx context.Context) (io.ReadCloser, error)

// BytesSource is a Source of data.
func BytesSource(data []byte) Source {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

// StreamSource is a Source of a reader the caller owns (Put does not close
// it). When r is an io.Seeker, each call after the first seeks it back to
// where it was at the first call; otherwise only the first call succeeds and
// later ones fail with ErrNotRewindable, so a Put of it is not retried.
func StreamSource(r io.Reader) Source {
	var mu sync.Mutex
	opened := false
	var start int64
	return func(context.Context) (io.ReadCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		seeker, canSeek := r.(io.Seeker)
		switch {
		case !opened && canSeek:
			pos, err := seeker.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, fmt.Errorf("storage: source: %w", err)
			}
			start = pos
		case !opened:
		case canSeek:
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return nil, fmt.Errorf("storage: rewinding the source: %w", err)
			}
		default:
			return nil, fmt.Errorf("storage: the source is a stream already read: %w", ErrNotRewindable)
		}
		opened = true
		return io.NopCloser(r), nil
	}
}

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
	// Version is an opaque token that changes whenever the object under Key
	// is replaced or modified (the S3 ETag; for files, a digest of inode,
	// size and modification time). Callers use it to tell whether an object
	// they verified earlier is still the same object.
	Version string
}

// Errors that callers test with errors.Is. Backends wrap them with the
// operation and key.
var (
	// ErrNotFound: there is no object under the key.
	ErrNotFound = errors.New("object not found")
	// ErrHashMismatch: the bytes given to Put do not have the sha256 they
	// were declared with.
	ErrHashMismatch = errors.New("sha256 mismatch")
	// ErrShortRead: the reader given to Put ended before size bytes.
	ErrShortRead = errors.New("reader ended before the declared size")
	// ErrInvalidKey: the key breaks the rules of ValidateKey.
	ErrInvalidKey = errors.New("invalid key")
	// ErrInvalidRange: the offset or length of Get lies outside the object.
	ErrInvalidRange = errors.New("range outside the object")
	// ErrInvalidArgument: a malformed argument other than the key (a
	// negative size, a sha256 that is not 64 hex digits).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotRewindable: a Source cannot give its bytes a second time.
	ErrNotRewindable = errors.New("the source cannot be read again")
)

// Limits on keys, chosen so that a key valid in one backend is valid in all:
// S3 allows 1024 bytes, file systems 255 bytes per name.
const (
	MaxKeyLength     = 1024
	MaxSegmentLength = 255
)

// TempDir is the top-level directory in which the local backend stages
// uploads. Keys under it are refused everywhere, so a local store and a bucket
// accept the same keys.
const TempDir = ".hubmirror-tmp"

// ValidateKey reports whether key is a valid object key: non-empty, at most
// MaxKeyLength bytes of valid UTF-8 without control characters (U+0000 to
// U+001F, U+007F) or backslashes, made of '/'-separated segments that are
// non-empty, not "." or "..", and at most MaxSegmentLength bytes each; the
// first segment must not be TempDir. So keys are never absolute, never end in
// '/', and can never escape the directory of a local store. The returned error
// wraps ErrInvalidKey.
func ValidateKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("storage: key %q: %s: %w", key, why, ErrInvalidKey)
	}
	switch {
	case key == "":
		return fmt.Errorf("storage: empty key: %w", ErrInvalidKey)
	case len(key) > MaxKeyLength:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLength))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	}
	for _, c := range key {
		if c < 0x20 || c == 0x7f {
			return bad("control character")
		}
		if c == '\\' {
			return bad("backslash")
		}
	}
	for i, seg := range strings.Split(key, "/") {
		switch {
		case seg == "":
			return bad("empty segment (leading, trailing or double slash)")
		case seg == "." || seg == "..":
			return bad("'.' or '..' segment")
		case len(seg) > MaxSegmentLength:
			return bad(fmt.Sprintf("segment longer than %d bytes", MaxSegmentLength))
		case i == 0 && seg == TempDir:
			return bad("reserved for temporary files")
		}
	}
	return nil
}

// validatePrefix checks a List prefix: "" or a string that could begin a valid
// key (so it may end in '/').
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	probe := strings.TrimSuffix(prefix, "/")
	if probe == "" {
		return fmt.Errorf("storage: prefix %q: %w", prefix, ErrInvalidKey)
	}
	if err := ValidateKey(probe); err != nil {
		return fmt.Errorf("storage: prefix %q: %w", prefix, ErrInvalidKey)
	}
	return nil
}

// ValidateSHA256 reports whether s is a lowercase hex SHA-256 digest; the
// error wraps ErrInvalidArgument.
func ValidateSHA256(s string) error {
	if len(s) != 64 {
		return fmt.Errorf("storage: sha256 %q is not 64 hex digits: %w", s, ErrInvalidArgument)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("storage: sha256 %q is not lowercase hex: %w", s, ErrInvalidArgument)
		}
	}
	return nil
}

// checkPut validates the arguments every backend's Put shares.
func checkPut(key string, size int64, sum string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("storage: put %s: negative size %d: %w", key, size, ErrInvalidArgument)
	}
	return ValidateSHA256(sum)
}

// checkRange validates a Get range against the object size.
func checkRange(key string, offset, length, size int64) error {
	if offset < 0 || offset > size || (length >= 0 && length > size-offset) {
		return fmt.Errorf("storage: get %s: range offset %d length %d of %d bytes: %w", key, offset, length, size, ErrInvalidRange)
	}
	return nil
}

// decodeSHA256 returns the 32 bytes of a validated hex digest.
func decodeSHA256(s string) [32]byte {
	var d [32]byte
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		panic("storage: decodeSHA256 of unvalidated digest " + s)
	}
	return d
}

// PutBytes stores data under key, computing its sha256.
func PutBytes(ctx context.Context, s Store, key string, data []byte) error {
	return s.Put(ctx, key, BytesSource(data), int64(len(data)), SHA256Hex(data))
}

// ReadAll returns the whole object under key, refusing objects larger than
// max bytes (a manifest or ref is small; a huge one is corrupt or hostile).
func ReadAll(ctx context.Context, s Store, key string, max int64) ([]byte, error) {
	rc, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", key, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("storage: %s is larger than %d bytes", key, max)
	}
	return data, nil
}
