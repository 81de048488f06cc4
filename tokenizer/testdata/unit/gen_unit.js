// Runs every case of cases.json through the tokenizers library (npm
// tokenizers@0.23.2) and prints the results: node gen_unit.js cases.json > expected.json
const { Tokenizer } = require('tokenizers');
const fs = require('fs');
const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const utf8len = (cp) => (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
function tab(text) { const t = [0]; for (const ch of text) t.push(t[t.length - 1] + utf8len(ch.codePointAt(0))); return t; }
(async () => {
  const out = [];
  for (const c of cases) {
    let t;
    try { t = Tokenizer.fromString(JSON.stringify(c.tok)); } catch (e) { out.push({ name: c.name, loadError: String(e) }); continue; }
    const res = [];
    for (const inp of c.inputs) {
      const [a, b, special] = inp;
      try {
        const e = await t.encode(a, b ?? null, { addSpecialTokens: special });
        const seq = e.getSequenceIds();
        const tabs = [tab(a), b != null ? tab(b) : null];
        const offs = e.getOffsets().map(([s, en], i) => { const tb = tabs[seq[i] ?? 0] ?? tabs[0]; return [tb[s], tb[en]]; });
        const ids = e.getIds();
        res.push({ a, b, special, ids, tokens: e.getTokens(), offsets: offs, type_ids: e.getTypeIds(), special_tokens_mask: e.getSpecialTokensMask(), attention_mask: e.getAttentionMask(), decode: await t.decode(ids, false), decode_skip: await t.decode(ids, true) });
      } catch (err) { res.push({ a, b, special, error: String(err) }); }
    }
    out.push({ name: c.name, results: res });
  }
  console.log(JSON.stringify(out, null, 0));
})();
