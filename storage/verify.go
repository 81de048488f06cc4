package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// SHA256Hex returns the lowercase hex SHA-256 of data.
func SHA256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// VerifyReader reads exactly size bytes from an underlying reader and checks
// their SHA-256 before it hands out the last of them: the Read that would
// complete the stream returns ErrHashMismatch and none of its bytes when the
// digest is wrong. A consumer of a VerifyReader therefore never sees the whole
// of a stream that fails verification, which is what makes "upload, then
// commit on EOF" (S3 multipart, a rename after a copy, an HTTP body with a
// Content-Length) safe: the commit never happens.
//
// After the last byte a VerifyReader returns io.EOF without reading further
// from the underlying reader. An underlying reader that ends early yields an
// error wrapping ErrShortRead; errors are sticky.
type VerifyReader struct {
	r         io.Reader
	remaining int64
	size      int64
	h         hash.Hash
	want      [32]byte
	err       error
}

// NewVerifyReader returns a VerifyReader of size bytes from r that must hash
// to sha256Hex (validated with ValidateSHA256; an invalid digest makes every
// Read fail with ErrInvalidArgument).
func NewVerifyReader(r io.Reader, size int64, sha256Hex string) *VerifyReader {
	v := &VerifyReader{r: r, remaining: size, size: size, h: sha256.New()}
	if err := ValidateSHA256(sha256Hex); err != nil {
		v.err = err
	} else {
		v.want = decodeSHA256(sha256Hex)
	}
	if size < 0 {
		v.err = fmt.Errorf("storage: negative size %d: %w", size, ErrInvalidArgument)
	}
	return v
}

// Read implements io.Reader with the rules of VerifyReader.
func (v *VerifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.remaining == 0 {
		// Only reached for size 0 or after the final bytes were delivered.
		if err := v.check(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > v.remaining {
		p = p[:v.remaining]
	}
	n, err := v.r.Read(p)
	if n < 0 || n > len(p) {
		v.err = fmt.Errorf("storage: reader returned invalid count %d", n)
		return 0, v.err
	}
	v.h.Write(p[:n])
	v.remaining -= int64(n)
	if v.remaining == 0 {
		if cerr := v.check(); cerr != nil {
			return 0, cerr // withhold the last bytes
		}
		return n, nil
	}
	if err == io.EOF {
		v.err = fmt.Errorf("storage: got %d of %d bytes: %w", v.size-v.remaining, v.size, ErrShortRead)
		return n, v.err
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *VerifyReader) check() error {
	var got [32]byte
	v.h.Sum(got[:0])
	if got != v.want {
		v.err = fmt.Errorf("storage: content has sha256 %x, want %x: %w", got, v.want, ErrHashMismatch)
		return v.err
	}
	return nil
}

// Err returns the error that stopped the reader, if any: a caller that hands a
// VerifyReader to a library that wraps or replaces read errors (an HTTP
// transport) uses it to report the real cause.
func (v *VerifyReader) Err() error { return v.err }

// Verified reports whether all size bytes were read and matched.
func (v *VerifyReader) Verified() bool { return v.err == nil && v.remaining == 0 && v.check() == nil }
