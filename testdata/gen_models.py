#!/usr/bin/python3
"""Generates the forward-pass fixtures in testdata/models.

Each fixture is a tiny model directory in Hugging Face layout (config.json plus
weights) and, beside OUTDIR in expected/<case>.safetensors (out of the model
directory, which is shipped as an example model), the input_ids and the outputs
that the Hugging Face definitions compute from exactly the stored weights:

    /usr/bin/python3 testdata/gen_models.py [--only CASE,...] [OUTDIR]   # default: testdata/models

--only writes the named cases only (the README lists every case): the
PyTorch pickles of the .bin cases depend on the PyTorch version, so a newer
PyTorch rewrites them with other bytes.

Needs PyTorch (Debian's python3-torch 1.13); transformers is not used: the
forward functions below implement, in plain torch and float32, what
transformers' BertModel / BertForSequenceClassification, GPT2Model /
GPT2LMHeadModel and LlamaForCausalLM (with Qwen2's q/k/v biases and Mistral's
sliding window), and the nn.Modules further down (RoBERTa, DistilBERT, MPNet, ModernBERT, Qwen3,
Mixtral, Qwen2-MoE, Qwen3-MoE, Gemma 1-3, Phi-3)
compute at batch 1 with a full attention mask and
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
import re
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


# ---------------------------------------------------------------- RoBERTa, DistilBERT (nn.Modules)
#
# Written from transformers' modeling_roberta.py (XLM-RoBERTa and CamemBERT
# are the same classes) and modeling_distilbert.py, with their exact module
# and parameter names: the fixtures' weights are loaded into them with
# load_state_dict(strict=True). Eval mode (dropout off), batch 1, full
# attention mask, token_type_ids 0.

from torch import nn


class RobertaEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c["hidden_size"]
        self.padding_idx = c["pad_token_id"]
        self.word_embeddings = nn.Embedding(c["vocab_size"], H, padding_idx=self.padding_idx)
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], H, padding_idx=self.padding_idx)
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], H)
        self.LayerNorm = nn.LayerNorm(H, eps=c["layer_norm_eps"])

    def forward(self, ids):
        # create_position_ids_from_input_ids: cumsum over the non-pad
        # tokens, offset by padding_idx; pads get padding_idx.
        mask = ids.ne(self.padding_idx).int()
        pos = (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + self.padding_idx
        x = self.word_embeddings(ids) + self.token_type_embeddings(torch.zeros_like(ids))
        x = x + self.position_embeddings(pos)
        return self.LayerNorm(x)


class RobertaSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c["hidden_size"]
        self.nh, self.dh = c["num_attention_heads"], H // c["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)

    def forward(self, x):
        b, n, _ = x.shape
        sh = lambda t: t.view(b, n, self.nh, self.dh).transpose(1, 2)
        q, k, v = sh(self.query(x)), sh(self.key(x)), sh(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dh)
        return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, self.nh * self.dh)


class RobertaSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class RobertaAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = RobertaSelfAttention(c)
        self.output = RobertaSelfOutput(c)

    def forward(self, x):
        return self.output(self.self(x), x)


class RobertaIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.act = act_fn(c["hidden_act"])

    def forward(self, x):
        return self.act(self.dense(x))


class RobertaOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["intermediate_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class RobertaLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = RobertaAttention(c)
        self.intermediate = RobertaIntermediate(c)
        self.output = RobertaOutput(c)

    def forward(self, x):
        a = self.attention(x)
        return self.output(self.intermediate(a), a)


class RobertaEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([RobertaLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x):
        for l in self.layer:
            x = l(x)
        return x


class RobertaPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class RobertaModel(nn.Module):
    def __init__(self, c, add_pooling_layer=True):
        super().__init__()
        self.embeddings = RobertaEmbeddings(c)
        self.encoder = RobertaEncoder(c)
        self.pooler = RobertaPooler(c) if add_pooling_layer else None

    def forward(self, ids):
        x = self.encoder(self.embeddings(ids))
        out = {"last_hidden_state": x}
        if self.pooler is not None:
            out["pooler_output"] = self.pooler(x)
        return out


class RobertaLMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c["hidden_size"]
        self.dense = nn.Linear(H, H)
        self.layer_norm = nn.LayerNorm(H, eps=c["layer_norm_eps"])
        self.decoder = nn.Linear(H, c["vocab_size"])
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))
        self.decoder.bias = self.bias

    def forward(self, x):
        return self.decoder(self.layer_norm(F.gelu(self.dense(x))))


class RobertaForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.roberta = RobertaModel(c, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(c)
        if c.get("tie_word_embeddings", True):
            self.lm_head.decoder.weight = self.roberta.embeddings.word_embeddings.weight

    def forward(self, ids):
        out = self.roberta(ids)
        out["logits"] = self.lm_head(out["last_hidden_state"])
        return out


class RobertaClassificationHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c["hidden_size"]
        self.dense = nn.Linear(H, H)
        self.out_proj = nn.Linear(H, c["num_labels"])

    def forward(self, x):
        return self.out_proj(torch.tanh(self.dense(x[:, 0])))


class RobertaForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.roberta = RobertaModel(c, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(c)

    def forward(self, ids):
        out = self.roberta(ids)
        out["logits"] = self.classifier(out["last_hidden_state"])
        return out


def roberta_config(**kw):
    cfg = bert_config(architectures=["RobertaForMaskedLM"], model_type="roberta", pad_token_id=1, bos_token_id=0,
                      eos_token_id=2, type_vocab_size=1, max_position_embeddings=42, layer_norm_eps=1e-5)
    cfg.update(kw)
    return cfg


def random_state(module, init, tied=()):
    """Random weights under the module's state_dict names, in their order:
    embeddings unit-variance, norms near 1, biases near 0.1, matrices
    1/sqrt(fan_in); a name in tied (name -> source) gets its source's tensor."""
    sd = {}
    for name, t in module.state_dict().items():
        if name in tied:
            sd[name] = sd[tied[name]]
        elif "norm" in name.lower():
            sd[name] = init.norm(t.shape[0]) if name.endswith("weight") else init.bias(t.shape[0])
        elif "embeddings" in name:
            sd[name] = init.embedding(*t.shape)
        elif name.endswith("bias"):
            sd[name] = init.bias(t.shape[0])
        else:
            sd[name] = init.matrix(*t.shape)
    return sd


def run_module(cls, cfg, sd, ids):
    """Builds cls(cfg), loads sd with strict=True (the exact transformers
    names) and runs ids at batch 1 in float32."""
    m = cls(cfg).eval()
    m.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    with torch.no_grad():
        return m(ids.unsqueeze(0))


ROBERTA_MLM_TIED = {"lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
                    "lm_head.decoder.bias": "lm_head.bias"}


def without(sd, names):
    return {k: v for k, v in sd.items() if k not in names}


def with_pads(ids, pad, at):
    ids = ids.clone()
    ids[ids == pad] = pad + 1  # pads only where asked
    for i in at:
        ids[i] = pad
    return ids


class DistilEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["dim"], padding_idx=c["pad_token_id"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["dim"])
        self.LayerNorm = nn.LayerNorm(c["dim"], eps=1e-12)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos))


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_heads, self.dim = c["n_heads"], c["dim"]
        self.q_lin, self.k_lin = nn.Linear(self.dim, self.dim), nn.Linear(self.dim, self.dim)
        self.v_lin, self.out_lin = nn.Linear(self.dim, self.dim), nn.Linear(self.dim, self.dim)

    def forward(self, x):
        b, n, _ = x.shape
        dh = self.dim // self.n_heads
        sh = lambda t: t.view(b, -1, self.n_heads, dh).transpose(1, 2)
        q, k, v = sh(self.q_lin(x)), sh(self.k_lin(x)), sh(self.v_lin(x))
        q = q / math.sqrt(dh)
        w = (q @ k.transpose(2, 3)).softmax(-1)
        return self.out_lin((w @ v).transpose(1, 2).reshape(b, n, self.n_heads * dh))


class FFN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.lin1 = nn.Linear(c["dim"], c["hidden_dim"])
        self.lin2 = nn.Linear(c["hidden_dim"], c["dim"])
        self.activation = act_fn(c["activation"])

    def forward(self, x):
        return self.lin2(self.activation(self.lin1(x)))


class TransformerBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = MultiHeadSelfAttention(c)
        self.sa_layer_norm = nn.LayerNorm(c["dim"], eps=1e-12)
        self.ffn = FFN(c)
        self.output_layer_norm = nn.LayerNorm(c["dim"], eps=1e-12)

    def forward(self, x):
        a = self.sa_layer_norm(self.attention(x) + x)
        return self.output_layer_norm(self.ffn(a) + a)


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([TransformerBlock(c) for _ in range(c["n_layers"])])

    def forward(self, x):
        for l in self.layer:
            x = l(x)
        return x


class DistilBertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = DistilEmbeddings(c)
        self.transformer = Transformer(c)

    def forward(self, ids):
        return {"last_hidden_state": self.transformer(self.embeddings(ids))}


class DistilBertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.activation = act_fn(c["activation"])
        self.distilbert = DistilBertModel(c)
        self.vocab_transform = nn.Linear(c["dim"], c["dim"])
        self.vocab_layer_norm = nn.LayerNorm(c["dim"], eps=1e-12)
        self.vocab_projector = nn.Linear(c["dim"], c["vocab_size"])
        self.vocab_projector.weight = self.distilbert.embeddings.word_embeddings.weight

    def forward(self, ids):
        out = self.distilbert(ids)
        h = self.vocab_layer_norm(self.activation(self.vocab_transform(out["last_hidden_state"])))
        out["logits"] = self.vocab_projector(h)
        return out


class DistilBertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.distilbert = DistilBertModel(c)
        self.pre_classifier = nn.Linear(c["dim"], c["dim"])
        self.classifier = nn.Linear(c["dim"], c["num_labels"])

    def forward(self, ids):
        out = self.distilbert(ids)
        h = F.relu(self.pre_classifier(out["last_hidden_state"][:, 0]))
        out["logits"] = self.classifier(h)
        return out


def sinusoidal(n_pos, dim):
    """DistilBERT's create_sinusoidal_embeddings."""
    pos = torch.arange(n_pos, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(dim, dtype=torch.float64)
    enc = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    out = torch.empty(n_pos, dim)
    out[:, 0::2] = torch.sin(enc[:, 0::2]).float()
    out[:, 1::2] = torch.cos(enc[:, 1::2]).float()
    return out


def distilbert_config(**kw):
    cfg = {
        "architectures": ["DistilBertForMaskedLM"],
        "model_type": "distilbert",
        "activation": "gelu",
        "attention_dropout": 0.1,
        "dim": 32,
        "dropout": 0.1,
        "hidden_dim": 64,
        "initializer_range": 0.02,
        "max_position_embeddings": 40,
        "n_heads": 4,
        "n_layers": 2,
        "pad_token_id": 0,
        "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2,
        "sinusoidal_pos_embds": False,
        "tie_weights_": True,
        "torch_dtype": "float32",
        "vocab_size": 150,
    }
    cfg.update(kw)
    return cfg


DISTIL_MLM_TIED = {"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"}


# ---------------------------------------------------------------- MPNet (nn.Modules)
#
# Written from transformers' modeling_mpnet.py (MPNetModel, MPNetForMaskedLM,
# MPNetForSequenceClassification), with its exact module and parameter
# names. Eval mode, batch 1, full attention mask. The embeddings' padding
# index is 1 whatever pad_token_id says (MPNetEmbeddings hard-codes it), and
# the relative position bias is bucketed into 32 buckets whatever
# relative_attention_num_buckets says (compute_position_bias' default; the
# table has relative_attention_num_buckets rows).


class MPNetEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c["hidden_size"]
        self.padding_idx = 1
        self.word_embeddings = nn.Embedding(c["vocab_size"], H, padding_idx=self.padding_idx)
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], H, padding_idx=self.padding_idx)
        self.LayerNorm = nn.LayerNorm(H, eps=c["layer_norm_eps"])

    def forward(self, ids):
        mask = ids.ne(self.padding_idx).int()
        pos = (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + self.padding_idx
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos))


class MPNetSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c["hidden_size"]
        self.nh, self.dh = c["num_attention_heads"], H // c["num_attention_heads"]
        self.q, self.k, self.v, self.o = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)

    def forward(self, x, position_bias):
        b, n, _ = x.shape
        sh = lambda t: t.view(b, n, self.nh, self.dh).transpose(1, 2)
        q, k, v = sh(self.q(x)), sh(self.k(x)), sh(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dh)
        scores += position_bias
        c = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(b, n, self.nh * self.dh)
        return self.o(c)


class MPNetAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attn = MPNetSelfAttention(c)
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x, position_bias):
        return self.LayerNorm(self.attn(x, position_bias) + x)


class MPNetLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = MPNetAttention(c)
        self.intermediate = RobertaIntermediate(c)  # MPNetIntermediate: "Copied from" BertIntermediate
        self.output = RobertaOutput(c)  # MPNetOutput: BertOutput

    def forward(self, x, position_bias):
        a = self.attention(x, position_bias)
        return self.output(self.intermediate(a), a)


class MPNetEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_heads = c["num_attention_heads"]
        self.layer = nn.ModuleList([MPNetLayer(c) for _ in range(c["num_hidden_layers"])])
        self.relative_attention_bias = nn.Embedding(c["relative_attention_num_buckets"], self.n_heads)

    def forward(self, x):
        position_bias = self.compute_position_bias(x)
        for l in self.layer:
            x = l(x, position_bias)
        return x

    def compute_position_bias(self, x, num_buckets=32):
        bsz, qlen, klen = x.size(0), x.size(1), x.size(1)
        context_position = torch.arange(qlen, dtype=torch.long)[:, None]
        memory_position = torch.arange(klen, dtype=torch.long)[None, :]
        relative_position = memory_position - context_position
        rp_bucket = self.relative_position_bucket(relative_position, num_buckets=num_buckets)
        values = self.relative_attention_bias(rp_bucket)
        values = values.permute([2, 0, 1]).unsqueeze(0)
        return values.expand((bsz, -1, qlen, klen)).contiguous()

    @staticmethod
    def relative_position_bucket(relative_position, num_buckets=32, max_distance=128):
        ret = 0
        n = -relative_position
        num_buckets //= 2
        ret += (n < 0).to(torch.long) * num_buckets
        n = torch.abs(n)
        max_exact = num_buckets // 2
        is_small = n < max_exact
        val_if_large = max_exact + (
            torch.log(n.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
        ).to(torch.long)
        val_if_large = torch.min(val_if_large, torch.full_like(val_if_large, num_buckets - 1))
        ret += torch.where(is_small, n, val_if_large)
        return ret


class MPNetModel(nn.Module):
    def __init__(self, c, add_pooling_layer=True):
        super().__init__()
        self.embeddings = MPNetEmbeddings(c)
        self.encoder = MPNetEncoder(c)
        self.pooler = RobertaPooler(c) if add_pooling_layer else None  # MPNetPooler: BertPooler

    def forward(self, ids):
        x = self.encoder(self.embeddings(ids))
        out = {"last_hidden_state": x}
        if self.pooler is not None:
            out["pooler_output"] = self.pooler(x)
        return out


class MPNetLMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c["hidden_size"]
        self.dense = nn.Linear(H, H)
        self.layer_norm = nn.LayerNorm(H, eps=c["layer_norm_eps"])
        self.decoder = nn.Linear(H, c["vocab_size"], bias=True)
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))
        self.decoder.bias = self.bias

    def forward(self, x):
        return self.decoder(self.layer_norm(F.gelu(self.dense(x))))


class MPNetForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.mpnet = MPNetModel(c, add_pooling_layer=False)
        self.lm_head = MPNetLMHead(c)
        if c.get("tie_word_embeddings", True):
            self.lm_head.decoder.weight = self.mpnet.embeddings.word_embeddings.weight

    def forward(self, ids):
        out = self.mpnet(ids)
        out["logits"] = self.lm_head(out["last_hidden_state"])
        return out


class MPNetForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.mpnet = MPNetModel(c, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(c)  # MPNetClassificationHead: dense, tanh, out_proj on <s>

    def forward(self, ids):
        out = self.mpnet(ids)
        out["logits"] = self.classifier(out["last_hidden_state"])
        return out


def mpnet_config(**kw):
    cfg = {
        "architectures": ["MPNetForMaskedLM"],
        "model_type": "mpnet",
        "attention_probs_dropout_prob": 0.1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": 32,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 80,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "pad_token_id": 1,
        "relative_attention_num_buckets": 32,
        "torch_dtype": "float32",
        "vocab_size": 110,
    }
    cfg.update(kw)
    return cfg


MPNET_MLM_TIED = {"lm_head.decoder.weight": "mpnet.embeddings.word_embeddings.weight",
                  "lm_head.decoder.bias": "lm_head.bias"}


def mpnet_state(cls, cfg, init, tied=()):
    """Random weights; the relative attention bias table unit-variance, so
    that the buckets move the scores as much as the content does."""
    sd = random_state(cls(cfg), init, tied)
    for k in sd:
        if k.endswith("relative_attention_bias.weight"):
            sd[k] = init.randn(*sd[k].shape)
    return sd


# ---------------------------------------------------------------- ModernBERT (nn.Modules)
#
# Written from transformers' modeling_modernbert.py and
# configuration_modernbert.py (ModernBertModel, ModernBertForMaskedLM), with
# their exact module and parameter names; eager attention (no unpadding),
# batch 1, full attention mask. Layer i is global when i %
# global_attn_every_n_layers == 0, else local: keys within local_attention
# // 2 positions either side. RoPE bases: global_rope_theta (full_attention
# layers), local_rope_theta (sliding_attention layers), or rope_parameters
# per layer type. PyTorch 1.13's nn.LayerNorm has no bias=False, so
# ModernBertLayerNorm is F.layer_norm with an optional bias.


class ModernBertLayerNorm(nn.Module):
    def __init__(self, n, eps, bias):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


def modernbert_layer_types(c):
    every = c.get("global_attn_every_n_layers", 3)
    return c.get("layer_types") or ["sliding_attention" if i % every else "full_attention"
                                    for i in range(c["num_hidden_layers"])]


def modernbert_theta(c, layer_type):
    rp = c.get("rope_parameters")
    if rp is not None:
        return rp[layer_type]["rope_theta"]
    if layer_type == "full_attention":
        return c.get("global_rope_theta", 160000.0)
    return c.get("local_rope_theta", 10000.0)


class ModernBertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.tok_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c["pad_token_id"])
        self.norm = ModernBertLayerNorm(c["hidden_size"], c["norm_eps"], c["norm_bias"])

    def forward(self, ids):
        return self.norm(self.tok_embeddings(ids))


class ModernBertMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, I = c["hidden_size"], c["intermediate_size"]
        self.Wi = nn.Linear(H, 2 * I, bias=c["mlp_bias"])
        self.act = act_fn(c["hidden_activation"])
        self.Wo = nn.Linear(I, H, bias=c["mlp_bias"])

    def forward(self, x):
        input, gate = self.Wi(x).chunk(2, dim=-1)
        return self.Wo(self.act(input) * gate)


