package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

// downStore is a store that is down: its calls hang until their context
// ends (hang), or fail at once with a transient error (connection refused).
type downStore struct {
	storage.Store
	hang bool
}

var errRefused = storage.MarkTransient(errors.New("dial tcp 127.0.0.1:9: connect: connection refused"))

func (d downStore) wait(ctx context.Context) error {
	if !d.hang {
		return errRefused
	}
	<-ctx.Done()
	return ctx.Err()
}

func (d downStore) Stat(ctx context.Context, key string) (storage.Info, error) {
	return storage.Info{}, d.wait(ctx)
}

func (d downStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	return nil, d.wait(ctx)
}

func (d downStore) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return d.wait(ctx)
}

func (d downStore) Location() string { return "s3://down-bucket/mirror" }

// syncBuffer is a bytes.Buffer for a logger used from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestServerStorageDown: with its store down, the server answers every
// request with 503 naming the store, within its storage timeout (not after
// the store's retries, and not hanging with a store that does not answer),
// and logs each failure once.
func TestServerStorageDown(t *testing.T) {
	for _, hang := range []bool{false, true} {
		name := "refused"
		if hang {
			name = "hanging"
		}
		t.Run(name, func(t *testing.T) {
			var logs syncBuffer
			store := downStore{Store: newStore(t), hang: hang}
			srv := httptest.NewServer(NewServer(store, ServerOptions{
				StorageTimeout: 100 * time.Millisecond,
				Log:            slog.New(slog.NewJSONHandler(&logs, nil)),
			}))
			client := &http.Client{Timeout: 30 * time.Second} // a hang fails the test instead of blocking it
			paths := []string{"/api/models/org/model", "/api/models/org/model/revision/main",
				"/api/models/org/model/tree/main", "/org/model/resolve/main/config.json", "/api/models"}
			for _, p := range paths {
				resp, err := client.Get(srv.URL + p)
				if err != nil {
					t.Fatalf("GET %s: %v", p, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "s3://down-bucket/mirror") || resp.Header.Get("Retry-After") == "" {
					t.Errorf("GET %s: %d %s (Retry-After %q), want 503 naming the storage", p, resp.StatusCode, body, resp.Header.Get("Retry-After"))
				}
			}
			srv.Close() // waits for the handlers, and their log records
			lines := strings.Split(strings.TrimSpace(logs.b.String()), "\n")
			if len(lines) != len(paths) {
				t.Fatalf("%d log records for %d failed requests, want one each:\n%s", len(lines), len(paths), logs.b.String())
			}
			for _, l := range lines {
				var rec struct {
					Level, Msg, Error string
					Status            int
				}
				if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Status != 503 || rec.Level != "ERROR" || !strings.Contains(rec.Error, "down-bucket") {
					t.Errorf("log record %s: want one ERROR record with the status and the storage error", l)
				}
			}
		})
	}
}
