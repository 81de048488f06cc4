package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

// TestPushStaleUploadsFlagBounds: --stale-uploads must be a positive
// duration; anything else is a usage error before the source is read.
func TestPushStaleUploadsFlagBounds(t *testing.T) {
	dir, _ := pushModelDir(t, "tiny", 1<<10)
	dst := filepath.Join(t.TempDir(), "mirror")
	for _, v := range []string{"0s", "-1h"} {
		_, stderr, code := pushJSON(t, dir, "file://"+dst, "--stale-uploads", v)
		if code != 2 || !strings.Contains(stderr, "--stale-uploads") {
			t.Errorf("--stale-uploads %s: exit %d, %q", v, code, stderr)
		}
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("a refused push created the mirror: %v", err)
	}
}

// TestPushStaleUploadsFlagS3: on the S3 server .ci/run starts, an
// incomplete upload of a blob left by a killed push survives a push with the
// default age (24 h) and is aborted by one with --stale-uploads 1s.
func TestPushStaleUploadsFlagS3(t *testing.T) {
	ep := os.Getenv("HUBMIRROR_TEST_S3_ENDPOINT")
	if ep == "" {
		t.Skip("HUBMIRROR_TEST_S3_ENDPOINT is not set; .ci/run starts a versitygw server and sets it")
	}
	t.Setenv("AWS_ENDPOINT_URL", ep)
	t.Setenv("AWS_ACCESS_KEY_ID", os.Getenv("HUBMIRROR_TEST_S3_ACCESS_KEY"))
	t.Setenv("AWS_SECRET_ACCESS_KEY", os.Getenv("HUBMIRROR_TEST_S3_SECRET_KEY"))
	t.Setenv("AWS_REGION", "us-east-1")
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
	bucket := "hubmirror-push-stale-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	dst := "s3://" + bucket + "/mirror"
	dir, _ := pushModelDir(t, "tiny", 1<<10)
	if _, stderr, code := pushJSON(t, dir, dst, "--repo-id", "org/tiny"); code != 0 {
		t.Fatalf("first push: exit %d: %s", code, stderr)
	}
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
	key := "mirror/" + mirror.BlobKey(storage.SHA256Hex([]byte("killed push")))
	core := minio.Core{Client: client}
	id, err := core.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte("p"), 1<<10)
	if _, err := core.PutObjectPart(ctx, bucket, key, id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	pending := func() bool {
		for u := range client.ListIncompleteUploads(ctx, bucket, "", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			if u.Key == key {
				return true
			}
		}
		return false
	}
	// S3 stamps uploads in whole seconds: let this one be 2 s old.
	time.Sleep(2100 * time.Millisecond)
	rep, stderr, code := pushJSON(t, dir, dst, "--repo-id", "org/tiny")
	if code != 0 || len(rep.AbortedUploads) != 0 || !pending() {
		t.Fatalf("push with the default age: exit %d, aborted %v, pending %v: %s", code, rep.AbortedUploads, pending(), stderr)
	}
	rep, stderr, code = pushJSON(t, dir, dst, "--repo-id", "org/tiny", "--stale-uploads", "1s")
	if code != 0 || len(rep.AbortedUploads) != 1 || !strings.HasSuffix(key, rep.AbortedUploads[0].Key) {
		t.Fatalf("push --stale-uploads 1s: exit %d, aborted %+v: %s", code, rep.AbortedUploads, stderr)
	}
	if pending() {
		t.Error("the stale upload is still there")
	}
}
