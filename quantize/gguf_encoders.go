package quantize

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/weights"
)

// ggufEncoder is how llama.cpp's convert_hf_to_gguf.py lays out an encoder
// family (conversion/bert.py: BertModel, RobertaModel, XLMRobertaModel,
// DistilBertModel, ModernBertModel): llama.cpp computes embeddings with
// these architectures (the last hidden states, pooled as the file's
// pooling_type says) and, with its rank pooling, the scores of a sequence
// classification head; the other heads (masked-LM heads, DistilBERT's
// classifier, ReLU then linear, which llama.cpp's graph cannot compute)
// are not written.
type ggufEncoder struct {
	// arch is general.architecture: "bert" (BERT, RoBERTa, XLM-RoBERTa,
	// CamemBERT, DistilBERT) or "modern-bert".
	arch string
	// prefixes are stripped from checkpoint names (the base model's
	// attribute in the *For* classes).
	prefixes []string
	// embeddings maps the names outside the layers (without
	// .weight/.bias) to llama.cpp's.
	embeddings map[string]string
	// layer is the Hugging Face layer prefix pattern (the layer number
	// in group 1, the rest in group 2).
	layer *regexp.Regexp
	// layerPrefix is the Hugging Face prefix of layer i's tensors (the
	// inverse of layer, for reading a file back).
	layerPrefix func(i int) string
	// layerNames maps the names inside a layer to llama.cpp's.
	layerNames map[string]string
	// heads are the prefixes of head tensors, which are not written.
	heads []string
	// positionOffset is the number of position embedding rows dropped
	// (RoBERTa's padding_idx + 1: its positions start there).
	positionOffset int
	// classifier maps the tensors of a sequence classification head to
	// llama.cpp's cls (a dense layer and tanh on the first token's hidden
	// state) and cls.output (the labels' scores), which its bert graph
	// computes with the rank pooling; written when the checkpoint has
	// classifier (its output layer), dropped with the other heads
	// otherwise.
	classifier map[string]string
	// classifierOut is the name of the classifier's output layer.
	classifierOut string
}

var (
	// BERT's pooler (dense, tanh) then classifier.
	ggufBertClassifier = map[string]string{arch.BertPooler: "cls", arch.BertClassifier: "cls.output"}
	// RoBERTa's head: dense, tanh, out_proj.
	ggufRobertaClassifier = map[string]string{arch.RobertaClassDense: "cls", arch.RobertaClassOutProj: "cls.output"}
	// ModernBERT's head (dense, GELU, norm) then classifier.
	ggufModernBertClassifier = map[string]string{arch.ModernBertHeadDense: "cls", arch.ModernBertHeadNorm: "cls.norm",
		arch.ModernBertClassifier: "cls.output"}
)

var (
	ggufBertLayer       = regexp.MustCompile(`^encoder\.layer\.(\d+)\.(.+)$`)
	ggufDistilBertLayer = regexp.MustCompile(`^transformer\.layer\.(\d+)\.(.+)$`)
	ggufModernBertLayer = regexp.MustCompile(`^layers\.(\d+)\.(.+)$`)

	ggufBertEmbeddings = map[string]string{
		arch.BertWordEmbeddings:      "token_embd",
		arch.BertPositionEmbeddings:  "position_embd",
		arch.BertTokenTypeEmbeddings: "token_types",
		arch.BertEmbeddingsNorm:      "token_embd_norm",
	}
	ggufBertLayerNames = map[string]string{
		arch.BertQuery:           "attn_q",
		arch.BertKey:             "attn_k",
		arch.BertValue:           "attn_v",
		arch.BertAttentionOutput: "attn_output",
		arch.BertAttentionNorm:   "attn_output_norm",
		arch.BertIntermediate:    "ffn_up",
		arch.BertOutput:          "ffn_down",
		arch.BertOutputNorm:      "layer_output_norm",
	}
	ggufDistilBertLayerNames = map[string]string{
		arch.DistilBertQuery:           "attn_q",
		arch.DistilBertKey:             "attn_k",
		arch.DistilBertValue:           "attn_v",
		arch.DistilBertAttentionOutput: "attn_output",
		arch.DistilBertAttentionNorm:   "attn_output_norm",
		arch.DistilBertFFNIn:           "ffn_up",
		arch.DistilBertFFNOut:          "ffn_down",
		arch.DistilBertOutputNorm:      "layer_output_norm",
	}
	ggufModernBertEmbeddings = map[string]string{
		arch.ModernBertEmbeddings:     "token_embd",
		arch.ModernBertEmbeddingsNorm: "token_embd_norm",
		arch.ModernBertFinalNorm:      "output_norm",
	}
	ggufModernBertLayerNames = map[string]string{
		arch.ModernBertAttnNorm:   "attn_norm",
		arch.ModernBertQKV:        "attn_qkv",
		arch.ModernBertAttnOutput: "attn_output",
		arch.ModernBertMLPNorm:    "ffn_norm",
		arch.ModernBertMLPIn:      "ffn_up", // input half then gate half: llama.cpp's GEGLU order
		arch.ModernBertMLPOut:     "ffn_down",
	}
)

