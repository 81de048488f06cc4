// Package artifact turns a pass over a model into a published, validated
// model directory: it reads the source, applies a pass (convert, quantize,
// prune) tensor by tensor, writes safetensors shards with the config and the
// tokenizer and other side files, reads the written files back and runs the
// native forward pass on the original and the result, writes
// validation.json, and only then moves the directory into place. A result
// that fails validation is not published (unless forced, with the report
// marked failed), and an interrupted build leaves only a staging directory
// that the next build of the same destination removes.
package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/formats/safetensors"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/internal/atomicfile"
	"github.com/hubmirror/hubmirror/weights"
)

// ReportFile is the name of the validation report in every artifact.
const ReportFile = "validation.json"

// Pass maps a source graph to the artifact's graph and returns a report of
// what it changed, which is embedded in validation.json. The returned graph
// may compute its tensors lazily from the source's.
type Pass func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error)

// Options configure Build.
type Options struct {
	// ShardSize is the largest safetensors shard in bytes; 0 means one file.
	ShardSize int64
	// Validate configures the comparison; its Kind "" infers the kind from
	// the result's weights.
	Validate forward.ValidateOptions
	// Threads for the forward pass; 0 means all cores.
	Threads int
	// Force publishes a result that fails validation, with the report
	// marked failed.
	Force bool
	// Progress, when set, is told when each stage starts.
	Progress func(stage string)
	// Write, when set, writes the model files in place of the safetensors
	// shards (config.json and the side files are still written and
	// copied).
	Write Writer
	// Unvalidated, when set, says why the forward pass cannot check the
	// result (a format it does not read back): validation is skipped and
	// validation.json records the reason.
	Unvalidated string
	// SourceLabel names the source in the report (a repo id or mirror URL
	// the caller resolved to the local path it passes); "" means the path.
	SourceLabel string
	// ReleaseInterval is how often the mapped pages of the source are
	// handed back to the kernel while the result is written (see
	// releaseEvery); 0 means DefaultReleaseInterval, a negative value turns
	// it off. Validation releases before each layer instead.
	ReleaseInterval time.Duration
}

// Writer writes the model files of g (the pass's result; cfg is the
// source's parsed config, srcDir the source's directory or "") into dir and
// returns their names. It should call release between tensors: it hands
// back the source's mapped pages.
type Writer func(dir, srcDir string, g *weights.Graph, cfg *arch.Config, release func()) ([]string, error)

// DefaultReleaseInterval is the default of Options.ReleaseInterval. Measured
// on a 1.93 GB f32 Llama (bench/passes_memory.sh, 2 shared cores):
// validation peaked at 160-250 MB with 10ms but took a third longer (pages
// the forward pass reads twice fault back in), at 300-380 MB with 25ms and
// 0-15% longer than without, at 550-620 MB with 50ms.
const DefaultReleaseInterval = 25 * time.Millisecond

// Document is the content of validation.json.
type Document struct {
	Tool       string          `json:"tool"`
	Created    time.Time       `json:"created"`
	Source     string          `json:"source"`
	Pass       string          `json:"pass"`
	Changes    any             `json:"changes,omitempty"`
	Files      []string        `json:"files"`
	Passed     bool            `json:"passed"`
	Validation *forward.Report `json:"validation,omitempty"`
	// Error says why validation could not run, when it could not.
	Error string `json:"error,omitempty"`
	// Unvalidated says why the forward pass was not run (Options.Unvalidated).
	Unvalidated string `json:"unvalidated,omitempty"`
}

// Result is what Build did.
type Result struct {
	Dir       string
	Document  *Document
	Published bool
}

// ErrExists reports a destination that holds something other than an
// earlier artifact, which Build will not replace.
var ErrExists = errors.New("artifact: destination exists and is not a hubmirror artifact")

