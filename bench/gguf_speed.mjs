// llama.cpp's side of bench/gguf_speed.sh: loads a GGUF with node-llama-cpp
// (CPU, no GPU build), and times on THREADS threads, RUNS times: a prefill
// of N token ids evaluated as a prompt (llama.cpp computes no logits for
// it: "prefill"), the same ids with the logits of every position computed
// and a greedy token taken from each ("prefill_all_logits", what our
// forward pass computes), and one more token after the prompt, with its
// logits ("token"). The ids are i·7919 mod vocab (the file may have no
// vocabulary). Prints one JSON line per run: {prefill_ms, prefill_all_logits_ms, token_ms}.
//
//   node bench/gguf_speed.mjs FILE.gguf NODE_MODULES [N=128] [RUNS=3] [THREADS=1]
import {createRequire} from "node:module";
import path from "node:path";

const [file, modulesDir, nArg, runsArg, threadsArg] = process.argv.slice(2);
const n = Number(nArg ?? 128), runs = Number(runsArg ?? 3), threads = Number(threadsArg ?? 1);
const require = createRequire(path.join(modulesDir, "package.json"));
const {getLlama, LlamaLogLevel} = await import(require.resolve("node-llama-cpp"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: file});
const vocab = Number(model.fileInfo?.metadata?.llama?.vocab_size ?? 32000);
const ids = Array.from({length: n + 1}, (_, i) => (i * 7919 + 1) % vocab);
const context = await model.createContext({contextSize: 512, batchSize: 512, threads});
const ms = t0 => Number(process.hrtime.bigint() - t0) / 1e6;
const greedy = {generateNext: {token: true, options: {temperature: 0}}};
for (let r = 0; r < runs; r++) {
  const seq = context.getSequence();
  let t0 = process.hrtime.bigint();
  await seq.evaluateWithoutGeneratingNewTokens(ids.slice(0, n));
  const prefill = ms(t0);
  t0 = process.hrtime.bigint();
  await seq.controlledEvaluate([[ids[n], greedy]]);
  const token = ms(t0);
  await seq.clearHistory();
  t0 = process.hrtime.bigint();
  await seq.controlledEvaluate(ids.slice(0, n).map(id => [id, greedy]));
  const all = ms(t0);
  seq.dispose();
  console.log(JSON.stringify({prefill_ms: prefill, prefill_all_logits_ms: all, token_ms: token}));
}
await context.dispose();
await model.dispose();
await llama.dispose();
