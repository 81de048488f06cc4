package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/prune"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/storage"
)

// An unknown command, or help on one, is a usage error (defect 1).
func TestUnknownCommand(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"help", "frobnicate"}, {"frobnicate", "x", "--json"}} {
		_, stderr, code := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, `"frobnicate"`) {
			t.Errorf("%v: exit %d, stderr %q; want %d naming the command", args, code, stderr, exitUsage)
		}
	}
	if out, _, code := runCLI(t, "help", "inspect"); code != exitOK || !strings.Contains(out, "inspect") {
		t.Errorf("help inspect: exit %d\n%s", code, out)
	}
}

// exitCode is the one mapping from errors to exit codes; the libraries'
// sentinels decide it however deeply they are wrapped.
func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{errors.New("disk on fire"), exitError},
		{usageErrorf("--x"), exitUsage},
		{fmt.Errorf("step quantize int8: %w", forward.ErrValidationFailed), exitValidation},
		{fmt.Errorf("model: %w", forward.ErrInput), exitUsage},
		{fmt.Errorf("%w", forward.ErrIncompatible), exitUsage},
		{fmt.Errorf("step pull: %w", hubclient.ErrInvalidRepoID), exitUsage},
		{fmt.Errorf("open: %w", storage.ErrInvalidArgument), exitUsage},
		{fmt.Errorf("pass: %w", quantize.ErrNothingToQuantize), exitUsage},
		{fmt.Errorf("pass: %w", prune.ErrSpec), exitUsage},
		{fmt.Errorf("%w: /x", artifact.ErrExists), exitUsage},
		{fmt.Errorf("%w", hubclient.ErrRepoNotFound), exitError},
		{fmt.Errorf("%w", forward.ErrUnsupported), exitError},
	} {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// jsonFailure parses stdout of a failed --json run: exactly one JSON
// document with the error and the exit code.
func jsonFailure(t *testing.T, stdout string, code int) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not a JSON document: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one document:\n%s", stdout)
	}
	if msg, _ := doc["error"].(string); msg == "" || doc["code"] != float64(code) {
		t.Errorf("document %v: want an error and code %d", doc, code)
	}
	return doc
}

// With --json, a failure prints one JSON document on stdout: the error and
// the code, for every command (defect 13), and added to the report of a
// command that printed one (validate, quantize).
func TestJSONFailures(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	llama := filepath.Join(fixtureModels, "llama-tiny-st")
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"inspect", missing, "--json"}, exitError},
		{[]string{"forward", missing, "--ids", "1", "--json"}, exitError},
		{[]string{"forward", llama, "--json"}, exitUsage}, // no --ids
		{[]string{"push", missing, t.TempDir(), "--json"}, exitError},
		{[]string{"pull", "not a repo!", "--json"}, exitUsage},
		{[]string{"inspect", "--json", "--bogus", llama}, exitUsage},
		{[]string{"validate", llama, "--json"}, exitUsage},
		{[]string{"serve", "--from", missing, "--json"}, exitError},
		{[]string{"--json", "inspect", missing}, exitError},
	} {
		stdout, stderr, code := runCLI(t, c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d: %s", c.args, code, c.code, stderr)
			continue
		}
		doc := jsonFailure(t, stdout, code)
		if want := strings.TrimSpace(strings.TrimPrefix(stderr, "hubmirror: ")); doc["error"] != want {
			t.Errorf("%v: error %q, stderr says %q", c.args, doc["error"], want)
		}
	}

	// A report and the failure in one document: validation failed.
	stdout, _, code := runCLI(t, "validate", llama, filepath.Join(fixtureModels, "llama-gqa-bin"), "--json")
	if code != exitValidation {
		t.Fatalf("validate: exit %d", code)
	}
	if doc := jsonFailure(t, stdout, exitValidation); doc["passed"] != false || doc["outputs"] == nil {
		t.Errorf("validate: the report is not in the document: %v", doc)
	}
	// The same for a build whose validation failed.
	stdout, _, code = runCLI(t, "quantize", llama, filepath.Join(t.TempDir(), "q"), "--scheme", "int8", "--min-cosine", "0.9999999", "--json")
	if code != exitValidation {
		t.Fatalf("quantize: exit %d", code)
	}
	if doc := jsonFailure(t, stdout, exitValidation); doc["published"] != false || doc["validation"] == nil ||
		!strings.Contains(doc["error"].(string), "cosine similarity 0.9") || !strings.Contains(doc["error"].(string), " < ") {
		t.Errorf("quantize: %v", doc)
	}
	// Success: the command's document alone.
	stdout, _, code = runCLI(t, "inspect", llama, "--json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout), &doc); code != 0 || err != nil || doc["error"] != nil || doc["code"] != nil {
		t.Errorf("inspect --json: exit %d, %v, %v", code, err, doc)
	}
}

