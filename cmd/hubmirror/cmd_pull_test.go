package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

// pullEnv isolates a pull test from the user's Hugging Face settings.
func pullEnv(t *testing.T, hub *hubtest.Hub) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_ENDPOINT", hub.URL())
	return home
}

func runPullCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"hubmirror"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestPullCommand(t *testing.T) {
	hub := hubtest.New(t)
	model := bytes.Repeat([]byte("weights!"), 1000)
	repo := hub.AddRepo("org/model").AddFile("config.json", []byte(`{"a":1}`)).AddFile("model.safetensors", model)
	home := pullEnv(t, hub)

	code, out, errOut := runPullCLI("pull", "org/model", "--chunk-size", "1MiB")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := filepath.Join(home, "hub", "models--org--model", "snapshots", repo.Commit())
	if last := lines[len(lines)-1]; last != want {
		t.Errorf("last line %q, want the snapshot path %q", last, want)
	}
	got, err := os.ReadFile(filepath.Join(want, "model.safetensors"))
	if err != nil || !bytes.Equal(got, model) {
		t.Errorf("model.safetensors: %v", err)
	}

	// --json, second pull: nothing downloaded.
	code, out, errOut = runPullCLI("pull", "--json", "org/model@main")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		Snapshot, Commit string
		Downloaded       int64 `json:"bytes_downloaded"`
		Files            []struct {
			Path       string
			Size       int64
			SHA256     string
			Downloaded int64 `json:"bytes_downloaded"`
			Seconds    *float64
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if doc.Snapshot != want || doc.Commit != repo.Commit() || doc.Downloaded != 0 || len(doc.Files) != 2 {
		t.Errorf("json %+v", doc)
	}
	for _, f := range doc.Files {
		if f.Path == "model.safetensors" && (f.SHA256 != repo.File("model.safetensors").SHA256 || f.Size != int64(len(model)) || f.Seconds == nil) {
			t.Errorf("file entry %+v", f)
		}
	}

	// Offline, from the cache alone.
	hub.ResetRequests()
	t.Setenv("HF_HUB_OFFLINE", "1")
	code, out, errOut = runPullCLI("pull", "org/model")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), want) {
		t.Errorf("offline: exit %d, out %q, err %q", code, out, errOut)
	}
	if n := len(hub.Requests()); n != 0 {
		t.Errorf("offline pull sent %d requests", n)
	}
}

