package mirror

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

// hfDownloadScript runs hf_hub_download for each [repo, repo_type, file]
// of its stdin and prints the sha256 of each file it got.
const hfDownloadScript = `
import hashlib, json, sys
try:  # Debian's filelock predates the mode= argument newer huggingface_hub passes.
    import filelock
    class _FileLock(filelock.FileLock):
        def __init__(self, *a, mode=None, **k):
            super().__init__(*a, **k)
    filelock.FileLock = _FileLock
except ImportError:
    pass
import huggingface_hub as hf
out = []
for repo, repo_type, name in json.load(sys.stdin):
    p = hf.hf_hub_download(repo, name, repo_type=repo_type, cache_dir=sys.argv[1])
    with open(p, "rb") as f:
        out.append(hashlib.sha256(f.read()).hexdigest())
print(json.dumps(out))
`

// TestHuggingfaceHubThroughUpstream runs the real huggingface_hub against
// serve with an upstream (skipped when python3 cannot import it; run with
// PYTHONPATH=/path/to/huggingface_hub/src): hf_hub_download of a model's
// file and of a dataset's, neither held by the mirror, then, with the test
// hub stopped, the whole check of TestHuggingfaceHubAgainstServer
// (snapshot_download, list_repo_tree, HfFileSystem on the dataset, ...)
// served from the mirror the first downloads filled.
func TestHuggingfaceHubThroughUpstream(t *testing.T) {
	python := hfPython()
	if python == "" {
		t.Skip("huggingface_hub is not importable by python3 (set PYTHONPATH to its src/ to run this check)")
	}
	hub := hubtest.New(t)
	model := hubRepo(hub, "org/model", 7)
	files := map[string][]byte{"README.md": []byte("# data\n")}
	for i := range 1000 {
		files[fmt.Sprintf("data/%s/%04d.jsonl", []string{"train", "test"}[i%2], i)] = []byte(fmt.Sprintf("{\"id\": %d}\n", i))
	}
	data := hub.AddRepo("datasets/org/data").AddFiles(files)
	s := newStore(t)
	u := newUpstreamServer(t, s, hub, "", UpstreamOptions{TTL: time.Minute})

	in, _ := json.Marshal([][3]string{{"org/model", "model", "model.safetensors"}, {"org/data", "dataset", "data/test/0001.jsonl"}})
	work := t.TempDir()
	cmd := exec.Command(python, "-c", hfDownloadScript, filepath.Join(work, "cache"))
	cmd.Dir = work
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "HF_ENDPOINT="+u.srv.URL, "HF_HOME="+filepath.Join(work, "home"),
		"HF_HUB_DISABLE_PROGRESS_BARS=1", "HF_HUB_DISABLE_TELEMETRY=1", "HF_TOKEN=", "HF_HUB_OFFLINE=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hf_hub_download through the upstream: %v\n%s", err, stderr.String())
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil || len(got) != 2 {
		t.Fatalf("hf_hub_download output %q: %v", out, err)
	}
	if want := model.File("model.safetensors").SHA256; got[0] != want {
		t.Errorf("model.safetensors through the upstream: sha256 %s, want %s", got[0], want)
	}
	if want := data.File("data/test/0001.jsonl").SHA256; got[1] != want {
		t.Errorf("data/test/0001.jsonl through the upstream: sha256 %s, want %s", got[1], want)
	}

	u.settle(t)
	hub.Close()
	u.clock.Advance(2 * time.Minute)
	script, _ := filepath.Abs("testdata/hf_serve_check.py")
	runHFServeCheck(t, python, script, u.srv.URL, s, [][2]string{{"org/model", ""}, {"datasets/org/data", ""}})
}
