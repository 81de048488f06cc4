package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/formats/safetensors"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/weights"
)

var (
	binOnce sync.Once
	binDir  string // removed by TestMain when the tests end
	binPath string
	binErr  error
)

// TestMain removes the binary hubmirrorBinary built, if any, once every test
// has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		if err := os.RemoveAll(binDir); err != nil {
			fmt.Fprintln(os.Stderr, "removing the test binary:", err)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// hubmirrorBinary builds the command once per test run, as a user would
// install it.
func hubmirrorBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "hubmirror-e2e-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "hubmirror")
		// go test puts its own go first on PATH.
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// user runs the binary with an environment of its own.
type user struct {
	t   *testing.T
	bin string
	env []string
}

func (u *user) run(args ...string) (stdout string, code int) {
	u.t.Helper()
	cmd := exec.Command(u.bin, args...)
	cmd.Env = u.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		u.t.Fatalf("%v: %v", args, err)
	}
	if code != 0 {
		u.t.Logf("hubmirror %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String(), code
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// s3Mirror returns the mirror URL and environment for the end-to-end test:
// a bucket on the S3 server .ci/run starts when HUBMIRROR_TEST_S3_* are set,
// else a local directory.
func s3Mirror(t *testing.T) (string, []string) {
	ep := os.Getenv("HUBMIRROR_TEST_S3_ENDPOINT")
	if ep == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but HUBMIRROR_TEST_S3_ENDPOINT is not: .ci/run must start versitygw")
		}
		t.Log("HUBMIRROR_TEST_S3_ENDPOINT not set: mirroring into a local directory instead of S3")
		return "file://" + filepath.Join(t.TempDir(), "mirror"), nil
	}
	bucket := fmt.Sprintf("hubmirror-e2e-%d", time.Now().UnixNano())
	return "s3://" + bucket + "/mirror", []string{
		"AWS_ENDPOINT_URL=" + ep,
		"AWS_ACCESS_KEY_ID=" + os.Getenv("HUBMIRROR_TEST_S3_ACCESS_KEY"),
		"AWS_SECRET_ACCESS_KEY=" + os.Getenv("HUBMIRROR_TEST_S3_SECRET_KEY"),
		"AWS_REGION=us-east-1",
	}
}

