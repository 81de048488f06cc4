// Gives two forward fixtures a tokenizer made by Hugging Face's tokenizers
// library (npm `tokenizers`, the Rust crate as a native addon, installed in
// tokenizer/testdata), and writes the library's ids for a few sentences:
//
//   (cd tokenizer/testdata && npm ci) && node testdata/gen_tokenizers.mjs
//
// For each case the library trains its model (Tokenizer.train with the
// model's default trainer) on the ASCII lines of the project's own corpus
// (tokenizer/testdata/reference/corpus.txt); the vocabulary is then cut to
// the model's vocab_size (the special tokens first, then the trained tokens
// in the trainer's order, so a BPE keeps a prefix of its merges), loaded
// by the library again and saved by it as tokenizer.json, with a
// tokenizer_config.json. testdata/expected/tokenizer_ids.json holds, per
// case, the sentences and the ids the library encodes them to (special
// tokens added): `forward --text S` must equal `forward --ids <ids>`.
//
//   llama-tiny-st (vocab 256): Llama-style BPE, Metaspace "▁" (prepend
//     first), <unk>/<s>/</s>, "<s> $A", Metaspace decoder.
//   bert-cls-st (vocab 150): BERT uncased WordPiece, [CLS] $A [SEP] and the
//     pair template.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const here = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(path.join(here, '..', 'tokenizer', 'testdata', 'package.json'));
const { Tokenizer } = require('tokenizers');

const corpus = fs.readFileSync(path.join(here, '..', 'tokenizer', 'testdata', 'reference', 'corpus.txt'), 'utf8')
  .split('\n').filter((l) => l.trim() !== '' && /^[\x20-\x7e]*$/.test(l));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gen-tokenizers-'));
const corpusFile = path.join(tmp, 'corpus.txt');
fs.writeFileSync(corpusFile, corpus.join('\n') + '\n');

function vocabSize(name) {
  return JSON.parse(fs.readFileSync(path.join(here, 'models', name, 'config.json'), 'utf8')).vocab_size;
}

// train loads doc (its model empty) with the library, trains it on the
// corpus and returns the saved document.
function train(doc) {
  const tok = Tokenizer.fromString(JSON.stringify(doc));
  tok.train([corpusFile]);
  const p = path.join(tmp, 'trained.json');
  tok.save(p, false);
  return JSON.parse(fs.readFileSync(p, 'utf8'));
}

// cut renumbers the trained vocabulary after the specials and keeps size
// tokens in all.
function cut(vocab, specials, size) {
  const out = {};
  specials.forEach((s, i) => { out[s] = i; });
  const trained = Object.entries(vocab).filter(([t]) => !(t in out)).sort((a, b) => a[1] - b[1]);
  for (const [t] of trained) {
    if (Object.keys(out).length >= size) break;
    out[t] = Object.keys(out).length;
  }
  return out;
}

const added = (specials) => specials.map((s, i) => ({ id: i, content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));

const cases = [];

// ------------------------------------------------------------- llama-tiny-st
{
  const name = 'llama-tiny-st';
  const specials = ['<unk>', '<s>', '</s>'];
  const metaspace = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: true };
  const base = {
    version: '1.0', truncation: null, padding: null, added_tokens: [],
    normalizer: null, pre_tokenizer: metaspace,
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: false, ignore_merges: false, vocab: {}, merges: [] },
    post_processor: null, decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
  };
  const trained = train(base);
  const vocab = cut(trained.model.vocab, specials, vocabSize(name));
  const merges = [];
  for (const m of trained.model.merges) {
    const [a, b] = Array.isArray(m) ? m : m.split(' ');
    if (!(a + b in vocab)) break;
    merges.push([a, b]);
  }
  const doc = {
    ...base, added_tokens: added(specials), model: { ...base.model, vocab, merges },
    post_processor: { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } },
  };
  const config = { tokenizer_class: 'LlamaTokenizerFast', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>',
    add_bos_token: true, add_eos_token: false, model_max_length: 64, clean_up_tokenization_spaces: false };
  cases.push({ name, doc, config, sentences: [
    'The quick brown fox jumps over the lazy dog.',
    'Hello world, this is a tiny model.',
    'Numbers 12345 and symbols: (a + b) * c = 42;',
    'caf\u00e9 na\u00efve \u2014 characters it never saw',
  ] });
}

// --------------------------------------------------------------- bert-cls-st
{
  const name = 'bert-cls-st';
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const base = {
    version: '1.0', truncation: null, padding: null, added_tokens: [],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: {} },
    post_processor: null, decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  };
  const trained = train(base);
  const vocab = cut(trained.model.vocab, specials, vocabSize(name));
  const piece = (kind, id, t) => ({ [kind]: { id, type_id: t } });
  const doc = {
    ...base, added_tokens: added(specials), model: { ...base.model, vocab },
    post_processor: { type: 'TemplateProcessing',
      single: [piece('SpecialToken', '[CLS]', 0), piece('Sequence', 'A', 0), piece('SpecialToken', '[SEP]', 0)],
      pair: [piece('SpecialToken', '[CLS]', 0), piece('Sequence', 'A', 0), piece('SpecialToken', '[SEP]', 0), piece('Sequence', 'B', 1), piece('SpecialToken', '[SEP]', 1)],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } } },
  };
  const config = { tokenizer_class: 'BertTokenizerFast', do_lower_case: true, unk_token: '[UNK]', sep_token: '[SEP]',
    pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]', model_max_length: 40 };
  cases.push({ name, doc, config, sentences: [
    'The quick brown fox jumps over the lazy dog.',
    'Hello World, THIS is a Tiny model!',
    'Numbers 12345 and symbols: (a + b) * c = 42;',
    'Caf\u00e9 na\u00efve \u2014 characters it never saw',
  ] });
}

const expected = {};
for (const c of cases) {
  const dir = path.join(here, 'models', c.name);
  // the library loads our document and saves it: the file is its own
  const tok = Tokenizer.fromString(JSON.stringify(c.doc));
  tok.save(path.join(dir, 'tokenizer.json'), true);
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(c.config, null, 2) + '\n');
  const saved = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  const size = saved.getVocabSize(true);
  if (size > vocabSize(c.name)) throw new Error(`${c.name}: vocabulary ${size} above the model's ${vocabSize(c.name)}`);
  expected[c.name] = [];
  for (const s of c.sentences) {
    const enc = await saved.encode(s);
    expected[c.name].push({ text: s, ids: enc.getIds(), tokens: enc.getTokens() });
  }
  console.log(`${c.name}: vocabulary ${size}, ${c.sentences.length} sentences`);
}
const lines = Object.entries(expected).map(([n, rs]) =>
  `  ${JSON.stringify(n)}: [\n${rs.map((r) => '   ' + JSON.stringify(r)).join(',\n')}\n  ]`);
fs.writeFileSync(path.join(here, 'expected', 'tokenizer_ids.json'),
  `{\n "generator": "testdata/gen_tokenizers.mjs",\n "library": "tokenizers@0.23.2 (npm)",\n "cases": {\n${lines.join(',\n')}\n }\n}\n`);
fs.rmSync(tmp, { recursive: true });
