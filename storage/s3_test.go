package storage_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hubmirror/hubmirror/storage"
	"github.com/hubmirror/hubmirror/storage/storetest"
)

// s3TestConfig returns the configuration of the test server, or skips the
// test when none is configured (.ci/run starts versitygw and sets these).
func s3TestConfig(t testing.TB) storage.S3Config {
	ep := os.Getenv("HUBMIRROR_TEST_S3_ENDPOINT")
	if ep == "" {
		t.Skip("HUBMIRROR_TEST_S3_ENDPOINT is not set; .ci/run starts a versitygw server and sets it")
	}
	return storage.S3Config{
		Endpoint:  ep,
		AccessKey: os.Getenv("HUBMIRROR_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("HUBMIRROR_TEST_S3_SECRET_KEY"),
	}
}

// testBucket creates a bucket for this test run and removes it (and all in
// it) at the end.
func testBucket(t testing.TB, cfg storage.S3Config) (string, *minio.Client) {
	var rnd [6]byte
	rand.Read(rnd[:])
	bucket := "hubmirror-test-" + hex.EncodeToString(rnd[:])
	client := rawClient(t, cfg)
	if err := client.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("creating bucket %s: %v", bucket, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for u := range client.ListIncompleteUploads(ctx, bucket, "", true) {
			if u.Err == nil {
				client.RemoveIncompleteUpload(ctx, bucket, u.Key)
			}
		}
		objs := client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
		for e := range client.RemoveObjects(ctx, bucket, objs, minio.RemoveObjectsOptions{}) {
			t.Logf("cleanup: %v", e.Err)
		}
		if err := client.RemoveBucket(ctx, bucket); err != nil {
			t.Logf("cleanup: removing bucket %s: %v", bucket, err)
		}
	})
	return bucket, client
}

func rawClient(t testing.TB, cfg storage.S3Config) *minio.Client {
	ep := cfg.Endpoint
	secure := false
	if len(ep) > 8 && ep[:8] == "https://" {
		ep, secure = ep[8:], true
	} else if len(ep) > 7 && ep[:7] == "http://" {
		ep = ep[7:]
	}
	client, err := minio.New(ep, &minio.Options{
		Creds:           credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:          secure,
		Region:          "us-east-1",
		BucketLookup:    minio.BucketLookupPath,
		TrailingHeaders: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func TestS3Conformance(t *testing.T) {
	cfg := s3TestConfig(t)
	bucket, client := testBucket(t, cfg)
	var n atomic.Int64
	storetest.Run(t, storetest.Config{
		New: func(t *testing.T) storage.Store {
			c := cfg
			c.Bucket = bucket
			c.Prefix = fmt.Sprintf("run/%d", n.Add(1))
			c.PartSize = 5 << 20
			c.Threads = 3
			s, err := storage.NewS3(context.Background(), c, false)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		LargeSize: 17<<20 + 4321, // four parts of 5 MiB
		Leftovers: func(t *testing.T, s storage.Store) []string {
			var out []string
			for u := range client.ListIncompleteUploads(context.Background(), bucket, "", true) {
				if u.Err != nil {
					t.Fatal(u.Err)
				}
				out = append(out, "incomplete upload of "+u.Key)
				client.RemoveIncompleteUpload(context.Background(), bucket, u.Key)
			}
			return out
		},
	})
}

// TestS3ThroughOpen runs the suite on a store that Open configured from the
// AWS_* environment, through its decorators.
func TestS3ThroughOpen(t *testing.T) {
	cfg := s3TestConfig(t)
	bucket, _ := testBucket(t, cfg)
	t.Setenv("AWS_ENDPOINT_URL", cfg.Endpoint)
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	var n atomic.Int64
	storetest.Run(t, storetest.Config{
		New: func(t *testing.T) storage.Store {
			u := fmt.Sprintf("s3://%s/sha/%d", bucket, n.Add(1))
			s, err := storage.Open(context.Background(), u, storage.OpenOptions{S3: storage.S3Config{PartSize: 5 << 20}})
			if err != nil {
				t.Fatal(err)
			}
			if s.Location() != u {
				t.Errorf("Location() = %q, want %q", s.Location(), u)
			}
			return s
		},
		LargeSize: 11 << 20,
	})
}

func TestS3MissingBucket(t *testing.T) {
	cfg := s3TestConfig(t)
	var rnd [6]byte
	rand.Read(rnd[:])
	cfg.Bucket = "hubmirror-test-missing-" + hex.EncodeToString(rnd[:])
	if _, err := storage.NewS3(context.Background(), cfg, false); err == nil {
		t.Fatal("NewS3 of a missing bucket without create succeeded")
	}
	s, err := storage.NewS3(context.Background(), cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rawClient(t, cfg).RemoveBucket(context.Background(), cfg.Bucket)
	if err := storage.PutBytes(context.Background(), s, "x", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
}