class ModernBertAttention(nn.Module):
    def __init__(self, c, layer_id):
        super().__init__()
        H = c["hidden_size"]
        self.num_heads = c["num_attention_heads"]
        self.head_dim = H // self.num_heads
        self.Wqkv = nn.Linear(H, 3 * H, bias=c["attention_bias"])
        if layer_id % c.get("global_attn_every_n_layers", 3) != 0:
            self.local_attention = (c["local_attention"] // 2, c["local_attention"] // 2)
        else:
            self.local_attention = (-1, -1)
        self.Wo = nn.Linear(H, H, bias=c["attention_bias"])

    def forward(self, x, cos, sin, attention_mask, sliding_window_mask):
        bs, n, dim = x.shape
        qkv = self.Wqkv(x).view(bs, -1, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.transpose(3, 1).unbind(dim=2)
        query = query * cos + rotate_half(query) * sin
        key = key * cos + rotate_half(key) * sin
        w = torch.matmul(query, key.transpose(2, 3)) * self.head_dim ** -0.5
        mask = sliding_window_mask if self.local_attention != (-1, -1) else attention_mask
        w = nn.functional.softmax(w + mask, dim=-1, dtype=torch.float32)
        out = torch.matmul(w, value).transpose(1, 2).contiguous().view(bs, -1, dim)
        return self.Wo(out)


class ModernBertEncoderLayer(nn.Module):
    def __init__(self, c, layer_id):
        super().__init__()
        H = c["hidden_size"]
        self.attn_norm = nn.Identity() if layer_id == 0 else ModernBertLayerNorm(H, c["norm_eps"], c["norm_bias"])
        self.attn = ModernBertAttention(c, layer_id)
        self.mlp_norm = ModernBertLayerNorm(H, c["norm_eps"], c["norm_bias"])
        self.mlp = ModernBertMLP(c)
        self.attention_type = modernbert_layer_types(c)[layer_id]

    def forward(self, x, cos, sin, attention_mask, sliding_window_mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, attention_mask, sliding_window_mask)
        return x + self.mlp(self.mlp_norm(x))


class ModernBertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embeddings = ModernBertEmbeddings(c)
        self.layers = nn.ModuleList([ModernBertEncoderLayer(c, i) for i in range(c["num_hidden_layers"])])
        self.final_norm = ModernBertLayerNorm(c["hidden_size"], c["norm_eps"], c["norm_bias"])

    def forward(self, ids):
        c, n = self.c, ids.shape[1]
        dh = c["hidden_size"] // c["num_attention_heads"]
        # _update_attention_mask: the global mask is all zeros; the sliding
        # one puts finfo.min beyond local_attention // 2 positions.
        attention_mask = torch.zeros(1, 1, n, n)
        rows = torch.arange(n).unsqueeze(0)
        distance = torch.abs(rows - rows.T)
        window_mask = (distance <= c["local_attention"] // 2).unsqueeze(0).unsqueeze(0)
        sliding_window_mask = attention_mask.masked_fill(window_mask.logical_not(), torch.finfo(torch.float32).min)
        x = self.embeddings(ids)
        for l in self.layers:
            cos, sin = rope_cos_sin(dh, modernbert_theta(c, l.attention_type), n)
            x = l(x, cos, sin, attention_mask, sliding_window_mask)
        return {"last_hidden_state": self.final_norm(x)}


class ModernBertPredictionHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c["hidden_size"]
        self.dense = nn.Linear(H, H, c["classifier_bias"])
        self.act = act_fn(c["classifier_activation"])
        self.norm = ModernBertLayerNorm(H, c["norm_eps"], c["norm_bias"])

    def forward(self, x):
        return self.norm(self.act(self.dense(x)))


class ModernBertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = ModernBertModel(c)
        self.head = ModernBertPredictionHead(c)
        self.decoder = nn.Linear(c["hidden_size"], c["vocab_size"], bias=c["decoder_bias"])
        if c.get("tie_word_embeddings", True):
            self.decoder.weight = self.model.embeddings.tok_embeddings.weight

    def forward(self, ids):
        out = self.model(ids)
        out["logits"] = self.decoder(self.head(out["last_hidden_state"]))
        return out


class ModernBertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = ModernBertModel(c)
        self.head = ModernBertPredictionHead(c)
        self.classifier = nn.Linear(c["hidden_size"], c["num_labels"])

    def forward(self, ids):
        out = self.model(ids)
        h = out["last_hidden_state"]
        if self.c.get("classifier_pooling", "cls") == "cls":
            h = h[:, 0]
        else:
            mask = torch.ones(ids.shape)
            h = (h * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True)
        out["logits"] = self.classifier(self.head(h))
        return out


def modernbert_config(**kw):
    cfg = {
        "architectures": ["ModernBertForMaskedLM"],
        "model_type": "modernbert",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 100,
        "classifier_activation": "gelu",
        "classifier_bias": False,
        "cls_token_id": 100,
        "decoder_bias": True,
        "eos_token_id": 101,
        "global_attn_every_n_layers": 3,
        "global_rope_theta": 160000.0,
        "hidden_activation": "gelu",
        "hidden_size": 32,
        "intermediate_size": 48,
        "local_attention": 8,
        "local_rope_theta": 10000.0,
        "max_position_embeddings": 64,
        "mlp_bias": False,
        "norm_bias": False,
        "norm_eps": 1e-05,
        "num_attention_heads": 4,
        "num_hidden_layers": 4,
        "pad_token_id": 102,
        "sep_token_id": 101,
        "torch_dtype": "float32",
        "vocab_size": 104,
    }
    cfg.update(kw)
    return cfg


MODERNBERT_TIED = {"decoder.weight": "model.embeddings.tok_embeddings.weight"}


def heavy_tailed(sd, init, skip=()):
    """sd with the Linear matrices of the body redrawn heavy-tailed (normal
    times a log-normal scale of sigma 1.5, rescaled to 1/sqrt(fan_in)), as
    trained weights are: the smaller half by magnitude then holds 0.04% of
    a layer's squared weights, which is what magnitude and N:M pruning rely
    on (7% with plain normal weights, and pruning them leaves little of a
    tiny random model's outputs)."""
    out = dict(sd)
    for k, v in sd.items():
        if v.dim() != 2 or "embeddings" in k or "relative_attention_bias" in k or k in skip:
            continue
        x = init.randn(*v.shape) * torch.exp(1.5 * init.randn(*v.shape))
        out[k] = x / x.pow(2).mean().sqrt() / math.sqrt(v.shape[1])
    return out


# ---------------------------------------------------------------- Qwen3 (nn.Modules)
#
# Written from transformers' modeling_qwen3.py and configuration_qwen3.py
# (Qwen3ForCausalLM), with its exact module and parameter names. Eager
# attention, batch 1, full attention mask.


def qwen3_layer_types(c):
    """configuration_qwen3's layer_types; sliding_window is dropped without
    use_sliding_window."""
    window = c.get("sliding_window", 4096) if c.get("use_sliding_window", False) else None
    types = c.get("layer_types")
    if types is None:
        types = ["sliding_attention" if window is not None and i >= c.get("max_window_layers", 28) else "full_attention"
                 for i in range(c["num_hidden_layers"])]
    return window, types


class Qwen3RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.variance_epsilon = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.variance_epsilon))


class Qwen3MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, I = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)
        self.act_fn = act_fn(c.get("hidden_act", "silu"))

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class Qwen3Attention(nn.Module):
    def __init__(self, c, layer_idx):
        super().__init__()
        H = c["hidden_size"]
        self.nh = c["num_attention_heads"]
        self.nkv = c.get("num_key_value_heads", self.nh)
        self.head_dim = c.get("head_dim", 128)
        self.scaling = self.head_dim ** -0.5
        bias = c.get("attention_bias", False)
        eps = c.get("rms_norm_eps", 1e-6)
        self.q_proj = nn.Linear(H, self.nh * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(H, self.nkv * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(H, self.nkv * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.nh * self.head_dim, H, bias=bias)
        self.q_norm = Qwen3RMSNorm(self.head_dim, eps)
        self.k_norm = Qwen3RMSNorm(self.head_dim, eps)
        window, types = qwen3_layer_types(c)
        self.sliding_window = window if types[layer_idx] == "sliding_attention" else None

    def forward(self, x, cos, sin):
        n = x.shape[0]
        q = self.q_norm(self.q_proj(x).view(n, -1, self.head_dim)).transpose(0, 1)
        k = self.k_norm(self.k_proj(x).view(n, -1, self.head_dim)).transpose(0, 1)
        v = self.v_proj(x).view(n, -1, self.head_dim).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.nh // self.nkv, dim=0)  # repeat_kv
        v = v.repeat_interleave(self.nh // self.nkv, dim=0)
        allowed = torch.tril(torch.ones(n, n, dtype=torch.bool))
        if self.sliding_window is not None:
            qi = torch.arange(n)[:, None]
            kj = torch.arange(n)[None, :]
            allowed &= kj > qi - self.sliding_window
        scores = (q @ k.transpose(-1, -2)) * self.scaling
        scores = scores + torch.where(allowed, torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min))
        ctx = (scores.softmax(-1, dtype=torch.float32) @ v).transpose(0, 1).reshape(n, -1)
        return self.o_proj(ctx)


class Qwen3DecoderLayer(nn.Module):
    def __init__(self, c, layer_idx):
        super().__init__()
        eps = c.get("rms_norm_eps", 1e-6)
        self.self_attn = Qwen3Attention(c, layer_idx)
        self.mlp = Qwen3MLP(c)
        self.input_layernorm = Qwen3RMSNorm(c["hidden_size"], eps)
        self.post_attention_layernorm = Qwen3RMSNorm(c["hidden_size"], eps)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen3Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Qwen3DecoderLayer(c, i) for i in range(c["num_hidden_layers"]))
        self.norm = Qwen3RMSNorm(c["hidden_size"], c.get("rms_norm_eps", 1e-6))

    def forward(self, ids):
        ids = ids[0]
        dh = self.c.get("head_dim", 128)
        theta = self.c.get("rope_theta", 10000.0)
        inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
        freqs = torch.arange(ids.shape[0]).float()[:, None] * inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return {"last_hidden_state": self.norm(x).unsqueeze(0)}


class Qwen3ForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = Qwen3Model(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, ids):
        out = self.model(ids)
        out["logits"] = self.lm_head(out["last_hidden_state"])
        return out


QWEN3_TIED = {"lm_head.weight": "model.embed_tokens.weight"}


def qwen3_config(**kw):
    cfg = llama_config(architectures=["Qwen3ForCausalLM"], model_type="qwen3", num_key_value_heads=2, head_dim=16,
                       num_hidden_layers=3, rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                       use_sliding_window=True, sliding_window=5, max_window_layers=1, attention_bias=False,
                       vocab_size=190)
    cfg.update(kw)
    return cfg


def qwen3_state(cfg, init, tied=()):
    """Random weights of Qwen3ForCausalLM, with unit-variance token
    embeddings."""
    sd = random_state(Qwen3ForCausalLM(cfg), init, tied)
    sd["model.embed_tokens.weight"] = init.embedding(*sd["model.embed_tokens.weight"].shape)
    if "lm_head.weight" in tied:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    return sd


# ---------------------------------------------------------------- Mixtral, Qwen2-MoE, Qwen3-MoE (nn.Modules)
#
# Written from transformers' modeling_mixtral.py, modeling_qwen2_moe.py and
# modeling_qwen3_moe.py (MixtralForCausalLM, Qwen2MoeForCausalLM,
# Qwen3MoeForCausalLM) and their configurations, with their exact module and
# parameter names. Eager attention, batch 1, full attention mask. Every
# sparse block records, for each token, the gap between the router logits of
# its k-th and (k+1)-th expert (MOE_MARGINS): the cases require it large
# enough that float32 rounding cannot change which experts a token goes to.

MOE_MARGINS = []


def moe_route(block, router_logits):
    """The routing of the sparse blocks: softmax in float32, top-k, the
    top-k probabilities divided by their sum when block.norm_topk_prob
    (always for Mixtral)."""
    routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float)
    routing_weights, selected_experts = torch.topk(routing_weights, block.top_k, dim=-1)
    if block.norm_topk_prob:
        routing_weights /= routing_weights.sum(dim=-1, keepdim=True)
    if block.top_k < router_logits.shape[-1]:
        top = router_logits.sort(dim=-1, descending=True).values
        MOE_MARGINS.append((top[:, block.top_k - 1] - top[:, block.top_k]).min().item())
    return routing_weights, selected_experts


def moe_experts(block, x, routing_weights, selected_experts):
    """The loop over the experts hit (MixtralSparseMoeBlock.forward): each
    runs on its tokens only, weighted, index_add_ into the output."""
    final = torch.zeros_like(x)
    expert_mask = F.one_hot(selected_experts, num_classes=block.num_experts).permute(2, 1, 0)
    for e in range(block.num_experts):
        idx, top_x = torch.where(expert_mask[e])
        if top_x.numel() == 0:
            continue
        cur = block.experts[e](x[top_x]) * routing_weights[top_x, idx, None]
        final.index_add_(0, top_x, cur)
    return final


def moe_rope(c, n, dh):
    theta = c.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
    freqs = torch.arange(n).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


class MixtralBlockSparseTop2MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, I = c["hidden_size"], c["intermediate_size"]
        self.w1 = nn.Linear(H, I, bias=False)
        self.w2 = nn.Linear(I, H, bias=False)
        self.w3 = nn.Linear(H, I, bias=False)
        self.act_fn = act_fn(c.get("hidden_act", "silu"))

    def forward(self, x):
        return self.w2(self.act_fn(self.w1(x)) * self.w3(x))


class MixtralSparseMoeBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.num_experts = c.get("num_local_experts", 8)
        self.top_k = c.get("num_experts_per_tok", 2)
        self.norm_topk_prob = True
        self.gate = nn.Linear(c["hidden_size"], self.num_experts, bias=False)
        self.experts = nn.ModuleList(MixtralBlockSparseTop2MLP(c) for _ in range(self.num_experts))

    def forward(self, x):
        w, sel = moe_route(self, self.gate(x))
        return moe_experts(self, x, w, sel)


