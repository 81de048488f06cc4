// Writes tokenizer/testdata/reference/overflow.json.gz: what Hugging Face's
// tokenizers library (npm `tokenizers`, pinned in package.json) returns when
// truncation cuts an encoding with a stride: the encoding and its
// overflowing pieces (getOverflowing, recursively), post-processed and
// padded, for a few reference tokenizers (tokenizers/NAME.json.gz, written
// by gen_reference.mjs), truncation settings, single texts and pairs.
// tokenizer/overflow_test.go compares the Go package with it.
//
//   cd tokenizer/testdata && npm ci && node gen_overflow.mjs
//
// Offsets are converted from the library's char offsets to bytes as
// gen_reference.mjs does (pairs use ASCII texts, where both agree, since an
// overflowing piece of a pair has no sequence ids to pick the text by).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import tk from 'tokenizers';

const { Tokenizer } = tk;
const here = path.dirname(new URL(import.meta.url).pathname);
const ref = path.join(here, 'reference');

const utf8len = (cp) => (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
function charToByte(text) {
  const table = [0];
  for (const ch of text) table.push(table[table.length - 1] + utf8len(ch.codePointAt(0)));
  return table;
}

const ascii = (s) => /^[\x00-\x7f]*$/.test(s);
function plain(enc, a, b) {
  if (b != null && !(ascii(a) && ascii(b))) throw new Error('pairs must be ASCII');
  const tab = charToByte(a);
  return {
    ids: enc.getIds(),
    tokens: enc.getTokens(),
    // a pair is ASCII: char offsets are byte offsets
    offsets: enc.getOffsets().map(([s, e]) => (b != null ? [s, e] : [tab[s], tab[e]])),
    type_ids: enc.getTypeIds(),
    special_tokens_mask: enc.getSpecialTokensMask(),
    attention_mask: enc.getAttentionMask(),
    overflowing: enc.getOverflowing().map((o) => plain(o, a, b)),
  };
}

const singles = [
  "I'm sure they're coming; we'll see if you've got it, he's done and she'd know. DON'T SHOUT, I'M HERE.",
  'Ça va très bien, merci. Où est la bibliothèque ? L\'été à Montréal est agréable.',
  '中文测试：我们今天去公园散步，天气很好。繁體中文：臺灣的電腦。',
  'Emoji: 😀😃😄 👍🏽 👩‍💻 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵🇺🇸 ❤️ ✨ 🧑🏿‍🚀',
  'short',
];
const pairs = [
  ['SELECT id, name FROM users WHERE email LIKE \'%@example.com\' ORDER BY created_at DESC;', 'for (let i = 0; i < arr.length; i++) { console.log(i); }'],
  ['Numbers: 0 1 12 123 1234 12345 3.14159 -273.15 1,000,000 1e-9 0xFF 0b1010', 'a short one'],
  ['tiny', 'camelCaseIdentifier snake_case_identifier kebab-case-identifier SCREAMING_CASE and more words here'],
];
const settings = [
  { maxLength: 16, stride: 4, direction: 'Right', strategy: 'LongestFirst' },
  { maxLength: 12, stride: 0, direction: 'Left', strategy: 'LongestFirst' },
  { maxLength: 20, stride: 7, direction: 'Right', strategy: 'OnlyFirst' },
  { maxLength: 18, stride: 3, direction: 'Left', strategy: 'OnlySecond' },
];
const names = ['llama3', 'llama2', 'gpt2', 'roberta-like', 'bert-uncased', 'bert-cased-variants', 'unigram-bytefallback', 'wordlevel-digits', 'gpt4o'];

const cases = [];
for (const name of names) {
  const json = zlib.gunzipSync(fs.readFileSync(path.join(ref, 'tokenizers', name + '.json.gz'))).toString();
  const tok = Tokenizer.fromString(json);
  for (const s of settings) {
    tok.setTruncation(s.maxLength, { stride: s.stride, direction: s.direction.toLowerCase(), strategy: s.strategy });
    const inputs = [...singles.map((a) => [a, null]), ...pairs];
    for (const [a, b] of inputs) {
      for (const special of [true, false]) {
        const c = { tokenizer: name, max_length: s.maxLength, stride: s.stride, direction: s.direction, strategy: s.strategy, a, b, special };
        try {
          c.encoding = plain(await tok.encode(a, b, { addSpecialTokens: special }), a, b);
        } catch (err) {
          c.error = String(err.message || err);
        }
        cases.push(c);
      }
    }
  }
}
fs.writeFileSync(path.join(ref, 'overflow.json.gz'), zlib.gzipSync(JSON.stringify({ generator: 'gen_overflow.mjs', library: 'tokenizers@0.23.2 (npm)', cases }) + '\n', { level: 9 }));
console.log(`${cases.length} cases, ${cases.filter((c) => c.error).length} errors`);
