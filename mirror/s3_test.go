package mirror

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hubmirror/hubmirror/storage"
)

// s3Store returns a store in a new bucket of the test server, or skips the
// test when none is configured (.ci/run starts versitygw and sets these).
func s3Store(t *testing.T) storage.Store {
	ep := os.Getenv("HUBMIRROR_TEST_S3_ENDPOINT")
	if ep == "" {
		t.Skip("HUBMIRROR_TEST_S3_ENDPOINT is not set; .ci/run starts a versitygw server and sets it")
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	s, err := storage.NewS3(context.Background(), storage.S3Config{
		Bucket:    "hubmirror-mirror-test-" + hex.EncodeToString(rnd[:]),
		Endpoint:  ep,
		AccessKey: os.Getenv("HUBMIRROR_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("HUBMIRROR_TEST_S3_SECRET_KEY"),
		PartSize:  5 << 20,
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var keys []string
		s.List(context.Background(), "", func(i storage.Info) error { keys = append(keys, i.Key); return nil })
		for _, k := range keys {
			s.Delete(context.Background(), k)
		}
	})
	return s
}

// TestPushAbortsStaleUploadsS3: incomplete multipart uploads of blobs (as a
// killed push leaves them) are aborted by the next push once older than
// StaleUploadAge, and reported; younger ones, and uploads of other keys,
// are left alone.
func TestPushAbortsStaleUploadsS3(t *testing.T) {
	ep := os.Getenv("HUBMIRROR_TEST_S3_ENDPOINT")
	if ep == "" {
		t.Skip("HUBMIRROR_TEST_S3_ENDPOINT is not set; .ci/run starts a versitygw server and sets it")
	}
	ctx := context.Background()
	u, err := url.Parse(ep)
	if err != nil {
		t.Fatal(err)
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(os.Getenv("HUBMIRROR_TEST_S3_ACCESS_KEY"), os.Getenv("HUBMIRROR_TEST_S3_SECRET_KEY"), ""),
		Secure: u.Scheme == "https", Region: "us-east-1", BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	bucket := "hubmirror-stale-test-" + hex.EncodeToString(rnd[:])
	s, err := storage.NewS3(ctx, storage.S3Config{
		Bucket: bucket, Prefix: "mirror", Endpoint: ep, PartSize: 5 << 20,
		AccessKey: os.Getenv("HUBMIRROR_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("HUBMIRROR_TEST_S3_SECRET_KEY"),
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	store := storage.Retry(s, 2)
	core := minio.Core{Client: client}
	t.Cleanup(func() {
		for u := range client.ListIncompleteUploads(ctx, bucket, "", true) {
			if u.Err == nil {
				client.RemoveIncompleteUpload(ctx, bucket, u.Key)
			}
		}
		for o := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			client.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
		}
		client.RemoveBucket(ctx, bucket)
	})
	// An upload begun and never finished, with one part, as a killed
	// push leaves it; and one of a key that is not a blob of the mirror.
	orphan := BlobKey(storage.SHA256Hex([]byte("orphan")))
	begin := func(object string) {
		id, err := core.NewMultipartUpload(ctx, bucket, object, minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		part := bytes.Repeat([]byte("p"), 1<<10)
		if _, err := core.PutObjectPart(ctx, bucket, object, id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	begin("mirror/" + orphan)
	begin("mirror/other/upload")
	begin("elsewhere/" + orphan)
	incomplete := func() []string {
		var out []string
		for u := range client.ListIncompleteUploads(ctx, bucket, "", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			out = append(out, u.Key)
		}
		sort.Strings(out)
		return out
	}
	dir, _ := modelDir(t)
	// With the default age, a fresh upload may be a push in progress.
	res := pushDir(t, store, "org/model", dir, PushOptions{})
	if len(res.AbortedUploads) != 0 || len(incomplete()) != 3 {
		t.Errorf("a push aborted fresh uploads: %v; left %v", res.AbortedUploads, incomplete())
	}
	res = pushDir(t, store, "org/model", dir, PushOptions{StaleUploadAge: time.Nanosecond})
	if len(res.AbortedUploads) != 1 || res.AbortedUploads[0].Key != orphan || res.AbortError != "" {
		t.Errorf("aborted %+v (%s), want the upload of %s", res.AbortedUploads, res.AbortError, orphan)
	}
	if got, want := incomplete(), []string{"elsewhere/" + orphan, "mirror/other/upload"}; !slices.Equal(got, want) {
		t.Errorf("incomplete uploads left: %v, want %v", got, want)
	}
}

func TestInterruptedPushS3(t *testing.T) { testInterruptedPush(t, s3Store(t)) }

func TestServerS3(t *testing.T) {
	s := s3Store(t)
	dir, files := modelDir(t)
	pushDir(t, s, "org/model", dir, PushOptions{})
	srv := httptest.NewServer(NewServer(s, ServerOptions{SmallFile: 64 << 10}))
	defer srv.Close()
	for p, data := range files {
		resp, err := http.Get(srv.URL + "/org/model/resolve/main/" + p)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Errorf("%s: %d, %d of %d bytes, %v", p, resp.StatusCode, len(body), len(data), err)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/org/model/resolve/main/model.safetensors", nil)
	req.Header.Set("Range", "bytes=1000-1999")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || !bytes.Equal(body, files["model.safetensors"][1000:2000]) {
		t.Errorf("range over S3: %d, %d bytes", resp.StatusCode, len(body))
	}
}
