package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
)

// decoderClassifierParams corrects expectedParams for a decoder's
// *ForSequenceClassification: its score head (num_labels × hidden, no
// bias) instead of the causal LM's untied lm_head.
func decoderClassifierParams(t *testing.T, dir string) int64 {
	c, err := arch.ParseConfig(mustRead(t, filepath.Join(dir, "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(c.Architecture(), "ForSequenceClassification") || c.Bert() != nil || c.Roberta() != nil || c.DistilBert() != nil || c.MPNet() != nil || c.ModernBert() != nil {
		return 0
	}
	sc, err := c.SequenceClassification()
	if err != nil {
		t.Fatal(err)
	}
	s := c.Params.Sizes()
	n := int64(sc.NumLabels * s.HiddenSize)
	if c.GPT2() == nil && !s.TieWordEmbeddings {
		n -= int64(s.VocabSize * s.HiddenSize)
	}
	return n
}
