// Package pipeline is the mirroring job in one call: pull a repository
// from the Hub (or take any other source: a model directory received on
// disk, a Hugging Face cache snapshot, a revision of another mirror), push
// it into a mirror, build the requested variants (quantized, converted),
// validate each against the original with the native forward pass, and push
// the ones that pass beside their source, each with its validation report.
// It is what `hubmirror mirror` runs, as a CI job, a Kubernetes Job or a
// cron on the mirror host. It only orchestrates: package source resolves,
// records and publishes, package artifact builds and validates.
//
// Without variants, a repo streams from the Hub straight into the mirror
// (mirror.Pull), with no local copy; variants need the files on disk, so
// then the repo is pulled into the Hugging Face cache first.
//
// Run is idempotent: a rerun with nothing new downloads nothing (the
// mirror, or the Hugging Face cache, has the files), uploads nothing (the
// mirror has the blobs and the manifest) and rebuilds no variant that the
// mirror already holds for the same source commit (unless Rebuild); such a
// variant's stored report is judged again by the thresholds of the run.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/source"
	"github.com/hubmirror/hubmirror/storage"
	"github.com/hubmirror/hubmirror/weights"
)

// StepError names the step of the pipeline that failed.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("step %s: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Variant is one derived artifact to build: its revision name in the
// mirror, the pass that makes it and the kind of validation it gets.
type Variant struct {
	Name string
	// Label describes the pass in reports ("quantize int8").
	Label string
	Pass  artifact.Pass
	Kind  forward.Kind
	// Skip, when set, says why the source needs no such variant (a
	// safetensors conversion of a model already in safetensors); "" builds.
	Skip func(l *formats.Layout) string
}

// QuantizeVariant is the variant quantize.Quantize makes with opts; it is
// named after the scheme ("int8", "fp16", "bf16"; "int8-g128" with a group
// size).
func QuantizeVariant(opts quantize.Options) (Variant, error) {
	if _, err := quantize.ParseScheme(string(opts.Scheme)); err != nil {
		return Variant{}, err
	}
	name := string(opts.Scheme)
	if opts.GroupSize > 0 {
		name = fmt.Sprintf("%s-g%d", name, opts.GroupSize)
	}
	if opts.Asym {
		name += "-asym"
	}
	kind := map[quantize.Scheme]forward.Kind{quantize.Int8: forward.KindInt8, quantize.W4A16: forward.KindInt4, quantize.FP8: forward.KindFP8,
		quantize.W8A8: forward.KindInt8, quantize.FP16: forward.KindF16, quantize.BF16: forward.KindBF16}[opts.Scheme]
	return Variant{Name: name, Label: "quantize " + name, Kind: kind,
		Pass: func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			return quantize.Quantize(g, cfg, opts)
		}}, nil
}

// ConvertVariant is the pickle-to-safetensors conversion, named
// "safetensors"; a source already in safetensors needs none.
func ConvertVariant(target string) (Variant, error) {
	if target != "safetensors" {
		return Variant{}, fmt.Errorf("pipeline: --convert %q: the conversion target is safetensors", target)
	}
	return Variant{Name: "safetensors", Label: "convert safetensors", Kind: forward.KindExact,
		Pass: func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			return convert.DedupeShared(g, cfg)
		},
		Skip: func(l *formats.Layout) string {
			if l.Kind == formats.KindSafetensors || l.Kind == formats.KindSafetensorsIndex {
				return "the source is already safetensors"
			}
			return ""
		}}, nil
}