// ggufFloat32Tensors are kept F32 whatever the type, as
// convert_hf_to_gguf.py keeps them (llama.cpp adds rows of them to
// activations).
var ggufFloat32Tensors = map[string]bool{"position_embd.weight": true, "token_types.weight": true}

// ggufEncoderOf returns the GGUF layout of an encoder model, nil for a
// model of another family, or an error for an encoder llama.cpp has no
// architecture for (MPNet).
func ggufEncoderOf(cfg *arch.Config) (*ggufEncoder, error) {
	if cfg == nil || cfg.Params == nil {
		return nil, nil
	}
	bertHeads := []string{"pooler.", "cls.", "lm_head.", "classifier."}
	switch {
	case cfg.Bert() != nil:
		return &ggufEncoder{arch: "bert", prefixes: []string{"bert."}, embeddings: ggufBertEmbeddings,
			layer: ggufBertLayer, layerPrefix: arch.BertLayer, layerNames: ggufBertLayerNames, heads: bertHeads,
			classifier: ggufBertClassifier, classifierOut: arch.BertClassifier}, nil
	case cfg.Roberta() != nil:
		return &ggufEncoder{arch: "bert", prefixes: []string{"roberta."}, embeddings: ggufBertEmbeddings,
			layer: ggufBertLayer, layerPrefix: arch.BertLayer, layerNames: ggufBertLayerNames, heads: bertHeads,
			positionOffset: cfg.Roberta().PadTokenID + 1,
			classifier:     ggufRobertaClassifier, classifierOut: arch.RobertaClassOutProj}, nil
	case cfg.DistilBert() != nil:
		return &ggufEncoder{arch: "bert", prefixes: []string{"distilbert."}, embeddings: ggufBertEmbeddings,
			layer: ggufDistilBertLayer, layerPrefix: arch.DistilBertLayer, layerNames: ggufDistilBertLayerNames,
			heads: []string{"vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "pre_classifier.", "classifier."}}, nil
	case cfg.ModernBert() != nil:
		e := &ggufEncoder{arch: "modern-bert", prefixes: []string{"model."}, embeddings: ggufModernBertEmbeddings,
			layer: ggufModernBertLayer, layerPrefix: arch.ModernBertLayer, layerNames: ggufModernBertLayerNames,
			heads: []string{"head.", "decoder.", "classifier."}}
		// llama.cpp's modern-bert ranks the mean of the hidden states
		// through cls (no bias), GELU, cls.norm (no bias) and cls.output.
		m := cfg.ModernBert()
		if m.ClassifierPooling == "mean" && !m.ClassifierBias && !m.NormBias &&
			slices.Contains([]string{"gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast"}, m.ClassifierActivation) {
			e.classifier, e.classifierOut = ggufModernBertClassifier, arch.ModernBertClassifier
		}
		return e, nil
	case cfg.MPNet() != nil:
		return nil, fmt.Errorf("%w: %s: llama.cpp has no MPNet architecture (its convert_hf_to_gguf.py registers no MPNet class and its architecture list has no mpnet)",
			ErrGGUFUnsupported, cfg.Architecture())
	}
	return nil, nil
}

// ggufName maps a checkpoint tensor name to llama.cpp's: ok is false for a
// name it does not know, head is set for a head tensor (not written).
func (e *ggufEncoder) ggufName(name string) (gname string, head, ok bool) {
	for _, p := range e.prefixes {
		name = strings.TrimPrefix(name, p)
	}
	// BERT's TensorFlow-era names.
	if s, ok := strings.CutSuffix(name, ".gamma"); ok {
		name = s + ".weight"
	} else if s, ok := strings.CutSuffix(name, ".beta"); ok {
		name = s + ".bias"
	}
	base, suffix, ok := cutParam(name)
	if n, isCls := e.classifier[base]; ok && isCls && e.classifierOut != "" {
		return n + suffix, false, true
	}
	for _, h := range e.heads {
		if strings.HasPrefix(name, h) {
			return "", true, true
		}
	}
	if !ok {
		return "", false, false
	}
	if n, ok := e.embeddings[base]; ok {
		return n + suffix, false, true
	}
	m := e.layer.FindStringSubmatch(base)
	if m == nil {
		return "", false, false
	}
	n, ok := e.layerNames[m[2]]
	if !ok {
		return "", false, false
	}
	return "blk." + m[1] + "." + n + suffix, false, true
}

// cutParam splits a parameter name into its module and ".weight"/".bias".
func cutParam(name string) (base, suffix string, ok bool) {
	for _, s := range []string{".weight", ".bias"} {
		if b, ok := strings.CutSuffix(name, s); ok {
			return b, s, true
		}
	}
	return "", "", false
}

// ggufEncoderGGUF is GGUF for the encoder families: the body of the model
// (embeddings, layers, ModernBERT's final norm) with llama.cpp's names, the
// hyperparameters llama.cpp's bert and modern-bert graphs read (bidirectional
// attention, the token type count, ModernBERT's sliding windows, their
// pattern and RoPE bases, the pooling type of a sentence-transformers
// Pooling module beside the model), RoBERTa's position embeddings from
// padding_idx + 1 on (llama.cpp counts positions from 0), and the
// vocabulary: WordPiece as tokenizer.ggml.model "bert", Unigram as "t5",
// byte-level BPE as "gpt2" (see readGGUFEncoderVocab). A sequence
// classification head that llama.cpp's rank pooling computes is written as
// cls and cls.output with the labels (BERT's pooler and classifier,
// RoBERTa's head, ModernBERT's head with mean pooling: unlike
// convert_hf_to_gguf.py, which drops BERT's pooler); the other heads are
// dropped (GGUFReport.Skipped). What llama.cpp's
// graphs compute otherwise (another activation, ModernBERT's biases or a
// layer pattern other than a global layer every
// global_attn_every_n_layers from the first, relative position
// embeddings) is refused, as are llama-quantize's mixes (q4_0, q4_k_m,
// ...), whose per-tensor choices are made for decoders.
func ggufEncoderGGUF(g *weights.Graph, cfg *arch.Config, e *ggufEncoder, opts GGUFOptions) (*GGUFModel, error) {
	tname := opts.Type
	if tname == "" {
		tname = "q8_0"
	}
	gt, ok := ggufTypes[tname]
	if !ok || gt.mix {
		return nil, fmt.Errorf("%w: type %q for the encoder %s (want q8_0, f16, bf16 or f32)", ErrGGUFUnsupported, tname, cfg.Architecture())
	}
	hp, vocabRows, typeCount, err := ggufEncoderHyperparameters(e, cfg)
	if err != nil {
		return nil, err
	}
	rep := &GGUFReport{Format: "gguf", Architecture: e.arch, FileType: gt.name, Tensors: []GGUFTensor{}}
	md := ggufGeneral(e.arch, opts.Name)
	md = append(md, hp...)
	if opts.TokenizerDir != "" {
		pooling, err := ggufPoolingType(opts.TokenizerDir)
		if err != nil {
			return nil, err
		}
		if pooling > 0 {
			md = append(md, gguf.KV{Key: e.arch + ".pooling_type", Value: pooling})
		}
	}
	md = append(md, ggufFileType(gt.fileType)...)
	if e.arch == "bert" {
		// llama.cpp's bert graph requires it, vocabulary or not.
		md = append(md, gguf.KV{Key: "tokenizer.ggml.token_type_count", Value: uint32(typeCount)})
	}
	vocab, desc, err := ggufVocabulary(opts, func(dir string) ([]gguf.KV, string, error) {
		v, err := readGGUFEncoderVocab(dir, vocabRows)
		if err != nil {
			return nil, "", err
		}
		return v.metadata(), v.describe(), nil
	})
	if err != nil {
		return nil, err
	}
	md, rep.Vocabulary = append(md, vocab...), desc

	labels, err := e.classifierLabels(g, cfg)
	if err != nil {
		return nil, err
	}
	if labels != nil {
		md = append(md, gguf.KV{Key: e.arch + ".classifier.output_labels", Value: labels})
	}

	var tensors []*gguf.Tensor
	written := map[string]string{}
	for _, t := range g.Tensors() {
		if arch.IsBuffer(t.Name) || strings.HasSuffix(t.Name, ".position_ids") {
			rep.Skipped = append(rep.Skipped, t.Name)
			continue
		}
		gname, head, ok := e.ggufName(t.Name)
		if !ok {
			return nil, fmt.Errorf("%w: tensor %s has no place in llama.cpp's %s layout", ErrGGUFUnsupported, t.Name, e.arch)
		}
		if head {
			rep.Skipped = append(rep.Skipped, t.Name) // llama.cpp computes embeddings
			continue
		}
		if prev, ok := written[gname]; ok {
			return nil, fmt.Errorf("%w: tensors %s and %s are both llama.cpp's %s", ErrGGUFUnsupported, prev, t.Name, gname)
		}
		written[gname] = t.Name
		switch t.DType {
		case weights.F32, weights.F16, weights.BF16:
		default:
			return nil, fmt.Errorf("%w: tensor %s is %v", ErrGGUFUnsupported, t.Name, t.DType)
		}
		src := t
		if gname == "position_embd.weight" && e.positionOffset > 0 {
			if src, err = dropRows(t, e.positionOffset); err != nil {
				return nil, err
			}
		}
		typ := gt.typ
		if ggufFloat32Tensors[gname] {
			typ = gguf.TypeF32
		}
		out, err := ggufTensor(src, gname, typ, 0, 0, opts.Threads)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, out)
		rep.Tensors = append(rep.Tensors, GGUFTensor{Name: t.Name, GGUF: gname, From: t.DType, To: out.Type.String(), Shape: src.Shape})
	}
	for _, need := range []string{"token_embd.weight", "token_embd_norm.weight"} {
		if _, ok := written[need]; !ok {
			return nil, fmt.Errorf("%w: %s has no tensor for llama.cpp's %s", ErrGGUFUnsupported, cfg.Architecture(), need)
		}
	}
	return &GGUFModel{Metadata: md, Tensors: tensors, Report: rep}, nil
}

// classifierLabels returns the labels of the model's sequence
// classification head (config.json's id2label, LABEL_<i> without it), nil
// without one, in which case the head's tensors are not written
// (e.classifierOut is cleared).
func (e *ggufEncoder) classifierLabels(g *weights.Graph, cfg *arch.Config) ([]string, error) {
	if e.classifierOut == "" {
		return nil, nil
	}
	var out *weights.Tensor
	for _, p := range append([]string{""}, e.prefixes...) {
		if t, ok := g.Tensor(p + e.classifierOut + ".weight"); ok {
			out = t
		}
	}
	if out == nil {
		e.classifierOut = ""
		return nil, nil
	}
	if len(out.Shape) != 2 || out.Shape[0] < 1 {
		return nil, fmt.Errorf("%w: %s has shape %v", ErrGGUFUnsupported, out.Name, out.Shape)
	}
	n := int(out.Shape[0])
	labels := make([]string, n)
	for i := range labels {
		labels[i] = fmt.Sprintf("LABEL_%d", i)
	}
	var id2label map[string]string
	if raw, ok := cfg.Raw["id2label"]; ok && json.Unmarshal(raw, &id2label) == nil {
		for k, v := range id2label {
			var i int
			if _, err := fmt.Sscan(k, &i); err == nil && i >= 0 && i < n {
				labels[i] = v
			}
		}
	}
	return labels, nil
}

// dropRows returns t without its first n rows.
func dropRows(t *weights.Tensor, n int) (*weights.Tensor, error) {
	if len(t.Shape) != 2 || t.Shape[0] <= int64(n) {
		return nil, fmt.Errorf("%w: tensor %s has shape %v: no rows after the first %d (positions start at padding_idx + 1)", ErrGGUFUnsupported, t.Name, t.Shape, n)
	}
	rowBytes := t.Shape[1] * int64(t.DType.Size())
	out := &weights.Tensor{Name: t.Name, DType: t.DType, Shape: []int64{t.Shape[0] - int64(n), t.Shape[1]}}
	out.Data = weights.SourceFunc(func() ([]byte, error) {
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		if int64(len(b)) != t.Shape[0]*rowBytes {
			return nil, fmt.Errorf("quantize: tensor %s: %d bytes for shape %v", t.Name, len(b), t.Shape)
		}
		return b[int64(n)*rowBytes:], nil
	})
	return out, nil
}

// ggufEncoderHyperparameters returns the hyperparameters of an encoder as
// llama.cpp reads them, the number of rows of its token embeddings (the
// vocabulary's size) and its token type count.
func ggufEncoderHyperparameters(e *ggufEncoder, cfg *arch.Config) (md []gguf.KV, vocab, typeCount int, err error) {
	add := func(key string, v any) { md = append(md, gguf.KV{Key: e.arch + "." + key, Value: v}) }
	gelu := func(act string) error {
		switch act {
		case "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
			return nil
		}
		return fmt.Errorf("%w: activation %q: llama.cpp's %s graph computes GELU", ErrGGUFUnsupported, act, e.arch)
	}
	var ctx, hidden, ff, layers, heads int
	var eps float64
	switch {
	case cfg.Bert() != nil || cfg.Roberta() != nil:
		b := cfg.Bert()
		if b == nil {
			b = &cfg.Roberta().BertConfig
		}
		if err := gelu(b.HiddenAct); err != nil {
			return nil, 0, 0, err
		}
		if b.PositionEmbeddingType != "absolute" {
			return nil, 0, 0, fmt.Errorf("%w: position_embedding_type %q: llama.cpp's bert graph adds absolute position embeddings", ErrGGUFUnsupported, b.PositionEmbeddingType)
		}
		ctx, hidden, ff, layers, heads, eps = b.MaxPositionEmbeddings-e.positionOffset, b.HiddenSize, b.IntermediateSize, b.NumHiddenLayers, b.NumAttentionHeads, b.LayerNormEps
		vocab, typeCount = b.VocabSize, max(b.TypeVocabSize, 1)
	case cfg.DistilBert() != nil:
		d := cfg.DistilBert()
		if err := gelu(d.Activation); err != nil {
			return nil, 0, 0, err
		}
		ctx, hidden, ff, layers, heads, eps = d.MaxPositionEmbeddings, d.Dim, d.HiddenDim, d.NLayers, d.NHeads, arch.DistilBertEps
		vocab, typeCount = d.VocabSize, 1 // no token type embeddings
	case cfg.ModernBert() != nil:
		m := cfg.ModernBert()
		if m.NormBias || m.AttentionBias || m.MLPBias {
			return nil, 0, 0, fmt.Errorf("%w: modernbert with biases (norm_bias %v, attention_bias %v, mlp_bias %v): llama.cpp's modern-bert graph has none",
				ErrGGUFUnsupported, m.NormBias, m.AttentionBias, m.MLPBias)
		}
		act := "gelu"
		switch m.HiddenActivation {
		case "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		case "silu", "swish":
			act = "silu"
		default:
			return nil, 0, 0, fmt.Errorf("%w: hidden_activation %q: llama.cpp's modern-bert graph computes GeGLU or SwiGLU", ErrGGUFUnsupported, m.HiddenActivation)
		}
		for i, local := range m.Local {
			if local != (i%m.GlobalAttnEveryNLayers != 0) {
				return nil, 0, 0, fmt.Errorf("%w: layer %d's attention is %s: llama.cpp's modern-bert graph makes every %dth layer global from the first, the others sliding-window",
					ErrGGUFUnsupported, i, map[bool]string{true: "sliding-window", false: "global"}[local], m.GlobalAttnEveryNLayers)
			}
			if m.RopeType[i] != "default" {
				return nil, 0, 0, fmt.Errorf("%w: layer %d's rope_type %q: llama.cpp's modern-bert graph has no RoPE scaling", ErrGGUFUnsupported, i, m.RopeType[i])
			}
		}
		// llama.cpp takes one RoPE base for the global layers, one for the
		// sliding-window layers.
		global, local := m.GlobalRopeTheta, m.LocalRopeTheta
		base := map[bool]float64{}
		for i, th := range m.RopeTheta {
			if b, ok := base[m.Local[i]]; ok && b != th {
				return nil, 0, 0, fmt.Errorf("%w: layer %d's RoPE base %g, another layer of its kind's %g: llama.cpp's modern-bert graph takes one base for the global layers, one for the sliding-window layers",
					ErrGGUFUnsupported, i, th, b)
			}
			base[m.Local[i]] = th
		}
		if b, ok := base[false]; ok {
			global = b
		}
		if b, ok := base[true]; ok {
			local = b
		}
		ctx, hidden, ff, layers, heads, eps = m.MaxPositionEmbeddings, m.HiddenSize, m.IntermediateSize, m.NumHiddenLayers, m.NumAttentionHeads, m.NormEps
		vocab = m.VocabSize
		defer func() {
			if err == nil {
				add("attention.sliding_window", uint32(m.LocalAttention))
				add("attention.sliding_window_pattern", uint32(m.GlobalAttnEveryNLayers))
				add("rope.freq_base", float32(global))
				add("rope.freq_base_swa", float32(local))
				add("rope.scaling.type", "none")
				add("hidden_activation", act)
			}
		}()
	default:
		return nil, 0, 0, fmt.Errorf("%w: %s is not an encoder GGUF writes", ErrGGUFUnsupported, cfg.Architecture())
	}
	if ctx <= 0 {
		return nil, 0, 0, fmt.Errorf("%w: no positions after padding_idx + 1 = %d", ErrGGUFUnsupported, e.positionOffset)
	}
	add("context_length", uint32(ctx))
	add("embedding_length", uint32(hidden))
	add("feed_forward_length", uint32(ff))
	add("block_count", uint32(layers))
	add("attention.head_count", uint32(heads))
	add("attention.layer_norm_epsilon", float32(eps))
	add("attention.causal", false)
	add("vocab_size", uint32(vocab))
	return md, vocab, typeCount, nil
}

// ggufPoolingType returns llama.cpp's pooling type (1 mean, 2 cls, 3 last)
// of the sentence-transformers Pooling module of the model in dir, 0
// without one (as convert_hf_to_gguf.py's _try_set_pooling_type).
func ggufPoolingType(dir string) (uint32, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "modules.json"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	var modules []struct {
		Type string `json:"type"`
		Path string `json:"path"`
	}
	if err := json.Unmarshal(raw, &modules); err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrGGUFUnsupported, filepath.Join(dir, "modules.json"), err)
	}
	for _, m := range modules {
		if !strings.HasSuffix(m.Type, "Pooling") {
			continue
		}
		p := filepath.Join(dir, m.Path, "config.json")
		raw, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		var c map[string]any
		if err := json.Unmarshal(raw, &c); err != nil {
			return 0, fmt.Errorf("%w: %s: %v", ErrGGUFUnsupported, p, err)
		}
		// sentence-transformers concatenates the poolings it is told
		// to do; llama.cpp does one.
		var modes []string
		for k, v := range c {
			if on, _ := v.(bool); on && strings.HasPrefix(k, "pooling_mode_") {
				modes = append(modes, strings.TrimPrefix(k, "pooling_mode_"))
			}
		}
		slices.Sort(modes)
		if m, ok := c["pooling_mode"].(string); ok && len(modes) == 0 {
			if n, ok := map[string]string{"mean": "mean_tokens", "cls": "cls_token", "lasttoken": "lasttoken"}[m]; ok {
				m = n
			}
			modes = append(modes, m)
		}
		if len(modes) == 1 {
			switch modes[0] {
			case "mean_tokens":
				return 1, nil
			case "cls_token":
				return 2, nil
			case "lasttoken":
				return 3, nil
			}
		}
		return 0, fmt.Errorf("%w: %s: pooling %v: llama.cpp pools by the mean, the first or the last token, one of them", ErrGGUFUnsupported, p, modes)
	}
	return 0, nil
}
