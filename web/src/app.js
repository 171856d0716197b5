// Page wiring: load the recogniser, read a sign from a file, a sample, a video or the
// webcam, and show the top-5 glosses, the normalised skeleton and the inference time.
//
// URL options (for comparisons and the benchmark): ?threads=N (default: all cores when
// the page is cross-origin isolated), ?opt=disabled|basic|extended|all (graph optimisation),
// ?precision=int8 (the int8 model, when web/build.py shipped one).

import * as ort from "../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { Recognizer } from "./recognizer.js";
import { parseNpy, NpyError } from "./npy.js";
import { parsePose, PoseError } from "./pose.js";
import { LandmarkError, parseLandmarkJson, validateRaw } from "./landmarks.js";
import { SkeletonPlayer } from "./skeleton.js";
import { HolisticExtractor } from "./holistic.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const recognizer = new Recognizer(ort);
let player = null;
let extractor = null;
let busy = false;

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  $("result").hidden = true;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function finishRun() {
  document.body.dataset.runs = String(Number(document.body.dataset.runs) + 1);
}

function setControls(enabled) {
  for (const id of ["file-input", "sample-select", "sample-run", "video-input", "frames-select"]) {
    $(id).disabled = !enabled;
  }
  const camera = Boolean(navigator.mediaDevices?.getUserMedia);
  $("camera-start").disabled = !enabled || !camera;
  if (!recognizer.manifest?.samples.length) {
    $("sample-select").disabled = true;
    $("sample-run").disabled = true;
  }
  $("camera-note").textContent = camera ? "" : "this browser does not offer a camera here (needs https or localhost)";
}

function describeLoaded() {
  const m = recognizer.manifest;
  const g = recognizer.gallery;
  const cfg = m.model.config || {};
  const size = cfg.hidden_dim ? `d ${cfg.hidden_dim}, ${cfg.num_heads} heads, ${cfg.num_encoder_layers}+${cfg.num_decoder_layers} layers, ` : "";
  const file = recognizer.modelFile === m.model.file ? m.model : Object.values(m.model.variants || {})
    .find((v) => v.file === recognizer.modelFile);
  $("model-info").textContent = `${m.model.name}: ${recognizer.modelFile} (${(file.bytes / 1e6).toFixed(1)} MB, `
    + `sha256 ${file.sha256.slice(0, 12)}; `
    + `${size}${m.model.embedding_dim}-d embedding; body normalisation "${m.model.preprocessing.body}")`;
  $("gallery-info").textContent = `${g.count} clips of ${g.num_glosses} glosses, ${g.metric} distance; ${g.source}`;
  $("runtime-info").textContent = `onnxruntime-web ${ort.env.versions?.web ?? ""} (wasm, SIMD), `
    + `${recognizer.threads} thread${recognizer.threads > 1 ? "s" : ""}`
    + `${crossOriginIsolated ? "" : " (page not cross-origin isolated: single-threaded)"}, `
    + `graph optimisation "${recognizer.graphOptimization}"; model loaded in ${recognizer.loadMs.toFixed(0)} ms`;
  const select = $("sample-select");
  if (!m.samples.length) select.replaceChildren(new Option("(none bundled with this build)", ""));
  else select.replaceChildren(...m.samples.map((s, i) => {
    const option = document.createElement("option");
    option.value = String(i);
    option.textContent = `${s.gloss} (${s.signer_id}, ${s.frames} frames)`;
    return option;
  }));
}

/** Raw (T, 150) from a landmark file's bytes; throws with a message naming the file. */
export function readLandmarkFile(name, buffer) {
  const L = recognizer.layout;
  const lower = name.toLowerCase();
  try {
    if (lower.endsWith(".npy")) {
      const { data, shape } = parseNpy(buffer);
      validateRaw(data, shape, L, name);
      return { data, shape };
    }
    if (lower.endsWith(".json")) {
      return parseLandmarkJson(new TextDecoder().decode(buffer), L, name);
    }
    if (lower.endsWith(".pose")) {
      const { data, shape } = parsePose(buffer, L);
      validateRaw(data, shape, L, name);
      return { data, shape };
    }
  } catch (err) {
    if (err instanceof NpyError || err instanceof PoseError) throw new Error(`Could not read "${name}": ${err.message}.`);
    if (err instanceof LandmarkError) throw new Error(`Could not use "${name}": ${err.message.replace(`${name}: `, "")}.`);
    throw err;
  }
  throw new Error(`Could not read "${name}": unsupported file type (expected a .npy, .json or .pose landmark file).`);
}