// Build applies pass to the model at src and publishes the validated
// result as the model directory dst. name labels the pass in the report.
// When validation fails, the returned error wraps forward.ErrValidationFailed
// and the Result still carries the report.
func Build(ctx context.Context, src, dst, name string, pass Pass, opts Options) (*Result, error) {
	stage := func(s string) {
		if opts.Progress != nil {
			opts.Progress(s)
		}
	}
	if err := checkDestination(dst); err != nil {
		return nil, err
	}
	layout, err := formats.Detect(src)
	if err != nil {
		return nil, err
	}
	stage("read")
	g, err := formats.OpenLayout(layout)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	var cfg *arch.Config
	if g.Config != nil {
		if cfg, err = arch.ParseConfig(g.Config); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
	}
	stage("pass")
	out, changes, err := pass(g, cfg)
	if err != nil {
		return nil, err
	}
	parent := filepath.Dir(filepath.Clean(dst))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	removeStale(dst)
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(dst)+".hubmirror-staging-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(staging, 0o755); err != nil { // MkdirTemp makes it 0700; it becomes dst
		os.RemoveAll(staging)
		return nil, err
	}
	published := false
	defer func() {
		if !published {
			os.RemoveAll(staging)
		}
	}()
	interval := opts.ReleaseInterval
	if interval == 0 {
		interval = DefaultReleaseInterval
	}
	stopReleasing := releaseEvery(interval, g.Release)
	defer stopReleasing() // before g.Close
	stage("write")
	var files []string
	if opts.Write != nil {
		files, err = opts.Write(staging, layout.Dir, out, cfg, g.Release)
	} else {
		files, err = writeSafetensors(staging, out, opts.ShardSize, g.Release)
	}
	if err != nil {
		return nil, err
	}
	side, err := writeSideFiles(staging, out, layout.Dir)
	if err != nil {
		return nil, err
	}
	stopReleasing() // validation releases layer by layer
	files = append(files, side...)
	label := src
	if opts.SourceLabel != "" {
		label = opts.SourceLabel
	}
	doc := &Document{Tool: "hubmirror", Created: time.Now().UTC(), Source: label, Pass: name, Changes: changes, Files: files}
	var rep *forward.Report
	var verr error
	if opts.Unvalidated != "" {
		doc.Unvalidated, doc.Passed = opts.Unvalidated, true
	} else {
		stage("validate")
		rep, verr = validate(ctx, g, cfg, layout.Dir, staging, opts)
		switch {
		case verr != nil && ctx.Err() != nil:
			return nil, verr
		case verr != nil:
			doc.Error = verr.Error()
		default:
			doc.Validation, doc.Passed = rep, rep.Passed
		}
	}
	if err := writeJSON(filepath.Join(staging, ReportFile), doc); err != nil {
		return nil, err
	}
	res := &Result{Dir: dst, Document: doc}
	if !doc.Passed && !opts.Force {
		if verr != nil {
			return res, fmt.Errorf("artifact: cannot validate %s, nothing written at %s: %w", src, dst, verr)
		}
		return res, fmt.Errorf("nothing written at %s: %w", dst, rep.Err())
	}
	stage("publish")
	if err := publish(staging, dst); err != nil {
		return nil, err
	}
	published, res.Published = true, true
	if !doc.Passed {
		if verr != nil {
			return res, fmt.Errorf("artifact: published %s unvalidated (--force): %w", dst, verr)
		}
		return res, fmt.Errorf("published %s with a failed report (--force): %w", dst, rep.Err())
	}
	return res, nil
}