class MoeAttention(nn.Module):
    """MixtralAttention (Mistral's: sliding_window on every layer) and
    Qwen2MoeAttention (q/k/v biases with qkv_bias; no window: the fixtures
    do not use use_sliding_window)."""

    def __init__(self, c, qkv_bias, window):
        super().__init__()
        H = c["hidden_size"]
        self.nh = c["num_attention_heads"]
        self.nkv = c.get("num_key_value_heads", self.nh)
        self.head_dim = c.get("head_dim") or H // self.nh
        self.q_proj = nn.Linear(H, self.nh * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(H, self.nkv * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(H, self.nkv * self.head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(self.nh * self.head_dim, H, bias=False)
        self.sliding_window = window

    def forward(self, x, cos, sin):
        n = x.shape[0]
        q = self.q_proj(x).view(n, -1, self.head_dim).transpose(0, 1)
        k = self.k_proj(x).view(n, -1, self.head_dim).transpose(0, 1)
        v = self.v_proj(x).view(n, -1, self.head_dim).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.nh // self.nkv, dim=0)  # repeat_kv
        v = v.repeat_interleave(self.nh // self.nkv, dim=0)
        allowed = torch.tril(torch.ones(n, n, dtype=torch.bool))
        if self.sliding_window:
            qi = torch.arange(n)[:, None]
            kj = torch.arange(n)[None, :]
            allowed &= kj > qi - self.sliding_window
        scores = (q @ k.transpose(-1, -2)) * self.head_dim ** -0.5
        scores = scores + torch.where(allowed, torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min))
        ctx = (scores.softmax(-1, dtype=torch.float32) @ v).transpose(0, 1).reshape(n, -1)
        return self.o_proj(ctx)


class MixtralDecoderLayer(nn.Module):
    def __init__(self, c, layer_idx):
        super().__init__()
        eps = c.get("rms_norm_eps", 1e-5)
        self.self_attn = MoeAttention(c, False, c.get("sliding_window"))
        self.block_sparse_moe = MixtralSparseMoeBlock(c)
        self.input_layernorm = Qwen3RMSNorm(c["hidden_size"], eps)
        self.post_attention_layernorm = Qwen3RMSNorm(c["hidden_size"], eps)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.block_sparse_moe(self.post_attention_layernorm(x))


class Qwen2MoeMLP(nn.Module):
    def __init__(self, c, intermediate_size):
        super().__init__()
        H = c["hidden_size"]
        self.gate_proj = nn.Linear(H, intermediate_size, bias=False)
        self.up_proj = nn.Linear(H, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, H, bias=False)
        self.act_fn = act_fn(c.get("hidden_act", "silu"))

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class Qwen2MoeSparseMoeBlock(nn.Module):
    """Qwen2MoeSparseMoeBlock; without a shared expert (shared=False) it is
    Qwen3MoeSparseMoeBlock."""

    def __init__(self, c, shared=True):
        super().__init__()
        self.num_experts = c["num_experts"]
        self.top_k = c["num_experts_per_tok"]
        self.norm_topk_prob = c.get("norm_topk_prob", False)
        self.gate = nn.Linear(c["hidden_size"], self.num_experts, bias=False)
        self.experts = nn.ModuleList(Qwen2MoeMLP(c, c["moe_intermediate_size"]) for _ in range(self.num_experts))
        self.shared = shared
        if shared:
            self.shared_expert = Qwen2MoeMLP(c, c["shared_expert_intermediate_size"])
            self.shared_expert_gate = nn.Linear(c["hidden_size"], 1, bias=False)

    def forward(self, x):
        w, sel = moe_route(self, self.gate(x))
        out = moe_experts(self, x, w, sel)
        if self.shared:
            out = out + torch.sigmoid(self.shared_expert_gate(x)) * self.shared_expert(x)
        return out


def qwen_moe_sparse(c, layer_idx):
    """Qwen2MoeDecoderLayer's and Qwen3MoeDecoderLayer's choice of a sparse
    block over a dense MLP."""
    return (layer_idx not in (c.get("mlp_only_layers") or [])) and \
        c.get("num_experts", 0) > 0 and (layer_idx + 1) % c.get("decoder_sparse_step", 1) == 0


class QwenMoeDecoderLayer(nn.Module):
    """Qwen2MoeDecoderLayer (qwen3=False) and Qwen3MoeDecoderLayer."""

    def __init__(self, c, layer_idx, qwen3):
        super().__init__()
        eps = c.get("rms_norm_eps", 1e-6)
        if qwen3:
            self.self_attn = Qwen3Attention(c, layer_idx)
        else:
            self.self_attn = MoeAttention(c, c.get("qkv_bias", True), None)
        if qwen_moe_sparse(c, layer_idx):
            self.mlp = Qwen2MoeSparseMoeBlock(c, shared=not qwen3)
        else:
            self.mlp = Qwen2MoeMLP(c, c["intermediate_size"])
        self.input_layernorm = Qwen3RMSNorm(c["hidden_size"], eps)
        self.post_attention_layernorm = Qwen3RMSNorm(c["hidden_size"], eps)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class MoeModel(nn.Module):
    """MixtralModel, Qwen2MoeModel and Qwen3MoeModel: embed_tokens, layers,
    norm."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        mt = c["model_type"]
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        if mt == "mixtral":
            layers = (MixtralDecoderLayer(c, i) for i in range(c["num_hidden_layers"]))
        else:
            layers = (QwenMoeDecoderLayer(c, i, mt == "qwen3_moe") for i in range(c["num_hidden_layers"]))
        self.layers = nn.ModuleList(layers)
        self.norm = Qwen3RMSNorm(c["hidden_size"], c.get("rms_norm_eps", 1e-6))

    def forward(self, ids):
        ids = ids[0]
        dh = self.c.get("head_dim") or self.c["hidden_size"] // self.c["num_attention_heads"]
        cos, sin = moe_rope(self.c, ids.shape[0], dh)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return {"last_hidden_state": self.norm(x).unsqueeze(0)}


class MoeForCausalLM(nn.Module):
    """MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM."""

    def __init__(self, c):
        super().__init__()
        self.model = MoeModel(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, ids):
        out = self.model(ids)
        out["logits"] = self.lm_head(out["last_hidden_state"])
        return out


MOE_TIED = {"lm_head.weight": "model.embed_tokens.weight"}


def moe_config(model_type, **kw):
    arch = {"mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM"}
    cfg = llama_config(architectures=[arch[model_type]], model_type=model_type, num_key_value_heads=2,
                       num_hidden_layers=3, vocab_size=160, intermediate_size=48, rope_theta=1000000.0,
                       max_position_embeddings=128)
    cfg.update(kw)
    return cfg


def moe_case(cfg, seed, n, dtype=None, router_scale=4.0, min_margin=0.1, spread=0.15):
    """Random weights of the config's causal LM (unit-variance embeddings,
    routers scaled by router_scale so that their logits are well apart; the
    experts of a layer a common matrix plus spread times one of their own,
    so that an expert chosen instead of another, as int8 noise on other
    inputs than the case's may do, moves the outputs by a fraction of an
    expert), rounded to dtype when given; the outputs, and a check that
    every token's k-th and (k+1)-th router logits are at least min_margin
    apart."""
    init = Init(seed)
    tied = MOE_TIED if cfg.get("tie_word_embeddings") else {}
    sd = random_state(MoeForCausalLM(cfg), init, tied)
    sd["model.embed_tokens.weight"] = init.embedding(*sd["model.embed_tokens.weight"].shape)
    common = {}
    for k in sd:
        if k.endswith(".block_sparse_moe.gate.weight") or k.endswith(".mlp.gate.weight"):
            sd[k] = sd[k] * router_scale
        elif ".experts." in k:
            layer, _, rest = k.partition(".experts.")
            key = (layer, rest.split(".", 1)[1])  # the layer and w1 / gate_proj.weight, ...
            if key not in common:
                common[key] = init.matrix(*sd[k].shape)
            sd[k] = (common[key] + spread * sd[k]) / math.sqrt(1 + spread * spread)
    if tied:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    if dtype is not None:
        sd = rounded(sd, dtype)
    ids = init.ids(cfg["vocab_size"], n)
    MOE_MARGINS.clear()
    out = run_module(MoeForCausalLM, cfg, sd, ids)
    if not MOE_MARGINS or min(MOE_MARGINS) < min_margin:
        raise ValueError(f"router margin {min(MOE_MARGINS or [0]):.4g} below {min_margin}: choose another seed")
    return sd, ids, out


# ---------------------------------------------------------------- Gemma 1, 2, 3 (nn.Modules)
#
# Written from transformers' modeling_gemma.py, modeling_gemma2.py and
# modeling_gemma3.py (GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM)
# and their configurations, with their exact module and parameter names; one
# set of classes, the generation (c["gen"], not written to config.json)
# choosing what each adds. Eager attention, batch 1, full attention mask.


def gemma_sliding(c):
    """Which layers use the sliding window: Gemma 2 every other one from the
    first, Gemma 3 all but every sliding_window_pattern-th; layer_types
    when the config has it."""
    n = c["num_hidden_layers"]
    if c["gen"] == 1:
        return [False] * n
    if "layer_types" in c:
        return [t == "sliding_attention" for t in c["layer_types"]]
    if c["gen"] == 2:
        return [i % 2 == 0 for i in range(n)]
    return [bool((i + 1) % c.get("sliding_window_pattern", 6)) for i in range(n)]


class GemmaRMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(n))

    def forward(self, x):
        out = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return (out * (1.0 + self.weight.float())).type_as(x)


class GemmaMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, I = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)
        self.act_fn = act_fn(c.get("hidden_activation") or "gelu_pytorch_tanh")

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def rope_cos_sin(dh, theta, n, factor=1.0):
    inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh)) / factor
    freqs = torch.arange(n).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


class GemmaAttention(nn.Module):
    def __init__(self, c, layer_idx):
        super().__init__()
        H = c["hidden_size"]
        self.gen = c["gen"]
        self.nh = c["num_attention_heads"]
        self.nkv = c.get("num_key_value_heads", self.nh)
        self.head_dim = c.get("head_dim", 256)
        self.scaling = (c.get("query_pre_attn_scalar", 256) if self.gen > 1 else self.head_dim) ** -0.5
        self.softcap = c.get("attn_logit_softcapping", 50.0 if self.gen == 2 else None) if self.gen > 1 else None
        self.sliding_window = c.get("sliding_window", 4096) if gemma_sliding(c)[layer_idx] else None
        bias = c.get("attention_bias", False)
        self.q_proj = nn.Linear(H, self.nh * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(H, self.nkv * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(H, self.nkv * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.nh * self.head_dim, H, bias=bias)
        if self.gen == 3:
            self.q_norm = GemmaRMSNorm(self.head_dim, c["rms_norm_eps"])
            self.k_norm = GemmaRMSNorm(self.head_dim, c["rms_norm_eps"])

    def forward(self, x, cos, sin):
        n = x.shape[0]
        q = self.q_proj(x).view(n, -1, self.head_dim)
        k = self.k_proj(x).view(n, -1, self.head_dim)
        if self.gen == 3:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(0, 1), k.transpose(0, 1)
        v = self.v_proj(x).view(n, -1, self.head_dim).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.nh // self.nkv, dim=0)  # repeat_kv
        v = v.repeat_interleave(self.nh // self.nkv, dim=0)
        scores = (q @ k.transpose(-1, -2)) * self.scaling
        if self.softcap is not None:
            scores = torch.tanh(scores / self.softcap) * self.softcap
        allowed = torch.tril(torch.ones(n, n, dtype=torch.bool))
        if self.sliding_window is not None:
            allowed &= torch.arange(n)[None, :] > torch.arange(n)[:, None] - self.sliding_window
        scores = scores + torch.where(allowed, torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min))
        ctx = (scores.softmax(-1, dtype=torch.float32) @ v).transpose(0, 1).reshape(n, -1)
        return self.o_proj(ctx)


class GemmaDecoderLayer(nn.Module):
    def __init__(self, c, layer_idx):
        super().__init__()
        H, eps = c["hidden_size"], c["rms_norm_eps"]
        self.gen = c["gen"]
        self.is_sliding = gemma_sliding(c)[layer_idx]
        self.self_attn = GemmaAttention(c, layer_idx)
        self.mlp = GemmaMLP(c)
        self.input_layernorm = GemmaRMSNorm(H, eps)
        self.post_attention_layernorm = GemmaRMSNorm(H, eps)
        if self.gen > 1:
            self.pre_feedforward_layernorm = GemmaRMSNorm(H, eps)
            self.post_feedforward_layernorm = GemmaRMSNorm(H, eps)

    def forward(self, x, rope_global, rope_local):
        cos, sin = rope_local if self.is_sliding and self.gen == 3 else rope_global
        h = self.self_attn(self.input_layernorm(x), cos, sin)
        if self.gen == 1:
            x = x + h
            return x + self.mlp(self.post_attention_layernorm(x))
        x = x + self.post_attention_layernorm(h)
        return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))


class GemmaModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(GemmaDecoderLayer(c, i) for i in range(c["num_hidden_layers"]))
        self.norm = GemmaRMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, ids):
        ids, c = ids[0], self.c
        n, dh = ids.shape[0], c.get("head_dim", 256)
        x = self.embed_tokens(ids)
        x = x * torch.tensor(c["hidden_size"] ** 0.5, dtype=x.dtype)  # normalizer in the model dtype
        rs = c.get("rope_scaling") or {}
        factor = rs.get("factor", 1.0) if rs.get("rope_type") == "linear" else 1.0
        rope_global = rope_cos_sin(dh, c.get("rope_theta", 1e6 if c["gen"] == 3 else 10000.0), n, factor)
        rope_local = rope_cos_sin(dh, c.get("rope_local_base_freq", 10000.0), n)
        for layer in self.layers:
            x = layer(x, rope_global, rope_local)
        return {"last_hidden_state": self.norm(x).unsqueeze(0)}


class GemmaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = GemmaModel(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, ids):
        out = self.model(ids)
        logits = self.lm_head(out["last_hidden_state"])
        cap = self.c.get("final_logit_softcapping", 30.0 if self.c["gen"] == 2 else None) if self.c["gen"] > 1 else None
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        out["logits"] = logits
        return out


GEMMA_TIED = {"lm_head.weight": "model.embed_tokens.weight"}
GEMMA_CLASS = {1: ("GemmaForCausalLM", "gemma"), 2: ("Gemma2ForCausalLM", "gemma2"), 3: ("Gemma3ForCausalLM", "gemma3_text")}


def gemma_config(gen, **kw):
    cls, mt = GEMMA_CLASS[gen]
    cfg = {"architectures": [cls], "model_type": mt, "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
           "hidden_act": "gelu", "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 32, "intermediate_size": 72,
           "head_dim": 16, "max_position_embeddings": 64, "num_attention_heads": 4, "num_hidden_layers": 3,
           "num_key_value_heads": 1, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": True,
           "torch_dtype": "float32", "vocab_size": 170, "attention_bias": False}
    cfg.update(kw)
    return cfg


def gemma_case(cfg, init, n):
    """Random weights (unit-variance embeddings; (1 + w) norm weights near 0)
    and outputs of GemmaForCausalLM for the config (its generation from the
    model type), tied head."""
    c = dict(cfg, gen={"gemma": 1, "gemma2": 2, "gemma3_text": 3}[cfg["model_type"]])
    sd = random_state(GemmaForCausalLM(c), init, GEMMA_TIED)
    sd["model.embed_tokens.weight"] = init.embedding(*sd["model.embed_tokens.weight"].shape)
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    for k in sd:
        if "norm" in k:
            sd[k] = 0.3 * init.randn(sd[k].shape[0])
    if cfg["torch_dtype"] != "float32":
        sd = rounded(sd, {"float16": torch.float16, "bfloat16": torch.bfloat16}[cfg["torch_dtype"]])
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    ids = init.ids(cfg["vocab_size"], n)
    return sd, ids, run_module(GemmaForCausalLM, c, sd, ids)


# ---------------------------------------------------------------- decoder sequence classification
#
# transformers' GenericForSequenceClassification (LlamaForSequenceClassification,
# MistralForSequenceClassification, Qwen2/Qwen3ForSequenceClassification,
# Gemma/Gemma2/Gemma3TextForSequenceClassification; modeling_layers.py) and
# GPT2ForSequenceClassification: the base model under its usual name, then
# score, a Linear without bias from the hidden size to num_labels, applied to
# every position, of which the logits are those of the rightmost token that is
# not pad_token_id (argmax of position times "not a pad"), or of the last
# token when the config has no pad_token_id.


def last_non_pad(ids, pad):
    if pad is None:
        return ids.shape[-1] - 1
    non_pad = (ids != pad).to(torch.int32)
    return int((torch.arange(ids.shape[-1], dtype=torch.int32) * non_pad).argmax(-1))


def pooled_scores(hidden, score_weight, ids, pad):
    """[1, n, hidden] -> [1, num_labels] as GenericForSequenceClassification."""
    logits = F.linear(hidden, score_weight)
    return logits[:, last_non_pad(ids, pad)]


class Qwen3ForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Qwen3Model(c)
        self.score = nn.Linear(c["hidden_size"], len(c["id2label"]), bias=False)

    def forward(self, ids):
        out = self.model(ids)
        out["logits"] = pooled_scores(out["last_hidden_state"], self.score.weight, ids[0], self.c.get("pad_token_id"))
        return out


class GemmaForSequenceClassification(nn.Module):
    """GemmaForSequenceClassification, Gemma2ForSequenceClassification and
    Gemma3TextForSequenceClassification: no final soft-capping (that is the
    causal LM head's)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = GemmaModel(c)
        self.score = nn.Linear(c["hidden_size"], len(c["id2label"]), bias=False)

    def forward(self, ids):
        out = self.model(ids)
        out["logits"] = pooled_scores(out["last_hidden_state"], self.score.weight, ids[0], self.c.get("pad_token_id"))
        return out


def labels(*names):
    return {"id2label": {str(i): n for i, n in enumerate(names)}, "label2id": {n: i for i, n in enumerate(names)}}


# ---------------------------------------------------------------- Phi-3 (nn.Modules)
#
# Written from transformers' modeling_phi3.py, configuration_phi3.py and
# modeling_rope_utils.py (_compute_longrope_parameters and the longrope
# update of dynamic_rope_update) for Phi3ForCausalLM, with its exact module
# and parameter names: fused qkv_proj and gate_up_proj, rotary embedding on
# the first partial_rotary_factor of each head, LongRoPE (short factors up to
# original_max_position_embeddings positions, long factors for every position
# of a longer sequence, cos and sin times the attention factor), sliding
# window on every layer when set. Eager attention, batch 1, full attention mask.


class Phi3RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.variance_epsilon = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.variance_epsilon)
        return self.weight * x.to(dtype)


class Phi3MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, I = c["hidden_size"], c["intermediate_size"]
        self.gate_up_proj = nn.Linear(H, 2 * I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)
        self.activation_fn = act_fn(c.get("hidden_act", "silu"))

    def forward(self, x):
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(up * self.activation_fn(gate))


def phi3_head_dim(c):
    return c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])


