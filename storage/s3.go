package storage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says how to reach a bucket. S3ConfigFromEnv fills it the way the
// AWS tools do.
type S3Config struct {
	Bucket string
	// Prefix is prepended (with a '/') to every key; "" for none.
	Prefix string
	// Endpoint is the server's URL ("http://127.0.0.1:7070",
	// "https://minio.example:9000") or host; "" means AWS S3. An http://
	// URL selects plain HTTP. A custom endpoint selects path-style
	// addressing (bucket in the path), which MinIO, versitygw and Ceph
	// expect; AWS uses virtual-host style.
	Endpoint string
	// Region; "" means us-east-1 for a custom endpoint, or whatever the
	// bucket reports on AWS.
	Region string
	// Static credentials. When AccessKey is empty the credential chain is
	// used: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN,
	// MINIO_ROOT_USER/MINIO_ROOT_PASSWORD, ~/.aws/credentials (AWS_PROFILE,
	// AWS_SHARED_CREDENTIALS_FILE), ~/.mc/config.json, then IAM (EC2/ECS
	// instance roles and web identity tokens).
	AccessKey, SecretKey, SessionToken string
	// PartSize is the multipart part size in bytes; objects larger than one
	// part are uploaded in parts. 0 means DefaultPartSize. S3 requires at
	// least 5 MiB.
	PartSize uint64
	// Threads is the number of parts uploaded in parallel for one object;
	// 0 means DefaultThreads. Each thread holds one part in memory.
	Threads uint
	// Transport overrides the HTTP transport (tests, proxies); nil means
	// minio-go's default.
	Transport http.RoundTripper
}

// Defaults of S3Config.
const (
	DefaultPartSize = 16 << 20
	DefaultThreads  = 4
)

// S3ConfigFromEnv returns the configuration for s3://bucket/prefix from the
// environment: AWS_ENDPOINT_URL_S3 (or else AWS_ENDPOINT_URL) for the
// endpoint, AWS_REGION (or else AWS_DEFAULT_REGION), and AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN when set (otherwise the credential
// chain described at S3Config).
func S3ConfigFromEnv(bucket, prefix string) S3Config {
	c := S3Config{Bucket: bucket, Prefix: prefix}
	c.Endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
	if c.Endpoint == "" {
		c.Endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	c.Region = os.Getenv("AWS_REGION")
	if c.Region == "" {
		c.Region = os.Getenv("AWS_DEFAULT_REGION")
	}
	c.AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
	c.SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
	c.SessionToken = os.Getenv("AWS_SESSION_TOKEN")
	return c
}

// S3 is a Store in an S3-compatible bucket, through minio-go.
//
// Put streams the source through a VerifyReader, so the last bytes of an
// object reach the server only when the whole stream hashed right. An object
// of at most PartSize bytes goes up in one PUT with a plain (not aws-chunked)
// body of known length and the expected digest in x-amz-checksum-sha256: the
// server commits it only when the whole body arrived and hashes to that
// digest. (versitygw 1.8.0 commits a truncated aws-chunked body, the
// encoding minio-go uses for trailing checksums, when the connection drops
// mid-body; a plain body with a digest header is not subject to that.) A
// larger object goes up as a multipart upload with
// Threads parts in flight, each with a CRC32C checksum the server verifies;
// it becomes visible only at CompleteMultipartUpload, which minio-go sends
// only after the reader reached EOF, and the VerifyReader returns EOF only
// after a matching digest. On failure the upload is aborted (with a fresh
// context when the caller's was cancelled), so no parts are left behind.
type S3 struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or ends in '/'
	partSize uint64
	threads  uint
	location string
}

// NewS3 returns a store in the bucket cfg names. With create, a missing
// bucket is created; without it, the bucket must exist.
func NewS3(ctx context.Context, cfg S3Config, create bool) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("storage: s3: no bucket: %w", ErrInvalidArgument)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := ValidateKey(prefix); err != nil {
			return nil, fmt.Errorf("storage: s3 prefix: %w", err)
		}
		prefix += "/"
	}
	host, secure, custom, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.EnvMinio{},
			&credentials.FileAWSCredentials{},
			&credentials.FileMinioClient{},
			&credentials.IAM{},
		})
	}
	opts := &minio.Options{
		Creds:           creds,
		Secure:          secure,
		Region:          cfg.Region,
		TrailingHeaders: true,
		Transport:       cfg.Transport,
	}
	if custom {
		opts.BucketLookup = minio.BucketLookupPath
		if opts.Region == "" {
			opts.Region = "us-east-1"
		}
	}
	client, err := minio.New(host, opts)
	if err != nil {
		return nil, fmt.Errorf("storage: s3 endpoint %q: %w", cfg.Endpoint, err)
	}
	s := &S3{
		client:   client,
		bucket:   cfg.Bucket,
		prefix:   prefix,
		partSize: cfg.PartSize,
		threads:  cfg.Threads,
		location: strings.TrimSuffix("s3://"+cfg.Bucket+"/"+strings.TrimSuffix(prefix, "/"), "/"),
	}
	if s.partSize == 0 {
		s.partSize = DefaultPartSize
	}
	if s.partSize < 5<<20 {
		return nil, fmt.Errorf("storage: s3 part size %d is below the 5 MiB S3 minimum: %w", s.partSize, ErrInvalidArgument)
	}
	if s.threads == 0 {
		s.threads = DefaultThreads
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, s.mapErr("open", "", err)
	}
	if !ok {
		if !create {
			return nil, fmt.Errorf("storage: %s: bucket %q does not exist", s.location, cfg.Bucket)
		}
		if err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: opts.Region}); err != nil {
			if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return nil, s.mapErr("create bucket", "", err)
			}
		}
	}
	return s, nil
}

