package hubtest

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, c *http.Client, method, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// The Xet answers: an LFS file redirects to a signed, expiring CDN URL with
// X-Xet-Hash and Link rel="xet-auth" beside X-Linked-Etag/Size; a small
// file redirects (relative) to the resolve cache, which serves it.
func TestXetAnswers(t *testing.T) {
	h := New(t)
	h.Xet = true
	big := make([]byte, 5000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	r := h.AddRepo("org/x").AddFile("model.bin", big).AddFile("dir/config.json", []byte(`{"a":1}`))
	f := r.File("model.bin")

	resp, _ := do(t, noRedirect, "HEAD", h.URL()+"/org/x/resolve/main/model.bin", nil)
	hdr := resp.Header
	if resp.StatusCode != 302 || hdr.Get("X-Linked-Etag") != `"`+f.SHA256+`"` || hdr.Get("X-Linked-Size") != "5000" || hdr.Get("X-Repo-Commit") != r.Commit() {
		t.Fatalf("HEAD of an LFS file: %d %v", resp.StatusCode, hdr)
	}
	if xh := hdr.Get("X-Xet-Hash"); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(xh) || xh == f.SHA256 {
		t.Errorf("X-Xet-Hash %q", xh)
	}
	if link := hdr.Get("Link"); link != "<"+h.URL()+"/api/models/org/x/xet-read-token/"+r.Commit()+`>; rel="xet-auth"` {
		t.Errorf("Link %q", link)
	}
	loc := hdr.Get("Location")
	if !strings.HasPrefix(loc, h.CDNURL()+"/xet-bridge-us/"+f.SHA256+"?") || !strings.Contains(loc, "Expires=") || !strings.Contains(loc, "Signature=") {
		t.Fatalf("Location %q", loc)
	}
	// The signed URL serves the bytes, ranges too.
	if resp, body := do(t, http.DefaultClient, "GET", loc, nil); resp.StatusCode != 200 || string(body) != string(big) {
		t.Errorf("GET signed URL: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, body := do(t, http.DefaultClient, "GET", loc, map[string]string{"Range": "bytes=10-19"}); resp.StatusCode != 206 || string(body) != string(big[10:20]) {
		t.Errorf("range on the signed URL: %d %q", resp.StatusCode, body)
	}
	// A GET of /resolve follows to the same bytes.
	if resp, body := do(t, http.DefaultClient, "GET", h.URL()+"/org/x/resolve/main/model.bin", nil); resp.StatusCode != 200 || string(body) != string(big) {
		t.Errorf("GET /resolve: %d", resp.StatusCode)
	}
	// A tampered signature, then an expired one, are refused.
	u, _ := url.Parse(loc)
	q := u.Query()
	q.Set("Signature", strings.Repeat("0", 64))
	u.RawQuery = q.Encode()
	if resp, _ := do(t, http.DefaultClient, "GET", u.String(), nil); resp.StatusCode != 403 {
		t.Errorf("bad signature: %d", resp.StatusCode)
	}
	h.AdvanceClock(2 * time.Hour)
	if resp, _ := do(t, http.DefaultClient, "GET", loc, nil); resp.StatusCode != 403 {
		t.Errorf("expired URL: %d", resp.StatusCode)
	}
	if resp, _ := do(t, noRedirect, "HEAD", h.URL()+"/org/x/resolve/main/model.bin", nil); resp.StatusCode != 302 {
		t.Fatal(resp.Status)
	} else if resp, _ := do(t, http.DefaultClient, "GET", resp.Header.Get("Location"), nil); resp.StatusCode != 200 {
		t.Errorf("a URL signed after the clock moved: %d", resp.StatusCode)
	}

	// A small file: 307 to the resolve cache, relative, with the commit.
	resp, _ = do(t, noRedirect, "HEAD", h.URL()+"/org/x/resolve/main/dir/config.json", nil)
	loc = resp.Header.Get("Location")
	if resp.StatusCode != 307 || !strings.HasPrefix(loc, "/api/resolve-cache/models/org/x/"+r.Commit()+"/dir/config.json?") || resp.Header.Get("X-Repo-Commit") != r.Commit() {
		t.Fatalf("HEAD of a small file: %d %v", resp.StatusCode, resp.Header)
	}
	// huggingface_hub follows it without the query.
	resp, _ = do(t, noRedirect, "HEAD", h.URL()+strings.Split(loc, "?")[0], nil)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"`+r.File("dir/config.json").GitSHA1+`"` || resp.ContentLength != 7 || resp.Header.Get("X-Repo-Commit") != r.Commit() {
		t.Errorf("HEAD resolve-cache: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := do(t, http.DefaultClient, "GET", h.URL()+"/org/x/resolve/main/dir/config.json", nil); resp.StatusCode != 200 || string(body) != `{"a":1}` {
		t.Errorf("GET small file: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.DefaultClient, "GET", h.URL()+"/api/resolve-cache/models/org/x/"+r.Commit()+"/nope.txt", nil); resp.StatusCode != 404 {
		t.Errorf("resolve-cache of a missing file: %d", resp.StatusCode)
	}
	if n := len(h.Downloads("dir/config.json")); n < 1 {
		t.Errorf("resolve-cache GETs are not counted as downloads")
	}
}
