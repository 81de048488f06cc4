package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/source"
	"github.com/hubmirror/hubmirror/storage"
	"github.com/hubmirror/hubmirror/weights"
)

const fixtureModels = "../testdata/models"

// modelFiles are the files of a fixture model.
var modelFiles = map[string][]string{
	"llama-tiny-st": {"config.json", "model.safetensors"},
	"gpt2-lm-bin":   {"config.json", "pytorch_model.bin"},
}

// modelDir copies the files of a fixture model into a new directory named
// name and returns its path.
func modelDir(t *testing.T, fixture, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range modelFiles[fixture] {
		b, err := os.ReadFile(filepath.Join(fixtureModels, fixture, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// countingStore counts the objects written into the mirror.
type countingStore struct {
	storage.Store
	mu   sync.Mutex
	puts []string
}

func (c *countingStore) Put(ctx context.Context, key string, src storage.Source, size int64, sha256 string) error {
	c.mu.Lock()
	c.puts = append(c.puts, key)
	c.mu.Unlock()
	return c.Store.Put(ctx, key, src, size, sha256)
}

// takePuts returns the keys written since the last call, less the leases a
// push holds while it runs (mirror's protection against a concurrent gc),
// and fails the test if a lease outlived its push.
func (c *countingStore) takePuts() []string {
	c.mu.Lock()
	p := c.puts
	c.puts = nil
	c.mu.Unlock()
	var kept []string
	for _, k := range p {
		if !strings.HasPrefix(k, "leases/") {
			kept = append(kept, k)
		}
	}
	if err := c.Store.List(context.Background(), "leases/", func(o storage.Info) error {
		kept = append(kept, "a lease left behind: "+o.Key)
		return nil
	}); err != nil {
		kept = append(kept, "listing leases: "+err.Error())
	}
	return kept
}

func newStore(t *testing.T) *countingStore {
	t.Helper()
	s, err := storage.NewLocal(filepath.Join(t.TempDir(), "mirror"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &countingStore{Store: s}
}

func int8Variant(t *testing.T) Variant {
	t.Helper()
	v, err := QuantizeVariant(quantize.Options{Scheme: quantize.Int8})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func safetensorsVariant(t *testing.T) Variant {
	t.Helper()
	v, err := ConvertVariant("safetensors")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// counted wraps v's pass to count its calls.
func counted(v Variant, n *atomic.Int32) Variant {
	pass := v.Pass
	v.Pass = func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		n.Add(1)
		return pass(g, cfg)
	}
	return v
}

// scaled is a variant whose pass multiplies one tensor by factor: a model
// that computes something else, which an exact validation must refuse.
func scaled(name, tensor string, factor float32) Variant {
	return Variant{Name: name, Label: "scale " + tensor, Kind: forward.KindExact,
		Pass: func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			out := g.Derive()
			found := false
			for _, t := range g.Tensors() {
				if t.Name == tensor {
					vals, err := t.Float32s()
					if err != nil {
						return nil, nil, err
					}
					for i := range vals {
						vals[i] *= factor
					}
					if t, err = weights.FromFloat32(t.Name, weights.F32, t.Shape, vals); err != nil {
						return nil, nil, err
					}
					found = true
				}
				if err := out.Add(t); err != nil {
					return nil, nil, err
				}
			}
			if !found {
				return nil, nil, errors.New("no tensor " + tensor)
			}
			return out, nil, nil
		}}
}

// fileBytes sums the sizes of the files of dir (not recursive).
func fileBytes(t *testing.T, dir string) (int, int64) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += info.Size()
	}
	return len(entries), n
}

func TestRunLocalDirectory(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the default work directory must be removed
	dir := modelDir(t, "llama-tiny-st", "llama-tiny")
	s := newStore(t)
	var steps []string
	opts := Options{Source: dir, Variants: []Variant{int8Variant(t), safetensorsVariant(t)},
		Progress: func(step, detail string) { steps = append(steps, step+": "+detail) }}
	rep, err := Run(context.Background(), s, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !rep.Passed || rep.FailedStep != "" {
		t.Errorf("passed %v, failed step %q", rep.Passed, rep.FailedStep)
	}
	files, size := fileBytes(t, dir)
	src := rep.Source
	if src.Repo != "local/llama-tiny" || src.Revision != "main" || src.Dir != dir {
		t.Errorf("source %+v", src)
	}
	if src.Files != files || src.Bytes != size || src.Uploaded != files || src.UploadedBytes != size || src.Downloaded != 0 {
		t.Errorf("source %+v, want %d files of %d bytes, all uploaded, none downloaded", src, files, size)
	}
	main, err := mirror.Resolve(context.Background(), s, src.Repo, "main")
	if err != nil {
		t.Fatalf("resolve main: %v", err)
	}
	if main.Commit != src.Commit || !mirror.IsCommitID(src.Commit) || len(main.Files) != files || main.Variant != nil {
		t.Errorf("main is %s with %d files (variant %v), the report says commit %q", main.Commit, len(main.Files), main.Variant, src.Commit)
	}
	if main.Source.Kind != "dir" || main.Source.Location != dir {
		t.Errorf("main's source %+v", main.Source)
	}

	if len(rep.Variants) != 2 {
		t.Fatalf("%d variant reports: %+v", len(rep.Variants), rep.Variants)
	}
	q := rep.Variants[0]
	if q.Name != "int8" || q.Revision != "int8" || q.Status != "pushed" || !q.Passed || q.Error != "" || q.Uploaded == 0 || q.UploadedBytes == 0 {
		t.Errorf("int8 report %+v", q)
	}
	if q.Validation == nil || !q.Validation.Passed || q.Validation.Kind != forward.KindInt8 {
		t.Errorf("int8 validation %+v", q.Validation)
	}
	m, err := mirror.Resolve(context.Background(), s, src.Repo, "int8")
	if err != nil {
		t.Fatalf("resolve int8: %v", err)
	}
	if m.Commit != q.Commit || m.Variant == nil || m.Variant.Name != "int8" || m.Variant.SourceCommit != src.Commit {
		t.Errorf("int8 in the mirror: commit %s (report %s), variant %+v, source commit %s", m.Commit, q.Commit, m.Variant, src.Commit)
	}
	if _, ok := m.File(mirror.ReportPath); !ok {
		t.Errorf("int8 has no %s", mirror.ReportPath)
	}
	c := rep.Variants[1]
	if c.Name != "safetensors" || c.Status != "skipped" || !strings.Contains(c.Reason, "already safetensors") || !c.Passed || c.Commit != "" || c.Validation != nil {
		t.Errorf("safetensors report %+v", c)
	}
	if _, err := mirror.Resolve(context.Background(), s, src.Repo, "safetensors"); !errors.Is(err, mirror.ErrRevisionNotFound) {
		t.Errorf("a skipped variant is in the mirror: %v", err)
	}
	want := []string{"pull: " + dir, "push: local/llama-tiny@main", "quantize int8: build and validate", "quantize int8: push"}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "hubmirror-mirror-*")); len(left) != 0 {
		t.Errorf("the work directory is left behind: %v", left)
	}
}

// A rerun with nothing new uploads nothing, writes nothing and rebuilds no
// variant.
func TestRunRerunDoesNothing(t *testing.T) {
	dir := modelDir(t, "llama-tiny-st", "llama-tiny")
	s := newStore(t)
	var builds atomic.Int32
	opts := Options{Source: dir, Variants: []Variant{counted(int8Variant(t), &builds), safetensorsVariant(t)}}
	first, err := Run(context.Background(), s, opts)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if builds.Load() != 1 || len(s.takePuts()) == 0 {
		t.Fatalf("first run: %d builds", builds.Load())
	}
	var steps []string
	opts.Progress = func(step, detail string) { steps = append(steps, step+": "+detail) }
	rep, err := Run(context.Background(), s, opts)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if puts := s.takePuts(); len(puts) != 0 {
		t.Errorf("the rerun wrote %v", puts)
	}
	if builds.Load() != 1 {
		t.Errorf("the rerun rebuilt int8")
	}
	for _, st := range steps {
		if strings.Contains(st, "build") {
			t.Errorf("rerun progress: %s", st)
		}
	}
	if !rep.Passed || rep.Source.Commit != first.Source.Commit || rep.Source.Uploaded != 0 || rep.Source.UploadedBytes != 0 || rep.Source.Files != first.Source.Files {
		t.Errorf("rerun source %+v, passed %v", rep.Source, rep.Passed)
	}
	q := rep.Variants[0]
	if q.Status != "present" || !q.Passed || q.Commit != first.Variants[0].Commit || q.Uploaded != 0 || !strings.Contains(q.Reason, first.Source.Commit) {
		t.Errorf("rerun int8 %+v", q)
	}
	if rep.Variants[1].Status != "skipped" {
		t.Errorf("rerun safetensors %+v", rep.Variants[1])
	}

	// A changed source is a new commit: the variant is built again for it.
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = Run(context.Background(), s, opts)
	if err != nil {
		t.Fatalf("run after a change: %v", err)
	}
	if rep.Source.Commit == first.Source.Commit || rep.Source.Uploaded != 1 || builds.Load() != 2 || rep.Variants[0].Status != "pushed" {
		t.Errorf("after a change: source %+v, %d builds, int8 %+v", rep.Source, builds.Load(), rep.Variants[0])
	}
	m, err := mirror.Resolve(context.Background(), s, rep.Source.Repo, "int8")
	if err != nil || m.Variant.SourceCommit != rep.Source.Commit {
		t.Errorf("int8 after a change: %v %+v", err, m)
	}
}

// A variant that fails validation is not pushed and fails the run with its
// step named; the variants after it are still built and pushed.
func TestRunFailedVariant(t *testing.T) {
	dir := modelDir(t, "llama-tiny-st", "llama-tiny")
	s := newStore(t)
	opts := Options{Source: dir, Variants: []Variant{scaled("broken", "lm_head.weight", 1.5), int8Variant(t)}}
	rep, err := Run(context.Background(), s, opts)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "scale lm_head.weight" {
		t.Fatalf("error %v (%T), want a StepError of step %q", err, err, "scale lm_head.weight")
	}
	if !errors.Is(err, forward.ErrValidationFailed) || !strings.Contains(err.Error(), "step scale lm_head.weight") {
		t.Errorf("error %q does not wrap forward.ErrValidationFailed or name the step", err)
	}
	if rep == nil {
		t.Fatal("no report on failure")
	}
	if rep.Passed || rep.FailedStep != "scale lm_head.weight" || len(rep.Variants) != 2 {
		t.Fatalf("report: passed %v, failed step %q, %d variants", rep.Passed, rep.FailedStep, len(rep.Variants))
	}
	b := rep.Variants[0]
	if b.Status != "failed" || b.Passed || b.Commit != "" || b.Error == "" || b.Validation == nil || b.Validation.Passed || len(b.Validation.Failures) == 0 {
		t.Errorf("broken variant %+v", b)
	}
	if _, err := mirror.Resolve(context.Background(), s, rep.Source.Repo, "broken"); !errors.Is(err, mirror.ErrRevisionNotFound) {
		t.Errorf("the failed variant is in the mirror: %v", err)
	}
	if q := rep.Variants[1]; q.Status != "pushed" || !q.Passed {
		t.Errorf("the variant after the failed one: %+v", q)
	}
	if _, err := mirror.Resolve(context.Background(), s, rep.Source.Repo, "int8"); err != nil {
		t.Errorf("int8: %v", err)
	}
	if _, err := mirror.Resolve(context.Background(), s, rep.Source.Repo, "main"); err != nil {
		t.Errorf("source: %v", err)
	}

	// A pass that fails: the step is named, and it is no validation failure.
	boom := errors.New("boom")
	opts.Variants = []Variant{{Name: "bad", Label: "bad pass", Kind: forward.KindExact,
		Pass: func(*weights.Graph, *arch.Config) (*weights.Graph, any, error) { return nil, nil, boom }}}
	rep, err = Run(context.Background(), s, opts)
	if !errors.As(err, &se) || se.Step != "bad pass" || !errors.Is(err, boom) || errors.Is(err, forward.ErrValidationFailed) {
		t.Errorf("failing pass: %v", err)
	}
	if rep == nil || rep.FailedStep != "bad pass" || rep.Variants[0].Status != "failed" || rep.Variants[0].Validation != nil {
		t.Errorf("failing pass report %+v", rep)
	}

	// Thresholds that cannot be had fail the variant before it is built.
	opts.Variants = []Variant{int8Variant(t)}
	opts.Thresholds = func(forward.Kind) (forward.Thresholds, error) { return forward.Thresholds{}, errors.New("no limits") }
	if _, err := Run(context.Background(), newStore(t), opts); !errors.As(err, &se) || se.Step != "quantize int8" || !strings.Contains(err.Error(), "no limits") {
		t.Errorf("failing thresholds: %v", err)
	}
	// Strict thresholds fail int8, as --min-cosine does.
	opts.Thresholds = func(k forward.Kind) (forward.Thresholds, error) {
		if k != forward.KindInt8 {
			t.Errorf("thresholds asked for %s", k)
		}
		return forward.Thresholds{MinCosine: 0.99999999}, nil
	}
	rep, err = Run(context.Background(), newStore(t), opts)
	if !errors.Is(err, forward.ErrValidationFailed) || rep.Variants[0].Validation == nil || rep.Variants[0].Validation.Thresholds.MinCosine != 0.99999999 {
		t.Errorf("strict thresholds: %v", err)
	}
}

// Build.Force publishes a variant that failed validation; the run still
// fails, with the report marked failed.
func TestRunForcedVariant(t *testing.T) {
	dir := modelDir(t, "llama-tiny-st", "llama-tiny")
	s := newStore(t)
	opts := Options{Source: dir, Variants: []Variant{scaled("broken", "lm_head.weight", 1.5)}}
	opts.Build.Force = true
	rep, err := Run(context.Background(), s, opts)
	if !errors.Is(err, forward.ErrValidationFailed) || rep.Passed || rep.FailedStep != "scale lm_head.weight" {
		t.Fatalf("forced: %v, report %+v", err, rep)
	}
	b := rep.Variants[0]
	if b.Status != "pushed" || b.Passed || b.Commit == "" || b.Error == "" {
		t.Errorf("forced variant %+v", b)
	}
	if m, err := mirror.Resolve(context.Background(), s, rep.Source.Repo, "broken"); err != nil || m.Commit != b.Commit {
		t.Errorf("forced variant in the mirror: %v", err)
	}
	// The rerun finds it in the mirror and says again that it failed.
	rep, err = Run(context.Background(), s, opts)
	if !errors.Is(err, forward.ErrValidationFailed) || rep.Passed {
		t.Errorf("rerun of a forced failure: %v, passed %v", err, rep.Passed)
	}
	if b := rep.Variants[0]; b.Status != "present" || b.Passed || b.Validation == nil || b.Validation.Passed {
		t.Errorf("rerun of a forced failure: %+v", b)
	}
	// Judged by thresholds the stored metrics meet, it passes as it is.
	var builds atomic.Int32
	lenient := opts
	lenient.Variants = []Variant{counted(opts.Variants[0], &builds)}
	lenient.Thresholds = func(forward.Kind) (forward.Thresholds, error) { return forward.Thresholds{MinCosine: 0.1}, nil }
	rep, err = Run(context.Background(), s, lenient)
	if b := rep.Variants[0]; err != nil || b.Status != "present" || !b.Passed || !b.Validation.Passed || builds.Load() != 0 {
		t.Errorf("rerun with lenient thresholds: %v %+v, %d builds", err, b, builds.Load())
	}
	// Rebuild builds it again.
	lenient.Rebuild = true
	rep, err = Run(context.Background(), s, lenient)
	if b := rep.Variants[0]; err != nil || b.Status != "pushed" || !b.Passed || builds.Load() != 1 {
		t.Errorf("rebuild: %v %+v, %d builds", err, b, builds.Load())
	}
}

// A pickled model gets a safetensors variant, validated exactly.
func TestRunConvertPickle(t *testing.T) {
	dir := modelDir(t, "gpt2-lm-bin", "gpt2")
	s := newStore(t)
	rep, err := Run(context.Background(), s, Options{Source: dir, RepoID: "acme/gpt2", Revision: "v1", Variants: []Variant{safetensorsVariant(t)}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Source.Repo != "acme/gpt2" || rep.Source.Revision != "v1" {
		t.Errorf("source %+v", rep.Source)
	}
	v := rep.Variants[0]
	if v.Status != "pushed" || v.Validation == nil || v.Validation.Kind != forward.KindExact || !v.Validation.Passed {
		t.Errorf("safetensors %+v", v)
	}
	m, err := mirror.Resolve(context.Background(), s, "acme/gpt2", "safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if m.Variant.SourceCommit != rep.Source.Commit {
		t.Errorf("variant of %s, source %s", m.Variant.SourceCommit, rep.Source.Commit)
	}
	if _, ok := m.File("model.safetensors"); !ok {
		t.Errorf("no model.safetensors in %+v", m.Files)
	}
	if _, err := mirror.Resolve(context.Background(), s, "acme/gpt2", "v1"); err != nil {
		t.Errorf("v1: %v", err)
	}
	if _, err := mirror.Resolve(context.Background(), s, "acme/gpt2", "main"); !errors.Is(err, mirror.ErrRevisionNotFound) {
		t.Errorf("main: %v", err)
	}
}

// hubRepo serves a fixture model as repo id on a test hub.
func hubRepo(t *testing.T, fixture, id string) (*hubtest.Hub, *hubtest.Repo, *hubclient.Client) {
	t.Helper()
	hub := hubtest.New(t)
	repo := hub.AddRepo(id)
	for _, f := range modelFiles[fixture] {
		b, err := os.ReadFile(filepath.Join(fixtureModels, fixture, f))
		if err != nil {
			t.Fatal(err)
		}
		repo.AddFile(f, b)
	}
	c, err := hubclient.New(hubclient.Options{Endpoint: hub.URL(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return hub, repo, c
}

func fixtureBytes(t *testing.T, fixture string) int64 {
	var n int64
	for _, f := range modelFiles[fixture] {
		info, err := os.Stat(filepath.Join(fixtureModels, fixture, f))
		if err != nil {
			t.Fatal(err)
		}
		n += info.Size()
	}
	return n
}

// dirEmpty reports whether dir is missing or holds nothing.
func dirEmpty(t *testing.T, dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(entries) == 0
}

// With a variant, a Hub repo is pulled into the Hugging Face cache, pushed
// and built from there; a rerun downloads nothing.
func TestRunHubWithVariant(t *testing.T) {
	hub, repo, client := hubRepo(t, "llama-tiny-st", "acme/tiny")
	cache := t.TempDir()
	s := newStore(t)
	size := fixtureBytes(t, "llama-tiny-st")
	opts := Options{Source: "acme/tiny", Hub: client, Download: hubclient.DownloadOptions{CacheDir: cache}, Variants: []Variant{int8Variant(t)}}
	rep, err := Run(context.Background(), s, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	src := rep.Source
	if src.Repo != "acme/tiny" || src.Revision != "main" || src.Commit != repo.Commit() || src.Files != 2 || src.Bytes != size ||
		src.Downloaded != size || src.Uploaded != 2 || src.UploadedBytes != size || !strings.HasPrefix(src.Dir, cache) {
		t.Errorf("source %+v (commit %s, %d bytes)", src, repo.Commit(), size)
	}
	main, err := mirror.Resolve(context.Background(), s, "acme/tiny", "main")
	if err != nil || main.Commit != repo.Commit() || main.Source.Kind != "hub" {
		t.Fatalf("main: %v %+v", err, main)
	}
	if v := rep.Variants[0]; v.Status != "pushed" || !v.Passed {
		t.Errorf("int8 %+v", v)
	}
	if m, err := mirror.Resolve(context.Background(), s, "acme/tiny", "int8"); err != nil || m.Variant.SourceCommit != repo.Commit() {
		t.Errorf("int8: %v", err)
	}
	s.takePuts()

	hub.ResetRequests()
	rep, err = Run(context.Background(), s, opts)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if rep.Source.Downloaded != 0 || rep.Source.Uploaded != 0 || rep.Variants[0].Status != "present" {
		t.Errorf("rerun: source %+v, int8 %+v", rep.Source, rep.Variants[0])
	}
	if d := hub.Downloads(""); len(d) != 0 {
		t.Errorf("rerun downloaded %+v", d)
	}
	if puts := s.takePuts(); len(puts) != 0 {
		t.Errorf("rerun wrote %v", puts)
	}
}

// Without variants, a Hub repo streams into the mirror with no local copy;
// a rerun downloads and uploads nothing.
func TestRunHubStreams(t *testing.T) {
	hub, repo, client := hubRepo(t, "llama-tiny-st", "acme/tiny")
	cache := t.TempDir()
	s := newStore(t)
	size := fixtureBytes(t, "llama-tiny-st")
	opts := Options{Source: "acme/tiny", Hub: client, Download: hubclient.DownloadOptions{CacheDir: cache}}
	rep, err := Run(context.Background(), s, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	src := rep.Source
	if !rep.Passed || src.Commit != repo.Commit() || src.Files != 2 || src.Bytes != size || src.Downloaded != size || src.Uploaded != 2 || src.UploadedBytes != size || src.Dir != "" {
		t.Errorf("source %+v", src)
	}
	if len(rep.Variants) != 0 {
		t.Errorf("variants %+v", rep.Variants)
	}
	if !dirEmpty(t, cache) {
		t.Errorf("files landed in the Hugging Face cache")
	}
	if main, err := mirror.Resolve(context.Background(), s, "acme/tiny", "main"); err != nil || main.Commit != repo.Commit() || len(main.Files) != 2 {
		t.Fatalf("main: %v %+v", err, main)
	}
	s.takePuts()

	hub.ResetRequests()
	rep, err = Run(context.Background(), s, opts)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if rep.Source.Downloaded != 0 || rep.Source.Uploaded != 0 || rep.Source.UploadedBytes != 0 || rep.Source.Commit != repo.Commit() {
		t.Errorf("rerun source %+v", rep.Source)
	}
	if d := hub.Downloads(""); len(d) != 0 {
		t.Errorf("rerun downloaded %+v", d)
	}
	if puts := s.takePuts(); len(puts) != 0 {
		t.Errorf("rerun wrote %v", puts)
	}
}

// A revision given as a commit id mirrors that commit under no ref, with
// or without variants (a ref cannot be named like a commit id).
func TestRunHubCommitRevision(t *testing.T) {
	_, repo, client := hubRepo(t, "llama-tiny-st", "acme/tiny")
	commit := repo.Commit()
	repo.AddFile("README.md", []byte("a later commit\n"))
	for _, variants := range [][]Variant{nil, {int8Variant(t)}} {
		s := newStore(t)
		opts := Options{Source: "acme/tiny@" + commit, Hub: client, Download: hubclient.DownloadOptions{CacheDir: t.TempDir()}, Variants: variants}
		rep, err := Run(context.Background(), s, opts)
		if err != nil {
			t.Errorf("%d variants: %v", len(variants), err)
			continue
		}
		if rep.Source.Commit != commit || rep.Source.Files != 2 {
			t.Errorf("%d variants: source %+v", len(variants), rep.Source)
		}
		if m, err := mirror.Resolve(context.Background(), s, "acme/tiny", commit); err != nil || len(m.Files) != 2 {
			t.Errorf("%d variants: commit %s: %v", len(variants), commit, err)
		}
		if _, err := mirror.Resolve(context.Background(), s, "acme/tiny", "main"); !errors.Is(err, mirror.ErrRevisionNotFound) {
			t.Errorf("%d variants: main: %v", len(variants), err)
		}
		if len(variants) > 0 {
			if m, err := mirror.Resolve(context.Background(), s, "acme/tiny", "int8"); err != nil || m.Variant.SourceCommit != commit {
				t.Errorf("int8: %v", err)
			}
		}
	}
}

// Offline, the repo comes from the Hugging Face cache alone, variants or
// not: no request reaches the Hub.
func TestRunHubOffline(t *testing.T) {
	hub, repo, client := hubRepo(t, "llama-tiny-st", "acme/tiny")
	cache := t.TempDir()
	if _, err := client.Download(context.Background(), "acme/tiny", "main", hubclient.DownloadOptions{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	for _, variants := range [][]Variant{nil, {int8Variant(t)}} {
		hub.ResetRequests()
		s := newStore(t)
		opts := Options{Source: "acme/tiny", Hub: client, Download: hubclient.DownloadOptions{CacheDir: cache, Offline: true}, Variants: variants}
		rep, err := Run(context.Background(), s, opts)
		if err != nil {
			t.Errorf("%d variants: %v", len(variants), err)
			continue
		}
		if rep.Source.Commit != repo.Commit() || rep.Source.Downloaded != 0 || rep.Source.Uploaded != 2 {
			t.Errorf("%d variants: source %+v", len(variants), rep.Source)
		}
		if r := hub.Requests(); len(r) != 0 {
			t.Errorf("%d variants: offline, the Hub got %+v", len(variants), r)
		}
	}
}

// A pull with file filters records them in the manifest, the way
// mirror.Pull does, whether it streams or goes through the cache.
func TestRunHubFiltersRecorded(t *testing.T) {
	hub, repo, client := hubRepo(t, "llama-tiny-st", "acme/tiny")
	repo.AddFile("notes.txt", []byte("not part of the model\n"))
	for _, variants := range [][]Variant{nil, {int8Variant(t)}} {
		s := newStore(t)
		opts := Options{Source: "acme/tiny", Hub: client, Variants: variants,
			Download: hubclient.DownloadOptions{CacheDir: t.TempDir(), Exclude: []string{"*.txt"}}}
		rep, err := Run(context.Background(), s, opts)
		if err != nil {
			t.Errorf("%d variants: %v", len(variants), err)
			continue
		}
		m, err := mirror.Resolve(context.Background(), s, "acme/tiny", "main")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Source.Files != 2 || len(m.Files) != 2 || strings.Join(m.Source.Exclude, ",") != "*.txt" || m.Source.Kind != "hub" ||
			m.Source.Location != client.Endpoint()+"/acme/tiny" || !strings.HasPrefix(m.Source.Location, hub.URL()) || m.Source.Revision != "main" {
			t.Errorf("%d variants: %d files, manifest source %+v", len(variants), len(m.Files), m.Source)
		}
	}
}

func TestRunBadSource(t *testing.T) {
	_, _, client := hubRepo(t, "llama-tiny-st", "acme/tiny")
	missing := filepath.Join(t.TempDir(), "missing")
	for _, variants := range [][]Variant{nil, {int8Variant(t)}} {
		for _, source := range []string{"not a repo!", missing} {
			s := newStore(t)
			rep, err := Run(context.Background(), s, Options{Source: source, Hub: client, Variants: variants,
				Download: hubclient.DownloadOptions{CacheDir: t.TempDir()}})
			var se *StepError
			if !errors.As(err, &se) || se.Step != "pull" || !strings.Contains(err.Error(), "step pull") || !strings.Contains(err.Error(), source) {
				t.Errorf("%q, %d variants: %v", source, len(variants), err)
			}
			// A path that is not there is not found; anything else that is no repo id is malformed.
			if want := map[bool]error{true: os.ErrNotExist, false: hubclient.ErrInvalidRepoID}[source == missing]; !errors.Is(err, want) {
				t.Errorf("%q, %d variants: %v does not wrap %v", source, len(variants), err, want)
			}
			if rep == nil || rep.Passed || rep.FailedStep != "pull" {
				t.Errorf("%q: report %+v", source, rep)
			}
			if len(s.takePuts()) != 0 {
				t.Errorf("%q: something was written", source)
			}
		}
		// A repo the Hub does not have.
		rep, err := Run(context.Background(), newStore(t), Options{Source: "acme/nothing", Hub: client, Variants: variants,
			Download: hubclient.DownloadOptions{CacheDir: t.TempDir()}})
		var se *StepError
		var he *hubclient.HTTPError
		if !errors.As(err, &se) || se.Step != "pull" || !errors.Is(err, hubclient.ErrRepoNotFound) || !errors.As(err, &he) || he.RepoID != "acme/nothing" {
			t.Errorf("missing repo, %d variants: %v", len(variants), err)
		}
		if rep == nil || rep.FailedStep != "pull" {
			t.Errorf("missing repo: report %+v", rep)
		}
		// A revision it does not have.
		_, err = Run(context.Background(), newStore(t), Options{Source: "acme/tiny@nope", Hub: client, Variants: variants,
			Download: hubclient.DownloadOptions{CacheDir: t.TempDir()}})
		if !errors.As(err, &se) || se.Step != "pull" || !errors.Is(err, hubclient.ErrRevisionNotFound) {
			t.Errorf("missing revision, %d variants: %v", len(variants), err)
		}
	}

	// A directory that is no model: pushed as it is, its variants fail.
	dir := filepath.Join(t.TempDir(), "notes")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("no weights\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), newStore(t), Options{Source: dir, Variants: []Variant{int8Variant(t)}})
	var se *StepError
	if !errors.As(err, &se) || se.Step != "variants" || rep.Source.Commit == "" {
		t.Errorf("no model: %v, report %+v", err, rep)
	}
	rep, err = Run(context.Background(), newStore(t), Options{Source: dir})
	if err != nil || !rep.Passed || rep.Source.Files != 1 {
		t.Errorf("no model, no variants: %v, report %+v", err, rep)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := modelDir(t, "llama-tiny-st", "llama-tiny")
	s := newStore(t)
	rep, err := Run(ctx, s, Options{Source: dir, Variants: []Variant{int8Variant(t)}})
	if !errors.Is(err, context.Canceled) || rep == nil || rep.Passed {
		t.Errorf("local dir: %v, report %+v", err, rep)
	}
	if _, err := mirror.Resolve(context.Background(), s, "local/llama-tiny", "main"); !errors.Is(err, mirror.ErrRepoNotFound) {
		t.Errorf("a cancelled run wrote main: %v", err)
	}
	_, _, client := hubRepo(t, "llama-tiny-st", "acme/tiny")
	for _, variants := range [][]Variant{nil, {int8Variant(t)}} {
		rep, err := Run(ctx, newStore(t), Options{Source: "acme/tiny", Hub: client, Variants: variants, Download: hubclient.DownloadOptions{CacheDir: t.TempDir()}})
		if !errors.Is(err, context.Canceled) || rep == nil || rep.FailedStep != "pull" {
			t.Errorf("hub, %d variants: %v, report %+v", len(variants), err, rep)
		}
	}
}

// A directory's name becomes a valid repo id.
func TestRunRepoIDFromDirectoryName(t *testing.T) {
	dir := modelDir(t, "llama-tiny-st", "My Model (v2)")
	s := newStore(t)
	rep, err := Run(context.Background(), s, Options{Source: dir + string(filepath.Separator)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source.Repo != "local/My-Model-v2" {
		t.Errorf("repo %q", rep.Source.Repo)
	}
	if _, err := mirror.Resolve(context.Background(), s, rep.Source.Repo, "main"); err != nil {
		t.Error(err)
	}
	// An id given that the mirror cannot take is refused at the pull step.
	_, err = Run(context.Background(), s, Options{Source: dir, RepoID: "a/b/c"})
	var se *StepError
	if !errors.As(err, &se) || se.Step != "pull" || !errors.Is(err, mirror.ErrInvalid) || !strings.Contains(err.Error(), "--repo-id") {
		t.Errorf("bad repo id: %v", err)
	}
}

func TestVariantConstructors(t *testing.T) {
	for _, c := range []struct {
		opts quantize.Options
		name string
		kind forward.Kind
	}{
		{quantize.Options{Scheme: quantize.Int8}, "int8", forward.KindInt8},
		{quantize.Options{Scheme: quantize.Int8, GroupSize: 16}, "int8-g16", forward.KindInt8},
		{quantize.Options{Scheme: quantize.FP16}, "fp16", forward.KindF16},
		{quantize.Options{Scheme: quantize.BF16}, "bf16", forward.KindBF16},
		{quantize.Options{Scheme: quantize.W4A16, GroupSize: 128}, "w4a16-g128", forward.KindInt4},
		{quantize.Options{Scheme: quantize.W4A16, GroupSize: 32, Asym: true}, "w4a16-g32-asym", forward.KindInt4},
		{quantize.Options{Scheme: quantize.FP8}, "fp8", forward.KindFP8},
	} {
		v, err := QuantizeVariant(c.opts)
		if err != nil || v.Name != c.name || v.Kind != c.kind || v.Label != "quantize "+c.name || v.Pass == nil {
			t.Errorf("%+v: %+v %v", c.opts, v, err)
		}
	}
	if _, err := QuantizeVariant(quantize.Options{Scheme: "int4"}); err == nil {
		t.Error("int4 accepted")
	}
	if _, err := ConvertVariant("onnx"); err == nil {
		t.Error("onnx accepted")
	}
	v := safetensorsVariant(t)
	if why := v.Skip(&formats.Layout{Kind: formats.KindSafetensors}); why == "" {
		t.Error("safetensors source not skipped")
	}
}

// A variant the mirror holds with a report that is not hubmirror's (pushed
// by hand) is taken as present and passed: nothing says it failed.
func TestRunPresentForeignReport(t *testing.T) {
	dir := modelDir(t, "llama-tiny-st", "llama-tiny")
	s := newStore(t)
	rep, err := Run(context.Background(), s, Options{Source: dir})
	if err != nil {
		t.Fatal(err)
	}
	files, err := mirror.DirFiles(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mirror.Push(context.Background(), s, rep.Source.Repo, files, mirror.PushOptions{
		Variant: &mirror.VariantSpec{Name: "int8", SourceRevision: "main", Report: []byte(`["made by hand"]`)}}); err != nil {
		t.Fatal(err)
	}
	var builds atomic.Int32
	rep, err = Run(context.Background(), s, Options{Source: dir, Variants: []Variant{counted(int8Variant(t), &builds)}})
	if err != nil {
		t.Fatal(err)
	}
	if v := rep.Variants[0]; v.Status != "present" || !v.Passed || v.Validation != nil || builds.Load() != 0 {
		t.Errorf("int8 %+v, %d builds", v, builds.Load())
	}
}

// A variant whose name is a branch of the repo is refused before it is
// built: the push could not take it.
func TestRunVariantNameTaken(t *testing.T) {
	dir := modelDir(t, "llama-tiny-st", "llama-tiny")
	s := newStore(t)
	var builds atomic.Int32
	rep, err := Run(context.Background(), s, Options{Source: dir, Revision: "int8", Variants: []Variant{counted(int8Variant(t), &builds)}})
	if !errors.Is(err, source.ErrRefused) || builds.Load() != 0 || rep.Variants[0].Status != "failed" {
		t.Errorf("%v, %d builds, %+v", err, builds.Load(), rep.Variants)
	}
	if m, err := mirror.Resolve(context.Background(), s, rep.Source.Repo, "int8"); err != nil || m.Variant != nil {
		t.Errorf("the branch int8 changed: %+v %v", m, err)
	}
}
