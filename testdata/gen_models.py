#!/usr/bin/python3
"""Generates the forward-pass fixtures in testdata/models.

Each fixture is a tiny model directory in Hugging Face layout (config.json plus
weights) and, beside OUTDIR in expected/<case>.safetensors (out of the model
directory, which is shipped as an example model), the input_ids and the outputs
that the Hugging Face definitions compute from exactly the stored weights:

    /usr/bin/python3 testdata/gen_models.py [OUTDIR]   # default: testdata/models

Needs PyTorch (Debian's python3-torch 1.13); transformers is not used: the
forward functions below implement, in plain torch and float32, what
transformers' BertModel / BertForSequenceClassification, GPT2Model /
GPT2LMHeadModel and LlamaForCausalLM (with Qwen2's q/k/v biases and Mistral's
sliding window) compute at batch 1 with a full attention mask and
token_type_ids 0 (eager attention, dropout off).

Weights are random with fixed seeds and scaled so that every part of the model
moves the outputs (unit-variance embeddings, 1/sqrt(fan_in) matrices, norm
weights near 1, biases near 0.1). The f16 and bf16 variants store the weights
rounded to that dtype; their expected outputs are computed in float32 from the
rounded weights (what transformers computes when it loads them with the
default torch_dtype float32, i.e. after upcasting), so a correct forward pass
matches them within 1e-4 like the f32 cases.

Running the script twice writes identical files, except the legacy-format
pickle of llama-gqa-bin, whose storage keys are memory addresses (the tensors
in it are the same).
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(1)

# ---------------------------------------------------------------- file writers

ST_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.bool: "BOOL",
    torch.uint8: "U8",
}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Writes the safetensors format by hand: an 8-byte little-endian header
    length, a JSON header padded with spaces to a multiple of 8, the data."""
    header = {}
    blobs = []
    off = 0
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_config(path, cfg):
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


# ---------------------------------------------------------------- random weights


class Init:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def randn(self, *shape):
        return torch.randn(*shape, generator=self.g)

    def matrix(self, out_features, in_features):
        return self.randn(out_features, in_features) / math.sqrt(in_features)

    def bias(self, n):
        return 0.1 * self.randn(n)

    def norm(self, n):
        return 1.0 + 0.1 * self.randn(n)

    def embedding(self, n, d):
        return self.randn(n, d)

    def ids(self, vocab, n):
        return torch.randint(0, vocab, (n,), generator=self.g)


# ---------------------------------------------------------------- activations


def act_fn(name):
    return {
        "gelu": F.gelu,
        "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
        "silu": F.silu,
        "swish": F.silu,
    }[name]


# ---------------------------------------------------------------- BERT


