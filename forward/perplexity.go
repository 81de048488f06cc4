package forward

import (
	"fmt"
	"math"
)

// TextReport records the text inputs of a validation and, for causal
// language models, the perplexity of both models on them.
type TextReport struct {
	Inputs []TextInput `json:"inputs"`
	// Window is the longest window (special tokens included).
	Window int `json:"window"`
	// Perplexity is measured for causal language models only.
	Perplexity *Perplexity `json:"perplexity,omitempty"`
}

// Perplexity compares a causal language model's predictions of the next
// token on text, as llama.cpp's perplexity tool reports a quantization.
type Perplexity struct {
	// Predictions is the number of next tokens scored: in each window,
	// every text token that has a token before it.
	Predictions int `json:"predictions"`
	// Reference and Candidate are exp(mean negative log-likelihood of token
	// t+1 given tokens ≤ t); Ratio is Candidate / Reference.
	Reference float64 `json:"reference"`
	Candidate float64 `json:"candidate"`
	Ratio     float64 `json:"ratio"`
	// KLDivergence is the mean over the scored positions of KL(reference ‖
	// candidate) of the next-token distributions, in nats;
	// MaxKLDivergence the largest.
	KLDivergence    float64 `json:"kl_divergence"`
	MaxKLDivergence float64 `json:"max_kl_divergence"`
	// Top1Agreement is the fraction of scored positions whose most likely
	// next token agrees.
	Top1Agreement float64 `json:"top1_agreement"`
	// NonFinite counts scored positions with a NaN or infinite logit in
	// either model, left out of the other numbers.
	NonFinite int `json:"non_finite,omitempty"`
}

// causalFamilies are the families whose logits predict the next token
// under a causal attention mask.
var causalFamilies = map[string]bool{"gpt2": true, "llama": true, "mistral": true, "qwen2": true, "qwen3": true, "gemma": true, "gemma2": true, "gemma3": true, "phi3": true}

// causalLM reports whether a model's logits are next-token predictions.
func causalLM(info Info) bool {
	if !causalFamilies[info.Family] || info.NumLabels > 0 {
		return false
	}
	for _, o := range info.Outputs {
		if o == OutputLogits {
			return true
		}
	}
	return false
}

// perplexityAcc accumulates the next-token log-likelihoods of two models.
type perplexityAcc struct {
	n, nonFinite, top1 int
	nllRef, nllCand    float64
	sumKL, maxKL       float64
}

// addWindow scores the window's text tokens: the logits of position t-1
// (rows of vocab values) predict token t, for t in [max(from, 1), to).
func (p *perplexityAcc) addWindow(w textWindow, ref, cand *Output) error {
	vocab := ref.Shape[len(ref.Shape)-1]
	if len(ref.Data) != len(w.ids)*vocab || len(cand.Data) != len(ref.Data) {
		return fmt.Errorf("forward: logits of %d values for a window of %d tokens and a vocabulary of %d", len(ref.Data), len(w.ids), vocab)
	}
	for t := max(w.from, 1); t < w.to; t++ {
		a := ref.Data[(t-1)*vocab : t*vocab]
		b := cand.Data[(t-1)*vocab : t*vocab]
		if !allFinite(a) || !allFinite(b) {
			p.nonFinite++
			continue
		}
		p.n++
		p.nllRef += negLogLikelihood(a, w.ids[t])
		p.nllCand += negLogLikelihood(b, w.ids[t])
		kl := klDivergence(a, b)
		p.sumKL += kl
		p.maxKL = math.Max(p.maxKL, kl)
		if argmax(a) == argmax(b) {
			p.top1++
		}
	}
	return nil
}

func (p *perplexityAcc) result() *Perplexity {
	r := &Perplexity{Predictions: p.n, NonFinite: p.nonFinite}
	if p.n == 0 {
		return r
	}
	n := float64(p.n)
	r.Reference = jsonSafe(math.Exp(p.nllRef / n))
	r.Candidate = jsonSafe(math.Exp(p.nllCand / n))
	// exp of the difference: exact where each perplexity alone overflows.
	r.Ratio = jsonSafe(math.Exp((p.nllCand - p.nllRef) / n))
	r.KLDivergence = p.sumKL / n
	r.MaxKLDivergence = p.maxKL
	r.Top1Agreement = float64(p.top1) / n
	return r
}

// negLogLikelihood returns −log softmax(logits)[target] in float64.
func negLogLikelihood(logits []float32, target int) float64 {
	return logSumExp(logits) - float64(logits[target])
}

func allFinite(x []float32) bool {
	for _, v := range x {
		if isNonFinite(float64(v)) {
			return false
		}
	}
	return true
}

// jsonSafe maps +Inf (a perplexity beyond float64) to the largest float64,
// which JSON can hold.
func jsonSafe(x float64) float64 {
	if math.IsInf(x, 1) {
		return math.MaxFloat64
	}
	return x
}
