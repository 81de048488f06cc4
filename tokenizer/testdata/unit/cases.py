# Writes cases.json: small hand-made tokenizer.json documents and inputs.
# gen_unit.js runs them through the tokenizers library (npm tokenizers@0.23.2)
# and writes expected.json, which unit_test.go compares with:
#
#   python3 cases.py
#   npm install tokenizers@0.23.2   # anywhere; point NODE_PATH at it
#   NODE_PATH=.../node_modules node gen_unit.js cases.json > expected.json
import json

def b2u():
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}

B = b2u()
def bl(s):
    return ''.join(B[x] for x in s.encode())

# a byte-level vocab: all 256 byte chars plus merges for a few words
def bytelevel_bpe(words, extra=()):
    vocab = {B[i]: i for i in range(256)}
    merges = []
    for w in words:
        w = bl(w)
        cur = w[0]
        for ch in w[1:]:
            m = (cur, ch)
            if m not in merges:
                merges.append(m)
            cur = cur + ch
            if cur not in vocab:
                vocab[cur] = len(vocab)
    for e in extra:
        vocab[e] = len(vocab)
    return vocab, merges

TEXTS = ["Hello world", "  hello   world  ", "", "I'm here, they're 123456 ok!", "héllo Wörld ÅΩ", "a\u0301e\u0301 ǅ İstanbul", "日本語のテキスト", "😀 👍🏽 x", "line\r\nnext\n\n end"]

cases = []
def add(name, tok, inputs):
    base = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
            "pre_tokenizer": None, "post_processor": None, "decoder": None}
    base.update(tok)
    cases.append({"name": name, "tok": base, "inputs": inputs})

def singles(texts, special=True):
    return [[t, None, special] for t in texts]

vocab, merges = bytelevel_bpe(["Ġhello", "Ġworld", "Hello", "Ġhere", "Ġok", "123", "Ġthey", "'re", "'m"])
bpe_pairs = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
             "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": vocab, "merges": [list(m) for m in merges]}
bpe_strings = dict(bpe_pairs, merges=[" ".join(m) for m in merges])
add("bytelevel-gpt2", {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
                       "model": bpe_pairs, "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                       "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}},
    singles(TEXTS))
add("bytelevel-string-merges-prefix-space", {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                       "model": bpe_strings, "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                       "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1], "trim_offsets": True, "add_prefix_space": True}},
    singles(TEXTS) + [["Hello world", "hello  ok", True], ["Hello world", "hello  ok", False]])
cl100k = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
add("split-cl100k-ignore-merges", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": cl100k}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
    "model": dict(bpe_pairs, ignore_merges=True), "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "added_tokens": [{"id": len(vocab), "content": "<|eot|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|eot|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                       "special_tokens": {"<|eot|>": {"id": "<|eot|>", "ids": [len(vocab)], "tokens": ["<|eot|>"]}}}},
    singles(TEXTS + ["x<|eot|>y <|eot|>", "I'M HERE'S"]) + [["a<|eot|>", "b", True]])

# SentencePiece-style BPE with byte fallback
sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
for i in range(256):
    sp_vocab["<0x%02X>" % i] = len(sp_vocab)
sp_merges = []
for w in ["▁hello", "▁world", "▁H", "ell", "o"]:
    cur = w[0]
    if cur not in sp_vocab: sp_vocab[cur] = len(sp_vocab)
    for ch in w[1:]:
        if ch not in sp_vocab: sp_vocab[ch] = len(sp_vocab)
        if (cur, ch) not in sp_merges: sp_merges.append((cur, ch))
        cur += ch
        if cur not in sp_vocab: sp_vocab[cur] = len(sp_vocab)
for ch in "abcdefghijklmnopqrstuvwxyz":
    sp_vocab.setdefault(ch, len(sp_vocab))