def phi3_rope(c, n):
    """Phi3RotaryEmbedding at positions 0..n-1: cos and sin [n, rotary_dim]."""
    theta = c.get("rope_theta", 10000.0)
    dim = int(phi3_head_dim(c) * c.get("partial_rotary_factor", 1.0))
    shape = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    rs = c.get("rope_scaling")
    scaling = 1.0
    if rs is None:
        inv_freq = 1.0 / (theta ** shape)
    else:
        assert rs.get("rope_type", rs.get("type")) in ("longrope", "su")
        orig = c.get("original_max_position_embeddings", 4096)
        factor = c["max_position_embeddings"] / orig
        scaling = rs.get("attention_factor")
        if scaling is None:
            scaling = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
        seq_len = n  # torch.max(position_ids) + 1
        ext = torch.tensor(rs["long_factor"] if seq_len > orig else rs["short_factor"], dtype=torch.float32)
        inv_freq = 1.0 / (ext * theta ** shape)
    freqs = torch.arange(n).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * scaling, emb.sin() * scaling


class Phi3Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.head_dim = phi3_head_dim(c)
        self.nh = c["num_attention_heads"]
        self.nkv = c.get("num_key_value_heads", self.nh)
        self.scaling = self.head_dim ** -0.5
        op_size = self.nh * self.head_dim + 2 * (self.nkv * self.head_dim)
        self.o_proj = nn.Linear(self.nh * self.head_dim, c["hidden_size"], bias=False)
        self.qkv_proj = nn.Linear(c["hidden_size"], op_size, bias=False)

    def forward(self, x, cos, sin):
        n, dh = x.shape[0], self.head_dim
        qkv = self.qkv_proj(x)
        query_pos = self.nh * dh
        q = qkv[..., :query_pos].view(n, -1, dh).transpose(0, 1)
        k = qkv[..., query_pos:query_pos + self.nkv * dh].view(n, -1, dh).transpose(0, 1)
        v = qkv[..., query_pos + self.nkv * dh:].view(n, -1, dh).transpose(0, 1)
        rot = cos.shape[-1]  # apply_rotary_pos_emb: q_rot, q_pass
        q = torch.cat([q[..., :rot] * cos + rotate_half(q[..., :rot]) * sin, q[..., rot:]], dim=-1)
        k = torch.cat([k[..., :rot] * cos + rotate_half(k[..., :rot]) * sin, k[..., rot:]], dim=-1)
        k = k.repeat_interleave(self.nh // self.nkv, dim=0)  # repeat_kv
        v = v.repeat_interleave(self.nh // self.nkv, dim=0)
        allowed = torch.tril(torch.ones(n, n, dtype=torch.bool))
        window = self.c.get("sliding_window")
        if window is not None:  # create_sliding_window_causal_mask
            allowed &= torch.arange(n)[None, :] > torch.arange(n)[:, None] - window
        scores = (q @ k.transpose(-1, -2)) * self.scaling
        scores = scores + torch.where(allowed, torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min))
        ctx = (scores.softmax(-1, dtype=torch.float32) @ v).transpose(0, 1).reshape(n, -1)
        return self.o_proj(ctx)


class Phi3DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        eps = c.get("rms_norm_eps", 1e-5)
        self.self_attn = Phi3Attention(c)
        self.mlp = Phi3MLP(c)
        self.input_layernorm = Phi3RMSNorm(c["hidden_size"], eps)
        self.post_attention_layernorm = Phi3RMSNorm(c["hidden_size"], eps)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Phi3Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Phi3DecoderLayer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = Phi3RMSNorm(c["hidden_size"], c.get("rms_norm_eps", 1e-5))

    def forward(self, ids):
        ids = ids[0]
        cos, sin = phi3_rope(self.c, ids.shape[0])
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return {"last_hidden_state": self.norm(x).unsqueeze(0)}


class Phi3ForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = Phi3Model(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, ids):
        out = self.model(ids)
        out["logits"] = self.lm_head(out["last_hidden_state"])
        return out


PHI3_TIED = {"lm_head.weight": "model.embed_tokens.weight"}


def phi3_config(**kw):
    cfg = {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "bos_token_id": 1, "eos_token_id": 2,
           "pad_token_id": 0, "hidden_act": "silu", "hidden_size": 64, "intermediate_size": 96,
           "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 3, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32", "vocab_size": 150,
           "max_position_embeddings": 64, "original_max_position_embeddings": 8, "sliding_window": None,
           "rope_scaling": None, "partial_rotary_factor": 1.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0,
           "attention_dropout": 0.0}
    cfg.update(kw)
    return cfg


def phi3_factors(init, n, lo, hi):
    """LongRoPE factors rising from lo to hi over the n frequencies, jittered."""
    return [round(lo + (hi - lo) * i / max(n - 1, 1) * (1 + 0.1 * float(init.randn(1))), 4) for i in range(n)]


def phi3_case(cfg, init, n):
    """Random weights and outputs of Phi3ForCausalLM for the config."""
    tied = PHI3_TIED if cfg["tie_word_embeddings"] else {}
    sd = random_state(Phi3ForCausalLM(cfg), init, tied)
    sd["model.embed_tokens.weight"] = init.embedding(*sd["model.embed_tokens.weight"].shape)
    if tied:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    if cfg["torch_dtype"] != "float32":
        sd = rounded(sd, {"float16": torch.float16, "bfloat16": torch.bfloat16}[cfg["torch_dtype"]])
        if tied:
            sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    ids = init.ids(cfg["vocab_size"], n)
    return sd, ids, run_module(Phi3ForCausalLM, cfg, sd, ids)


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


@case
def roberta_mlm_st():
    """RobertaForMaskedLM: roberta. prefix, type_vocab_size 1, pad_token_id 1
    with pads inside and at the end of the sequence (their position is the
    padding index, the others count from 2), lm_head tied to the word
    embeddings and omitted from the file (lm_head.bias kept), safetensors."""
    cfg = roberta_config()
    init = Init(401)
    sd = random_state(RobertaForMaskedLM(cfg), init, ROBERTA_MLM_TIED)
    ids = with_pads(init.ids(cfg["vocab_size"], 15), 1, (4, 13, 14))
    out = run_module(RobertaForMaskedLM, cfg, sd, ids)
    return cfg, sd, without(sd, ROBERTA_MLM_TIED), "st", ids, out


@case
def roberta_mlm_f16_st():
    """roberta-mlm-st's weights rounded to float16 (same ids)."""
    cfg, sd, _, _, ids, _ = roberta_mlm_st()
    cfg = dict(cfg, torch_dtype="float16")
    sd = rounded(sd, torch.float16)
    return cfg, sd, without(sd, ROBERTA_MLM_TIED), "st", ids, run_module(RobertaForMaskedLM, cfg, sd, ids)


@case
def roberta_cls_bin():
    """RobertaForSequenceClassification (3 labels): classifier.dense and
    out_proj on <s>, roberta. prefix, gelu_new, pytorch_model.bin."""
    cfg = roberta_config(architectures=["RobertaForSequenceClassification"], num_labels=3, hidden_act="gelu_new",
                         id2label={"0": "a", "1": "b", "2": "c"}, label2id={"a": 0, "b": 1, "c": 2})
    init = Init(402)
    sd = random_state(RobertaForSequenceClassification(cfg), init)
    ids = with_pads(init.ids(cfg["vocab_size"], 12), 1, (11,))
    ids[0] = 0
    out = run_module(RobertaForSequenceClassification, cfg, sd, ids)
    return without(cfg, ("num_labels",)), sd, sd, "bin", ids, out


@case
def xlmr_model_st():
    """XLMRobertaModel (model_type xlm-roberta) with its pooler, no prefix,
    pad_token_id 1, 3 layers, a sequence of exactly max_position_embeddings
    - 2 tokens (positions 2 .. 33, the last row of the table)."""
    cfg = roberta_config(architectures=["XLMRobertaModel"], model_type="xlm-roberta", max_position_embeddings=34,
                         num_hidden_layers=3)
    init = Init(403)
    sd = random_state(RobertaModel(cfg), init)
    ids = with_pads(init.ids(cfg["vocab_size"], 32), 1, ())
    return cfg, sd, sd, "st", ids, run_module(RobertaModel, cfg, sd, ids)


@case
def camembert_mlm_bin():
    """CamembertForMaskedLM (model_type camembert) in pytorch_model.bin as
    torch.save writes a tied model: lm_head.decoder.weight sharing the word
    embeddings' storage and lm_head.decoder.bias sharing lm_head.bias'; pad
    at the start."""
    cfg = roberta_config(architectures=["CamembertForMaskedLM"], model_type="camembert", vocab_size=120)
    init = Init(404)
    sd = random_state(RobertaForMaskedLM(cfg), init, ROBERTA_MLM_TIED)
    ids = with_pads(init.ids(cfg["vocab_size"], 10), 1, (0,))
    return cfg, sd, sd, "bin", ids, run_module(RobertaForMaskedLM, cfg, sd, ids)


@case
def distilbert_mlm_st():
    """DistilBertForMaskedLM: distilbert. prefix, vocab_transform, gelu,
    vocab_layer_norm, vocab_projector tied to the word embeddings (omitted
    from the file, its bias kept), learned positions, safetensors."""
    cfg = distilbert_config()
    init = Init(501)
    sd = random_state(DistilBertForMaskedLM(cfg), init, DISTIL_MLM_TIED)
    ids = init.ids(cfg["vocab_size"], 14)
    out = run_module(DistilBertForMaskedLM, cfg, sd, ids)
    return cfg, sd, without(sd, DISTIL_MLM_TIED), "st", ids, out


@case
def distilbert_cls_bin():
    """DistilBertForSequenceClassification (2 labels): pre_classifier, relu,
    classifier on [CLS]; sinusoidal_pos_embds true (the stored table is
    sinusoidal), relu activation, 3 layers, pytorch_model.bin."""
    cfg = distilbert_config(architectures=["DistilBertForSequenceClassification"], sinusoidal_pos_embds=True,
                            activation="relu", n_layers=3, id2label={"0": "NEGATIVE", "1": "POSITIVE"},
                            label2id={"NEGATIVE": 0, "POSITIVE": 1}, num_labels=2)
    init = Init(502)
    sd = random_state(DistilBertForSequenceClassification(cfg), init)
    sd["distilbert.embeddings.position_embeddings.weight"] = sinusoidal(cfg["max_position_embeddings"], cfg["dim"])
    ids = init.ids(cfg["vocab_size"], 11)
    out = run_module(DistilBertForSequenceClassification, cfg, sd, ids)
    return without(cfg, ("num_labels",)), sd, sd, "bin", ids, out


@case
def distilbert_model_st():
    """DistilBertModel, no prefix, a sequence of exactly
    max_position_embeddings, safetensors."""
    cfg = distilbert_config(architectures=["DistilBertModel"], max_position_embeddings=24)
    init = Init(503)
    sd = random_state(DistilBertModel(cfg), init)
    ids = init.ids(cfg["vocab_size"], cfg["max_position_embeddings"])
    return cfg, sd, sd, "st", ids, run_module(DistilBertModel, cfg, sd, ids)


@case
def mpnet_mlm_st():
    """MPNetForMaskedLM: mpnet. prefix, relative position bias shared by the
    2 layers, a sequence of 70 (relative distances up to 69: every bucket
    boundary below max_distance 128, 16, 32 and 64 included) with pads
    (padding index 1) inside and at the end, lm_head tied to the word
    embeddings and omitted from the file (lm_head.bias kept), heavy-tailed
    matrices (see heavy_tailed), safetensors."""
    cfg = mpnet_config()
    init = Init(801)
    sd = mpnet_state(MPNetForMaskedLM, cfg, init, MPNET_MLM_TIED)
    sd = heavy_tailed(sd, init, MPNET_MLM_TIED)
    ids = with_pads(init.ids(cfg["vocab_size"], 70), 1, (9, 40, 69))
    out = run_module(MPNetForMaskedLM, cfg, sd, ids)
    return cfg, sd, without(sd, MPNET_MLM_TIED), "st", ids, out


@case
def mpnet_model_f16_st():
    """MPNetModel with its pooler, float16 weights, no prefix,
    relative_attention_num_buckets 40 (rows 32-39 unused: transformers
    buckets into 32), pad_token_id 0 but token 1 numbered as padding (the
    embeddings' padding index is fixed at 1), 3 layers."""
    cfg = mpnet_config(architectures=["MPNetModel"], relative_attention_num_buckets=40, pad_token_id=0,
                       num_hidden_layers=3, torch_dtype="float16")
    init = Init(802)
    sd = rounded(mpnet_state(MPNetModel, cfg, init), torch.float16)
    ids = with_pads(init.ids(cfg["vocab_size"], 24), 1, (5,))
    ids[0], ids[7] = 0, 0
    return cfg, sd, sd, "st", ids, run_module(MPNetModel, cfg, sd, ids)


@case
def mpnet_cls_bin():
    """MPNetForSequenceClassification (3 labels): classifier.dense and
    out_proj on <s>, mpnet. prefix, pytorch_model.bin."""
    cfg = mpnet_config(architectures=["MPNetForSequenceClassification"], num_labels=3,
                       id2label={"0": "a", "1": "b", "2": "c"}, label2id={"a": 0, "b": 1, "c": 2})
    init = Init(803)
    sd = mpnet_state(MPNetForSequenceClassification, cfg, init)
    ids = with_pads(init.ids(cfg["vocab_size"], 18), 1, (17,))
    ids[0] = 0
    out = run_module(MPNetForSequenceClassification, cfg, sd, ids)
    return without(cfg, ("num_labels",)), sd, sd, "bin", ids, out


@case
def modernbert_mlm_st():
    """ModernBertForMaskedLM: model. prefix, 4 layers (0 and 3 global with
    global_rope_theta 160000, 1 and 2 local with local_rope_theta 10000 and
    local_attention 8, i.e. 4 positions either side), a sequence of 20, no
    biases but the decoder's, GeGLU, first layer without attn_norm,
    decoder tied to the token embeddings and omitted, heavy-tailed matrices
    (see heavy_tailed), safetensors."""
    cfg = modernbert_config()
    init = Init(811)
    sd = heavy_tailed(random_state(ModernBertForMaskedLM(cfg), init, MODERNBERT_TIED), init, MODERNBERT_TIED)
    ids = init.ids(cfg["vocab_size"], 20)
    out = run_module(ModernBertForMaskedLM, cfg, sd, ids)
    return cfg, sd, without(sd, MODERNBERT_TIED), "st", ids, out


@case
def modernbert_mlm_bf16_st():
    """modernbert-mlm-st's weights rounded to bfloat16 (same ids)."""
    cfg, sd, _, _, ids, _ = modernbert_mlm_st()
    cfg = dict(cfg, torch_dtype="bfloat16")
    sd = rounded(sd, torch.bfloat16)
    return cfg, sd, without(sd, MODERNBERT_TIED), "st", ids, run_module(ModernBertForMaskedLM, cfg, sd, ids)


@case
def modernbert_bias_st():
    """ModernBertForMaskedLM with every bias (norm_bias, mlp_bias,
    attention_bias, classifier_bias), an untied decoder, silu in the head,
    gelu_pytorch_tanh in the MLP, global_attn_every_n_layers 2 over 3
    layers (layer 1 local, local_attention 6), local_rope_theta 50,
    global_rope_theta 1000, a sequence of 15."""
    cfg = modernbert_config(norm_bias=True, mlp_bias=True, attention_bias=True, classifier_bias=True,
                            tie_word_embeddings=False, classifier_activation="silu",
                            hidden_activation="gelu_pytorch_tanh", global_attn_every_n_layers=2, num_hidden_layers=3,
                            local_attention=6, local_rope_theta=50.0, global_rope_theta=1000.0)
    init = Init(812)
    sd = random_state(ModernBertForMaskedLM(cfg), init)
    ids = init.ids(cfg["vocab_size"], 15)
    return cfg, sd, sd, "st", ids, run_module(ModernBertForMaskedLM, cfg, sd, ids)


@case
def modernbert_cls_st():
    """ModernBertForSequenceClassification (3 labels): classifier_pooling
    mean (over every token), the prediction head, the classifier, model.
    prefix, 3 layers, a sequence of 11."""
    cfg = modernbert_config(architectures=["ModernBertForSequenceClassification"], classifier_pooling="mean",
                            num_hidden_layers=3, num_labels=3, id2label={"0": "a", "1": "b", "2": "c"},
                            label2id={"a": 0, "b": 1, "c": 2})
    init = Init(814)
    sd = random_state(ModernBertForSequenceClassification(cfg), init)
    ids = init.ids(cfg["vocab_size"], 11)
    out = run_module(ModernBertForSequenceClassification, cfg, sd, ids)
    return without(cfg, ("num_labels",)), sd, sd, "st", ids, out


@case
def modernbert_model_st():
    """ModernBertModel, no prefix, the configuration transformers 5 writes
    (layer_types, rope_parameters per layer type with rope_theta 2000 for
    full_attention and 20 for sliding_attention), 3 layers (1 and 2
    local, local_attention 4), a sequence of 12."""
    cfg = modernbert_config(architectures=["ModernBertModel"], num_hidden_layers=3, local_attention=4,
                            layer_types=["full_attention", "sliding_attention", "sliding_attention"],
                            rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 2000.0},
                                             "sliding_attention": {"rope_type": "default", "rope_theta": 20.0}})
    del cfg["global_rope_theta"], cfg["local_rope_theta"]
    init = Init(813)
    sd = random_state(ModernBertModel(cfg), init)
    ids = init.ids(cfg["vocab_size"], 12)
    return cfg, sd, sd, "st", ids, run_module(ModernBertModel, cfg, sd, ids)


