package storage

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// OpenOptions configure Open.
type OpenOptions struct {
	// Create makes a missing directory or bucket on first write (local) or
	// at open (S3). Readers leave it false so that a wrong URL is an error
	// instead of an empty store.
	Create bool
	// MaxConcurrent bounds the operations in flight (Limit); 0 means 16.
	MaxConcurrent int
	// Attempts is the number of tries of an operation that fails with a
	// transient error (Retry); 0 means 3, 1 disables retries.
	Attempts int
	// S3 overrides parts of the configuration S3ConfigFromEnv builds for
	// s3:// URLs: its non-zero PartSize and Threads and its Transport
	// are used.
	S3 S3Config
}

// Open opens the store a URL names: file:///abs/path, a plain path (absolute
// or relative), or s3://bucket/prefix (configured from the environment, see
// S3ConfigFromEnv). It wraps the backend in Retry and Limit; this is the one
// place where they are wired.
func Open(ctx context.Context, rawURL string, opts OpenOptions) (Store, error) {
	backend, err := openBackend(ctx, rawURL, opts)
	if err != nil {
		return nil, err
	}
	attempts := opts.Attempts
	if attempts == 0 {
		attempts = 3
	}
	limit := opts.MaxConcurrent
	if limit == 0 {
		limit = 16
	}
	var s Store = backend
	if attempts > 1 {
		s = Retry(s, attempts)
	}
	return Limit(s, limit), nil
}

// IsURL reports whether s names a store by URL (file:// or s3://) rather
// than as a plain path.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "file://") || strings.HasPrefix(s, "s3://")
}

func openBackend(ctx context.Context, rawURL string, opts OpenOptions) (Store, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("storage: empty location: %w", ErrInvalidArgument)
	}
	if !strings.Contains(rawURL, "://") {
		return NewLocal(rawURL, opts.Create)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage: %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("storage: %q: file URLs name a local path (file:///path): %w", rawURL, ErrInvalidArgument)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("storage: %q: no path: %w", rawURL, ErrInvalidArgument)
		}
		return NewLocal(u.Path, opts.Create)
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("storage: %q: no bucket (s3://bucket/prefix): %w", rawURL, ErrInvalidArgument)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("storage: %q: query and fragment are not supported; configure S3 with AWS_* variables: %w", rawURL, ErrInvalidArgument)
		}
		cfg := S3ConfigFromEnv(u.Host, strings.Trim(u.Path, "/"))
		if opts.S3.PartSize != 0 {
			cfg.PartSize = opts.S3.PartSize
		}
		if opts.S3.Threads != 0 {
			cfg.Threads = opts.S3.Threads
		}
		cfg.Transport = opts.S3.Transport
		return NewS3(ctx, cfg, opts.Create)
	default:
		return nil, fmt.Errorf("storage: %q: unknown scheme %q (want file:// or s3://): %w", rawURL, u.Scheme, ErrInvalidArgument)
	}
}
