package hubtest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestProtocolBasics(t *testing.T) {
	h := New(t)
	r := h.AddRepo("solo").AddFile("a.txt", []byte("hello"))
	resp, err := http.Head(h.URL() + "/solo/resolve/main/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Repo-Commit") != r.Commit() || resp.Header.Get("ETag") != `"`+r.File("a.txt").GitSHA1+`"` || resp.ContentLength != 5 {
		t.Errorf("HEAD headers %v", resp.Header)
	}
	req, _ := http.NewRequest("GET", h.URL()+"/solo/resolve/main/a.txt", nil)
	req.Header.Set("Range", "bytes=1-3")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || string(body) != "ell" || resp.Header.Get("Content-Range") != "bytes 1-3/5" {
		t.Errorf("range answer %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Range"))
	}
	resp, err = http.Get(h.URL() + "/api/models/solo/revision/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("X-Error-Code") != "RevisionNotFound" {
		t.Errorf("missing revision: %d %q", resp.StatusCode, resp.Header.Get("X-Error-Code"))
	}
	if reqs := h.Requests(); len(reqs) != 3 || reqs[1].Sent != 3 || !strings.Contains(reqs[1].Range, "1-3") {
		t.Errorf("requests %+v", reqs)
	}
}
