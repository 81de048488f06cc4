// Helper of bench/tokenize.sh (Hugging Face's tokenizers through npm's
// native addon; run with TOKENIZERS_PARALLELISM=false for one thread).
//
//   node tokenize.mjs text OUT CORPUS MB    writes MB megabytes of mixed text
//   node tokenize.mjs encode TOKENIZER TEXT encodeBatch on every line
//   node tokenize.mjs load TOKENIZER        time to load a tokenizer.json
//
// Prints one line of `key=value` figures; `ids_hash` is FNV-1a over the
// ids of every line (special tokens added), the same as tokenize_go prints,
// so that a difference in the results shows next to the speed.
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.cwd() + '/');
const { Tokenizer } = require('tokenizers');
const [cmd, ...args] = process.argv.slice(2);

function idsHash(h, ids) {
  for (const id of ids) {
    h ^= BigInt(id);
    h = (h * 1099511628211n) & 0xffffffffffffffffn;
  }
  return h;
}

if (cmd === 'text') {
  // Lines of 1 to 40 words drawn from the corpus's words (every script,
  // code, numbers), plus whole corpus lines; a fixed seed.
  const [out, corpus, mb] = args;
  const lines = fs.readFileSync(corpus, 'utf8').split('\n').filter((l) => l.length > 0);
  const words = lines.flatMap((l) => l.split(/\s+/)).filter((w) => w);
  let s = 42;
  const rnd = (n) => { s = (s * 1103515245 + 12345) >>> 0; return (s >>> 8) % n; };
  const parts = [];
  let size = 0;
  while (size < Number(mb) * 1e6) {
    const l = rnd(5) === 0 ? lines[rnd(lines.length)]
      : Array.from({ length: 1 + rnd(40) }, () => words[rnd(words.length)]).join(rnd(8) === 0 ? '  ' : ' ');
    parts.push(l);
    size += Buffer.byteLength(l) + 1;
  }
  fs.writeFileSync(out, parts.join('\n') + '\n');
} else if (cmd === 'encode') {
  const [file, textFile] = args;
  const tok = Tokenizer.fromFile(file);
  const lines = fs.readFileSync(textFile, 'utf8').replace(/\n$/, '').split('\n');
  const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l), 0);
  // Warm up once (a first call sets up the thread pool), then time.
  await tok.encodeBatch(lines.slice(0, 100));
  let h = 0xcbf29ce484222325n, tokens = 0, ms = 0;
  const chunk = 4096;
  for (let i = 0; i < lines.length; i += chunk) {
    const t0 = process.hrtime.bigint();
    const encs = await tok.encodeBatch(lines.slice(i, i + chunk), { addSpecialTokens: true });
    ms += Number(process.hrtime.bigint() - t0) / 1e6;
    for (const e of encs) { const ids = e.getIds(); tokens += ids.length; h = idsHash(h, ids); }
  }
  console.log(`impl=tokenizers-rs lines=${lines.length} bytes=${bytes} tokens=${tokens} seconds=${(ms / 1e3).toFixed(3)} MBps=${(bytes / 1e3 / ms).toFixed(2)} ids_hash=${h.toString(16)}`);
} else if (cmd === 'load') {
  const t0 = process.hrtime.bigint();
  const tok = Tokenizer.fromFile(args[0]);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`impl=tokenizers-rs load_seconds=${(ms / 1e3).toFixed(3)} vocab=${tok.getVocabSize(true)}`);
} else {
  console.error('usage: tokenize.mjs text|encode|load ...');
  process.exit(2);
}