def bert_weights(cfg, init):
    H, I = cfg["hidden_size"], cfg["intermediate_size"]
    sd = {
        "embeddings.word_embeddings.weight": init.embedding(cfg["vocab_size"], H),
        "embeddings.position_embeddings.weight": init.embedding(cfg["max_position_embeddings"], H),
        "embeddings.token_type_embeddings.weight": init.embedding(cfg["type_vocab_size"], H),
        "embeddings.LayerNorm.weight": init.norm(H),
        "embeddings.LayerNorm.bias": init.bias(H),
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            sd[p + f"attention.self.{n}.weight"] = init.matrix(H, H)
            sd[p + f"attention.self.{n}.bias"] = init.bias(H)
        sd[p + "attention.output.dense.weight"] = init.matrix(H, H)
        sd[p + "attention.output.dense.bias"] = init.bias(H)
        sd[p + "attention.output.LayerNorm.weight"] = init.norm(H)
        sd[p + "attention.output.LayerNorm.bias"] = init.bias(H)
        sd[p + "intermediate.dense.weight"] = init.matrix(I, H)
        sd[p + "intermediate.dense.bias"] = init.bias(I)
        sd[p + "output.dense.weight"] = init.matrix(H, I)
        sd[p + "output.dense.bias"] = init.bias(H)
        sd[p + "output.LayerNorm.weight"] = init.norm(H)
        sd[p + "output.LayerNorm.bias"] = init.bias(H)
    sd["pooler.dense.weight"] = init.matrix(H, H)
    sd["pooler.dense.bias"] = init.bias(H)
    return sd


def bert_forward(sd, cfg, ids, num_labels=0):
    """transformers BertModel (+ BertForSequenceClassification head) at batch 1,
    attention mask all ones, token_type_ids all zeros, absolute positions."""
    n = ids.shape[0]
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    dh = H // nh
    eps = cfg["layer_norm_eps"]
    act = act_fn(cfg["hidden_act"])
    w = lambda k: sd[k].float()
    x = w("embeddings.word_embeddings.weight")[ids]
    x = x + w("embeddings.token_type_embeddings.weight")[torch.zeros(n, dtype=torch.long)]
    x = x + w("embeddings.position_embeddings.weight")[torch.arange(n)]
    x = F.layer_norm(x, (H,), w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"), eps)
    mask = torch.zeros(1, 1, n)  # (1 - attention_mask) * finfo.min with a full mask
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda h, k: F.linear(h, w(p + k + ".weight"), w(p + k + ".bias"))
        q = lin(x, "attention.self.query").view(n, nh, dh).transpose(0, 1)
        k = lin(x, "attention.self.key").view(n, nh, dh).transpose(0, 1)
        v = lin(x, "attention.self.value").view(n, nh, dh).transpose(0, 1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + mask
        ctx = (scores.softmax(-1) @ v).transpose(0, 1).reshape(n, H)
        a = F.layer_norm(lin(ctx, "attention.output.dense") + x, (H,),
                         w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias"), eps)
        h = act(lin(a, "intermediate.dense"))
        x = F.layer_norm(lin(h, "output.dense") + a, (H,),
                         w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias"), eps)
    pooled = torch.tanh(F.linear(x[0], w("pooler.dense.weight"), w("pooler.dense.bias")))
    out = {"last_hidden_state": x.unsqueeze(0), "pooler_output": pooled.unsqueeze(0)}
    if num_labels:
        out["logits"] = F.linear(pooled, w("classifier.weight"), w("classifier.bias")).unsqueeze(0)
    return out


def bert_config(**kw):
    cfg = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_size": 32,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 40,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "type_vocab_size": 2,
        "vocab_size": 150,
    }
    cfg.update(kw)
    return cfg


# ---------------------------------------------------------------- GPT-2


def gpt2_weights(cfg, init):
    E, P = cfg["n_embd"], cfg["n_positions"]
    inner = cfg.get("n_inner") or 4 * E
    # Conv1D stores its weight as [in, out]: y = x @ W + b.
    sd = {"wte.weight": init.embedding(cfg["vocab_size"], E), "wpe.weight": init.embedding(P, E)}
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        sd[p + "ln_1.weight"] = init.norm(E)
        sd[p + "ln_1.bias"] = init.bias(E)
        sd[p + "attn.c_attn.weight"] = init.matrix(3 * E, E).t().contiguous()
        sd[p + "attn.c_attn.bias"] = init.bias(3 * E)
        sd[p + "attn.c_proj.weight"] = init.matrix(E, E).t().contiguous()
        sd[p + "attn.c_proj.bias"] = init.bias(E)
        sd[p + "ln_2.weight"] = init.norm(E)
        sd[p + "ln_2.bias"] = init.bias(E)
        sd[p + "mlp.c_fc.weight"] = init.matrix(inner, E).t().contiguous()
        sd[p + "mlp.c_fc.bias"] = init.bias(inner)
        sd[p + "mlp.c_proj.weight"] = init.matrix(E, inner).t().contiguous()
        sd[p + "mlp.c_proj.bias"] = init.bias(E)
    sd["ln_f.weight"] = init.norm(E)
    sd["ln_f.bias"] = init.bias(E)
    return sd


def gpt2_forward(sd, cfg, ids, lm_head):
    """transformers GPT2Model / GPT2LMHeadModel at batch 1 (eager attention)."""
    n = ids.shape[0]
    E, nh = cfg["n_embd"], cfg["n_head"]
    dh = E // nh
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    act = act_fn(cfg.get("activation_function", "gelu_new"))
    w = lambda k: sd[k].float()
    conv1d = lambda h, k: h @ w(k + ".weight") + w(k + ".bias")
    x = w("wte.weight")[ids] + w("wpe.weight")[torch.arange(n)]
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool))
    neg = torch.finfo(torch.float32).min
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        a = F.layer_norm(x, (E,), w(p + "ln_1.weight"), w(p + "ln_1.bias"), eps)
        q, k, v = conv1d(a, p + "attn.c_attn").split(E, dim=-1)
        q, k, v = (t.view(n, nh, dh).transpose(0, 1) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2)
        if cfg.get("scale_attn_weights", True):
            scores = scores / torch.full([], dh ** 0.5)
        if cfg.get("scale_attn_by_inverse_layer_idx", False):
            scores = scores / float(i + 1)
        scores = torch.where(causal, scores, torch.tensor(neg))
        ctx = (scores.softmax(-1) @ v).transpose(0, 1).reshape(n, E)
        x = x + conv1d(ctx, p + "attn.c_proj")
        m = F.layer_norm(x, (E,), w(p + "ln_2.weight"), w(p + "ln_2.bias"), eps)
        x = x + conv1d(act(conv1d(m, p + "mlp.c_fc")), p + "mlp.c_proj")
    x = F.layer_norm(x, (E,), w("ln_f.weight"), w("ln_f.bias"), eps)
    out = {"last_hidden_state": x.unsqueeze(0)}
    if lm_head:
        out["logits"] = F.linear(x, w("lm_head.weight") if "lm_head.weight" in sd else w("wte.weight")).unsqueeze(0)
    return out


def gpt2_config(**kw):
    cfg = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "activation_function": "gelu_new",
        "attn_pdrop": 0.1,
        "bos_token_id": 0,
        "embd_pdrop": 0.1,
        "eos_token_id": 0,
        "layer_norm_epsilon": 1e-5,
        "n_ctx": 32,
        "n_embd": 32,
        "n_head": 4,
        "n_layer": 2,
        "n_positions": 32,
        "resid_pdrop": 0.1,
        "torch_dtype": "float32",
        "vocab_size": 200,
    }
    cfg.update(kw)
    return cfg


# ---------------------------------------------------------------- Llama / Qwen2 / Mistral


def llama_weights(cfg, init, qkv_bias=False, untied=False):
    H, I = cfg["hidden_size"], cfg["intermediate_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    dh = cfg.get("head_dim") or H // nh
    sd = {"model.embed_tokens.weight": init.embedding(cfg["vocab_size"], H)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = init.norm(H)
        sd[p + "self_attn.q_proj.weight"] = init.matrix(nh * dh, H)
        sd[p + "self_attn.k_proj.weight"] = init.matrix(nkv * dh, H)
        sd[p + "self_attn.v_proj.weight"] = init.matrix(nkv * dh, H)
        if qkv_bias:
            sd[p + "self_attn.q_proj.bias"] = init.bias(nh * dh)
            sd[p + "self_attn.k_proj.bias"] = init.bias(nkv * dh)
            sd[p + "self_attn.v_proj.bias"] = init.bias(nkv * dh)
        sd[p + "self_attn.o_proj.weight"] = init.matrix(H, nh * dh)
        sd[p + "post_attention_layernorm.weight"] = init.norm(H)
        sd[p + "mlp.gate_proj.weight"] = init.matrix(I, H)
        sd[p + "mlp.up_proj.weight"] = init.matrix(I, H)
        sd[p + "mlp.down_proj.weight"] = init.matrix(H, I)
    sd["model.norm.weight"] = init.norm(H)
    if untied:
        sd["lm_head.weight"] = init.matrix(cfg["vocab_size"], H) * 4
    return sd


def rms_norm(x, weight, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def llama_forward(sd, cfg, ids):
    """transformers LlamaForCausalLM at batch 1 (eager attention); q/k/v biases
    when the state dict has them (Qwen2), Mistral's sliding window when the
    config sets one."""
    n = ids.shape[0]
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    dh = cfg.get("head_dim") or H // nh
    eps = cfg["rms_norm_eps"]
    theta = cfg.get("rope_theta", 10000.0)
    act = act_fn(cfg.get("hidden_act", "silu"))
    w = lambda k: sd[k].float()

    def lin(h, k):
        b = sd.get(k + ".bias")
        return F.linear(h, w(k + ".weight"), None if b is None else b.float())

    inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        inv_freq = llama3_inv_freq(inv_freq, rs)
    freqs = torch.arange(n).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()

    allowed = torch.tril(torch.ones(n, n, dtype=torch.bool))
    window = cfg.get("sliding_window") if cfg.get("model_type") == "mistral" or cfg.get("use_sliding_window") else None
    if window:
        qi = torch.arange(n)[:, None]
        kj = torch.arange(n)[None, :]
        allowed &= kj > qi - window
    neg = torch.finfo(torch.float32).min

    x = w("model.embed_tokens.weight")[ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms_norm(x, w(p + "input_layernorm.weight"), eps)
        q = lin(a, p + "self_attn.q_proj").view(n, nh, dh).transpose(0, 1)
        k = lin(a, p + "self_attn.k_proj").view(n, nkv, dh).transpose(0, 1)
        v = lin(a, p + "self_attn.v_proj").view(n, nkv, dh).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=0)  # repeat_kv
        v = v.repeat_interleave(nh // nkv, dim=0)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
        scores = scores + torch.where(allowed, torch.tensor(0.0), torch.tensor(neg))
        ctx = (scores.softmax(-1, dtype=torch.float32) @ v).transpose(0, 1).reshape(n, nh * dh)
        x = x + lin(ctx, p + "self_attn.o_proj")
        m = rms_norm(x, w(p + "post_attention_layernorm.weight"), eps)
        x = x + lin(act(lin(m, p + "mlp.gate_proj")) * lin(m, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms_norm(x, w("model.norm.weight"), eps)
    head = w("lm_head.weight") if "lm_head.weight" in sd else w("model.embed_tokens.weight")
    return {"last_hidden_state": x.unsqueeze(0), "logits": F.linear(x, head).unsqueeze(0)}


def llama3_inv_freq(inv_freq, rs):
    """transformers' _compute_llama3_parameters."""
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv_freq
    inv_llama = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, inv_llama)


def llama_config(**kw):
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 32,
        "intermediate_size": 80,
        "max_position_embeddings": 64,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 4,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "vocab_size": 256,
    }
    cfg.update(kw)
    return cfg


# ---------------------------------------------------------------- cases


def rounded(sd, dtype):
    """The state dict with every float tensor rounded to dtype."""
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}


def prefixed(sd, prefix, skip=()):
    return {(k if k in skip else prefix + k): v for k, v in sd.items()}


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def bert_bin():
    """BertModel, no prefix, pytorch_model.bin, odd length 13."""
    cfg = bert_config()
    init = Init(101)
    sd = bert_weights(cfg, init)
    ids = init.ids(cfg["vocab_size"], 13)
    return cfg, sd, sd, "bin", ids, bert_forward(sd, cfg, ids)


@case
def bert_prefix_st():
    """BertModel saved from a BertForPreTraining-style checkpoint: bert.
    prefix, embeddings.position_ids buffer, unused cls.* head tensors,
    model.safetensors, a sequence of exactly max_position_embeddings."""
    cfg = bert_config(max_position_embeddings=24, vocab_size=120)
    init = Init(102)
    sd = bert_weights(cfg, init)
    ids = init.ids(cfg["vocab_size"], cfg["max_position_embeddings"])
    out = bert_forward(sd, cfg, ids)
    stored = prefixed(sd, "bert.")
    stored["bert.embeddings.position_ids"] = torch.arange(cfg["max_position_embeddings"]).unsqueeze(0)
    stored["cls.predictions.bias"] = init.bias(cfg["vocab_size"])
    stored["cls.predictions.transform.dense.weight"] = init.matrix(cfg["hidden_size"], cfg["hidden_size"])
    return cfg, sd, stored, "st", ids, out


@case
def bert_oldnames_bin():
    """BertModel with the old LayerNorm names gamma/beta, bert. prefix,
    position_ids buffer, gelu_new activation, layer_norm_eps 1e-5, 3 layers."""
    cfg = bert_config(hidden_act="gelu_new", layer_norm_eps=1e-5, num_hidden_layers=3, num_attention_heads=2,
                      hidden_size=24, intermediate_size=40)
    init = Init(103)
    sd = bert_weights(cfg, init)
    ids = init.ids(cfg["vocab_size"], 9)
    out = bert_forward(sd, cfg, ids)
    stored = {}
    for k, v in sd.items():
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        stored["bert." + k] = v
    stored["bert.embeddings.position_ids"] = torch.arange(cfg["max_position_embeddings"]).unsqueeze(0)
    return cfg, sd, stored, "bin", ids, out


@case
def bert_cls_st():
    """BertForSequenceClassification (3 labels), bert. prefix, safetensors."""
    cfg = bert_config(architectures=["BertForSequenceClassification"],
                      id2label={"0": "NEGATIVE", "1": "NEUTRAL", "2": "POSITIVE"},
                      label2id={"NEGATIVE": 0, "NEUTRAL": 1, "POSITIVE": 2})
    init = Init(104)
    sd = bert_weights(cfg, init)
    sd["classifier.weight"] = init.matrix(3, cfg["hidden_size"])
    sd["classifier.bias"] = init.bias(3)
    ids = init.ids(cfg["vocab_size"], 11)
    out = bert_forward(sd, cfg, ids, num_labels=3)
    stored = prefixed(sd, "bert.", skip=("classifier.weight", "classifier.bias"))
    return cfg, sd, stored, "st", ids, out


@case
def bert_f16_st():
    """BertModel with float16 weights (safetensors), torch_dtype float16."""
    cfg = bert_config(torch_dtype="float16")
    init = Init(105)
    sd = rounded(bert_weights(cfg, init), torch.float16)
    ids = init.ids(cfg["vocab_size"], 16)
    return cfg, sd, sd, "st", ids, bert_forward(sd, cfg, ids)


@case
def gpt2_lm_bin():
    """GPT2LMHeadModel, transformer. prefix, attn.bias and attn.masked_bias
    buffers, lm_head tied to wte (one shared storage in the pickle), odd
    length 15."""
    cfg = gpt2_config()
    init = Init(201)
    sd = gpt2_weights(cfg, init)
    ids = init.ids(cfg["vocab_size"], 15)
    out = gpt2_forward(sd, cfg, ids, lm_head=True)
    stored = prefixed(sd, "transformer.")
    P = cfg["n_positions"]
    for i in range(cfg["n_layer"]):
        stored[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(P, P, dtype=torch.bool)).view(1, 1, P, P)
        stored[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    stored["lm_head.weight"] = stored["transformer.wte.weight"]  # tied: same storage
    return cfg, sd, stored, "bin", ids, out


@case
def gpt2_model_st():
    """GPT2Model (no head), no prefix, safetensors, relu activation,
    scale_attn_by_inverse_layer_idx, n_inner 48, a sequence of exactly
    n_positions."""
    cfg = gpt2_config(architectures=["GPT2Model"], activation_function="relu", n_positions=20, n_ctx=20,
                      scale_attn_by_inverse_layer_idx=True, n_inner=48)
    init = Init(202)
    sd = gpt2_weights(cfg, init)
    ids = init.ids(cfg["vocab_size"], cfg["n_positions"])
    return cfg, sd, sd, "st", ids, gpt2_forward(sd, cfg, ids, lm_head=False)


@case
def gpt2_bf16_st():
    """GPT2LMHeadModel with bfloat16 weights, transformer. prefix, lm_head
    omitted from the file (tied), gelu (erf) activation, 3 layers."""
    cfg = gpt2_config(torch_dtype="bfloat16", activation_function="gelu", n_layer=3)
    init = Init(203)
    sd = rounded(gpt2_weights(cfg, init), torch.bfloat16)
    ids = init.ids(cfg["vocab_size"], 7)
    out = gpt2_forward(sd, cfg, ids, lm_head=True)
    return cfg, sd, prefixed(sd, "transformer."), "st", ids, out


@case
def llama_tiny_st():
    """LlamaForCausalLM, MHA (4 heads), untied lm_head, safetensors. Also the
    README's quick-start model and the reference of the validate tests."""
    cfg = llama_config()
    init = Init(301)
    sd = llama_weights(cfg, init, untied=True)
    ids = init.ids(cfg["vocab_size"], 17)
    return cfg, sd, sd, "st", ids, llama_forward(sd, cfg, ids)


@case
def llama_tiny_f16_st():
    """llama-tiny-st's weights rounded to float16 (same ids)."""
    cfg, sd, _, _, ids, _ = llama_tiny_st()
    cfg = dict(cfg, torch_dtype="float16")
    sd = rounded(sd, torch.float16)
    return cfg, sd, sd, "st", ids, llama_forward(sd, cfg, ids)


@case
def llama_tiny_bf16_st():
    """llama-tiny-st's weights rounded to bfloat16 (same ids)."""
    cfg, sd, _, _, ids, _ = llama_tiny_st()
    cfg = dict(cfg, torch_dtype="bfloat16")
    sd = rounded(sd, torch.bfloat16)
    return cfg, sd, sd, "st", ids, llama_forward(sd, cfg, ids)


@case
def llama_gqa_bin():
    """LlamaForCausalLM, GQA (8 heads, 2 KV heads), tied embeddings with the
    lm_head absent, rope_theta 5e5, rms_norm_eps 1e-6, old
    rotary_emb.inv_freq buffers, legacy (non-zip) torch.save format, a
    sequence of exactly max_position_embeddings."""
    cfg = llama_config(num_attention_heads=8, num_key_value_heads=2, rope_theta=500000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True, max_position_embeddings=48, intermediate_size=64)
    init = Init(302)
    sd = llama_weights(cfg, init)
    ids = init.ids(cfg["vocab_size"], cfg["max_position_embeddings"])
    out = llama_forward(sd, cfg, ids)
    stored = dict(sd)
    dh = cfg["hidden_size"] // cfg["num_attention_heads"]
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, dh, 2).float() / dh))
    for i in range(cfg["num_hidden_layers"]):
        stored[f"model.layers.{i}.self_attn.rotary_emb.inv_freq"] = inv_freq.clone()
    return cfg, sd, stored, "bin-legacy", ids, out


@case
def qwen2_bias_st():
    """Qwen2ForCausalLM: q/k/v biases, GQA (4 heads, 2 KV heads), rope_theta
    1e6, tied embeddings, sliding_window set but use_sliding_window false."""
    cfg = llama_config(architectures=["Qwen2ForCausalLM"], model_type="qwen2", num_key_value_heads=2,
                       rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, sliding_window=4,
                       use_sliding_window=False, max_window_layers=2, vocab_size=180)
    init = Init(303)
    sd = llama_weights(cfg, init, qkv_bias=True)
    ids = init.ids(cfg["vocab_size"], 21)
    return cfg, sd, sd, "st", ids, llama_forward(sd, cfg, ids)


@case
def mistral_bin():
    """MistralForCausalLM: GQA (4 heads, 1 KV head), explicit head_dim 16
    (q_proj wider than hidden), sliding_window 6 shorter than the sequence,
    untied lm_head, pytorch_model.bin."""
    cfg = llama_config(architectures=["MistralForCausalLM"], model_type="mistral", num_key_value_heads=1,
                       head_dim=16, sliding_window=6, rope_theta=10000.0, vocab_size=160)
    init = Init(304)
    sd = llama_weights(cfg, init, untied=True)
    ids = init.ids(cfg["vocab_size"], 19)
    return cfg, sd, sd, "bin", ids, llama_forward(sd, cfg, ids)


@case
def llama_rope3_st():
    """LlamaForCausalLM with Llama 3's rope_scaling (rope_type llama3, factor
    4, original_max_position_embeddings 512: the head's 4 frequencies fall in
    the kept, smoothed and divided bands), head_dim 8, rope_theta 5e5, tied."""
    cfg = llama_config(rope_theta=500000.0, tie_word_embeddings=True, num_key_value_heads=2,
                       rope_scaling={"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 512})
    init = Init(305)
    sd = llama_weights(cfg, init)
    ids = init.ids(cfg["vocab_size"], 29)
    return cfg, sd, sd, "st", ids, llama_forward(sd, cfg, ids)


def name_of(fn):
    return fn.__name__.replace("_", "-")


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
    os.makedirs(outdir, exist_ok=True)
    rows = []
    for fn in CASES:
        name = name_of(fn)
        cfg, _, stored, fmt, ids, out = fn()
        d = os.path.join(outdir, name)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
        write_config(os.path.join(d, "config.json"), cfg)
        stored = {k: v.contiguous() for k, v in stored.items()}
        if fmt == "st":
            write_safetensors(os.path.join(d, "model.safetensors"), stored, {"format": "pt"})
        elif fmt == "bin":
            torch.save(stored, os.path.join(d, "pytorch_model.bin"))
        elif fmt == "bin-legacy":
            torch.save(stored, os.path.join(d, "pytorch_model.bin"), _use_new_zipfile_serialization=False)
        else:
            raise ValueError(fmt)
        expected = {"input_ids": ids.unsqueeze(0).to(torch.int64)}
        for k, v in out.items():
            expected[k] = v.detach().float().contiguous()
        # The expected outputs stay out of the model directory, which is
        # shipped as an example model (the README's quick start pushes it).
        expdir = os.path.join(os.path.dirname(outdir.rstrip(os.sep)), "expected")
        os.makedirs(expdir, exist_ok=True)
        write_safetensors(os.path.join(expdir, name + ".safetensors"), expected,
                          {"case": name, "generator": "testdata/gen_models.py"})
        doc = " ".join(fn.__doc__.split())
        rows.append(f"| {name} | {cfg['architectures'][0]} | {fmt} | {len(ids)} | {', '.join(out)} | {doc} |")
        print(name, file=sys.stderr)
    with open(os.path.join(outdir, "README.md"), "w") as f:
        f.write("# Forward-pass fixtures\n\n"
                "Made by `/usr/bin/python3 testdata/gen_models.py` (PyTorch 1.13, no transformers): tiny random\n"
                "models in Hugging Face layout and, in testdata/expected/<case>.safetensors, the input_ids (int64 [1, n]) and\n"
                "the float32 outputs of plain-torch implementations of the Hugging Face definitions, computed from\n"
                "exactly the stored weights. f16/bf16 cases: outputs computed in float32 from the rounded weights\n"
                "(as transformers computes after upcasting them). A correct forward pass matches within 1e-4.\n\n"
                "| case | architecture | weights | length | outputs | what it covers |\n"
                "|---|---|---|---|---|---|\n")
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
