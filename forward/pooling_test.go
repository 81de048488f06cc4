package forward

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const stCase = "st-bert-mean"

// stCases are the sentence-transformers fixtures (testdata/gen_sentence.py)
// and the size of their embeddings.
var stCases = []struct {
	name string
	dim  int
}{{"st-bert-mean", 32}, {"st-bert-wmean-dense", 16}, {"st-qwen3-last", 32}}

// TestSentenceEmbedding: the sentence-transformers fixtures'
// sentence_embedding (mean pooling and Normalize; weighted-mean pooling,
// two Dense modules and Normalize; last-token pooling of a decoder and
// Normalize) is within 1e-5 of what testdata/gen_sentence.py computed with
// sentence-transformers' pooling and Dense code, by Run and by RunBatch.
func TestSentenceEmbedding(t *testing.T) {
	for _, c := range stCases {
		t.Run(c.name, func(t *testing.T) { testSentenceEmbedding(t, c.name, c.dim) })
	}
}

func testSentenceEmbedding(t *testing.T, name string, dim int) {
	dir := filepath.Join(fixtures, name)
	m := loadModel(t, dir, 2)
	if !slices.Contains(m.Info().Outputs, OutputSentenceEmbedding) {
		t.Fatalf("Info.Outputs %v has no %s", m.Info().Outputs, OutputSentenceEmbedding)
	}
	ids, want := expected(t, dir)
	wt, ok := want[OutputSentenceEmbedding]
	if !ok {
		t.Fatalf("expected file has no %s; run testdata/gen_sentence.py", OutputSentenceEmbedding)
	}
	wv, err := wt.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if len(wv) != dim {
		t.Fatalf("expected embedding of %d values, want %d", len(wv), dim)
	}
	out, err := m.Run(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := m.RunBatch(context.Background(), [][]int{ids, ids[:3]})
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]*Outputs{"Run": out, "RunBatch": batch[0]} {
		got, ok := o.Get(OutputSentenceEmbedding)
		if !ok {
			t.Fatalf("%s: no %s", name, OutputSentenceEmbedding)
		}
		if !slices.Equal(got.Shape, []int{1, len(wv)}) {
			t.Fatalf("%s: shape %v, want [1 %d]", name, got.Shape, len(wv))
		}
		if d := maxAbsDiff(got.Data, wv); !(d <= 1e-5) {
			t.Errorf("%s: max abs error %g", name, d)
		}
	}
	if _, ok := batch[1].Get(OutputSentenceEmbedding); !ok {
		t.Error("RunBatch: second sequence has no sentence_embedding")
	}
}

