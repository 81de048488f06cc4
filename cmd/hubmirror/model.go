package main

import (
	"context"
	"fmt"

	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/weights"
)

// openModel resolves a MODEL argument of the command-line contract and reads
// it: a model directory or a weight file for now. The caller closes the
// Graph. cfg is nil when the model has no config.json.
func openModel(ctx context.Context, spec string) (*weights.Graph, *formats.Config, error) {
	_ = ctx
	g, err := formats.Open(spec)
	if err != nil {
		return nil, nil, err
	}
	if g.Config == nil {
		return g, nil, nil
	}
	cfg, err := formats.ParseConfig(g.Config)
	if err != nil {
		g.Close()
		return nil, nil, fmt.Errorf("%s: %w", spec, err)
	}
	return g, cfg, nil
}
