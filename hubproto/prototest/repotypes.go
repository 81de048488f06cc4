package prototest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubproto"
)

// post sends a form to rawPath with the fixture's token, as
// huggingface_hub's get_paths_info does, and reads the whole answer.
func (f *fixture) post(t *testing.T, rawPath string, form url.Values) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+rawPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", rawPath, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the body: %v", rawPath, err)
	}
	return response{resp, body}
}

// checkLastCommit checks the lastCommit of every entry: present, naming a
// commit with a date, when expanded; absent otherwise.
func checkLastCommit(t *testing.T, what string, got []hubproto.TreeEntry, expand bool) {
	t.Helper()
	for _, e := range got {
		switch {
		case !expand && e.LastCommit != nil:
			t.Errorf("%s: %s has lastCommit %+v without expand", what, e.Path, e.LastCommit)
		case expand && e.LastCommit == nil:
			t.Errorf("%s: %s has no lastCommit with expand", what, e.Path)
		case expand:
			if _, err := time.Parse(time.RFC3339, e.LastCommit.Date); err != nil || !sha1Re.MatchString(e.LastCommit.ID) {
				t.Errorf("%s: %s: lastCommit %+v, want a 40-hex id and an RFC 3339 date", what, e.Path, e.LastCommit)
			}
		}
	}
}

// testTreeExpand: ?expand=true adds each entry's lastCommit, on every page
// of a listing; without it there is none.
func testTreeExpand(t *testing.T, f *fixture) {
	for _, r := range f.repos {
		c := r.Commits[len(r.Commits)-1]
		for _, expand := range []bool{false, true} {
			p := hubproto.APIPath(r.ID) + "/tree/main?recursive=true"
			if expand {
				p += "&expand=true"
			}
			got, _ := f.listTree(t, p)
			checkTree(t, "GET "+p, got, wantTree(c, "", true))
			checkLastCommit(t, "GET "+p, got, expand)
		}
	}
}

// testPathsInfo: POST paths-info answers the files and directories asked
// for, as the tree does, and leaves out paths the commit does not hold.
func testPathsInfo(t *testing.T, f *fixture) {
	for _, r := range f.repos {
		for _, rc := range f.revisions(r) {
			c := r.Commits[rc.commit]
			all := wantTree(c, "", true)
			for _, expand := range []string{"False", "True"} {
				form := url.Values{"expand": {expand}}
				for p := range all {
					form.Add("paths", p)
				}
				form.Add("paths", "nope.txt")
				form.Add("paths", "sub/nope")
				p := hubproto.APIPath(r.ID) + "/paths-info/" + rc.rev
				resp := f.post(t, p, form)
				var got []hubproto.TreeEntry
				if resp.StatusCode != 200 || json.Unmarshal(resp.body, &got) != nil {
					t.Errorf("POST %s: %d %s", p, resp.StatusCode, resp.body)
					continue
				}
				checkTree(t, "POST "+p, got, all)
				checkLastCommit(t, "POST "+p, got, expand == "True")
			}
		}
	}
	// A repo that does not exist, a revision that does not.
	form := url.Values{"paths": {"config.json"}}
	if resp := f.post(t, "/api/datasets/org/nope/paths-info/main", form); resp.Header.Get(hubproto.HeaderErrorCode) != hubproto.ErrorRepoNotFound {
		t.Errorf("paths-info of a missing dataset: %d %q", resp.StatusCode, resp.Header.Get(hubproto.HeaderErrorCode))
	}
	if resp := f.post(t, "/api/models/org/model/paths-info/nope", form); resp.StatusCode != 404 || resp.Header.Get(hubproto.HeaderErrorCode) != hubproto.ErrorRevisionNotFound {
		t.Errorf("paths-info of a missing revision: %d %q", resp.StatusCode, resp.Header.Get(hubproto.HeaderErrorCode))
	}
}

// testRepoTypes: a model and a dataset of the same name are two repos,
// each answered under its own routes; a dataset's listing pages like a
// model's.
func testRepoTypes(t *testing.T, f *fixture) {
	var model, dataset Repo
	for _, r := range f.repos {
		switch r.ID {
		case "org/model":
			model = r
		case "datasets/org/model":
			dataset = r
		}
	}
	if model.ID == "" || dataset.ID == "" {
		t.Fatal("the fixture lacks org/model or datasets/org/model")
	}
	for _, tc := range []struct {
		r    Repo
		path string
	}{
		{model, "/org/model/resolve/main/config.json"},
		{dataset, "/datasets/org/model/resolve/main/config.json"},
	} {
		want := tc.r.Commits[len(tc.r.Commits)-1].Files[0]
		if want.Path != "config.json" {
			want = tc.r.Commits[len(tc.r.Commits)-1].Files[1]
		}
		resp := f.get(t, tc.path, nil)
		if resp.StatusCode != 200 || !bytes.Equal(resp.body, want.Data) {
			t.Errorf("GET %s: %d %q, want %q", tc.path, resp.StatusCode, resp.body, want.Data)
		}
	}
	c := dataset.Commits[len(dataset.Commits)-1]
	got, pages := f.listTree(t, "/api/datasets/org/model/tree/main/data?recursive=true")
	checkTree(t, "recursive listing of the dataset's data", got, wantTree(c, "data", true))
	if want := wantTree(c, "data", true); pages < (len(want)+2)/3 {
		t.Errorf("the dataset's data: %d entries in %d pages, want pages of at most 3", len(want), pages)
	}
	for _, p := range []string{"/api/datasets/org/model/tree/main/model.safetensors", "/api/datasets/org/model/tree/main/docs"} {
		if resp := f.do(t, f.client, "GET", p, nil); resp.StatusCode != 404 {
			t.Errorf("GET %s (a path of the model, not of the dataset): %d, want 404", p, resp.StatusCode)
		}
	}
}