// TestEndToEnd runs the whole job through the CLI binary: a Hub (the test
// hub) -> `mirror` with int8 into S3 -> `serve` from that bucket -> `pull`
// through serve -> `validate` and `forward` of the pulled int8 model against
// the original.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := hubmirrorBinary(t)
	model := filepath.Join(fixtureModels, "llama-tiny-st")
	hub := hubtest.New(t)
	repo := hub.AddRepo("acme/tiny-llama")
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(model, f))
		if err != nil {
			t.Fatal(err)
		}
		repo.AddFile(f, b)
	}
	mirrorURL, s3env := s3Mirror(t)
	base := append([]string{"PATH=" + os.Getenv("PATH"), "HF_HUB_DISABLE_PROGRESS_BARS=1"}, s3env...)
	site := &user{t: t, bin: bin, env: append(cloneEnv(base), "HF_ENDPOINT="+hub.URL(), "HF_HOME="+t.TempDir())}

	// 1. The mirroring job.
	out, code := site.run("mirror", "acme/tiny-llama", "--to", mirrorURL, "--quantize", "int8", "--json")
	if code != 0 {
		t.Fatalf("mirror: exit %d", code)
	}
	var rep struct {
		Passed bool
		Source struct {
			Commit     string
			Downloaded int64 `json:"downloaded_bytes"`
		}
		Variants []struct {
			Name, Status string
			Passed       bool
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !rep.Passed || rep.Source.Commit != repo.Commit() || len(rep.Variants) != 1 || rep.Variants[0].Status != "pushed" || !rep.Variants[0].Passed {
		t.Fatalf("mirror report: %s", out)
	}
	// A rerun downloads nothing and uploads nothing.
	hub.ResetRequests()
	out, code = site.run("mirror", "acme/tiny-llama", "--to", mirrorURL, "--quantize", "int8", "--json")
	if code != 0 || !strings.Contains(out, `"status": "present"`) || !strings.Contains(out, `"uploaded_bytes": 0`) {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
	for _, r := range hub.Requests() {
		if r.Kind == "blob" || (r.Kind == "resolve" && r.Method == "GET") {
			t.Errorf("rerun downloaded %s", r.Path)
		}
	}

	// 2. Serve the bucket.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve", "--from", mirrorURL, "--addr", "127.0.0.1:0", "--quiet")
	serve.Env = base
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var serveErr bytes.Buffer
	serve.Stderr = &serveErr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		serve.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no address: %v\n%s", err, serveErr.String())
	}
	endpoint := strings.TrimSpace(line)
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Fatalf("serve printed %q", endpoint)
	}

	// 3. An air-gapped client pulls through serve.
	client := &user{t: t, bin: bin, env: append(cloneEnv(base), "HF_ENDPOINT="+endpoint, "HF_HOME="+t.TempDir())}
	out, code = client.run("pull", "acme/tiny-llama", "--revision", "int8")
	if code != 0 {
		t.Fatalf("pull int8 through serve: exit %d", code)
	}
	int8Dir := lastLine(out)
	out, code = client.run("pull", "acme/tiny-llama")
	if code != 0 {
		t.Fatalf("pull main through serve: exit %d", code)
	}
	mainDir := lastLine(out)
	for _, f := range []string{"config.json", "model.safetensors"} {
		want, _ := os.ReadFile(filepath.Join(model, f))
		got, err := os.ReadFile(filepath.Join(mainDir, f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s pulled through serve differs from the original (%v)", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(int8Dir, "validation.json")); err != nil {
		t.Errorf("the int8 variant carries no validation.json: %v", err)
	}

	// 4. The pulled int8 model computes what the original did.
	out, code = client.run("validate", model, int8Dir, "--json")
	if code != 0 || !strings.Contains(out, `"kind": "int8"`) || !strings.Contains(out, `"passed": true`) {
		t.Fatalf("validate original vs pulled int8: exit %d\n%s", code, out)
	}
	ids := "1,5,9,42,7,3,11"
	refOut := filepath.Join(t.TempDir(), "ref.safetensors")
	candOut := filepath.Join(t.TempDir(), "int8.safetensors")
	if _, code := client.run("forward", model, "--ids", ids, "--out", refOut); code != 0 {
		t.Fatal("forward on the original")
	}
	if _, code := client.run("forward", int8Dir, "--ids", ids, "--out", candOut); code != 0 {
		t.Fatal("forward on the pulled int8 model")
	}
	ref, cand := readOutputs(t, refOut), readOutputs(t, candOut)
	if len(ref["logits"]) == 0 || len(ref["logits"]) != len(cand["logits"]) {
		t.Fatalf("logits: %d and %d values", len(ref["logits"]), len(cand["logits"]))
	}
	if c := cosine(ref["logits"], cand["logits"]); c < 0.99 {
		t.Errorf("int8 logits cosine %.5f against the original's", c)
	}
	var fj struct {
		Outputs []struct {
			Name  string
			Shape []int
		}
	}
	out, code = client.run("forward", int8Dir, "--ids", ids, "--json")
	if code != 0 {
		t.Fatal("forward --json on the pulled int8 model")
	}
	if err := json.Unmarshal([]byte(out), &fj); err != nil || len(fj.Outputs) == 0 {
		t.Fatalf("forward --json: %v\n%s", err, out)
	}
}

// readOutputs reads the float32 tensors of a `forward --out` file.
func readOutputs(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	g, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	out := map[string][]float32{}
	for _, x := range g.Tensors() {
		if x.DType == weights.F32 {
			v, err := x.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			out[x.Name] = v
		}
	}
	return out
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func cloneEnv(s []string) []string { return append([]string(nil), s...) }
