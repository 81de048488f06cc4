package hubclient_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

// A hub on Xet storage: LFS files redirect to signed CDN URLs with Xet
// headers, small files to the resolve cache. A pull follows the plain
// redirects (the client has no Xet support), verifies every file against
// the first answer's X-Linked-Etag and size, resumes a dropped connection
// with a range on the CDN URL and resolves an expired one again; the token
// never reaches the CDN.
func TestDownloadFromXetHub(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault *hubtest.Fault
	}{
		{"clean", nil},
		{"drop mid-body", &hubtest.Fault{Kind: hubtest.DropConnection, Path: "model.safetensors", After: 100000, Times: 2}},
		{"expired URL", &hubtest.Fault{Kind: hubtest.ExpiredURL, Path: "model.safetensors", Times: 2}},
		{"503 on the resolve cache", &hubtest.Fault{Kind: hubtest.ServiceUnavailable, Path: "config.json", Times: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := hubtest.New(t)
			hub.Xet = true
			hub.SetToken("tok")
			repo, files := testRepo(hub, "org/xet")
			repo.SetPrivate(true)
			if tc.fault != nil {
				hub.Inject(*tc.fault)
			}
			c := newClient(t, hub, "tok")
			opts := smallChunks()
			opts.CacheDir = t.TempDir()
			snap, err := c.Download(context.Background(), "org/xet", "", opts)
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, snap, files)
			kinds := map[string]int{}
			heads := 0
			for _, r := range hub.Requests() {
				if r.Host == "cdn" && r.Auth {
					t.Errorf("Authorization sent to the CDN: %+v", r)
				}
				if r.Method == "GET" {
					kinds[r.Kind]++
				}
				if r.Method == "HEAD" && r.Kind == "resolve" && r.Path == "model.safetensors" {
					heads++
				}
				if r.Fault != "" && tc.fault != nil && r.Fault != tc.fault.Kind.String() {
					t.Errorf("unexpected fault %+v", r)
				}
			}
			if kinds["blob"] == 0 || kinds["cache"] == 0 {
				t.Errorf("GETs by kind %v: want LFS files from the CDN and small files from the resolve cache", kinds)
			}
			if tc.fault != nil && tc.fault.Kind == hubtest.ExpiredURL && heads < 2 {
				t.Errorf("%d HEADs of model.safetensors: the expired URL was not resolved again", heads)
			}
			if tc.fault != nil {
				fired := false
				for _, r := range hub.Requests() {
					fired = fired || r.Fault != ""
				}
				if !fired {
					t.Error("the fault never fired")
				}
			}
		})
	}
}

// The streaming path (pull --to) reads Xet-backed files through the same
// redirects, and a URL that really expired (the hub's clock moved past its
// Expires) is resolved again.
func TestOpenFileFromXetHub(t *testing.T) {
	hub := hubtest.New(t)
	hub.Xet = true
	_, files := testRepo(hub, "org/xet")
	c := newClient(t, hub, "")
	ctx := context.Background()
	commit, list, err := c.Files(ctx, "org/xet", "main", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range list {
		rc, meta, err := c.OpenFileParallel(ctx, "org/xet", commit, f.Path, hubclient.ParallelOptions{Connections: 3, ChunkSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, files[f.Path]) || meta.ETag != f.ETag() {
			t.Errorf("%s: %v, %d bytes, etag %s", f.Path, err, len(got), meta.ETag)
		}
	}
	// A signed URL that expires between the HEAD that handed it out and
	// the GET that uses it (the hub's clock moves in between) is refused
	// with 403, and the file is resolved again.
	tr := &expireTransport{next: http.DefaultTransport, hub: hub, cdnHost: strings.TrimPrefix(hub.CDNURL(), "http://")}
	c2, err := hubclient.New(hubclient.Options{Endpoint: hub.URL(), HTTPClient: &http.Client{Transport: tr}, RetryBaseDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hub.ResetRequests()
	rc, _, err := c2.OpenFile(ctx, "org/xet", commit, "model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, files["model.safetensors"]) {
		t.Fatalf("after the URL expired: %v", err)
	}
	refused, heads := 0, 0
	for _, r := range hub.Requests() {
		if r.Host == "cdn" && r.Status == 403 {
			refused++
		}
		if r.Kind == "resolve" && r.Method == "HEAD" {
			heads++
		}
	}
	if refused != 1 || heads != 2 {
		t.Errorf("%d CDN refusals and %d HEADs, want the expired URL refused once and the file resolved again", refused, heads)
	}
}

// expireTransport moves the hub's clock past every signed URL's expiry
// before the first request to the CDN.
type expireTransport struct {
	next    http.RoundTripper
	hub     *hubtest.Hub
	cdnHost string
	once    sync.Once
}

func (e *expireTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == e.cdnHost {
		e.once.Do(func() { e.hub.AdvanceClock(2 * time.Hour) })
	}
	return e.next.RoundTrip(req)
}
