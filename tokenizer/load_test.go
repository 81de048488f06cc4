package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadErrorsNameTheComponent(t *testing.T) {
	model := `"model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"}`
	for _, c := range []struct{ doc, want string }{
		{`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Whitespace"},{"type":"Foo"}]},` + model + `}`,
			`pre_tokenizer.pretokenizers[1]: unknown type "Foo"`},
		{`{"normalizer":{"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"Lowercase"},{"type":"Bar"}]},` + model + `}`,
			`normalizer.normalizers[2]: unknown type "Bar"`},
		{`{"decoder":{"type":"Sequence","decoders":[{"type":"Nope"}]},` + model + `}`, `decoder.decoders[0]: unknown type "Nope"`},
		{`{"post_processor":{"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"X"}]},` + model + `}`,
			`post_processor.processors[1]: unknown type "X"`},
		{`{"model":{"type":"Magic","vocab":{}}}`, `model: unknown type "Magic"`},
		{`{"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(unclosed"},"behavior":"Isolated"},` + model + `}`, `pre_tokenizer.pattern: bad regex`},
		{`{"pre_tokenizer":{"type":"Split","pattern":{"String":"x"},"behavior":"Sideways"},` + model + `}`, `pre_tokenizer.behavior: unknown split behavior "Sideways"`},
		{`{"pre_tokenizer":{"pretokenizers":[]},` + model + `}`, `pre_tokenizer: missing "type"`},
		{`{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}}`, `model (BPE): merges[0]: token "b" out of vocabulary`},
		{`{"model":{"type":"BPE","vocab":{"a":0,"aa":1},"merges":["a a", "a a a"]}}`, `merges[1]: want "a b"`},
		{`{"model":{"type":"Unigram","vocab":[["a",0]],"unk_id":3}}`, `model (Unigram): unk_id 3 out of vocabulary`},
		{`{"version":"2.0",` + model + `}`, `version: unknown tokenizer version "2.0"`},
		{`{"truncation":{"max_length":5,"strategy":"Most"},` + model + `}`, `truncation.strategy: unknown "Most"`},
		{`{"padding":{"strategy":{"Fixed":-1}},` + model + `}`, `padding.strategy`},
		{`{"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[X]","type_id":0}}],"pair":[],"special_tokens":{}},` + model + `}`,
			`special token "[X]" used in a template but missing`},
		{`{"added_tokens":[{"id":1,"content":5}],` + model + `}`, `added_tokens[0]`},
		{`[1,2]`, `not a JSON object`},
		{`{"model":`, `model`},
		{`{}`, `model: missing`},
	} {
		_, err := Load(strings.NewReader(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n error %v\n want it to contain %q", c.doc, err, c.want)
		}
	}
}

// TestLoadDirMatchesTokenizerJSON writes the BERT unit case as vocab.txt +
// tokenizer_config.json, and a byte-level BPE one as vocab.json +
// merges.txt, and checks LoadDir encodes as the tokenizer.json does.
func TestLoadDirMatchesTokenizerJSON(t *testing.T) {
	var cases []struct {
		Name string         `json:"name"`
		Tok  map[string]any `json:"tok"`
	}
	data, err := os.ReadFile("testdata/unit/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	byName := map[string]map[string]any{}
	for _, c := range cases {
		byName[c.Name] = c.Tok
	}
	texts := []string{"Hello<|endoftext|> world", "  hello   world  ", "I'm here, they're 123456 ok!", "héllo Wörld ÅΩ 日本語", "Hello [MASK] world"}

	// BERT: vocab.txt in id order
	bert := byName["bert-wordpiece"]
	dir := t.TempDir()
	vocab := bert["model"].(map[string]any)["vocab"].(map[string]any)
	lines := make([]string, len(vocab))
	for tok, id := range vocab {
		lines[int(id.(float64))] = tok
	}
	write(t, filepath.Join(dir, "vocab.txt"), strings.Join(lines, "\n")+"\n")
	write(t, filepath.Join(dir, "tokenizer_config.json"), `{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}`)
	compareDirWithDoc(t, dir, bert, texts)

	// GPT-2 style: vocab.json + merges.txt, no tokenizer_config.json
	gpt := byName["bytelevel-gpt2"]
	dir = t.TempDir()
	m := gpt["model"].(map[string]any)
	vj, _ := json.Marshal(m["vocab"])
	write(t, filepath.Join(dir, "vocab.json"), string(vj))
	var merges []string
	for _, p := range m["merges"].([]any) {
		pp := p.([]any)
		merges = append(merges, pp[0].(string)+" "+pp[1].(string))
	}
	write(t, filepath.Join(dir, "merges.txt"), "#version: 0.2\n"+strings.Join(merges, "\n")+"\n")
	eot := map[string]any{"id": len(m["vocab"].(map[string]any)), "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
	gpt2 := map[string]any{"version": "1.0", "model": m, "added_tokens": []any{eot},
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}}
	compareDirWithDoc(t, dir, gpt2, texts)

	// RoBERTa: the same files with the class in tokenizer_config.json
	rv := map[string]any{}
	for k, v := range m["vocab"].(map[string]any) {
		rv[k] = v
	}
	n := len(rv)
	var added []any
	for i, s := range []string{"<s>", "<pad>", "</s>", "<unk>", "<mask>"} {
		rv[s] = float64(n + i)
		added = append(added, map[string]any{"id": n + i, "content": s, "single_word": false, "lstrip": s == "<mask>", "rstrip": false, "normalized": false, "special": true})
	}
	vj, _ = json.Marshal(rv)
	write(t, filepath.Join(dir, "vocab.json"), string(vj))
	write(t, filepath.Join(dir, "tokenizer_config.json"), `{"tokenizer_class": "RobertaTokenizer", "add_prefix_space": true}`)
	rm := map[string]any{"type": "BPE", "vocab": rv, "merges": m["merges"]}
	roberta := map[string]any{"version": "1.0", "model": rm, "added_tokens": added,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "RobertaProcessing", "sep": []any{"</s>", n + 2}, "cls": []any{"<s>", n}, "trim_offsets": true, "add_prefix_space": true},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}}
	compareDirWithDoc(t, dir, roberta, append(texts, "a <mask> b<mask>"))

	// GPT-2 with add_bos_token: a template adds the bos token
	write(t, filepath.Join(dir, "tokenizer_config.json"), `{"tokenizer_class": "GPT2Tokenizer", "add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}`)
	piece := func(kind, id string, typ int) map[string]any {
		return map[string]any{kind: map[string]any{"id": id, "type_id": typ}}
	}
	bos := map[string]any{"type": "TemplateProcessing",
		"single":         []any{piece("SpecialToken", "<s>", 0), piece("Sequence", "A", 0)},
		"pair":           []any{piece("SpecialToken", "<s>", 0), piece("Sequence", "A", 0), piece("Sequence", "B", 1)},
		"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []any{n}, "tokens": []any{"<s>"}}}}
	gptBos := map[string]any{"version": "1.0", "model": rm, "added_tokens": []any{added[0], added[2], added[3]},
		"pre_tokenizer":  gpt2["pre_tokenizer"],
		"post_processor": bos,
		"decoder":        gpt2["decoder"]}
	compareDirWithDoc(t, dir, gptBos, texts)

	// a directory with tokenizer.json (gzipped name through LoadFile too)
	dir = t.TempDir()
	doc, _ := json.Marshal(bert)
	write(t, filepath.Join(dir, "tokenizer.json"), string(doc))
	compareDirWithDoc(t, dir, bert, texts)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(doc)
	zw.Close()
	write(t, filepath.Join(dir, "t.json.gz"), gz.String())
	if _, err := LoadFile(filepath.Join(dir, "t.json.gz")); err != nil {
		t.Error(err)
	}
	if _, err := LoadDir(t.TempDir()); err == nil {
		t.Error("LoadDir of an empty directory: no error")
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func compareDirWithDoc(t *testing.T, dir string, doc map[string]any, texts []string) {
	t.Helper()
	fromDir, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(doc)
	fromDoc, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if fromDir.VocabSize() != fromDoc.VocabSize() {
		t.Errorf("%s: vocab size %d, tokenizer.json %d", dir, fromDir.VocabSize(), fromDoc.VocabSize())
	}
	for _, s := range texts {
		for _, special := range []bool{true, false} {
			a, err1 := fromDir.Encode(s, special)
			b, err2 := fromDoc.Encode(s, special)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if !reflect.DeepEqual(a.IDs, b.IDs) || !reflect.DeepEqual(a.Offsets, b.Offsets) || !reflect.DeepEqual(a.Tokens, b.Tokens) {
				t.Errorf("%s %q: LoadDir %v %v, tokenizer.json %v %v", dir, s, a.Tokens, a.Offsets, b.Tokens, b.Offsets)
			}
		}
		pa, _ := fromDir.EncodePair(s, "x", true)
		pb, _ := fromDoc.EncodePair(s, "x", true)
		if !reflect.DeepEqual(pa, pb) {
			t.Errorf("%s %q: pair differs: %v vs %v", dir, s, pa.Tokens, pb.Tokens)
		}
	}
}
