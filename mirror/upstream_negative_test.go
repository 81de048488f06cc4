package mirror

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/hubproto"
)

// TestUpstreamNegativeCache: what the upstream does not know (a repo, a
// branch of a known repo, a commit id) is a 404 that, asked again within
// NegativeTTL, by any route and for any revision of an unknown repo, does
// not reach the upstream; after it, the upstream is asked again, and finds
// what was added meanwhile.
func TestUpstreamNegativeCache(t *testing.T) {
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/model").AddFile("a.txt", []byte("one\n"))
	u := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{TTL: 10 * time.Minute, NegativeTTL: 30 * time.Second})
	missingCommit := strings.Repeat("ab", 20)
	want404 := func(path, code string) {
		t.Helper()
		resp, body := u.get(t, path)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get(hubproto.HeaderErrorCode) != code {
			t.Errorf("%s: %s %s %s, want 404 %s", path, resp.Status, resp.Header.Get(hubproto.HeaderErrorCode), body, code)
		}
	}
	unknownRepo := []string{
		"/api/models/org/nope", "/org/nope/resolve/main/a.txt", "/api/models/org/nope/tree/main",
		"/org/nope/resolve/v2/a.txt", "/api/models/org/nope/revision/" + missingCommit, "/org/nope/resolve/" + missingCommit + "/a.txt",
	}
	for range 2 {
		for _, p := range unknownRepo {
			want404(p, hubproto.ErrorRepoNotFound)
		}
		want404("/api/models/org/model/revision/nobranch", hubproto.ErrorRevisionNotFound)
		want404("/org/model/resolve/nobranch/a.txt", hubproto.ErrorRevisionNotFound)
		want404("/api/models/org/model/revision/"+missingCommit, hubproto.ErrorRevisionNotFound)
		want404("/org/model/resolve/"+missingCommit+"/a.txt", hubproto.ErrorRevisionNotFound)
	}
	if n := hubRequests(hub, "org/nope", ""); n != 1 {
		t.Errorf("an unknown repo asked %d times within the negative TTL made %d hub requests, want 1", 2*len(unknownRepo), n)
	}
	// The branch and the commit id of org/model: one request each.
	if n := hubRequests(hub, "org/model", ""); n != 2 {
		t.Errorf("an unknown branch and commit of org/model, asked 4 times each: %d hub requests, want 2", n)
	}

	// After the negative TTL the upstream is asked again.
	hub.AddRepo("org/nope").AddFile("a.txt", []byte("now\n"))
	repo.Tag("nobranch")
	u.clock.Advance(29 * time.Second)
	want404("/org/nope/resolve/main/a.txt", hubproto.ErrorRepoNotFound)
	want404("/org/model/resolve/nobranch/a.txt", hubproto.ErrorRevisionNotFound)
	u.clock.Advance(2 * time.Second)
	for _, p := range []string{"/org/nope/resolve/main/a.txt", "/org/model/resolve/nobranch/a.txt"} {
		if resp, body := u.get(t, p); resp.StatusCode != http.StatusOK {
			t.Errorf("%s after the negative TTL: %s %s", p, resp.Status, body)
		}
	}
}

// TestUpstreamRefsFromMirror: the refs listing shows what the mirror holds
// and never asks the upstream (see Upstream): a repo the mirror lacks is
// 404 there; once a request fetched its main, main is listed.
func TestUpstreamRefsFromMirror(t *testing.T) {
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/model").AddFile("a.txt", []byte("one\n")).Tag("v1")
	u := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{})
	resp, _ := u.get(t, "/api/models/org/model/refs")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("refs of a repo the mirror lacks: %s", resp.Status)
	}
	if n := len(hub.Requests()); n != 0 {
		t.Errorf("the refs listing made %d hub requests", n)
	}
	if sha, _ := u.info(t, "/api/models/org/model"); sha != repo.Commit() {
		t.Fatalf("info names %s", sha)
	}
	u.settle(t)
	resp, body := u.get(t, "/api/models/org/model/refs")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"refs/heads/main"`) || strings.Contains(string(body), "v1") {
		t.Errorf("refs after main was fetched: %s %s", resp.Status, body)
	}
}