// TestPoolingVariants rewrites the fixture's pooling configuration in a
// temporary directory and compares with the embedding computed here from
// the expected last_hidden_state.
func TestPoolingVariants(t *testing.T) {
	dir := filepath.Join(fixtures, stCase)
	ids, want := expected(t, dir)
	hv, err := want[OutputLastHiddenState].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	n := len(ids)
	h := len(hv) / n
	row := func(i int) []float64 {
		r := make([]float64, h)
		for j := range r {
			r[j] = float64(hv[i*h+j])
		}
		return r
	}
	cls := row(0)
	mean, mx := make([]float64, h), row(0)
	for i := range n {
		for j, v := range row(i) {
			mean[j] += v / float64(n)
			mx[j] = math.Max(mx[j], v)
		}
	}
	sqrtLen := make([]float64, h)
	for j := range mean {
		sqrtLen[j] = mean[j] * float64(n) / math.Sqrt(float64(n))
	}
	wmean := make([]float64, h)
	for i := range n {
		for j, v := range row(i) {
			wmean[j] += v * float64(i+1) / float64(n*(n+1)/2)
		}
	}
	last := row(n - 1)
	normalize := func(v []float64) []float64 {
		var ss float64
		for _, f := range v {
			ss += f * f
		}
		out := make([]float64, len(v))
		for i, f := range v {
			out[i] = f / math.Sqrt(ss)
		}
		return out
	}
	for _, c := range []struct {
		name      string
		flags     []string
		normalize bool
		want      []float64
	}{
		{"cls-normalize", []string{"pooling_mode_cls_token"}, true, normalize(cls)},
		{"mean-raw", []string{"pooling_mode_mean_tokens"}, false, mean},
		{"max", []string{"pooling_mode_max_tokens"}, false, mx},
		{"mean-sqrt-len", []string{"pooling_mode_mean_sqrt_len_tokens"}, false, sqrtLen},
		{"weighted-mean", []string{"pooling_mode_weightedmean_tokens"}, false, wmean},
		{"last-token", []string{"pooling_mode_lasttoken"}, true, normalize(last)},
		// ... then weightedmean and lasttoken, after mean_sqrt_len.
		{"last-wmean-sqrt", []string{"pooling_mode_lasttoken", "pooling_mode_weightedmean_tokens", "pooling_mode_mean_sqrt_len_tokens"}, false,
			slices.Concat(sqrtLen, wmean, last)},
		// sentence-transformers concatenates cls, max, mean in this order
		// whatever the order of the keys.
		{"mean-cls-max", []string{"pooling_mode_mean_tokens", "pooling_mode_cls_token", "pooling_mode_max_tokens"}, true,
			normalize(slices.Concat(cls, mx, mean))},
	} {
		t.Run(c.name, func(t *testing.T) {
			flags := map[string]bool{}
			for _, f := range c.flags {
				flags[f] = true
			}
			d := stDir(t, dir, modulesJSON(c.normalize), poolingJSON(h, flags))
			m := loadModel(t, d, 1)
			out, err := m.Run(context.Background(), ids)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := out.Get(OutputSentenceEmbedding)
			if !ok {
				t.Fatalf("no %s", OutputSentenceEmbedding)
			}
			if !slices.Equal(got.Shape, []int{1, len(c.want)}) {
				t.Fatalf("shape %v, want [1 %d]", got.Shape, len(c.want))
			}
			var maxErr float64
			for i, w := range c.want {
				maxErr = math.Max(maxErr, math.Abs(float64(got.Data[i])-w))
			}
			if !(maxErr <= 1e-5) {
				t.Errorf("max abs error %g", maxErr)
			}
		})
	}
}

// TestPoolingErrors: a malformed or unsupported sentence-transformers
// configuration is an ErrPooling error that names the file and the cause.
func TestPoolingErrors(t *testing.T) {
	dir := filepath.Join(fixtures, stCase)
	mean := poolingJSON(32, map[string]bool{"pooling_mode_mean_tokens": true})
	for _, c := range []struct {
		name, modules, pooling, want string
	}{
		{"modules not JSON", `[{"type": `, mean, "modules.json"},
		{"modules not a list", `{"0": "x"}`, mean, "modules.json"},
		{"pooling not JSON", modulesJSON(true), `{"pooling_mode_mean_tokens": tru`, filepath.Join("1_Pooling", "config.json")},
		{"no mode", modulesJSON(false), `{"word_embedding_dimension": 32, "pooling_mode_mean_tokens": false}`, "no pooling mode"},
		{"mode not bool", modulesJSON(false), `{"pooling_mode_mean_tokens": "yes"}`, "pooling_mode_mean_tokens"},
		{"last token not bool", modulesJSON(false), `{"pooling_mode_lasttoken": 1}`, "pooling_mode_lasttoken"},
		{"bad dimension", modulesJSON(false), `{"word_embedding_dimension": "x", "pooling_mode_mean_tokens": true}`, "word_embedding_dimension"},
		{"wrong dimension", modulesJSON(false), poolingJSON(48, map[string]bool{"pooling_mode_mean_tokens": true}), "hidden size 32"},
		{"dense module", `[{"path": "", "type": "sentence_transformers.models.Transformer"},
			{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
			{"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]`, mean, filepath.Join("2_Dense", "config.json")},
		{"dropout module", `[{"path": "", "type": "sentence_transformers.models.Transformer"},
			{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
			{"path": "2_Dropout", "type": "sentence_transformers.models.Dropout"}]`, mean, "sentence_transformers.models.Dropout"},
		{"dense first", `[{"path": "", "type": "sentence_transformers.models.Transformer"},
			{"path": "2_Dense", "type": "sentence_transformers.models.Dense"},
			{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]`, mean, "must follow the Pooling"},
		{"no pooling module", `[{"path": "", "type": "sentence_transformers.models.Transformer"}]`, mean, "no sentence_transformers.models.Pooling"},
		{"normalize first", `[{"path": "", "type": "sentence_transformers.models.Transformer"},
			{"path": "", "type": "sentence_transformers.models.Normalize"},
			{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]`, mean, "Normalize"},
		{"pooling outside", `[{"path": "", "type": "sentence_transformers.models.Transformer"},
			{"path": "../x", "type": "sentence_transformers.models.Pooling"}]`, mean, "not inside"},
		{"pooling config missing", `[{"path": "", "type": "sentence_transformers.models.Transformer"},
			{"path": "9_Pooling", "type": "sentence_transformers.models.Pooling"}]`, mean, "9_Pooling"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := stDir(t, dir, c.modules, c.pooling)
			g := openGraph(t, d)
			m, err := Load(g, nil, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			err = m.LoadPooling(g)
			if !errors.Is(err, ErrPooling) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadPooling: %v, want ErrPooling naming %q", err, c.want)
			}
			if slices.Contains(m.Info().Outputs, OutputSentenceEmbedding) {
				t.Errorf("Info.Outputs %v after a failed LoadPooling", m.Info().Outputs)
			}
		})
	}
}