llama_like = {"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
              "fuse_unk": True, "byte_fallback": True, "ignore_merges": False, "vocab": sp_vocab, "merges": [" ".join(m) for m in sp_merges]},
    "added_tokens": [{"id": 0, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
                     {"id": 1, "content": "<s>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
                     {"id": 2, "content": "</s>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}}
add("sentencepiece-bpe-bytefallback", llama_like, singles(TEXTS + ["<s>hello</s> world"]) + [["hello", "world", True]])
nofb = json.loads(json.dumps(llama_like)); nofb["model"]["byte_fallback"] = False
add("bpe-fuse-unk", nofb, singles(["héllo wörld", "ÅΩ日本 hello"]))
nofuse = json.loads(json.dumps(nofb)); nofuse["model"]["fuse_unk"] = False
add("bpe-no-fuse-unk", nofuse, singles(["héllo wörld", "ÅΩ日本 hello"]))

# WordPiece BERT
wp_vocab = {}
for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "he", "##llo", "wor", "##ld", "!", ",", ".", "'", "i", "m", "here", "they", "re", "ok", "123", "##45", "##6", "日", "本", "語", "a", "e", "x", "istanbul", "##s"]:
    wp_vocab[t] = len(wp_vocab)
bert = {"normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": wp_vocab},
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True} for c, i in [("[PAD]", 0), ("[UNK]", 1), ("[CLS]", 2), ("[SEP]", 3), ("[MASK]", 4)]],
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True}}
add("bert-wordpiece", bert, singles(TEXTS + ["Hello [MASK] world\t\u0000x\u200b", "hello,world. I'm here"]) + [["Hello world", "they're ok", True], ["Hello world", "they're ok", False]])
bert_tp = json.loads(json.dumps(bert))
bert_tp["truncation"] = {"direction": "Right", "max_length": 7, "strategy": "LongestFirst", "stride": 0}
bert_tp["padding"] = {"strategy": {"Fixed": 10}, "direction": "Left", "pad_to_multiple_of": None, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}
add("bert-truncation-padding", bert_tp, singles(["hello world hello world hello world hello", "hi"]) + [["hello world hello world", "they re ok he", True], ["hello world hello world", "they", False]])
bert_left = json.loads(json.dumps(bert))
bert_left["truncation"] = {"direction": "Left", "max_length": 6, "strategy": "OnlySecond", "stride": 0}
bert_left["padding"] = {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": 4, "pad_id": 0, "pad_type_id": 1, "pad_token": "[PAD]"}
add("bert-only-second-multiple", bert_left, [["hello", "world they re ok here", True], ["hello world", None, True]])

# added tokens flags
at_vocab = {"[UNK]": 0, "a": 1, "b": 2, "c": 3, "x": 4, "▁": 5}
added = [{"id": 6, "content": "<L>", "single_word": False, "lstrip": True, "rstrip": False, "normalized": False, "special": True},
         {"id": 7, "content": "<R>", "single_word": False, "lstrip": False, "rstrip": True, "normalized": False, "special": False},
         {"id": 8, "content": "sw", "single_word": True, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
         {"id": 9, "content": "NORM", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
         {"id": 10, "content": "<RAW>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}]
add("added-token-flags", {"normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "WhitespaceSplit"},
    "model": {"type": "WordLevel", "vocab": at_vocab, "unk_token": "[UNK]"}, "added_tokens": added},
    singles(["a <L> b", "a  <L>b", "<R>   c", "a<R> x", "sw a sw xsw swx", "a norm NORM Norm", "a <raw> <RAW>", "<L><L>  <R><R>"]))

# Unigram + Metaspace
uni_vocab = [["<unk>", 0.0], ["▁", -2.0], ["▁hello", -3.0], ["▁he", -4.0], ["llo", -4.5], ["▁world", -3.5], ["wor", -5.0], ["ld", -5.0],
             ["h", -6.0], ["e", -6.0], ["l", -6.0], ["o", -6.0], ["w", -6.0], ["r", -6.0], ["d", -6.0], ["<0xC3>", -10.0], ["<0xA9>", -10.0]]
for scheme in ["always", "first", "never"]:
    add("unigram-metaspace-" + scheme, {"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": scheme != "first"},
        "model": {"type": "Unigram", "unk_id": 0, "vocab": uni_vocab, "byte_fallback": scheme == "always"},
        "added_tokens": [{"id": 0, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": True}},
        singles(["hello world", " hello  world ", "héllo wxrld", "helloworld", "zzz hello", "hello<unk>world"]))

# pre-tokenizers and normalizers
wl_vocab = {"[UNK]": 0}
def wl(name, pre, norm=None, texts=TEXTS):
    add(name, {"normalizer": norm, "pre_tokenizer": pre, "model": {"type": "WordLevel", "vocab": wl_vocab, "unk_token": "[UNK]"}}, singles(texts))
for beh in ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]:
    for inv in [False, True]:
        wl("split-%s-%s" % (beh, inv), {"type": "Split", "pattern": {"Regex": r"\s+|\d"}, "behavior": beh, "invert": inv}, texts=TEXTS + ["a  b1 2c"])
    wl("split-string-%s" % beh, {"type": "Split", "pattern": {"String": "ll"}, "behavior": beh, "invert": False}, texts=["hello llama ll", "allll"])
wl("whitespace", {"type": "Whitespace"})
wl("whitespace-split", {"type": "WhitespaceSplit"})
wl("punctuation", {"type": "Punctuation", "behavior": "Contiguous"}, texts=TEXTS + ["a!!?b.,c"])
wl("digits", {"type": "Digits", "individual_digits": True})
wl("digits-contiguous", {"type": "Digits", "individual_digits": False})
wl("chardelim", {"type": "CharDelimiterSplit", "delimiter": "o"})
wl("unicode-scripts", {"type": "UnicodeScripts"}, texts=TEXTS + ["abcБВГ αβγ日本ひらがなカタカナー 한국어", " x"])
wl("bytelevel-no-regex", {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": False})
wl("metaspace-split-never", {"type": "Metaspace", "replacement": "_", "prepend_scheme": "never", "split": True})
for norm in [{"type": "NFC"}, {"type": "NFD"}, {"type": "NFKC"}, {"type": "NFKD"}, {"type": "Lowercase"},
             {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}]},
             {"type": "Strip", "strip_left": True, "strip_right": True}, {"type": "Strip", "strip_left": False, "strip_right": True},
             {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}, {"type": "Replace", "pattern": {"String": "l"}, "content": "LL"},
             {"type": "Prepend", "prepend": "▁▁"}, {"type": "ByteLevel"},
             {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": True, "lowercase": False}]:
    wl("norm-" + json.dumps(norm, sort_keys=True), {"type": "WhitespaceSplit"}, norm, texts=TEXTS + ["ﬁ ① ２ Ⅻ ﾊﾟ", "\u1100\u1161\u11a8 e\u0301\u0323 \u212b"])

json.dump(cases, open("cases.json", "w"), ensure_ascii=False, indent=0)
print(len(cases), "cases")