async function recognizeRaw(raw, label) {
  const frames = raw.shape[0];
  const override = Number($("frames-select").value) || 0;
  const result = await recognizer.recognize(raw.data, frames, override);
  const body = $("result").querySelector("tbody");
  body.replaceChildren(...result.top.map((r, i) => {
    const tr = document.createElement("tr");
    tr.dataset.gloss = r.gloss;
    tr.dataset.distance = String(r.distance);
    for (const text of [String(i + 1), r.gloss, r.distance.toFixed(4), `${r.video_id} (${r.signer_id})`]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    tr.children[2].className = "distance";
    return tr;
  }));
  $("result").hidden = false;
  $("input-info").textContent = `${label}: ${frames} frames` + (result.frames !== frames ? `, resampled to ${result.frames}` : "");
  $("timing").textContent = `inference ${result.ms.toFixed(1)} ms (${recognizer.threads} thread${recognizer.threads > 1 ? "s" : ""})`;
  $("timing").dataset.ms = String(result.ms);
  player.play(result.points, result.frames);
  return result;
}

async function run(label, produce) {
  if (busy) return;
  busy = true;
  clearError();
  try {
    const raw = await produce();
    await recognizeRaw(raw, label);
  } catch (err) {
    console.error(err);
    showError(err.message || String(err));
  } finally {
    busy = false;
    $("progress").textContent = "";
    finishRun();
  }
}

function progress(done, total) {
  $("progress").textContent = `MediaPipe Holistic: frame ${done} of ${total}`;
}

async function holistic() {
  if (!extractor) extractor = new HolisticExtractor(recognizer.layout);
  $("progress").textContent = "loading MediaPipe Holistic...";
  await extractor.init();
  return extractor;
}

function checkDetected(raw, label) {
  if (raw.shape[0] === 0) throw new Error(`${label}: no frames were read.`);
  let any = false;
  for (let i = 0; i < raw.data.length && !any; i++) any = raw.data[i] !== 0;
  if (!any) throw new Error(`${label}: MediaPipe found no person in any frame.`);
  return raw;
}

function wire() {
  $("file-input").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    run(file.name, async () => readLandmarkFile(file.name, await file.arrayBuffer()));
    event.target.value = "";
  });
  $("sample-run").addEventListener("click", () => {
    const sample = recognizer.manifest.samples[Number($("sample-select").value)];
    if (!sample) return;
    run(`sample "${sample.gloss}" (${sample.signer_id})`, async () => {
      const response = await fetch(`${recognizer.base}${sample.file}`);
      if (!response.ok) throw new Error(`could not load ${sample.file} (HTTP ${response.status})`);
      return readLandmarkFile(sample.file, await response.arrayBuffer());
    });
  });
  $("video-input").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const video = $("video");
    const maxFrames = Number(params.get("max_video_frames")) || 300;
    run(file.name, async () => {
      const tracker = await holistic();
      const url = URL.createObjectURL(file);
      video.src = url;
      try {
        return checkDetected(await tracker.fromVideo(video, { maxFrames, onProgress: progress }), file.name);
      } finally {
        video.removeAttribute("src");
        video.load();
        URL.revokeObjectURL(url);
      }
    });
    event.target.value = "";
  });
  let stopRequested = false;
  $("camera-start").addEventListener("click", () => {
    const video = $("video");
    stopRequested = false;
    $("camera-start").disabled = true;
    $("camera-stop").disabled = false;
    run("webcam", async () => {
      const tracker = await holistic();
      const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      try {
        return checkDetected(await tracker.fromCamera(video, { shouldStop: () => stopRequested, onProgress: progress }), "webcam");
      } finally {
        stream.getTracks().forEach((t) => t.stop());
        video.srcObject = null;
        video.hidden = true;
        $("camera-start").disabled = false;
        $("camera-stop").disabled = true;
      }
    });
  });
  $("camera-stop").addEventListener("click", () => { stopRequested = true; });
}

async function main() {
  try {
    const threads = Number(params.get("threads")) || 0;
    await recognizer.load({ threads, graphOptimization: params.get("opt") || "all", precision: params.get("precision") });
    player = new SkeletonPlayer($("skeleton"), recognizer.layout);
    describeLoaded();
    wire();
    setControls(true);
    document.body.dataset.state = "ready";
  } catch (err) {
    console.error(err);
    showError(`The demo could not start: ${err.message || err}`);
    for (const id of ["model-info", "gallery-info", "runtime-info"]) $(id).textContent = "not loaded";
    document.body.dataset.state = "error";
  }
}

main();