// Flags before the command count as flags of the command (defect 18).
func TestFlagsBeforeCommand(t *testing.T) {
	llama := filepath.Join(fixtureModels, "llama-tiny-st")
	stdout, stderr, code := runCLI(t, "--json", "inspect", llama)
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout), &doc); code != 0 || err != nil || doc["architecture"] == nil {
		t.Errorf("--json inspect: exit %d %s, %v\n%s", code, stderr, err, stdout)
	}
	// A flag with a value before the command, and flags on both sides.
	stdout, stderr, code = runCLI(t, "--threads", "2", "--json", "forward", llama, "--ids", "1,2")
	if err := json.Unmarshal([]byte(stdout), &doc); code != 0 || err != nil || doc["threads"] != float64(2) {
		t.Errorf("--threads 2 --json forward: exit %d %s, %v\n%s", code, stderr, err, stdout)
	}
	if stdout, _, code := runCLI(t, "--json", "--help", "inspect"); code != 0 || !strings.Contains(stdout, "MODEL") {
		t.Errorf("--json --help inspect: exit %d\n%s", code, stdout)
	}
	// A flag the command does not take is still refused.
	if _, _, code := runCLI(t, "--chunk-size", "1MiB", "inspect", llama); code != exitUsage {
		t.Errorf("--chunk-size inspect: exit %d, want %d", code, exitUsage)
	}
}

// Malformed integer lists and empty values are refused, not read as
// something else (defect 14).
func TestMalformedLists(t *testing.T) {
	gpt2 := filepath.Join(fixtureModels, "gpt2-model-st")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"forward", gpt2, "--ids", "1,2,"}, "--ids"},
		{[]string{"forward", gpt2, "--ids", "1,,2"}, "--ids"},
		{[]string{"forward", gpt2, "--ids", " "}, "--ids"},
		{[]string{"forward", gpt2, "--ids", "1", "--out", ""}, "--out"},
		{[]string{"validate", gpt2, gpt2, "--lengths", "5,,6"}, "--lengths"},
		{[]string{"validate", gpt2, gpt2, "--lengths", ",5"}, "--lengths"},
		{[]string{"quantize", gpt2, t.TempDir() + "/x", "--scheme", "int8", "--lengths", "5,"}, "--lengths"},
		{[]string{"pull", "org/model", "--include", ""}, "--include"},
		{[]string{"pull", "org/model", "--cache-dir", ""}, "--cache-dir"},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d naming %s", c.args, code, stderr, exitUsage, c.want)
		}
	}
	if ids, err := parseIntList("ids", " 1, 2 ,3"); err != nil || fmt.Sprint(ids) != "[1 2 3]" {
		t.Errorf("spaces around items: %v, %v", ids, err)
	}
}