func TestPullLocalDirAndFilters(t *testing.T) {
	hub := hubtest.New(t)
	hub.AddRepo("org/model").AddFile("config.json", []byte(`{}`)).AddFile("a/b.bin", []byte("bin")).AddFile("c.txt", []byte("c"))
	pullEnv(t, hub)
	dir := filepath.Join(t.TempDir(), "out")
	code, out, errOut := runPullCLI("pull", "org/model", "--local-dir", dir, "--include", "*.json", "--include", "a/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if last := strings.TrimSpace(out)[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]; last != dir {
		t.Errorf("last line %q, want %q", last, dir)
	}
	for p, want := range map[string]bool{"config.json": true, "a/b.bin": true, "c.txt": false} {
		_, err := os.Stat(filepath.Join(dir, p))
		if (err == nil) != want {
			t.Errorf("%s present=%v, want %v", p, err == nil, want)
		}
	}
	// Flags before REPO work as well.
	dir2 := filepath.Join(t.TempDir(), "out")
	if code, _, errOut := runPullCLI("pull", "--exclude", "a/*", "--local-dir", dir2, "org/model"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for p, want := range map[string]bool{"config.json": true, "a/b.bin": false, "c.txt": true} {
		_, err := os.Stat(filepath.Join(dir2, p))
		if (err == nil) != want {
			t.Errorf("flags first: %s present=%v, want %v", p, err == nil, want)
		}
	}
}

func TestPullGatedNeedsToken(t *testing.T) {
	hub := hubtest.New(t)
	hub.SetToken("hf_cli_secret")
	hub.AddRepo("org/gated").SetGated(true).AddFile("config.json", []byte(`{}`))
	home := pullEnv(t, hub)
	code, _, errOut := runPullCLI("pull", "org/gated")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut, "HF_TOKEN") || !strings.Contains(errOut, "gated") {
		t.Errorf("message %q should say the repo is gated and name HF_TOKEN", errOut)
	}
	// The token from $HF_HOME/token works, and is never printed.
	if err := os.WriteFile(filepath.Join(home, "token"), []byte("hf_cli_secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPullCLI("pull", "org/gated")
	if code != 0 {
		t.Fatalf("with token file: exit %d: %s", code, errOut)
	}
	if strings.Contains(out+errOut, "hf_cli_secret") {
		t.Errorf("token printed")
	}
	code, _, errOut = runPullCLI("pull", "org/gated", "--token", "hf_bad_value")
	if code != 1 || strings.Contains(errOut, "hf_bad_value") {
		t.Errorf("bad --token: exit %d, stderr %q", code, errOut)
	}
}

func TestPullReportsRetries(t *testing.T) {
	hub := hubtest.New(t)
	hub.AddRepo("org/model").AddFile("model.safetensors", bytes.Repeat([]byte("w"), 5000))
	hub.Inject(hubtest.Fault{Kind: hubtest.ServiceUnavailable, Path: "model.safetensors"})
	pullEnv(t, hub)
	code, _, errOut := runPullCLI("pull", "org/model")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "model.safetensors: attempt 1 failed, retrying in") {
		t.Errorf("stderr %q should report the retry", errOut)
	}
}

// TestPullSpeedLimit: a download slower than --speed-limit for
// --speed-time fails its attempt, which is retried (and reported).
func TestPullSpeedLimit(t *testing.T) {
	hub := hubtest.New(t)
	model := bytes.Repeat([]byte("w"), 5000)
	hub.AddRepo("org/model").AddFile("model.safetensors", model)
	hub.Inject(hubtest.Fault{Kind: hubtest.Trickle, Rate: 100, Path: "model.safetensors"})
	home := pullEnv(t, hub)
	code, out, errOut := runPullCLI("pull", "org/model", "--speed-limit", "1KiB", "--speed-time", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "model.safetensors: attempt 1 failed, retrying in") || !strings.Contains(errOut, "too slow") {
		t.Errorf("stderr %q should report the attempt that was too slow", errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if got, err := os.ReadFile(filepath.Join(lines[len(lines)-1], "model.safetensors")); err != nil || !bytes.Equal(got, model) {
		t.Errorf("model.safetensors in %s: %v", home, err)
	}
}

func TestPullUsageErrors(t *testing.T) {
	hub := hubtest.New(t)
	pullEnv(t, hub)
	for _, args := range [][]string{
		{"pull"},
		{"pull", "a", "b"},
		{"pull", "not/a/repo"},
		{"pull", "org/m@x", "--revision", "y"},
		{"pull", "org/m", "--chunk-size", "lots"},
		{"pull", "org/m", "--workers", "0"},
		{"pull", "org/m", "--no-such-flag"},
		{"pull", "org/m", "--endpoint", "ftp://x"},
		{"pull", "org/m", "--speed-limit", "fast"},
		{"pull", "org/m", "--speed-time", "0s"},
	} {
		if code, _, errOut := runPullCLI(args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errOut)
		}
	}
	if code, _, errOut := runPullCLI("pull", "org/missing"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("missing repo: exit %d, %q", code, errOut)
	}
}

// --chunk-size below 1 MiB would make a request per few bytes: refused, by
// name, before any request (defect 10).
func TestPullChunkSizeBounds(t *testing.T) {
	hub := hubtest.New(t)
	hub.AddRepo("org/model").AddFile("config.json", []byte(`{}`))
	pullEnv(t, hub)
	for _, args := range [][]string{
		{"pull", "org/model", "--chunk-size", "1"},
		{"pull", "org/model", "--chunk-size", "1000KiB"},
		{"pull", "org/model", "--chunk-size", "2GiB"},
		{"pull", "org/model", "--to", t.TempDir(), "--chunk-size", "4KiB"},
	} {
		code, _, errOut := runPullCLI(args...)
		if code != exitUsage || !strings.Contains(errOut, "--chunk-size") {
			t.Errorf("%v: exit %d, %q; want %d naming --chunk-size", args, code, errOut, exitUsage)
		}
	}
	if n := len(hub.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	if code, _, errOut := runPullCLI("pull", "org/model", "--chunk-size", "1MiB"); code != 0 {
		t.Errorf("--chunk-size 1MiB: exit %d, %s", code, errOut)
	}
}

// Filters that match no file say so, not "all files already present" (15).
func TestPullNothingMatches(t *testing.T) {
	hub := hubtest.New(t)
	hub.AddRepo("org/model").AddFile("config.json", []byte(`{}`)).AddFile("model.safetensors", []byte("weights"))
	pullEnv(t, hub)
	code, out, errOut := runPullCLI("pull", "org/model", "--include", "*.gguf")
	if code != 0 || !strings.Contains(out, "no file of the revision matches --include/--exclude") || strings.Contains(out, "already present") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runPullCLI("pull", "org/model", "--to", t.TempDir(), "--exclude", "*")
	if code != 0 || !strings.Contains(out, "no file of the revision matches --include/--exclude") || strings.Contains(out, "already had") {
		t.Errorf("--to: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// A failed pull --json prints the error as one JSON document (13).
func TestPullJSONFailure(t *testing.T) {
	hub := hubtest.New(t)
	pullEnv(t, hub)
	for _, args := range [][]string{{"pull", "org/missing", "--json"}, {"pull", "org/missing", "--to", t.TempDir(), "--json"}} {
		code, out, errOut := runPullCLI(args...)
		if code != exitError {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if doc := jsonFailure(t, out, code); !strings.Contains(doc["error"].(string), "not found") {
			t.Errorf("%v: %v", args, doc)
		}
	}
}

// One size parser for every size flag: bytes, decimal and binary units,
// fractions; bounds and malformed values named with the flag.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"32MiB": 32 << 20, "64MB": 64e6, "16M": 16e6, "1G": 1e9, "1Gi": 1 << 30,
		"4096": 4096, " 16 KiB ": 16 << 10, "1.5GB": 1_500_000_000, "0.5KiB": 512, "5gb": 5e9, "0": 0} {
		if got, err := parseSize("x", in, 0, 1<<40); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MiB", "x", "1TB0", "1e3", "1,000", "5XB", "1.2.3MB", "0x10", "MB", "2TiB"} {
		if got, err := parseSize("chunk-size", in, 0, 1<<40); err == nil || !strings.Contains(err.Error(), "--chunk-size") ||
			!strings.Contains(err.Error(), fmt.Sprintf("%q", in)) || exitCode(err) != exitUsage {
			t.Errorf("%q: %d, %v; want a usage error naming the flag and the value", in, got, err)
		}
	}
	if _, err := parseSize("part-size", "1MiB", 5<<20, 1<<30); err == nil || !strings.Contains(err.Error(), "at least 5MiB") {
		t.Errorf("below the least: %v", err)
	}
}

// TestPullBarsFinish drives the progress bars through a file that starts
// over (integrity retry) and a failed one; finish must not hang.
func TestPullBarsFinish(t *testing.T) {
	var out bytes.Buffer
	b := newPullBars(context.Background(), &out)
	b.Start(2, 300)
	b.FileStart("a", 100, 0)
	b.FileAdvance("a", 60)
	b.FileStart("a", 100, 0) // restarted
	b.FileAdvance("a", 100)
	b.FileDone("a", nil)
	b.FileStart("b", 200, 50)
	b.FileAdvance("b", 10)
	b.FileDone("b", context.Canceled)
	done := make(chan struct{})
	go func() { b.finish(false); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("finish hangs")
	}
}
