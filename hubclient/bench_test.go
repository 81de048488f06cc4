package hubclient_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

// BenchmarkDownload pulls one 256 MiB LFS file from the test hub into an
// empty cache, over 1 and 8 connections, with and without a 50 MB/s cap per
// connection. bench/pull.sh runs the same comparison on the command line
// with a 1 GiB file and curl.
//
//	go test -run '^$' -bench Download -benchtime 2x ./hubclient/
func BenchmarkDownload(b *testing.B) {
	const size = 256 << 20
	hub := hubtest.NewServer()
	defer hub.Close()
	hub.AddRepo("bench/model").AddContent("model.safetensors", hubtest.PseudoRandom(42, size), true)
	c, err := hubclient.New(hubclient.Options{Endpoint: hub.URL()})
	if err != nil {
		b.Fatal(err)
	}
	for _, capBps := range []int64{50e6, 0} {
		for _, conns := range []int{1, 8} {
			b.Run(fmt.Sprintf("cap=%dMB/conns=%d", capBps/1e6, conns), func(b *testing.B) {
				hub.SetBandwidth(capBps)
				b.SetBytes(size)
				for i := 0; i < b.N; i++ {
					dir, err := os.MkdirTemp("", "hubclient-bench-")
					if err != nil {
						b.Fatal(err)
					}
					_, err = c.Download(context.Background(), "bench/model", "main",
						hubclient.DownloadOptions{CacheDir: dir, Connections: conns})
					os.RemoveAll(dir)
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSHA256 is the ceiling of any verified download of one LFS file:
// its sha256 is one sequential stream, hashed on one core, so no number of
// connections lets a pull outrun it. bench/pull_RESULTS.md compares it with
// the loopback limit.
//
//	go test -run '^$' -bench SHA256 -count 3 ./hubclient/
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20) // the download's piece size
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	h := sha256.New()
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		h.Write(buf)
	}
}