// parseEndpoint splits an endpoint URL into minio-go's host and TLS flag.
func parseEndpoint(ep string) (host string, secure, custom bool, err error) {
	if ep == "" {
		return "s3.amazonaws.com", true, false, nil
	}
	if !strings.Contains(ep, "://") {
		return strings.TrimSuffix(ep, "/"), true, true, nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", false, false, fmt.Errorf("storage: s3 endpoint %q: %w", ep, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, false, fmt.Errorf("storage: s3 endpoint %q: scheme must be http or https: %w", ep, ErrInvalidArgument)
	}
	if u.Path != "" && u.Path != "/" {
		return "", false, false, fmt.Errorf("storage: s3 endpoint %q: a path is not supported: %w", ep, ErrInvalidArgument)
	}
	return u.Host, u.Scheme == "https", !strings.HasSuffix(u.Hostname(), "amazonaws.com"), nil
}

// Location returns s3://bucket/prefix.
func (s *S3) Location() string { return s.location }

// Close releases idle connections.
func (s *S3) Close() error { return nil }

func (s *S3) object(key string) string { return s.prefix + key }

// Put implements Store; see S3 for how it keeps a failed upload invisible.
func (s *S3) Put(ctx context.Context, key string, src Source, size int64, sum string) error {
	if err := checkPut(key, size, sum); err != nil {
		return err
	}
	r, err := src(ctx)
	if err != nil {
		return fmt.Errorf("storage: put %s: %w", key, err)
	}
	defer r.Close()
	vr := NewVerifyReader(r, size, sum)
	opts := minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		DisableContentSha256: true, // the payload is verified by VerifyReader and checksums, not by signing it
		PartSize:             s.partSize,
		NumThreads:           s.threads,
	}
	multipart := uint64(size) > s.partSize
	if multipart {
		opts.ConcurrentStreamParts = s.threads > 1
	} else {
		opts.DisableMultipart = true
		d := decodeSHA256(sum)
		opts.UserMetadata = map[string]string{"x-amz-checksum-sha256": base64.StdEncoding.EncodeToString(d[:])}
	}
	_, err = s.client.PutObject(ctx, s.bucket, s.object(key), vr, size, opts)
	if err != nil {
		if verr := vr.Err(); verr != nil {
			err = verr // the transport may have wrapped or replaced the reader's error
		}
		if multipart {
			// minio-go aborts a failed upload itself, but not when ctx was
			// cancelled, and its abort can race with parts still in flight:
			// make sure no incomplete upload of key stays.
			s.abortUploads(ctx, key)
		}
		return s.mapErr("put", key, err)
	}
	if !vr.Verified() {
		// Cannot happen with minio-go as it is (both paths read to EOF
		// before committing); if it ever does, the object is unverified and
		// must not stay.
		_ = s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, s.object(key), minio.RemoveObjectOptions{})
		return fmt.Errorf("storage: put %s: upload committed before the stream was verified: %w", key, ErrHashMismatch)
	}
	return nil
}