// Options configure Run.
type Options struct {
	// Source is any SRC (source.Resolve): a repo id org/name[@rev] pulled
	// from the Hub, a model directory, a snapshot directory of the Hugging
	// Face cache, or a revision of a mirror.
	Source string
	// Revision overrides the revision of a repo id (default main).
	Revision string
	// RepoID names the repo in the mirror of a source other than a Hub
	// repo id (default: a directory's source.DefaultRepoID, else the
	// source's repo).
	RepoID string
	// AllowUnparsed pushes a directory whose weight files do not parse.
	AllowUnparsed bool
	// Rebuild builds every variant again, even one the mirror holds for
	// the source commit.
	Rebuild bool
	// Hub is the client for repo ids; nil means one from the environment.
	Hub      *hubclient.Client
	Download hubclient.DownloadOptions
	Variants []Variant
	// Build configures the variant builds (shard size, threads, Force, the
	// validation inputs); Validate.Kind and Validate.Thresholds are set per
	// variant.
	Build artifact.Options
	// Thresholds returns the limits for a kind of validation; nil means
	// forward.DefaultThresholds.
	Thresholds func(forward.Kind) (forward.Thresholds, error)
	// WorkDir holds the variants while they are built and pushed; "" means a
	// temporary directory, removed afterwards.
	WorkDir string
	// Workers is the number of files pushed at once (0: mirror's default).
	Workers int
	// Progress, when set, is told each step as it starts.
	Progress func(step, detail string)
}

// SourceReport says what the pipeline did with the source.
type SourceReport struct {
	Repo     string `json:"repo"`
	Revision string `json:"revision"`
	Commit   string `json:"commit"`
	Dir      string `json:"dir"`
	Files    int    `json:"files"`
	Bytes    int64  `json:"bytes"`
	// Downloaded is what came from the Hub in this run.
	Downloaded int64 `json:"downloaded_bytes"`
	// Uploaded counts the blobs this run put into the mirror.
	Uploaded      int   `json:"uploaded_files"`
	UploadedBytes int64 `json:"uploaded_bytes"`
}

// VariantReport says what became of one variant.
type VariantReport struct {
	Name     string `json:"name"`
	Revision string `json:"revision"`
	// Status is "pushed", "present" (the mirror had it for this source
	// commit), "skipped" (see Reason), or "failed".
	Status        string          `json:"status"`
	Reason        string          `json:"reason,omitempty"`
	Commit        string          `json:"commit,omitempty"`
	Passed        bool            `json:"passed"`
	Validation    *forward.Report `json:"validation,omitempty"`
	Uploaded      int             `json:"uploaded_files"`
	UploadedBytes int64           `json:"uploaded_bytes"`
	Error         string          `json:"error,omitempty"`
}

// Report is the result of Run.
type Report struct {
	Source   SourceReport    `json:"source"`
	Variants []VariantReport `json:"variants"`
	Seconds  float64         `json:"seconds"`
	// Passed is false when a step failed.
	Passed bool `json:"passed"`
	// FailedStep names the first step that failed.
	FailedStep string `json:"failed_step,omitempty"`
}