// Threshold flags take finite numbers; cosine and top-1 at most 1. NaN
// would switch a check off and pass a bad model (defect 4).
func TestThresholdFlags(t *testing.T) {
	llama := filepath.Join(fixtureModels, "llama-tiny-st")
	gqa := filepath.Join(fixtureModels, "llama-gqa-bin") // comparable, and fails
	for _, flag := range []string{"--max-abs", "--mean-abs", "--min-cosine", "--min-top1", "--max-kl"} {
		for _, v := range []string{"nan", "NaN", "inf", "-inf"} {
			_, stderr, code := runCLI(t, "validate", llama, gqa, flag, v)
			if code != exitUsage || !strings.Contains(stderr, flag) {
				t.Errorf("validate %s %s: exit %d, %q; want %d", flag, v, code, stderr, exitUsage)
			}
		}
	}
	for _, args := range [][]string{{"--min-cosine", "1.5"}, {"--min-top1", "2"}} {
		_, stderr, code := runCLI(t, append([]string{"validate", llama, gqa}, args...)...)
		if code != exitUsage || !strings.Contains(stderr, args[0]) {
			t.Errorf("validate %v: exit %d, %q; want %d", args, code, stderr, exitUsage)
		}
	}
	// The same rule for the commands that build.
	dst := filepath.Join(t.TempDir(), "x")
	if _, stderr, code := runCLI(t, "quantize", llama, dst, "--scheme", "int8", "--min-cosine", "nan"); code != exitUsage {
		t.Errorf("quantize --min-cosine nan: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("DST written: %v", err)
	}
	// The limits themselves are accepted.
	if _, stderr, code := runCLI(t, "validate", llama, llama, "--min-cosine", "0.999", "--min-top1", "1", "--max-abs", "0"); code != 0 {
		t.Errorf("validate with limits 0.999, 1, 0: exit %d, %s", code, stderr)
	}
}

// --threads -1 is named as the flag, not as the reference model (15).
func TestThreadsMessage(t *testing.T) {
	llama := filepath.Join(fixtureModels, "llama-tiny-st")
	_, stderr, code := runCLI(t, "validate", llama, llama, "--threads", "-1")
	if code != exitUsage || !strings.HasPrefix(stderr, "hubmirror: --threads -1") {
		t.Errorf("exit %d, stderr %q; want %d starting with the flag", code, stderr, exitUsage)
	}
}

// withError puts the error and the code first, in place of the document's
// own, and keeps the rest in order; anything but one object is refused.
func TestWithError(t *testing.T) {
	got, ok := withError([]byte(`{"b": 1, "error": "inner", "a": [1, 2]}`+"\n"), errors.New("x < y"), 3)
	want := "{\n  \"error\": \"x < y\",\n  \"code\": 3,\n  \"b\": 1,\n  \"a\": [\n    1,\n    2\n  ]\n}\n"
	if !ok || string(got) != want {
		t.Errorf("got %v %q, want %q", ok, got, want)
	}
	if got, ok := withError(nil, errors.New("e"), 1); !ok || string(got) != "{\n  \"error\": \"e\",\n  \"code\": 1\n}\n" {
		t.Errorf("empty document: %v %q", ok, got)
	}
	for _, doc := range []string{"NAME:\n   hubmirror", "[1]", `{"a": 1} {"b": 2}`, `{"a": `} {
		if _, ok := withError([]byte(doc), errors.New("e"), 1); ok {
			t.Errorf("%q taken as one JSON object", doc)
		}
	}
}

// One builder reads the Hub's settings: the command's flags first, then
// the environment as huggingface_hub reads it.
func TestHubSettings(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_ENDPOINT", "http://env.example/")
	t.Setenv("HF_TOKEN", "env-token")
	t.Setenv("HF_HUB_OFFLINE", "")
	var got hubSettings
	register(&cli.Command{
		Name: "test-hub-settings",
		Flags: []cli.Flag{&cli.StringFlag{Name: "endpoint"}, &cli.StringFlag{Name: "token"},
			&cli.StringFlag{Name: "cache-dir"}, &cli.BoolFlag{Name: "offline"}},
		Action: func(c *cli.Context) error { got = hubSettingsFrom(c); return nil },
	})
	defer func() { commands = commands[:len(commands)-1] }()
	if _, stderr, code := runCLI(t, "test-hub-settings"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := hubSettings{Client: hubclient.Options{Endpoint: "http://env.example", Token: "env-token"}, CacheDir: filepath.Join(home, "hub")}
	if got != want {
		t.Errorf("from the environment: %+v, want %+v", got, want)
	}
	if env := hubSettingsFrom(nil); env != want {
		t.Errorf("hubSettingsFrom(nil) = %+v, want %+v", env, want)
	}
	if _, stderr, code := runCLI(t, "test-hub-settings", "--endpoint", "https://flag.example", "--token", "t",
		"--cache-dir", "/c", "--offline"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want = hubSettings{Client: hubclient.Options{Endpoint: "https://flag.example", Token: "t"}, CacheDir: "/c", Offline: true}
	if got != want {
		t.Errorf("from flags: %+v, want %+v", got, want)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	if !hubSettingsFrom(nil).Offline {
		t.Error("HF_HUB_OFFLINE=1 not read")
	}
}
