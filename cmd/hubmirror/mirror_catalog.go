package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/pipeline"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/storage"
)

// mirrorCatalog is `mirror --catalog`: the entries of this shard, and how
// to run them.
type mirrorCatalog struct {
	pipeline.CatalogOptions
	path         string
	entries      []pipeline.CatalogEntry
	total        int
	shard, count int
}

// catalogFlags checks the flags of mirror --catalog and reads the catalog;
// nil without --catalog.
func catalogFlags(c *cli.Context, args []string) (*mirrorCatalog, error) {
	path := c.String("catalog")
	if path == "" {
		for _, name := range []string{"shard", "parallel"} {
			if c.IsSet(name) {
				return nil, usageErrorf("--%s goes with --catalog", name)
			}
		}
		return nil, nil
	}
	if len(args) != 0 {
		return nil, usageErrorf("mirror --catalog takes no REPO argument (the catalog lists them), got %q", args)
	}
	for _, name := range []string{"revision", "repo-id"} {
		if c.IsSet(name) {
			return nil, usageErrorf("--%s does not go with --catalog (an entry is REPO[@REV])", name)
		}
	}
	if c.Int("parallel") < 1 {
		return nil, usageErrorf("--parallel %d: want at least 1", c.Int("parallel"))
	}
	mc := &mirrorCatalog{path: path, count: 1}
	mc.Parallel = c.Int("parallel")
	if s := c.String("shard"); s != "" {
		i, n, ok := strings.Cut(s, "/")
		var err1, err2 error
		mc.shard, err1 = strconv.Atoi(i)
		mc.count, err2 = strconv.Atoi(n)
		if !ok || err1 != nil || err2 != nil || mc.count < 1 || mc.shard < 0 || mc.shard >= mc.count {
			return nil, usageErrorf("--shard %q: want I/N with 0 <= I < N (I from 0, as JOB_COMPLETION_INDEX)", s)
		}
	}
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageErrorf("--catalog: %v", err)
		}
		defer f.Close()
		r = f
	}
	all, err := pipeline.ParseCatalog(r, path)
	if err != nil {
		return nil, usageErrorf("--catalog: %v", err)
	}
	mc.total = len(all)
	if mc.entries, err = pipeline.ShardCatalog(all, mc.shard, mc.count); err != nil {
		return nil, usageErrorf("--shard: %v", err)
	}
	groupSize := c.Int("group-size")
	mc.Variant = func(s quantize.Scheme) (pipeline.Variant, error) {
		o := quantize.Options{Scheme: s}
		switch s {
		case quantize.Int8:
			o.GroupSize = groupSize
		case quantize.W4A16:
			o.GroupSize = quantize.DefaultInt4GroupSize
		}
		return pipeline.QuantizeVariant(o)
	}
	return mc, nil
}

// runMirrorCatalog mirrors the catalog's entries of this shard into to:
// one JSON line per entry with --json (as each ends), else one text line,
// then a summary on the text output.
func runMirrorCatalog(ctx context.Context, to string, mc *mirrorCatalog, asJSON bool, w io.Writer) error {
	store, err := storage.Open(ctx, to, storage.OpenOptions{Create: true})
	if err != nil {
		return fmt.Errorf("step open %s: %w", to, err)
	}
	defer store.Close()
	if err := streamOutput(w); err != nil {
		return err
	}
	var writeErr error
	passed := 0
	err = pipeline.RunCatalog(ctx, store, mc.entries, mc.CatalogOptions, func(r pipeline.CatalogResult) {
		if r.Passed {
			passed++
		}
		if asJSON {
			b, err := marshal(r)
			if err == nil {
				_, err = fmt.Fprintf(w, "%s\n", b)
			}
			if err != nil && writeErr == nil {
				writeErr = err
			}
			return
		}
		if r.Passed {
			s := r.Report.Source
			fmt.Fprintf(w, "ok      line %d  %s  commit %s  %d files, uploaded %s\n", r.Line, r.Entry, s.Commit, s.Files, formatBytes(s.UploadedBytes))
		} else {
			fmt.Fprintf(w, "FAILED  line %d  %s  %s\n", r.Line, r.Entry, r.Error)
		}
	})
	if !asJSON {
		shard := ""
		if mc.count > 1 {
			shard = fmt.Sprintf(" (shard %d/%d of %d entries)", mc.shard, mc.count, mc.total)
		}
		fmt.Fprintf(w, "catalog %s: %d entries%s, %d passed, %d failed, into %s\n", mc.path, len(mc.entries), shard, passed, len(mc.entries)-passed, to)
	}
	if err != nil {
		return err
	}
	return writeErr
}