// validate runs the original graph against the files just written.
// With a tokenizer in srcDir, it validates on text too.
func validate(ctx context.Context, g *weights.Graph, cfg *arch.Config, srcDir, dir string, opts Options) (*forward.Report, error) {
	if cfg == nil {
		return nil, fmt.Errorf("artifact: the source has no config.json, so the forward pass cannot run")
	}
	vo := opts.Validate
	var skipped string
	if vo.Tokenizer == nil && !vo.NoText {
		vo.Tokenizer, skipped = LoadTokenizer(srcDir)
		if vo.Tokenizer == nil && len(vo.Texts) > 0 {
			why := skipped
			if why == "" {
				why = "it has no tokenizer.json, vocab.txt or vocab.json + merges.txt"
			}
			return nil, fmt.Errorf("artifact: texts to validate on need the source's tokenizer: %s", why)
		}
	}
	// Each run touches every page of its model's weights: each model hands
	// its pages back before each layer and after each run, so that about
	// one layer of one model is resident at a time. Validate runs all its
	// inputs through a model in lockstep (forward.Model.RunBatch), so each
	// model's weights are read once.
	ref, err := forward.Load(g, cfg, forward.Options{Threads: opts.Threads, BeforeLayer: g.Release})
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	cg, err := formats.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("reading back the result: %w", err)
	}
	defer cg.Close()
	ccfg, err := arch.ParseConfig(cg.Config)
	if err != nil {
		return nil, fmt.Errorf("result config: %w", err)
	}
	cand, err := forward.Load(cg, ccfg, forward.Options{Threads: opts.Threads, BeforeLayer: cg.Release})
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	// A sentence-transformers model's sentence_embedding is compared too,
	// when the source's modules load (the weights are validated either way).
	if ref.LoadPooling(g) == nil {
		if err := cand.LoadPooling(cg); err != nil {
			return nil, fmt.Errorf("result: %w", err)
		}
	}
	g.Release()
	rep, err := forward.Validate(ctx, releasing{ref, g.Release}, releasing{cand, cg.Release}, vo)
	if err != nil {
		return nil, err
	}
	if skipped != "" {
		rep.TextSkipped = skipped
	}
	return rep, nil
}

// releaseEvery calls release every interval from a goroutine of its own
// until stop is called; stop returns once the goroutine has ended, so
// that the files behind release can be closed right after. interval <= 0
// starts nothing.
//
// This keeps the resident set of a streaming pass or a forward pass over a
// mapped model near the pages touched in the last interval (plus the heap)
// instead of the model's size: weights.Graph.Release drops the mapping's
// pages from the process (they stay in the page cache, and a read after it
// faults them back in), and is safe to call while other goroutines read
// the mapping. It is a rate, not a hard bound: a busy or descheduled
// process releases late. The cost is those faults, at most once per page
// per interval. Build uses it while it writes (a large tensor is read
// whole); validation releases deterministically, before each layer.
func releaseEvery(interval time.Duration, release func()) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				release()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}

// releasing is a forward.BatchRunner that hands back the mapped pages of
// its model's files after every run (see weights.Graph.Release).
type releasing struct {
	*forward.Model
	release func()
}

// Run runs the model, then releases its pages.
func (r releasing) Run(ctx context.Context, ids []int) (*forward.Outputs, error) {
	defer r.release()
	return r.Model.Run(ctx, ids)
}

// RunBatch runs the model on all inputs in lockstep (each layer's weights
// are read once for all of them), then releases its pages.
func (r releasing) RunBatch(ctx context.Context, inputs [][]int) ([]*forward.Outputs, error) {
	defer r.release()
	return r.Model.RunBatch(ctx, inputs)
}