// Run mirrors opts.Source into s with its variants. The report is returned
// also on failure, covering what was done; the error is a *StepError (it
// wraps forward.ErrValidationFailed when a variant failed validation).
// Every variant is attempted even when one fails.
func Run(ctx context.Context, s storage.Store, opts Options) (*Report, error) {
	start := time.Now()
	rep := &Report{Variants: []VariantReport{}}
	progress := func(step, detail string) {
		if opts.Progress != nil {
			opts.Progress(step, detail)
		}
	}
	fail := func(step string, err error) (*Report, error) {
		rep.Seconds = time.Since(start).Seconds()
		if rep.FailedStep == "" {
			rep.FailedStep = step
		}
		return rep, &StepError{Step: step, Err: err}
	}

	// 1. The source: a repo streamed from the Hub straight into the mirror
	// when no variant needs it on disk; else resolved (source.Resolve): a
	// pull into the Hugging Face cache, a directory, a cache snapshot, a
	// revision of a mirror.
	progress("pull", opts.Source)
	repo, rev, isRepo := source.RepoSpec(opts.Source)
	hub := opts.Hub
	if isRepo && hub == nil {
		var err error
		if hub, err = hubclient.New(hubclient.Options{Endpoint: hubclient.EndpointFromEnv(), Token: hubclient.TokenFromEnv()}); err != nil {
			return fail("pull", err)
		}
	}
	if t, _ := hubproto.SplitRepo(repo); isRepo && len(opts.Variants) > 0 && t != hubproto.RepoTypeModel {
		return fail("pull", fmt.Errorf("%s is a %s: variants (quantize, convert) are built from models only: %w", repo, t, source.ErrSpec))
	}
	if isRepo && len(opts.Variants) == 0 && !opts.Download.Offline {
		src, err := stream(ctx, s, hub, repo, rev, opts)
		if err != nil {
			return fail("pull", err)
		}
		rep.Source = *src
		rep.Seconds, rep.Passed = time.Since(start).Seconds(), true
		return rep, nil
	}
	so := source.Options{Hub: hub, Download: opts.Download, CacheDir: opts.Download.CacheDir, Revision: opts.Revision}
	if !isRepo {
		so.RepoID = opts.RepoID // a Hub repo keeps its id, streamed or not
	}
	src, err := source.Resolve(ctx, opts.Source, so)
	if err != nil {
		if opts.RepoID != "" && errors.Is(err, mirror.ErrInvalid) {
			err = fmt.Errorf("%w (name it with --repo-id)", err)
		}
		return fail("pull", err)
	}
	defer src.Close()
	isModel := src.RequireModel() == nil
	if len(opts.Variants) > 0 && !isModel {
		return fail("pull", src.RequireModel())
	}
	files, err := src.Files()
	if err != nil {
		return fail("pull", err)
	}
	rep.Source = SourceReport{Repo: src.Repo, Revision: src.Revision, Commit: src.Commit, Dir: src.Path, Files: len(files),
		Downloaded: src.Downloaded}
	if rep.Source.Revision == "" {
		rep.Source.Revision = hubclient.DefaultRevision
	}
	for _, f := range files {
		rep.Source.Bytes += f.Size
	}

	// 2. Push the source.
	progress("push", src.Repo+"@"+rep.Source.Revision)
	pr, err := source.Push(ctx, s, src, source.PushOptions{Jobs: opts.Workers, AllowUnparsed: opts.AllowUnparsed || !isModel})
	if err != nil {
		return fail("push", err)
	}
	rep.Source.Commit = pr.Commit
	rep.Source.Uploaded, rep.Source.UploadedBytes = pr.Uploaded, pr.UploadedBytes
	if len(opts.Variants) == 0 {
		rep.Seconds, rep.Passed = time.Since(start).Seconds(), true
		return rep, nil
	}

	// 3. The variants, built from the source's files on disk.
	dir, err := src.Local(ctx)
	if err != nil {
		return fail("variants", err)
	}
	rep.Source.Dir = dir
	work := opts.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "hubmirror-mirror-"); err != nil {
			return fail("variants", err)
		}
		defer os.RemoveAll(work)
	}
	layout, err := formats.Detect(dir)
	if err != nil {
		return fail("variants", err)
	}
	var firstErr error
	for _, v := range opts.Variants {
		vr, err := buildVariant(ctx, s, opts, v, dir, layout, rep.Source, work, progress)
		rep.Variants = append(rep.Variants, vr)
		if err != nil && firstErr == nil {
			firstErr = &StepError{Step: v.Label, Err: err}
			rep.FailedStep = v.Label
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Passed = firstErr == nil
	return rep, firstErr
}

// stream mirrors a repo id from the Hub without a local copy (mirror.Pull).
func stream(ctx context.Context, s storage.Store, hub *hubclient.Client, repo, rev string, opts Options) (*SourceReport, error) {
	if opts.Revision != "" {
		rev = opts.Revision
	}
	if rev == "" {
		rev = hubclient.DefaultRevision
	}
	pr, err := mirror.Pull(ctx, hub, s, repo, rev, mirror.PullOptions{Include: opts.Download.Include, Exclude: opts.Download.Exclude, Jobs: opts.Workers,
		Connections: opts.Download.Connections})
	if err != nil {
		return nil, err
	}
	return &SourceReport{Repo: repo, Revision: rev, Commit: pr.Commit, Files: pr.Files, Bytes: pr.Bytes,
		Downloaded: pr.Downloaded, Uploaded: pr.Uploaded, UploadedBytes: pr.UploadedBytes}, nil
}

// buildVariant builds, validates and pushes one variant, unless the mirror
// already holds it for the source commit (and opts.Rebuild is off). A held
// variant's stored report is judged again by the thresholds in force now.
func buildVariant(ctx context.Context, s storage.Store, opts Options, v Variant, dir string, layout *formats.Layout,
	src SourceReport, work string, progress func(string, string)) (VariantReport, error) {
	vr := VariantReport{Name: v.Name, Revision: v.Name}
	failed := func(err error) (VariantReport, error) {
		vr.Status, vr.Error = "failed", err.Error()
		return vr, err
	}
	if v.Skip != nil {
		if why := v.Skip(layout); why != "" {
			vr.Status, vr.Reason, vr.Passed = "skipped", why, true
			return vr, nil
		}
	}
	thresholds := forward.DefaultThresholds
	if opts.Thresholds != nil {
		thresholds = opts.Thresholds
	}
	th, err := thresholds(v.Kind)
	if err != nil {
		return failed(err)
	}
	if !opts.Rebuild {
		if vr, done, err := presentVariant(ctx, s, v, src, th); done {
			return vr, err
		}
	}
	// A branch or tag of that name would refuse the push after the build.
	if err := source.CheckRef(ctx, s, src.Repo, v.Name, true); err != nil {
		return failed(err)
	}
	progress(v.Label, "build and validate")
	out := filepath.Join(work, v.Name)
	bo := opts.Build
	bo.Validate.Kind = v.Kind
	bo.Validate.Thresholds = &th
	res, err := artifact.Build(ctx, dir, out, v.Label, v.Pass, bo)
	if res != nil && res.Document != nil {
		vr.Validation = res.Document.Validation
		vr.Passed = res.Document.Passed
	}
	if err != nil && (res == nil || !res.Published) {
		return failed(err)
	}
	progress(v.Label, "push")
	pr, perr := source.PublishVariant(ctx, s, src.Repo, v.Name, src.Commit, out, source.PublishOptions{Jobs: opts.Workers})
	if perr != nil {
		return failed(perr)
	}
	vr.Commit, vr.Uploaded, vr.UploadedBytes = pr.Commit, pr.Uploaded, pr.UploadedBytes
	vr.Status = "pushed"
	if err != nil { // published with --force despite a failed validation
		vr.Error = err.Error()
		return vr, err
	}
	return vr, nil
}

// presentVariant reports a variant the mirror holds for the source commit,
// its stored report judged by th; done is false when there is none.
func presentVariant(ctx context.Context, s storage.Store, v Variant, src SourceReport, th forward.Thresholds) (vr VariantReport, done bool, err error) {
	vr = VariantReport{Name: v.Name, Revision: v.Name}
	m, err := mirror.Resolve(ctx, s, src.Repo, v.Name)
	if errors.Is(err, mirror.ErrRevisionNotFound) || errors.Is(err, mirror.ErrRepoNotFound) {
		return vr, false, nil
	}
	if err != nil {
		vr.Status, vr.Error = "failed", err.Error()
		return vr, true, err
	}
	if m.Variant == nil || m.Variant.SourceCommit != src.Commit {
		return vr, false, nil
	}
	vr.Status, vr.Commit = "present", m.Commit
	vr.Reason = "the mirror holds this variant of commit " + src.Commit
	doc, err := source.StoredReport(ctx, s, m)
	if err != nil {
		vr.Error = err.Error()
		return vr, true, err
	}
	if doc.Validation != nil {
		// Judged by today's thresholds: a variant published with --force
		// passes once the limits allow it, and fails while they do not.
		doc.Validation.Judge(th)
		vr.Validation, vr.Passed = doc.Validation, doc.Validation.Passed
	} else {
		vr.Passed = doc.Passed == nil || *doc.Passed
	}
	if !vr.Passed {
		err := fmt.Errorf("the mirror holds %s@%s, published despite a failed validation (rebuild it with --rebuild): %s", src.Repo, v.Name, doc.Error)
		if doc.Validation != nil {
			err = fmt.Errorf("the mirror holds %s@%s, published despite a failed validation (rebuild it with --rebuild): %w", src.Repo, v.Name, doc.Validation.Err())
		}
		vr.Error = err.Error()
		return vr, true, err
	}
	return vr, true, nil
}