@case
def qwen3_st():
    """Qwen3ForCausalLM: q_norm/k_norm, head_dim 16 (q_proj wider than
    hidden), GQA (4 heads, 2 KV heads), use_sliding_window with window 5 on
    layers from max_window_layers 1 (the sequence is longer), tied head
    omitted from the file, safetensors."""
    cfg = qwen3_config()
    init = Init(601)
    sd = qwen3_state(cfg, init, QWEN3_TIED)
    ids = init.ids(cfg["vocab_size"], 19)
    out = run_module(Qwen3ForCausalLM, cfg, sd, ids)
    return cfg, sd, without(sd, QWEN3_TIED), "st", ids, out


@case
def qwen3_bf16_bin():
    """Qwen3ForCausalLM with bfloat16 weights: layer_types (sliding, full,
    sliding) with window 4, untied lm_head, attention_bias true,
    silu, pytorch_model.bin."""
    cfg = qwen3_config(torch_dtype="bfloat16", sliding_window=4, attention_bias=True, tie_word_embeddings=False,
                       layer_types=["sliding_attention", "full_attention", "sliding_attention"])
    init = Init(602)
    sd = rounded(qwen3_state(cfg, init), torch.bfloat16)
    ids = init.ids(cfg["vocab_size"], 17)
    return cfg, sd, sd, "bin", ids, run_module(Qwen3ForCausalLM, cfg, sd, ids)


@case
def mixtral_st():
    """MixtralForCausalLM: block_sparse_moe with 4 experts (w1/w2/w3), top-2
    routing renormalized, GQA (4 heads, 2 KV heads), sliding_window 5 on
    every layer (the sequence is longer), untied lm_head, safetensors."""
    cfg = moe_config("mixtral", num_local_experts=4, num_experts_per_tok=2, sliding_window=5)
    sd, ids, out = moe_case(cfg, 841, 13)
    return cfg, sd, sd, "st", ids, out


@case
def mixtral_bf16_bin():
    """MixtralForCausalLM with bfloat16 weights: 6 experts, top-3, no
    sliding window (null), tied head omitted, pytorch_model.bin."""
    cfg = moe_config("mixtral", num_local_experts=6, num_experts_per_tok=3, sliding_window=None, tie_word_embeddings=True,
                     torch_dtype="bfloat16", num_hidden_layers=2)
    sd, ids, out = moe_case(cfg, 802, 11, torch.bfloat16)
    return cfg, sd, without(sd, MOE_TIED), "bin", ids, out


@case
def qwen2moe_st():
    """Qwen2MoeForCausalLM: 4 experts of moe_intermediate_size 24, top-2 not
    renormalized (norm_topk_prob false), a shared expert (40) scaled by its
    sigmoid shared_expert_gate, q/k/v biases, mlp_only_layers [1] (a dense
    MLP of intermediate_size 48), untied lm_head, safetensors."""
    cfg = moe_config("qwen2_moe", num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24,
                     shared_expert_intermediate_size=40, norm_topk_prob=False, mlp_only_layers=[1],
                     decoder_sparse_step=1, rope_theta=10000.0, rms_norm_eps=1e-6, use_sliding_window=False)
    sd, ids, out = moe_case(cfg, 821, 14)
    return cfg, sd, sd, "st", ids, out