// abortUploads removes the incomplete multipart uploads of key after a
// failed Put (also when its context was cancelled).
func (s *S3) abortUploads(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = s.client.RemoveIncompleteUpload(ctx, s.bucket, s.object(key))
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, checkRange(key, offset, length, 0)
	}
	if length == 0 {
		info, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if err := checkRange(key, offset, length, info.Size); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	switch {
	case offset == 0 && length < 0:
	case length < 0:
		_ = opts.SetRange(offset, 0)
	default:
		_ = opts.SetRange(offset, offset+length-1)
	}
	core := minio.Core{Client: s.client}
	body, info, hdr, err := core.GetObject(ctx, s.bucket, s.object(key), opts)
	if err != nil {
		if minio.ToErrorResponse(unwrapMinio(err)).Code == "InvalidRange" {
			// S3 refuses "bytes=size-"; an empty read at the end is valid.
			st, serr := s.Stat(ctx, key)
			if serr != nil {
				return nil, serr
			}
			if err := checkRange(key, offset, length, st.Size); err != nil {
				return nil, err
			}
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.mapErr("get", key, err)
	}
	total := info.Size
	if cr := hdr.Get("Content-Range"); cr != "" {
		t, perr := contentRangeTotal(cr)
		if perr != nil {
			body.Close()
			return nil, fmt.Errorf("storage: get %s: %w", key, perr)
		}
		total = t
	}
	if err := checkRange(key, offset, length, total); err != nil {
		body.Close()
		return nil, err
	}
	want := total - offset
	if length >= 0 {
		want = length
	}
	if info.Size != want {
		body.Close()
		return nil, fmt.Errorf("storage: get %s: server sent %d bytes for a range of %d", key, info.Size, want)
	}
	return &exactReader{rc: body, want: want, key: key}, nil
}

// contentRangeTotal returns the total of "bytes a-b/total".
func contentRangeTotal(cr string) (int64, error) {
	i := strings.LastIndexByte(cr, '/')
	if i < 0 {
		return 0, fmt.Errorf("malformed Content-Range %q", cr)
	}
	n, err := strconv.ParseInt(cr[i+1:], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("malformed Content-Range %q", cr)
	}
	return n, nil
}

// exactReader fails when a body ends before want bytes.
type exactReader struct {
	rc   io.ReadCloser
	want int64
	got  int64
	key  string
}

func (r *exactReader) Read(p []byte) (int, error) {
	if r.got >= r.want {
		return 0, io.EOF
	}
	if int64(len(p)) > r.want-r.got {
		p = p[:r.want-r.got]
	}
	n, err := r.rc.Read(p)
	r.got += int64(n)
	if err == io.EOF && r.got < r.want {
		return n, fmt.Errorf("storage: get %s: body ended after %d of %d bytes: %w", r.key, r.got, r.want, io.ErrUnexpectedEOF)
	}
	if err == io.EOF || r.got == r.want {
		return n, nil
	}
	return n, err
}

func (r *exactReader) Close() error { return r.rc.Close() }

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.object(key), minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.mapErr("stat", key, err)
	}
	return Info{Key: key, Size: oi.Size, ModTime: oi.LastModified, Version: oi.ETag}, nil
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			return s.mapErr("list", prefix, oi.Err)
		}
		key, ok := strings.CutPrefix(oi.Key, s.prefix)
		if !ok || ValidateKey(key) != nil {
			continue
		}
		if err := fn(Info{Key: key, Size: oi.Size, ModTime: oi.LastModified, Version: oi.ETag}); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: list %q: %w", prefix, err)
	}
	return nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.object(key), minio.RemoveObjectOptions{})
	if err != nil && !errors.Is(s.mapErr("delete", key, err), ErrNotFound) {
		return s.mapErr("delete", key, err)
	}
	return nil
}

// unwrapMinio finds a minio.ErrorResponse in err's chain (minio-go's own
// ToErrorResponse only looks at the top).
func unwrapMinio(err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er
	}
	return err
}

// mapErr wraps an error from minio-go with the operation and key, maps S3
// error codes to this package's errors and marks transient ones.
func (s *S3) mapErr(op, key string, err error) error {
	where := s.location
	if key != "" {
		where = key
	}
	var typed error
	transient := false
	var er minio.ErrorResponse
	switch {
	case errors.Is(err, ErrHashMismatch), errors.Is(err, ErrShortRead), errors.Is(err, ErrInvalidArgument):
	case errors.As(err, &er):
		switch er.Code {
		case "NoSuchKey", "NotFound":
			typed = ErrNotFound
		case "BadDigest", "XAmzContentSHA256Mismatch", "XAmzContentChecksumMismatch", "InvalidDigest":
			typed = ErrHashMismatch
		case "InvalidRange":
			typed = ErrInvalidRange
		case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable":
			transient = true
		}
		if er.StatusCode >= 500 || er.StatusCode == http.StatusTooManyRequests || er.StatusCode == http.StatusRequestTimeout {
			transient = true
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	default:
		var ne net.Error
		var ue *url.Error
		if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) {
			transient = true
		}
	}
	if typed != nil {
		err = fmt.Errorf("storage: %s %s: %w (%v)", op, where, typed, err)
	} else {
		err = fmt.Errorf("storage: %s %s: %w", op, where, err)
	}
	if transient {
		return &transientError{err}
	}
	return err
}
