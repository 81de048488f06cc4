// Runs encoder GGUF files with llama.cpp (node-llama-cpp, CPU): for each case
// of a manifest, loads the model, tokenizes the case's texts as llama.cpp
// does (model.tokenize without special tokens; the test adds them as
// llama_tokenize does for the file's vocabulary type and flags), and
// computes the embedding of the case's ids with an embedding context
// (LlamaEmbeddingContext.getEmbeddingFor: llama.cpp's result pooled as the
// file's pooling_type says, the last token's hidden state without one),
// written as float32 to the case's out file; for a rank case, the scores of
// the classification head on the case's ids (a LlamaRankingContext: the rank
// pooling) instead; for a vocabOnly case, the tokenization only. Prints one JSON line per case:
// {name, arch, vocabType, bos, eos, sep, addBos, addEos, raw, input, dims,
// error}: raw the ids of each text, input the ids the embedding context
// evaluated.
// Used by internal/llamacpp's encoder test:  node embed.mjs MANIFEST.json MODULES
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
    const model = await llama.loadModel({modelPath: c.gguf, vocabOnly: Boolean(c.vocabOnly)});
    const t = model.tokens;
    res.arch = model.fileInfo?.metadata?.general?.architecture;
    res.vocabType = model.vocabularyType;
    res.bos = t.bos == null ? null : Number(t.bos);
    res.eos = t.eos == null ? null : Number(t.eos);
    res.sep = t.sep == null ? null : Number(t.sep);
    // llama.cpp's add_bos and add_eos (llama_vocab_get_add_bos/eos;
    // model.tokens' flags are false without a bos token).
    res.addBos = model._model.shouldPrependBosToken();
    res.addEos = model._model.shouldAppendEosToken();
    // Special tokens in a text are parsed as such when the case says so
    // (the tokenizers library always does).
    res.raw = c.texts.map(text => model.tokenize(text, Boolean(c.parseSpecial)).map(Number));
    if (c.vocabOnly) {
      await model.dispose();
      console.log(JSON.stringify(res));
      continue;
    }
    if (c.rank) {
      // The scores of the classification head (llama.cpp's rank
      // pooling), before LlamaRankingContext's sigmoid.
      const rc = await model.createRankingContext({contextSize: 128, batchSize: 128, threads: 1});
      await rc._evaluateRankingForInput(c.ids);
      const scores = rc._llamaContext._ctx.getEmbedding(c.ids.length);
      res.input = c.ids;
      res.dims = scores.length;
      fs.writeFileSync(c.out, Buffer.from(Float32Array.from(scores).buffer));
      await rc.dispose();
      await model.dispose();
      console.log(JSON.stringify(res));
      continue;
    }
    const ctx = await model.createEmbeddingContext({contextSize: 128, batchSize: 128, threads: 1});
    // The ids the context evaluates: ours, with the start and end tokens
    // it adds when they are missing.
    const input = c.ids.slice();
    ctx._prepareInput(input);
    res.input = input.map(Number);
    const emb = await ctx.getEmbeddingFor(c.ids);
    res.dims = emb.vector.length;
    fs.writeFileSync(c.out, Buffer.from(Float32Array.from(emb.vector).buffer));
    await ctx.dispose();
    await model.dispose();
  } catch (e) {
    res.error = String(e?.stack ?? e);
  }
  console.log(JSON.stringify(res));
}
await llama.dispose();