@case
def qwen2moe_f16_st():
    """Qwen2MoeForCausalLM with float16 weights: 8 experts, top-2
    renormalized (norm_topk_prob true), decoder_sparse_step 2 (layer 1 the
    only MoE layer), shared expert, tied head omitted, safetensors."""
    cfg = moe_config("qwen2_moe", num_experts=8, num_experts_per_tok=2, moe_intermediate_size=16,
                     shared_expert_intermediate_size=32, norm_topk_prob=True, decoder_sparse_step=2,
                     tie_word_embeddings=True, torch_dtype="float16", rms_norm_eps=1e-6)
    sd, ids, out = moe_case(cfg, 822, 12, torch.float16)
    return cfg, sd, without(sd, MOE_TIED), "st", ids, out


@case
def qwen3moe_st():
    """Qwen3MoeForCausalLM: q_norm/k_norm, head_dim 16 (q_proj wider than
    hidden), 8 experts of moe_intermediate_size 16, top-2 renormalized
    (norm_topk_prob true), mlp_only_layers [0] (dense MLP 48), tied head
    omitted, safetensors."""
    cfg = moe_config("qwen3_moe", num_experts=8, num_experts_per_tok=2, moe_intermediate_size=16, norm_topk_prob=True,
                     mlp_only_layers=[0], head_dim=16, attention_bias=False, tie_word_embeddings=True,
                     rms_norm_eps=1e-6, use_sliding_window=False)
    sd, ids, out = moe_case(cfg, 971, 15)
    return cfg, sd, without(sd, MOE_TIED), "st", ids, out


@case
def qwen3moe_bf16_st():
    """Qwen3MoeForCausalLM with bfloat16 weights: 4 experts, top-2 not
    renormalized (norm_topk_prob absent: false), every layer MoE, untied
    lm_head, safetensors."""
    cfg = moe_config("qwen3_moe", num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24, head_dim=16,
                     torch_dtype="bfloat16", rms_norm_eps=1e-6)
    sd, ids, out = moe_case(cfg, 852, 13, torch.bfloat16)
    return cfg, sd, sd, "st", ids, out


@case
def gemma_st():
    """GemmaForCausalLM: (1 + w) RMSNorms, embeddings times sqrt(hidden),
    gelu-tanh gated MLP (hidden_activation; hidden_act gelu ignored), MQA
    (4 heads, 1 KV head), head_dim 16, tied head omitted, safetensors."""
    cfg = gemma_config(1)
    sd, ids, out = gemma_case(cfg, Init(701), 15)
    return cfg, sd, without(sd, GEMMA_TIED), "st", ids, out


@case
def gemma2_st():
    """Gemma2ForCausalLM: sandwich norms, query_pre_attn_scalar 24,
    attention soft-capping 3 and final soft-capping 4 (both bind on these
    weights), sliding window 4 on layers 0 and 2 (the sequence is longer),
    GQA (4 heads, 2 KV heads), tied head omitted, safetensors."""
    cfg = gemma_config(2, query_pre_attn_scalar=24, attn_logit_softcapping=3.0, final_logit_softcapping=4.0,
                       sliding_window=4, num_key_value_heads=2)
    sd, ids, out = gemma_case(cfg, Init(702), 17)
    return cfg, sd, without(sd, GEMMA_TIED), "st", ids, out


@case
def gemma3_st():
    """Gemma3ForCausalLM (gemma3_text): q/k norms, sliding_window_pattern 3
    (layers 0, 1 sliding with window 5 and rope_local_base_freq 100, layer
    2 global with rope_theta 1e6 and linear rope_scaling 4),
    query_pre_attn_scalar 16, no soft-capping (null), 4 layers, tied head
    omitted, safetensors."""
    cfg = gemma_config(3, sliding_window=5, sliding_window_pattern=3, rope_local_base_freq=100.0, rope_theta=1e6,
                       rope_scaling={"rope_type": "linear", "factor": 4.0}, query_pre_attn_scalar=16,
                       final_logit_softcapping=None, attn_logit_softcapping=None, num_hidden_layers=4,
                       num_key_value_heads=2)
    sd, ids, out = gemma_case(cfg, Init(703), 19)
    return cfg, sd, without(sd, GEMMA_TIED), "st", ids, out


@case
def gemma3_bf16_st():
    """gemma3-st's config with bfloat16 weights and layer_types (sliding,
    full, full, sliding)."""
    cfg = gemma_config(3, sliding_window=5, rope_local_base_freq=100.0, rope_theta=1e6, query_pre_attn_scalar=16,
                       num_hidden_layers=4, num_key_value_heads=2, torch_dtype="bfloat16",
                       layer_types=["sliding_attention", "full_attention", "full_attention", "sliding_attention"])
    sd, ids, out = gemma_case(cfg, Init(704), 13)
    return cfg, sd, without(sd, GEMMA_TIED), "st", ids, out


@case
def gemma2_f16_st():
    """gemma2-st's config with float16 weights, default soft-capping 50 and
    30 (absent from the config), model. prefix."""
    cfg = gemma_config(2, query_pre_attn_scalar=24, sliding_window=4, num_key_value_heads=2, torch_dtype="float16")
    sd, ids, out = gemma_case(cfg, Init(705), 12)
    return cfg, sd, without(sd, GEMMA_TIED), "st", ids, out


@case
def llama_cls_st():
    """LlamaForSequenceClassification (3 labels): score (no bias) on the
    rightmost token that is not pad_token_id 0: the last three ids are pads
    and one more sits inside, safetensors."""
    cfg = llama_config(architectures=["LlamaForSequenceClassification"], pad_token_id=0,
                       **labels("NEGATIVE", "NEUTRAL", "POSITIVE"))
    init = Init(801)
    sd = llama_weights(cfg, init)
    sd["score.weight"] = init.matrix(3, cfg["hidden_size"])
    ids = with_pads(init.ids(cfg["vocab_size"], 17), 0, (5, 14, 15, 16))
    hidden = llama_forward(sd, cfg, ids)["last_hidden_state"]
    out = {"last_hidden_state": hidden, "logits": pooled_scores(hidden, sd["score.weight"], ids, 0)}
    return cfg, sd, sd, "st", ids, out


@case
def phi3_st():
    """Phi3ForCausalLM (Phi-4-mini's layout): fused qkv_proj and gate_up_proj,
    partial_rotary_factor 0.75 (12 of 16 dimensions per head turned), longrope
    with original_max_position_embeddings 8 and a sequence of 21 (the long
    factors apply; attention factor sqrt(1 + ln 8 / ln 8) from
    max_position_embeddings 64), sliding_window 9, GQA (4 heads, 2 KV heads),
    untied lm_head, safetensors."""
    init = Init(801)
    half = 6
    cfg = phi3_config(partial_rotary_factor=0.75, sliding_window=9,
                      rope_scaling={"type": "longrope", "short_factor": phi3_factors(init, half, 1.0, 1.5),
                                    "long_factor": phi3_factors(init, half, 1.0, 12.0)})
    sd, ids, out = phi3_case(cfg, init, 21)
    return cfg, sd, sd, "st", ids, out


@case
def qwen3_cls_bin():
    """Qwen3ForSequenceClassification (2 labels): pad_token_id 7, pads at
    the end and inside, sliding window 5 on layers from 1 (the sequence is
    longer), pytorch_model.bin."""
    cfg = qwen3_config(architectures=["Qwen3ForSequenceClassification"], pad_token_id=7, **labels("LABEL_0", "LABEL_1"))
    init = Init(802)
    sd = random_state(Qwen3ForSequenceClassification(cfg), init)
    sd["model.embed_tokens.weight"] = init.embedding(*sd["model.embed_tokens.weight"].shape)
    ids = with_pads(init.ids(cfg["vocab_size"], 19), 7, (2, 16, 17, 18))
    return cfg, sd, sd, "bin", ids, run_module(Qwen3ForSequenceClassification, cfg, sd, ids)


@case
def gpt2_cls_st():
    """GPT2ForSequenceClassification (2 labels) without pad_token_id: score
    on the last token, transformer. prefix, safetensors."""
    cfg = gpt2_config(architectures=["GPT2ForSequenceClassification"], **labels("NEGATIVE", "POSITIVE"))
    init = Init(803)
    sd = gpt2_weights(cfg, init)
    score = init.matrix(2, cfg["n_embd"])
    ids = init.ids(cfg["vocab_size"], 13)
    hidden = gpt2_forward(sd, cfg, ids, lm_head=False)["last_hidden_state"]
    out = {"last_hidden_state": hidden, "logits": pooled_scores(hidden, score, ids, None)}
    stored = prefixed(sd, "transformer.")
    stored["score.weight"] = score
    return cfg, sd, stored, "st", ids, out


@case
def gemma2_cls_st():
    """Gemma2ForSequenceClassification (4 labels): final_logit_softcapping 4
    in the config (the LM head's, not applied to score), attention
    soft-capping 3, sliding window 4, pad_token_id 0 at the end and inside,
    safetensors."""
    cfg = gemma_config(2, architectures=["Gemma2ForSequenceClassification"], query_pre_attn_scalar=24,
                       attn_logit_softcapping=3.0, final_logit_softcapping=4.0, sliding_window=4,
                       num_key_value_heads=2, **labels("A", "B", "C", "D"))
    c = dict(cfg, gen=2)
    init = Init(804)
    sd = random_state(GemmaForSequenceClassification(c), init)
    sd["model.embed_tokens.weight"] = init.embedding(*sd["model.embed_tokens.weight"].shape)
    for k in sd:
        if "norm" in k:
            sd[k] = 0.3 * init.randn(sd[k].shape[0])
    ids = with_pads(init.ids(cfg["vocab_size"], 13), 0, (4, 11, 12))
    return cfg, sd, sd, "st", ids, run_module(GemmaForSequenceClassification, c, sd, ids)


@case
def gemma3_cls_st():
    """Gemma3TextForSequenceClassification (gemma3_text, 2 labels): q/k
    norms, sliding window 3 on layers 0 and 1 with rope_local_base_freq
    100, pad_token_id 0 at the end, safetensors."""
    cfg = gemma_config(3, architectures=["Gemma3TextForSequenceClassification"], sliding_window=3,
                       sliding_window_pattern=3, rope_local_base_freq=100.0, rope_theta=1e6, query_pre_attn_scalar=16,
                       final_logit_softcapping=None, attn_logit_softcapping=None, **labels("NO", "YES"))
    c = dict(cfg, gen=3)
    init = Init(805)
    sd = random_state(GemmaForSequenceClassification(c), init)
    sd["model.embed_tokens.weight"] = init.embedding(*sd["model.embed_tokens.weight"].shape)
    for k in sd:
        if "norm" in k:
            sd[k] = 0.3 * init.randn(sd[k].shape[0])
    ids = with_pads(init.ids(cfg["vocab_size"], 11), 0, (9, 10))
    return cfg, sd, sd, "st", ids, run_module(GemmaForSequenceClassification, c, sd, ids)


@case
def phi3_bf16_st():
    """Phi3ForCausalLM with bfloat16 weights: longrope with
    original_max_position_embeddings 16 and a sequence of 13 (the short
    factors apply, with attention factor sqrt(1 + ln 3 / ln 16)), full
    rotary, MHA (4 heads), no sliding window, tied head omitted (as
    Phi-4-mini), safetensors."""
    init = Init(802)
    half = 8
    cfg = phi3_config(num_key_value_heads=4, tie_word_embeddings=True, torch_dtype="bfloat16",
                      max_position_embeddings=48, original_max_position_embeddings=16,
                      rope_scaling={"type": "longrope", "short_factor": phi3_factors(init, half, 1.0, 2.0),
                                    "long_factor": phi3_factors(init, half, 1.0, 6.0)})
    sd, ids, out = phi3_case(cfg, init, 13)
    return cfg, sd, without(sd, PHI3_TIED), "st", ids, out



