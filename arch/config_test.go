package arch

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseConfigFamilies(t *testing.T) {
	bert, err := ParseConfig([]byte(`{"architectures":["BertForSequenceClassification"],"model_type":"bert",
		"vocab_size":100,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":64,
		"max_position_embeddings":40,"id2label":{"0":"a","1":"b","2":"c"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if bert.Family() != "bert" || bert.Bert().NumLabels != 3 || bert.Bert().LayerNormEps != 1e-12 || bert.Bert().HiddenAct != "gelu" ||
		bert.Architecture() != "BertForSequenceClassification" {
		t.Fatalf("bert: %+v", bert.Bert())
	}
	gpt, err := ParseConfig([]byte(`{"model_type":"gpt2","vocab_size":100,"n_embd":32,"n_layer":2,"n_head":4,"n_positions":64}`))
	if err != nil {
		t.Fatal(err)
	}
	if gpt.GPT2().NInner != 128 || !gpt.GPT2().ScaleAttnWeights || gpt.GPT2().ActivationFunction != "gelu_new" || !gpt.GPT2().TieWordEmbeddings {
		t.Fatalf("gpt2 defaults: %+v", gpt.GPT2())
	}
	qwen, err := ParseConfig([]byte(`{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":100,"hidden_size":32,
		"intermediate_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"rope_theta":1000000}`))
	if err != nil {
		t.Fatal(err)
	}
	l := qwen.Llama()
	if qwen.Family() != "llama" || !l.AttentionBias || l.HeadDim != 8 || l.RopeTheta != 1e6 || l.TieWordEmbeddings {
		t.Fatalf("qwen2: %+v", l)
	}
	llama, err := ParseConfig([]byte(`{"model_type":"llama","vocab_size":100,"hidden_size":32,
		"intermediate_size":64,"num_hidden_layers":2,"num_attention_heads":4}`))
	if err != nil {
		t.Fatal(err)
	}
	if llama.Llama().NumKeyValueHeads != 4 || llama.Llama().AttentionBias || llama.Llama().RMSNormEps != 1e-6 {
		t.Fatalf("llama defaults: %+v", llama.Llama())
	}
	other, err := ParseConfig([]byte(`{"model_type":"t5","d_model":8}`))
	if err != nil || other.Family() != "" || other.Architecture() != "t5" || string(other.Raw["d_model"]) != "8" {
		t.Fatalf("generic: %+v %v", other, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for name, raw := range map[string]string{
		"not json":       `{`,
		"not object":     `[1]`,
		"wrong type":     `{"model_type":"bert","hidden_size":"big"}`,
		"zero heads":     `{"model_type":"bert","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":0,"intermediate_size":4,"max_position_embeddings":4}`,
		"indivisible":    `{"model_type":"gpt2","vocab_size":10,"n_embd":30,"n_layer":1,"n_head":4,"n_positions":4}`,
		"gqa mismatch":   `{"model_type":"llama","vocab_size":10,"hidden_size":32,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3}`,
		"negative vocab": `{"model_type":"llama","vocab_size":-1,"hidden_size":32,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4}`,
	} {
		if _, err := ParseConfig([]byte(raw)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestParseConfigImpossible: every numeric field a family reads is checked,
// and the error names the field and the value.
func TestParseConfigImpossible(t *testing.T) {
	const (
		llama = `"model_type":"llama","vocab_size":10,"hidden_size":32,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4`
		bert  = `"model_type":"bert","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":4,"max_position_embeddings":4`
		gpt2  = `"model_type":"gpt2","vocab_size":10,"n_embd":32,"n_layer":1,"n_head":4,"n_positions":4`
		rob   = `"model_type":"xlm-roberta","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":4,"max_position_embeddings":6`
		dist  = `"model_type":"distilbert","vocab_size":10,"dim":32,"n_layers":1,"n_heads":4,"hidden_dim":4,"max_position_embeddings":6`
	)
	for _, c := range []struct {
		base, extra  string
		field, value string
	}{
		{llama, `"num_key_value_heads":0`, "num_key_value_heads", "0"},
		{llama, `"num_key_value_heads":-2`, "num_key_value_heads", "-2"},
		{llama, `"num_key_value_heads":3`, "num_key_value_heads", "3"},
		{llama, `"rope_theta":-1`, "rope_theta", "-1"},
		{llama, `"rope_theta":0`, "rope_theta", "0"},
		{llama, `"rms_norm_eps":0`, "rms_norm_eps", "0"},
		{llama, `"rms_norm_eps":-1e-6`, "rms_norm_eps", "-1e-06"},
		{llama, `"head_dim":0`, "head_dim", "0"},
		{llama, `"max_position_embeddings":0`, "max_position_embeddings", "0"},
		{llama, `"sliding_window":-4`, "sliding_window", "-4"},
		{llama, `"num_hidden_layers":1000000000`, "num_hidden_layers", "1000000000"},
		{llama, `"intermediate_size":0`, "intermediate_size", "0"},
		{llama, `"vocab_size":4294967296`, "vocab_size", "4294967296"},
		{llama, `"hidden_size":30`, "hidden_size", "30"},
		{bert, `"layer_norm_eps":0`, "layer_norm_eps", "0"},
		{bert, `"type_vocab_size":-1`, "type_vocab_size", "-1"},
		{bert, `"max_position_embeddings":0`, "max_position_embeddings", "0"},
		{bert, `"num_attention_heads":0`, "num_attention_heads", "0"},
		{bert, `"num_attention_heads":5`, "num_attention_heads", "5"},
		{bert, `"intermediate_size":-4`, "intermediate_size", "-4"},
		{gpt2, `"n_inner":-1`, "n_inner", "-1"},
		{gpt2, `"layer_norm_epsilon":-1`, "layer_norm_epsilon", "-1"},
		{gpt2, `"n_positions":0`, "n_positions", "0"},
		{gpt2, `"n_head":0`, "n_head", "0"},
		{gpt2, `"n_head":5`, "n_head", "5"},
		{gpt2, `"n_layer":0`, "n_layer", "0"},
		{rob, `"pad_token_id":5`, "max_position_embeddings", "6"},
		{rob, `"pad_token_id":10`, "pad_token_id", "10"},
		{rob, `"pad_token_id":-1`, "pad_token_id", "-1"},
		{rob, `"num_attention_heads":5`, "num_attention_heads", "5"},
		{dist, `"n_heads":5`, "n_heads", "5"},
		{dist, `"n_layers":0`, "n_layers", "0"},
		{dist, `"hidden_dim":-1`, "hidden_dim", "-1"},
		{dist, `"dim":0`, "dim", "0"},
		{dist, `"max_position_embeddings":0`, "max_position_embeddings", "0"},
	} {
		raw := `{` + c.base + `,` + c.extra + `}`
		_, err := ParseConfig([]byte(raw))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.field) || !strings.Contains(err.Error(), c.value) {
			t.Errorf("%s: %v; want an ErrConfig naming %s and %s", c.extra, err, c.field, c.value)
		}
	}
	// The neutral and absent values stay accepted.
	for _, raw := range []string{
		`{` + llama + `}`,
		`{` + llama + `,"num_key_value_heads":null,"head_dim":null,"sliding_window":null}`,
		`{` + llama + `,"num_key_value_heads":2,"head_dim":16,"rope_theta":1e6,"sliding_window":0}`,
		`{` + bert + `,"type_vocab_size":0}`,
		`{` + gpt2 + `,"n_inner":null}`,
		`{` + rob + `,"pad_token_id":4}`,
		`{` + dist + `,"sinusoidal_pos_embds":true}`,
	} {
		if _, err := ParseConfig([]byte(raw)); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

// TestFamilyByClass: without a model_type, the class names select the
// family.
func TestFamilyByClass(t *testing.T) {
	for arch, want := range map[string]string{
		"MistralForCausalLM": "llama", "Qwen2Model": "llama", "BertForMaskedLM": "bert", "GPT2LMHeadModel": "gpt2", "T5Model": "",
		"RobertaForMaskedLM": "roberta", "XLMRobertaModel": "roberta", "CamembertForSequenceClassification": "roberta",
		"DistilBertForMaskedLM": "distilbert", "Qwen3ForCausalLM": "qwen3", "Gemma2ForCausalLM": "gemma",
		"Qwen3MoeForCausalLM": "qwen3_moe", "Qwen2MoeForCausalLM": "qwen2_moe", "MixtralForCausalLM": "mixtral",
		"Qwen2MoeModel": "qwen2_moe", "Qwen2VLForConditionalGeneration": "", "Gemma3ForConditionalGeneration": "", "Gemma3nForCausalLM": "", "GemmaModel": "gemma",
		"Gemma3TextModel": "gemma",
		"Phi3ForCausalLM": "phi3", "Phi3Model": "phi3", "Phi3SmallForCausalLM": "",
		"Phi3VForCausalLM": "", "PhiMoEForCausalLM": "",
	} {
		c, err := ParseConfig([]byte(`{"architectures":["` + arch + `"],"vocab_size":10,"hidden_size":8,"intermediate_size":8,
			"num_hidden_layers":1,"num_attention_heads":2,"max_position_embeddings":8,"n_embd":8,"n_layer":1,"n_head":2,"n_positions":8}`))
		if err != nil || c.Family() != want || (want == "") != (c.Params == nil) {
			t.Errorf("%s: family %q, %v; want %q", arch, c.Family(), err, want)
		}
	}
	var names []string
	for _, f := range Families() {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "bert,distilbert,gemma,gpt2,llama,mixtral,modernbert,mpnet,phi3,qwen2_moe,qwen3,qwen3_moe,roberta" {
		t.Errorf("families %v", names)
	}
}

func TestOfFamily(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type":"mistral","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2}`))
	if err != nil {
		t.Fatal(err)
	}
	for class, want := range map[string]bool{"MistralForCausalLM": true, "LlamaModel": true, "Qwen2ForCausalLM": true, "BertModel": false, "": false} {
		if c.OfFamily(class) != want {
			t.Errorf("%q: %v", class, !want)
		}
	}
	if (&Config{ModelType: "t5"}).OfFamily("T5Model") {
		t.Error("a config of no known family claims a class")
	}
}

// TestQwen3Config: Qwen3's defaults (head_dim 128 whatever hidden_size
// says, no bias, untied) and its sliding-window layers as
// configuration_qwen3 derives them.
func TestQwen3Config(t *testing.T) {
	const base = `"model_type":"qwen3","vocab_size":10,"hidden_size":8,"num_hidden_layers":3,"num_attention_heads":2,"intermediate_size":8`
	c, err := ParseConfig([]byte(`{` + base + `}`))
	if err != nil {
		t.Fatal(err)
	}
	q := c.Qwen3()
	if q == nil || c.Llama() != nil || q.HeadDim != 128 || q.AttentionBias || q.TieWordEmbeddings || q.NumKeyValueHeads != 2 ||
		q.RMSNormEps != 1e-6 || !slices.Equal(q.Windows, []int{0, 0, 0}) || q.Sizes().HeadDim != 128 {
		t.Fatalf("defaults: %+v", q)
	}
	for _, w := range []struct {
		config string
		want   []int
	}{
		{`"sliding_window":32,"max_window_layers":1`, []int{0, 0, 0}}, // use_sliding_window false
		{`"sliding_window":32,"use_sliding_window":false,"layer_types":["sliding_attention","full_attention","sliding_attention"]`, []int{0, 0, 0}},
		{`"sliding_window":32,"use_sliding_window":true,"max_window_layers":1`, []int{0, 32, 32}},
		{`"use_sliding_window":true,"max_window_layers":2`, []int{0, 0, 4096}},
		{`"sliding_window":32,"use_sliding_window":true`, []int{0, 0, 0}}, // max_window_layers 28
		{`"sliding_window":null,"use_sliding_window":true,"max_window_layers":0`, []int{0, 0, 0}},
		{`"sliding_window":32,"use_sliding_window":true,"layer_types":["sliding_attention","full_attention","sliding_attention"]`, []int{32, 0, 32}},
	} {
		c, err := ParseConfig([]byte(`{` + base + `,` + w.config + `}`))
		if err != nil || !slices.Equal(c.Qwen3().Windows, w.want) {
			t.Errorf("%s: %v; want %v", w.config, err, w.want)
			continue
		}
	}
	for _, bad := range []string{
		`"use_sliding_window":true,"layer_types":["full_attention"]`,
		`"use_sliding_window":true,"layer_types":["full_attention","chunked_attention","full_attention"]`,
		`"head_dim":0`,
		`"num_key_value_heads":3`,
	} {
		if _, err := ParseConfig([]byte(`{` + base + `,` + bad + `}`)); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "qwen3") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestGemmaConfig: each Gemma generation's defaults and sliding-window
// layers as its configuration derives them; a null soft-cap is none.
func TestGemmaConfig(t *testing.T) {
	const base = `"vocab_size":10,"hidden_size":8,"num_hidden_layers":4,"num_attention_heads":2,"intermediate_size":8`
	for _, c := range []struct {
		config  string
		gen     int
		scalar  float64
		caps    [2]float64
		theta   float64
		local   float64
		windows []int
	}{
		{`"model_type":"gemma"`, 1, 256, [2]float64{}, 10000, 0, []int{0, 0, 0, 0}},
		{`"model_type":"gemma","head_dim":16,"sliding_window":8`, 1, 16, [2]float64{}, 10000, 0, []int{0, 0, 0, 0}},
		{`"model_type":"gemma2"`, 2, 256, [2]float64{50, 30}, 10000, 0, []int{4096, 0, 4096, 0}},
		{`"model_type":"gemma2","attn_logit_softcapping":null,"final_logit_softcapping":5,"sliding_window":8,"query_pre_attn_scalar":3`,
			2, 3, [2]float64{0, 5}, 10000, 0, []int{8, 0, 8, 0}},
		{`"model_type":"gemma3_text","sliding_window":8,"sliding_window_pattern":2`, 3, 256, [2]float64{}, 1e6, 10000, []int{8, 0, 8, 0}},
		{`"model_type":"gemma3_text","sliding_window":8`, 3, 256, [2]float64{}, 1e6, 10000, []int{8, 8, 8, 8}},
		{`"model_type":"gemma3_text","sliding_window":8,"_sliding_window_pattern":2`, 3, 256, [2]float64{}, 1e6, 10000, []int{8, 0, 8, 0}},
		{`"model_type":"gemma3_text","rope_local_base_freq":100,"layer_types":["full_attention","sliding_attention","full_attention","full_attention"]`,
			3, 256, [2]float64{}, 1e6, 100, []int{0, 4096, 0, 0}},
		{`"architectures":["Gemma3ForCausalLM"]`, 3, 256, [2]float64{}, 1e6, 10000, []int{4096, 4096, 4096, 4096}},
	} {
		cfg, err := ParseConfig([]byte(`{` + base + `,` + c.config + `}`))
		if err != nil {
			t.Errorf("%s: %v", c.config, err)
			continue
		}
		g := cfg.Gemma()
		if g == nil || cfg.Family() != "gemma" || g.Generation != c.gen || g.QueryPreAttnScalar != c.scalar ||
			g.AttnLogitSoftcapping != c.caps[0] || g.FinalLogitSoftcapping != c.caps[1] || g.RopeTheta != c.theta ||
			g.RopeLocalBaseFreq != c.local || !slices.Equal(g.Windows, c.windows) || !g.TieWordEmbeddings ||
			g.HiddenActivation != "gelu_pytorch_tanh" || (c.gen != 1 || c.scalar == 256) && g.HeadDim != 256 {
			t.Errorf("%s: %+v", c.config, g)
		}
	}
	for _, bad := range []string{
		`"model_type":"gemma2","attn_logit_softcapping":-1`,
		`"model_type":"gemma2","query_pre_attn_scalar":0`,
		`"model_type":"gemma2","sliding_window":0`,
		`"model_type":"gemma3_text","sliding_window_pattern":0`,
		`"model_type":"gemma3_text","layer_types":["full_attention"]`,
		`"model_type":"gemma3_text","rope_local_base_freq":0`,
	} {
		if _, err := ParseConfig([]byte(`{` + base + `,` + bad + `}`)); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "gemma") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
