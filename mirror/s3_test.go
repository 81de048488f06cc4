package mirror

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

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
