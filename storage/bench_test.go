package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/hubmirror/hubmirror/storage"
)

// BenchmarkVerifyReader measures the client-side cost of Put's verification:
// streaming through sha256.
func BenchmarkVerifyReader(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB
	sum := storage.SHA256Hex(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, storage.NewVerifyReader(bytes.NewReader(data), int64(len(data)), sum)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkS3Put compares Put (verified: sha256 on the client, a
// x-amz-checksum-sha256 header on single PUTs, CRC32C per part) with a plain
// minio-go PutObject of the same bytes (CRC32C only), for an object that fits
// one PUT and one that takes the multipart path.
func BenchmarkS3Put(b *testing.B) {
	cfg := s3TestConfig(b)
	bucket, client := testBucket(b, cfg)
	cfg.Bucket = bucket
	s, err := storage.NewS3(context.Background(), cfg, false)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{8 << 20, 128 << 20} {
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		sum := storage.SHA256Hex(data)
		b.Run(fmt.Sprintf("verified/%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := s.Put(context.Background(), "bench", storage.BytesSource(data), int64(size), sum); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("plain/%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				opts := minio.PutObjectOptions{DisableContentSha256: true, PartSize: storage.DefaultPartSize, NumThreads: storage.DefaultThreads, ConcurrentStreamParts: true}
				if _, err := client.PutObject(context.Background(), bucket, "bench-plain", io.MultiReader(bytes.NewReader(data)), int64(size), opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
