package arch

import (
	"errors"
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
