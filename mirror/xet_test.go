package mirror

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/hubproto"
)

// pull --to from a hub on Xet storage mirrors every file (verified), and
// serve answers the mirror with plain HTTP: no redirect, no X-Xet-Hash, no
// Link rel="xet-auth", so every client downloads the bytes from it.
func TestPullFromXetHubServesWithoutXet(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.New(t)
	hub.Xet = true
	repo := hubRepo(hub, "org/model", 5)
	c := hubClient(t, hub)
	s := newStore(t)
	res, err := Pull(ctx, c, s, "org/model", "main", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != repo.Commit() {
		t.Fatalf("commit %s, want %s", res.Commit, repo.Commit())
	}
	m, err := Resolve(ctx, s, "org/model", "main")
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstHub(t, s, m, c, "org/model")
	kinds := map[string]int{}
	for _, r := range hub.Requests() {
		if r.Method == "GET" {
			kinds[r.Kind]++
		}
	}
	if kinds["blob"] == 0 || kinds["cache"] == 0 {
		t.Errorf("GETs by kind %v: the Xet redirects were not taken", kinds)
	}

	srv := httptest.NewServer(NewServer(s, ServerOptions{}))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	check := func(method, path string, hdr map[string]string) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			t.Errorf("%s %s: redirect %d to %q", method, path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if v := resp.Header.Get(hubproto.HeaderXetHash); v != "" {
			t.Errorf("%s %s: %s: %s", method, path, hubproto.HeaderXetHash, v)
		}
		for _, l := range resp.Header.Values("Link") {
			if strings.Contains(l, hubproto.LinkRelXetAuth) {
				t.Errorf("%s %s: Link %s", method, path, l)
			}
		}
		return body
	}
	for _, e := range m.Files {
		p := "/org/model/resolve/main/" + e.Path
		check("HEAD", p, nil)
		body := check("GET", p, nil)
		if int64(len(body)) != e.Size {
			t.Errorf("GET %s: %d bytes, want %d", p, len(body), e.Size)
		}
		if e.Size > 10 {
			if got := check("GET", p, map[string]string{"Range": "bytes=3-9"}); len(got) != 7 {
				t.Errorf("range of %s: %d bytes", p, len(got))
			}
		}
		if e.Path == "config.json" && !bytes.Contains(body, []byte(`"n_embd": 16`)) {
			t.Errorf("config.json: %q", body)
		}
	}
	check("GET", "/api/models/org/model", nil)
	check("GET", "/api/models/org/model/tree/main?recursive=true", nil)
}
