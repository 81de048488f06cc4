package mirror

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/hubmirror/hubmirror/hubproto/prototest"
	"github.com/hubmirror/hubmirror/storage"
)

// conformanceServer returns a factory of servers of mirrors in the stores
// newStore makes, for the protocol suite. Small files and chunks make the
// server take its chunked and verifying paths.
func conformanceServer(newStore func(t *testing.T) storage.Store) func(t *testing.T, setup prototest.Setup) prototest.Server {
	return func(t *testing.T, setup prototest.Setup) prototest.Server {
		setChunkSize(t, 16<<10)
		s := newStore(t)
		commits := map[string][]string{}
		for _, r := range setup.Repos {
			for _, c := range r.Commits {
				var files []PushFile
				for _, f := range c.Files {
					data := f.Data
					files = append(files, PushFile{Path: f.Path, Size: int64(len(data)), LFS: f.LFS,
						Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
				}
				commit := ""
				for _, ref := range c.Refs {
					res, err := Push(context.Background(), s, r.ID, files, PushOptions{Revision: ref})
					if err != nil {
						t.Fatalf("pushing %s@%s: %v", r.ID, ref, err)
					}
					commit = res.Commit
				}
				commits[r.ID] = append(commits[r.ID], commit)
			}
		}
		srv := httptest.NewServer(NewServer(s, ServerOptions{Token: setup.Token, TreePageSize: setup.TreePageSize, SmallFile: 4 << 10}))
		t.Cleanup(srv.Close)
		return prototest.Server{URL: srv.URL, Commits: commits}
	}
}

// TestConformance runs the protocol suite against the mirror's server, as
// hubtest's TestConformance runs it against the test hub.
func TestConformance(t *testing.T) {
	prototest.Run(t, prototest.Config{New: conformanceServer(newStore)})
}

func TestConformanceS3(t *testing.T) {
	prototest.Run(t, prototest.Config{New: conformanceServer(s3Store)})
}