// weightFile reports whether a file of a model directory holds weights
// (which the artifact replaces) rather than side files it copies.
func weightFile(name string) bool {
	for _, ext := range []string{".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return strings.HasSuffix(name, ".safetensors.index.json") || strings.HasSuffix(name, ".bin.index.json") ||
		name == "config.json" || name == ReportFile
}

// writeSafetensors writes g's tensors as safetensors shards and returns the
// names of the files written. release is called before each tensor is
// computed, when the writer is done with the one before: it hands back the
// source's mapped pages, so memory stays near the largest tensor.
func writeSafetensors(dir string, g *weights.Graph, shardSize int64, release func()) ([]string, error) {
	md := map[string]string{"format": "pt"}
	for k, v := range g.Metadata {
		md[k] = v
	}
	tensors := make([]*weights.Tensor, g.Len())
	for i, t := range g.Tensors() {
		x := *t
		x.Data = weights.SourceFunc(func() ([]byte, error) {
			release()
			return t.Bytes()
		})
		tensors[i] = &x
	}
	files, err := safetensors.WriteSharded(dir, tensors, md, shardSize)
	if err != nil {
		return nil, err
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	return files, nil
}

// writeSideFiles writes g's config and copies the side files of srcDir
// (tokenizer, generation config, ...), and returns their names.
func writeSideFiles(dir string, g *weights.Graph, srcDir string) ([]string, error) {
	var files []string
	if g.Config != nil {
		if err := atomicfile.WriteFile(filepath.Join(dir, "config.json"), g.Config); err != nil {
			return nil, err
		}
		files = append(files, "config.json")
	}
	if srcDir == "" {
		return files, nil
	}
	entries, err := os.ReadDir(srcDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if weightFile(name) || strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(srcDir, name)
		st, err := os.Stat(p) // follows the symlinks of a cache snapshot
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(dir, name), p); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	st, err := copySentenceModules(dir, srcDir)
	if err != nil {
		return nil, err
	}
	return append(files, st...), nil
}

// copySentenceModules copies the directories of the sentence-transformers
// modules that srcDir's modules.json names (1_Pooling, 2_Dense,
// 3_Normalize, ...; their files as they are: a Dense module's weights stay
// in float, as the heads do), so that the result is still a
// sentence-transformers model, and returns the names of the files copied.
// A directory without modules.json, or a modules.json that does not parse
// (the forward pass reports it), copies nothing.
func copySentenceModules(dir, srcDir string) ([]string, error) {
	raw, err := os.ReadFile(filepath.Join(srcDir, "modules.json"))
	if err != nil {
		return nil, nil
	}
	var mods []struct {
		Path string `json:"path"`
	}
	if json.Unmarshal(raw, &mods) != nil {
		return nil, nil
	}
	var files []string
	for _, m := range mods {
		sub := filepath.FromSlash(m.Path)
		if m.Path == "" || !filepath.IsLocal(sub) {
			continue
		}
		root := filepath.Join(srcDir, sub)
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			continue
		}
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(srcDir, p)
			if err != nil {
				return err
			}
			st, err := os.Stat(p) // follows the symlinks of a cache snapshot
			switch {
			case err != nil:
				return err
			case st.IsDir():
				return os.MkdirAll(filepath.Join(dir, rel), 0o755)
			case !st.Mode().IsRegular():
				return nil
			}
			if err := copyFile(filepath.Join(dir, rel), p); err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("copying the sentence-transformers module %s: %w", m.Path, err)
		}
	}
	return files, nil
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'))
}

// checkDestination refuses a destination that holds anything but an
// earlier artifact (a directory with validation.json) or nothing.
func checkDestination(dst string) error {
	entries, err := os.ReadDir(dst)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%w: %s: %v", ErrExists, dst, err)
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dst, ReportFile)); err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s (remove it or choose another directory)", ErrExists, dst)
}

// removeStale removes staging directories that interrupted builds of dst
// left behind.
func removeStale(dst string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Clean(dst)), "."+filepath.Base(dst)+".hubmirror-*"))
	for _, m := range matches {
		os.RemoveAll(m)
	}
}

// publish moves staging into place as dst; an earlier artifact at dst is
// replaced, and stays whole until the new one is in place.
func publish(staging, dst string) error {
	if err := os.Rename(staging, dst); err == nil {
		return nil
	} else if _, serr := os.Stat(dst); serr != nil {
		return err
	}
	old := filepath.Join(filepath.Dir(filepath.Clean(dst)), "."+filepath.Base(dst)+".hubmirror-old")
	os.RemoveAll(old)
	if err := os.Rename(dst, old); err != nil {
		return err
	}
	if err := os.Rename(staging, dst); err != nil {
		os.Rename(old, dst)
		return err
	}
	return os.RemoveAll(old)
}
