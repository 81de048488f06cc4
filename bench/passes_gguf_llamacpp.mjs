// Loads a GGUF with llama.cpp (node-llama-cpp), evaluates a sequence of token
// ids, and compares the logits with those of the native forward pass (a
// safetensors file from `hubmirror forward --out`). Run by
// bench/passes_gguf_llamacpp.sh:  node check.mjs MODEL.gguf REF.safetensors IDS.txt
import {getLlama} from "node-llama-cpp";
import fs from "node:fs";

const [gguf, refPath, idsPath] = process.argv.slice(2);
const ids = fs.readFileSync(idsPath, "utf8").trim().split(",").map(Number);
// Reference logits: our forward pass's safetensors output.
const buf = fs.readFileSync(refPath);
const hlen = Number(buf.readBigUInt64LE(0));
const header = JSON.parse(buf.subarray(8, 8 + hlen).toString());
const lg = header["logits"];
const [_, seq, vocab] = lg.shape;
const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 8 + hlen + lg.data_offsets[0], buf.byteOffset + 8 + hlen + lg.data_offsets[1]));

const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath: gguf});
console.log("llama.cpp loaded:", model.fileInfo?.metadata?.general?.architecture, "train ctx", model.trainContextSize);
const context = await model.createContext({contextSize: 64, batchSize: 64});
const sequence = context.getSequence();
const out = await sequence.controlledEvaluate(ids.map(t => [t, {generateNext: {logits: true}}]));
let minCos = 1, agree = 0, maxAbs = 0;
for (let p = 0; p < seq; p++) {
  const m = out[p].next.logits;
  let dot = 0, na = 0, nb = 0, bestA = -1, bestB = -1, va = -Infinity, vb = -Infinity;
  for (let v = 0; v < vocab; v++) {
    const a = data[p * vocab + v], b = m.get(v);
    dot += a * b; na += a * a; nb += b * b;
    maxAbs = Math.max(maxAbs, Math.abs(a - b));
    if (a > va) { va = a; bestA = v; }
    if (b > vb) { vb = b; bestB = v; }
  }
  minCos = Math.min(minCos, dot / Math.sqrt(na * nb));
  if (bestA === bestB) agree++;
}
console.log(`positions ${seq}, vocab ${vocab}: min cosine ${minCos.toFixed(6)}, top-1 agreement ${agree}/${seq}, max abs diff ${maxAbs.toExponential(3)}`);