# ---------------------------------------------------------------- MoE experts fused (transformers 5)
#
# Written from transformers 5's modeling_mixtral.py, modeling_qwen2_moe.py and
# modeling_qwen3_moe.py: the experts of a sparse block are one module
# (MixtralExperts, Qwen2MoeExperts, Qwen3MoeExperts) holding two 3-D
# parameters, gate_up_proj [experts, 2 * intermediate, hidden] (each
# expert's gate rows, then its up rows) and down_proj [experts, hidden,
# intermediate]; the router is a module (MixtralTopKRouter, ...) with a
# weight [experts, hidden]; Mixtral's sparse block is the layer's mlp
# (block_sparse_moe is gone). transformers 5 fuses the per-expert tensors of
# the Hub's checkpoints at load (conversion_mapping.py: MergeModulelist
# along a new dim 0, then Concatenate gate and up along dim 1) and
# save_pretrained writes them back per expert, but
# save_pretrained(save_original_format=False) writes this layout. Each fused
# case is a per-expert case's weights in this layout (fused_state), run by
# these modules.


class MoeExperts5(nn.Module):
    """MixtralExperts / Qwen2MoeExperts / Qwen3MoeExperts."""

    def __init__(self, c, num_experts, intermediate):
        super().__init__()
        self.num_experts = num_experts
        H = c["hidden_size"]
        self.gate_up_proj = nn.Parameter(torch.empty(num_experts, 2 * intermediate, H))
        self.down_proj = nn.Parameter(torch.empty(num_experts, H, intermediate))
        self.act_fn = act_fn(c.get("hidden_act", "silu"))

    def forward(self, hidden_states, top_k_index, top_k_weights):
        final = torch.zeros_like(hidden_states)
        with torch.no_grad():
            expert_mask = F.one_hot(top_k_index, num_classes=self.num_experts).permute(2, 1, 0)
            expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
        for expert_idx in expert_hit:
            expert_idx = expert_idx[0]
            top_k_pos, token_idx = torch.where(expert_mask[expert_idx])
            gate, up = F.linear(hidden_states[token_idx], self.gate_up_proj[expert_idx]).chunk(2, dim=-1)
            cur = F.linear(self.act_fn(gate) * up, self.down_proj[expert_idx])
            cur = cur * top_k_weights[token_idx, top_k_pos, None]
            final.index_add_(0, token_idx, cur.to(final.dtype))
        return final


class MoeTopKRouter5(nn.Module):
    """MixtralTopKRouter (always renormalized) / Qwen2MoeTopKRouter /
    Qwen3MoeTopKRouter; records the routing margins as moe_route does."""

    def __init__(self, c, num_experts, norm_topk_prob):
        super().__init__()
        self.top_k = c["num_experts_per_tok"]
        self.num_experts = num_experts
        self.norm_topk_prob = norm_topk_prob
        self.weight = nn.Parameter(torch.zeros(num_experts, c["hidden_size"]))

    def forward(self, hidden_states):
        router_logits = F.linear(hidden_states, self.weight)
        probs = F.softmax(router_logits, dtype=torch.float, dim=-1)
        top_value, top_index = torch.topk(probs, self.top_k, dim=-1)
        if self.norm_topk_prob:
            top_value /= top_value.sum(dim=-1, keepdim=True)
        if self.top_k < self.num_experts:
            top = router_logits.sort(dim=-1, descending=True).values
            MOE_MARGINS.append((top[:, self.top_k - 1] - top[:, self.top_k]).min().item())
        return router_logits, top_value.to(router_logits.dtype), top_index


class SparseMoeBlock5(nn.Module):
    """MixtralSparseMoeBlock, Qwen2MoeSparseMoeBlock (shared expert under
    its sigmoid gate) and Qwen3MoeSparseMoeBlock of transformers 5."""

    def __init__(self, c):
        super().__init__()
        mixtral = c["model_type"] == "mixtral"
        E = c["num_local_experts"] if mixtral else c["num_experts"]
        inter = c["intermediate_size"] if mixtral else c["moe_intermediate_size"]
        self.gate = MoeTopKRouter5(c, E, mixtral or c.get("norm_topk_prob", False))
        self.experts = MoeExperts5(c, E, inter)
        self.shared = c["model_type"] == "qwen2_moe"
        if self.shared:
            self.shared_expert = Qwen2MoeMLP(c, c["shared_expert_intermediate_size"])
            self.shared_expert_gate = nn.Linear(c["hidden_size"], 1, bias=False)

    def forward(self, x):
        shared = torch.sigmoid(self.shared_expert_gate(x)) * self.shared_expert(x) if self.shared else None
        _, weights, index = self.gate(x)
        out = self.experts(x, index, weights)
        if shared is not None:
            out += shared
        return out


class MixtralDecoderLayer5(MixtralDecoderLayer):
    def __init__(self, c, layer_idx):
        nn.Module.__init__(self)
        eps = c.get("rms_norm_eps", 1e-5)
        self.self_attn = MoeAttention(c, False, c.get("sliding_window"))
        self.mlp = SparseMoeBlock5(c)
        self.input_layernorm = Qwen3RMSNorm(c["hidden_size"], eps)
        self.post_attention_layernorm = Qwen3RMSNorm(c["hidden_size"], eps)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class QwenMoeDecoderLayer5(QwenMoeDecoderLayer):
    def __init__(self, c, layer_idx, qwen3):
        super().__init__(c, layer_idx, qwen3)
        if qwen_moe_sparse(c, layer_idx):
            self.mlp = SparseMoeBlock5(c)


class MoeModel5(MoeModel):
    def __init__(self, c):
        super().__init__(c)
        mt = c["model_type"]
        if mt == "mixtral":
            layers = (MixtralDecoderLayer5(c, i) for i in range(c["num_hidden_layers"]))
        else:
            layers = (QwenMoeDecoderLayer5(c, i, mt == "qwen3_moe") for i in range(c["num_hidden_layers"]))
        self.layers = nn.ModuleList(layers)


class MoeForCausalLM5(MoeForCausalLM):
    def __init__(self, c):
        super().__init__(c)
        self.model = MoeModel5(c)


def fused_state(sd):
    """A per-expert state dict in transformers 5's layout, as its
    conversion_mapping makes it: each sparse block's experts stacked, gate
    and up concatenated per expert ([E, 2I, H]), down stacked ([E, H, I]);
    Mixtral's block_sparse_moe.gate renamed mlp.gate. Keys stay in order,
    the fused ones where the block's expert 0 was."""
    expert = re.compile(r"^(.*\.layers\.\d+)\.(block_sparse_moe|mlp)\.experts\.(\d+)\.(w1|w2|w3|gate_proj|up_proj|down_proj)\.weight$")
    role = {"w1": "gate", "w3": "up", "w2": "down", "gate_proj": "gate", "up_proj": "up", "down_proj": "down"}
    blocks = {}
    for k, v in sd.items():
        m = expert.match(k)
        if m:
            blocks.setdefault(m.group(1), {}).setdefault(role[m.group(4)], {})[int(m.group(3))] = v
    out = {}
    for k, v in sd.items():
        m = expert.match(k)
        if m is None:
            out[k.replace(".block_sparse_moe.gate.", ".mlp.gate.")] = v
            continue
        layer = m.group(1)
        if layer + ".mlp.experts.gate_up_proj" in out:
            continue
        p = blocks[layer]
        n = len(p["gate"])
        out[layer + ".mlp.experts.gate_up_proj"] = torch.stack([torch.cat((p["gate"][e], p["up"][e]), 0) for e in range(n)])
        out[layer + ".mlp.experts.down_proj"] = torch.stack([p["down"][e] for e in range(n)])
    return out


def fused_case(twin):
    """The case twin (a per-expert MoE case) in transformers 5's layout,
    with the outputs of the transformers 5 modules."""
    cfg, sd, stored, fmt, ids, _ = twin()
    fsd = fused_state(sd)
    MOE_MARGINS.clear()
    out = run_module(MoeForCausalLM5, cfg, fsd, ids)
    if not MOE_MARGINS or min(MOE_MARGINS) < 0.1:
        raise ValueError(f"router margin {min(MOE_MARGINS or [0]):.4g} below 0.1")
    return cfg, fsd, fused_state(stored), "st", ids, out


@case
def mixtral_fused_st():
    """MixtralForCausalLM in transformers 5's fused layout: mixtral-st's
    weights with each layer's router as mlp.gate and experts as
    mlp.experts.gate_up_proj [4, 96, 32] and mlp.experts.down_proj [4, 32,
    48], safetensors."""
    return fused_case(mixtral_st)


@case
def qwen2moe_fused_f16_st():
    """Qwen2MoeForCausalLM with float16 weights in transformers 5's fused
    layout: qwen2moe-f16-st's weights, layer 1's experts as
    mlp.experts.gate_up_proj [8, 32, 32] and down_proj [8, 32, 16] beside
    the shared expert, safetensors."""
    return fused_case(qwen2moe_f16_st)


@case
def qwen3moe_fused_st():
    """Qwen3MoeForCausalLM in transformers 5's fused layout: qwen3moe-st's
    weights, layers 1 and 2's experts as mlp.experts.gate_up_proj [8, 32,
    32] and down_proj [8, 32, 16] (layer 0 dense), tied head omitted,
    safetensors."""
    return fused_case(qwen3moe_st)


@case
def qwen3moe_fused_bf16_st():
    """Qwen3MoeForCausalLM with bfloat16 weights in transformers 5's fused
    layout: qwen3moe-bf16-st's weights (every layer MoE, top-2 not
    renormalized), safetensors."""
    return fused_case(qwen3moe_bf16_st)


def name_of(fn):
    return fn.__name__.replace("_", "-")


def main():
    args = sys.argv[1:]
    only = None
    if args[:1] == ["--only"]:
        if len(args) < 2:
            sys.exit("usage: gen_models.py [--only CASE,CASE...] [OUTDIR]")
        only = set(args[1].split(","))
        unknown = only - {name_of(fn) for fn in CASES}
        if unknown:
            sys.exit("unknown cases: " + ", ".join(sorted(unknown)))
        args = args[2:]
    outdir = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
    os.makedirs(outdir, exist_ok=True)
    rows = []
    for fn in CASES:
        name = name_of(fn)
        cfg, _, stored, fmt, ids, out = fn()
        doc = " ".join(fn.__doc__.split())
        row = f"| {name} | {cfg['architectures'][0]} | {fmt} | {len(ids)} | {', '.join(out)} | {doc} |"
        if only is not None and name not in only:
            rows.append(row)  # listed in the README, files left as they are
            continue
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
        rows.append(row)
        print(name, file=sys.stderr)
    with open(os.path.join(outdir, "README.md"), "w") as f:
        f.write("# Forward-pass fixtures\n\n"
                "Made by `/usr/bin/python3 testdata/gen_models.py` (PyTorch 1.13, no transformers): tiny random\n"
                "models in Hugging Face layout and, in testdata/expected/<case>.safetensors, the input_ids (int64 [1, n]) and\n"
                "the float32 outputs of plain-torch implementations of the Hugging Face definitions, computed from\n"
                "exactly the stored weights. f16/bf16 cases: outputs computed in float32 from the rounded weights\n"
                "(as transformers computes after upcasting them). A correct forward pass matches within 1e-4.\n\n"
                "llama-tiny-st and bert-cls-st also hold a tokenizer (tokenizer.json, tokenizer_config.json) trained\n"
                "by Hugging Face's tokenizers library: `node testdata/gen_tokenizers.mjs`, to run again after this\n"
                "script rewrites those cases (it empties their directories).\n\n"
                "st-bert-mean (sentence-transformers: bert-f16-st with modules.json, mean pooling and Normalize),\n"
                "st-bert-wmean-dense (bert-f16-st, weighted-mean pooling, two Dense modules, Normalize) and\n"
                "st-qwen3-last (qwen3-st, last-token pooling, Normalize), with the expected sentence_embedding from\n"
                "sentence-transformers' pooling and Dense code, are made by\n"
                "`/usr/bin/python3 testdata/gen_sentence.py`, to run again after this script.\n\n"
                "| case | architecture | weights | length | outputs | what it covers |\n"
                "|---|---|---|---|---|---|\n")
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
