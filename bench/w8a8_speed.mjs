// llama.cpp's prefill time (node-llama-cpp, CPU) for bench/w8a8_speed.sh:
// loads a GGUF, then RUNS times clears the context and evaluates N token
// ids in one batch with logits for the last one (llama.cpp computes the
// output layer for that row only), timing each evaluation.
// Prints one JSON line: {threads, tokens, ms: [...]}.
//
//   node bench/w8a8_speed.mjs MODULES_DIR MODEL.gguf THREADS N RUNS
import {createRequire} from "node:module";
import path from "node:path";
import {performance} from "node:perf_hooks";

const [modulesDir, modelPath, threadsArg, nArg, runsArg] = process.argv.slice(2);
const require = createRequire(path.join(modulesDir, "package.json"));
const {getLlama, LlamaLogLevel} = await import(require.resolve("node-llama-cpp"));
const threads = Number(threadsArg), n = Number(nArg), runs = Number(runsArg);
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 2 * n, batchSize: n, threads});
const sequence = context.getSequence();
// The ids the Go side runs: (i·37) mod 1000 + 3.
const ids = Array.from({length: n}, (_, i) => (i * 37) % 1000 + 3);
const items = ids.map((id, i) => (i === n - 1 ? [id, {generateNext: {token: true}}] : id));
const ms = [];
for (let r = 0; r <= runs; r++) {
  await sequence.clearHistory();
  const t0 = performance.now();
  await sequence.controlledEvaluate(items);
  const t = performance.now() - t0;
  if (r > 0) ms.push(t); // run 0 warms up
}
console.log(JSON.stringify({threads, tokens: n, ms}));
await context.dispose();
await model.dispose();
await llama.dispose();
