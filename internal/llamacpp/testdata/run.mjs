// Runs GGUF files with llama.cpp (node-llama-cpp, CPU): for each case of a
// manifest, loads the model, tokenizes a text as llama.cpp does for a prompt
// (bos prepended and eos appended when the file says so) and evaluates the
// ids, writing the log-probabilities of every position (node-llama-cpp
// 3.21.1 gives the softmax of llama.cpp's logits, over the whole vocabulary
// with its default greedy sampler: the logits up to a constant per
// position) as float32 to the case's out file. Prints one JSON line per
// case: {name, ids, more, arch, vocab, error}, more being the ids of the
// case's other texts (tokenized only).
// Used by internal/llamacpp's test:  node run.mjs MANIFEST.json
// (run with NODE_PATH or from a directory whose node_modules holds
// node-llama-cpp).
import fs from "node:fs";
import {createRequire} from "node:module";
import path from "node:path";

const [manifestPath, modulesDir] = process.argv.slice(2);
const require = createRequire(path.join(modulesDir, "package.json"));
const {getLlama, LlamaLogLevel} = await import(require.resolve("node-llama-cpp"));
const cases = JSON.parse(fs.readFileSync(manifestPath, "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
for (const c of cases) {
  const res = {name: c.name};
  try {
    const model = await llama.loadModel({modelPath: c.gguf});
    const t = model.tokens;
    let ids = model.tokenize(c.text, false);
    if (t.shouldPrependBosToken && t.bos != null) ids = [t.bos, ...ids];
    if (t.shouldAppendEosToken && t.eos != null) ids = [...ids, t.eos];
    res.ids = ids.map(Number);
    // More texts, tokenized only.
    res.more = (c.more ?? []).map(text => {
      let more = model.tokenize(text, false);
      if (t.shouldPrependBosToken && t.bos != null) more = [t.bos, ...more];
      if (t.shouldAppendEosToken && t.eos != null) more = [...more, t.eos];
      return more.map(Number);
    });
    res.arch = model.fileInfo?.metadata?.general?.architecture;
    // Evaluate the ids the reference ran on, so that logits compare even
    // when the tokenizations differ (the test reports both).
    const evalIds = c.ids ?? res.ids;
    const context = await model.createContext({contextSize: 256, batchSize: 256, threads: c.threads ?? 1});
    const sequence = context.getSequence();
    const out = await sequence.controlledEvaluate(evalIds.map(id => [id, {generateNext: {probabilities: true}}]));
    const vocab = out[0].next.probabilities.size;
    res.vocab = vocab;
    const buf = new Float32Array(evalIds.length * vocab);
    for (let p = 0; p < evalIds.length; p++) {
      const m = out[p].next.probabilities;
      if (m.size !== vocab) throw new Error(`position ${p}: ${m.size} probabilities, not ${vocab}`);
      for (const [tok, prob] of m) buf[p * vocab + tok] = Math.log(prob);
    }
    fs.writeFileSync(c.out, Buffer.from(buf.buffer));
    await context.dispose();
    await model.dispose();
  } catch (e) {
    res.error = String(e?.stack ?? e);
  }
  console.log(JSON.stringify(res));
}
await llama.dispose();
