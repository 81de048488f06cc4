// llama.cpp's side of bench/gguf_speed.sh: loads a GGUF with node-llama-cpp
// (CPU, no GPU build), and times on THREADS threads, RUNS times: a prefill
// of N token ids evaluated as a prompt (llama.cpp computes no logits for
// it: "prefill"), one more token without logits ("token"), another
// ("token2") and one more with its logits and a greedy pick
// ("token_logits"; node-llama-cpp's sampling included). The ids are
// i·7919+1 mod the vocabulary, as bench/gguf_speed_go takes them. Prints
// one JSON line per run: the wall times prefill_ms, token_ms, token2_ms,
// token_logits_ms and the process's CPU time (user and system, all
// threads) of each, prefill_cpu_ms, ...
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
// The process's CPU time (user and system, every thread) since c0, in ms.
const cpu = c0 => { const d = process.cpuUsage(c0); return (d.user + d.system) / 1000; };
const greedy = {generateNext: {token: true, options: {temperature: 0}}};
const seq = context.getSequence();
for (let r = 0; r < runs; r++) {
  await seq.clearHistory();
  let c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  await seq.evaluateWithoutGeneratingNewTokens(ids.slice(0, n));
  const prefill = ms(t0), prefillCPU = cpu(c0);
  c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  await seq.evaluateWithoutGeneratingNewTokens([ids[n]]);
  const token = ms(t0), tokenCPU = cpu(c0);
  c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  await seq.evaluateWithoutGeneratingNewTokens([ids[n - 1]]);
  const token2 = ms(t0), token2CPU = cpu(c0);
  c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  await seq.controlledEvaluate([[ids[n - 2], greedy]]);
  const tokenLogits = ms(t0), tokenLogitsCPU = cpu(c0);
  console.log(JSON.stringify({prefill_ms: prefill, prefill_cpu_ms: prefillCPU, token_ms: token, token_cpu_ms: tokenCPU,
    token2_ms: token2, token2_cpu_ms: token2CPU, token_logits_ms: tokenLogits, token_logits_cpu_ms: tokenLogitsCPU}));
}
await context.dispose();
await model.dispose();
await llama.dispose();