// TestNoPooling: a model without modules.json gets no sentence_embedding;
// SetPooling(nil) removes it.
func TestNoPooling(t *testing.T) {
	m := loadModel(t, filepath.Join(fixtures, "bert-f16-st"), 1)
	if slices.Contains(m.Info().Outputs, OutputSentenceEmbedding) {
		t.Fatalf("Info.Outputs %v", m.Info().Outputs)
	}
	m = loadModel(t, filepath.Join(fixtures, stCase), 1)
	if err := m.SetPooling(nil); err != nil {
		t.Fatal(err)
	}
	out, err := m.Run(context.Background(), []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Get(OutputSentenceEmbedding); ok || slices.Contains(m.Info().Outputs, OutputSentenceEmbedding) {
		t.Errorf("sentence_embedding after SetPooling(nil): %v", m.Info().Outputs)
	}
}

// stDir makes a model directory with the weights and config of dir and the
// given modules.json and 1_Pooling/config.json.
func stDir(t *testing.T, dir, modules, pooling string) string {
	t.Helper()
	d := t.TempDir()
	for _, name := range []string{"config.json", "model.safetensors"} {
		abs, err := filepath.Abs(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(d, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(d, "1_Pooling"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"modules.json": modules, filepath.Join("1_Pooling", "config.json"): pooling} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// modulesJSON is the modules.json sentence-transformers writes for a
// Transformer, a Pooling and, with normalize, a Normalize module.
func modulesJSON(normalize bool) string {
	s := `[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}`
	if normalize {
		s += `,
{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}`
	}
	return s + "]"
}

// poolingJSON is a 1_Pooling/config.json with every flag false but those set.
func poolingJSON(dim int, set map[string]bool) string {
	var b strings.Builder
	b.WriteString(`{"word_embedding_dimension": ` + strconv.Itoa(dim))
	for _, k := range []string{"pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
		"pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"} {
		v := "false"
		if set[k] {
			v = "true"
		}
		b.WriteString(`, "` + k + `": ` + v)
	}
	b.WriteString(`, "include_prompt": true}`)
	return b.String()
}

// maxAbsDiff is the largest |a[i]-b[i]|; NaN when one is NaN.
func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		e := math.Abs(float64(a[i] - b[i]))
		if !(e <= d) {
			d = e
		}
	}
	return d
}

// TestDenseErrors: a Dense module that cannot be computed as
// sentence-transformers computes it is an ErrPooling error naming the file
// and the cause.
func TestDenseErrors(t *testing.T) {
	src := filepath.Join(fixtures, "st-bert-wmean-dense")
	dense2 := `{"in_features": 32, "out_features": 24, "bias": true, "activation_function": "torch.nn.modules.activation.Tanh"}`
	for _, c := range []struct {
		name  string
		edit  map[string]string // file -> new content ("" removes it)
		want  string
		wantW string // and this, when set
	}{
		{"activation", map[string]string{"2_Dense/config.json": strings.Replace(dense2, "Tanh", "Softmax", 1)}, "Softmax", "activation_function"},
		{"no in_features", map[string]string{"2_Dense/config.json": `{"out_features": 24}`}, "in_features", filepath.Join("2_Dense", "config.json")},
		{"not JSON", map[string]string{"2_Dense/config.json": `{"in_features": `}, filepath.Join("2_Dense", "config.json"), ""},
		{"swapped", map[string]string{"modules.json": `[{"path": "", "type": "sentence_transformers.models.Transformer"},
			{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
			{"path": "3_Dense", "type": "sentence_transformers.models.Dense"},
			{"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]`}, "Dense module 1 takes 24 features, the embedding before it has 32", ""},
		{"bias missing", map[string]string{"3_Dense/config.json": `{"in_features": 24, "out_features": 16, "bias": true, "activation_function": "torch.nn.modules.linear.Identity"}`}, "no tensor linear.bias", "3_Dense"},
		{"bias unexpected", map[string]string{"2_Dense/config.json": strings.Replace(dense2, "true", "false", 1)}, "bias false", "2_Dense"},
		{"wrong shape", map[string]string{"2_Dense/config.json": strings.Replace(dense2, "24", "20", 1)}, "linear.weight", "[20 32]"},
		{"no weights", map[string]string{"2_Dense/model.safetensors": ""}, "2_Dense", "no weight files"},
		{"chain without dimension", map[string]string{"1_Pooling/config.json": `{"pooling_mode_weightedmean_tokens": true}`, "modules.json": `[{"path": "", "type": "sentence_transformers.models.Transformer"},
			{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
			{"path": "2_Dense", "type": "sentence_transformers.models.Dense"},
			{"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]`}, "Dense module 2 takes 32 features, the embedding before it has 24", ""},
		{"first without dimension", map[string]string{"1_Pooling/config.json": `{"pooling_mode_weightedmean_tokens": true, "pooling_mode_mean_tokens": true}`}, "the first Dense module takes 32 features, the pooled embedding has 64", ""},
		{"outside", map[string]string{"modules.json": `[{"path": "", "type": "sentence_transformers.models.Transformer"},
			{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
			{"path": "../2_Dense", "type": "sentence_transformers.models.Dense"}]`}, "not inside", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := copyTree(t, src)
			for name, text := range c.edit {
				p := filepath.Join(d, filepath.FromSlash(name))
				os.Remove(p)
				if text != "" {
					if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			g := openGraph(t, d)
			m, err := Load(g, nil, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			err = m.LoadPooling(g)
			if !errors.Is(err, ErrPooling) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.wantW) {
				t.Fatalf("LoadPooling: %v, want ErrPooling naming %q and %q", err, c.want, c.wantW)
			}
		})
	}
}

// copyTree copies the model directory src (one level of subdirectories)
// into a temporary directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	d := t.TempDir()
	err := filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(d, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(d, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Validation compares sentence_embedding when both models have their
// pooling: a candidate pooled by mean instead of weighted mean (same
// weights) fails on it alone.
func TestValidateSentenceEmbedding(t *testing.T) {
	src := filepath.Join(fixtures, "st-bert-wmean-dense")
	d := copyTree(t, src)
	if err := os.WriteFile(filepath.Join(d, "1_Pooling", "config.json"), []byte(poolingJSON(32, map[string]bool{"pooling_mode_mean_tokens": true})), 0o644); err != nil {
		t.Fatal(err)
	}
	ref, cand := loadModel(t, src, 1), loadModel(t, d, 1)
	rep, err := Validate(context.Background(), ref, cand, ValidateOptions{Kind: KindExact})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed || len(rep.Failures) == 0 || !strings.HasPrefix(rep.Failures[0], OutputSentenceEmbedding+":") || !rep.Outputs[0].Passed {
		t.Errorf("passed %v, failures %v", rep.Passed, rep.Failures)
	}
	if rep, err := Validate(context.Background(), ref, ref, ValidateOptions{}); err != nil || !rep.Passed || rep.Outputs[len(rep.Outputs)-1].Name != OutputSentenceEmbedding {
		t.Errorf("against itself: %v %+v", err, rep)
	}
}
