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
import { DictionaryError, PersonalDictionary, modelFingerprint, parseDictionary } from "./dictionary.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const recognizer = new Recognizer(ort);
let player = null;
let extractor = null;
let busy = false;
let dictionary = null;
let lastClip = null; // the last recognised clip: {data, frames, label}, what "Add to my signs" enrols

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
  describeGallery();
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

function describeGallery() {
  const g = recognizer.gallery;
  const own = dictionary ? dictionary.usable() : [];
  const mine = own.length ? ` + my signs: ${own.length} clips of ${new Set(own.map((e) => e.gloss)).size} glosses` : "";
  $("gallery-info").textContent = `${g.count} clips of ${g.num_glosses} glosses, ${g.metric} distance; ${g.source}${mine}`;
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
    tr.dataset.own = String(r.own);
    const clip = r.own ? `${r.video_id} (my signs${r.signer_id ? `, ${r.signer_id}` : ""})` : `${r.video_id} (${r.signer_id})`;
    for (const text of [String(i + 1), r.gloss, r.distance.toFixed(4), clip]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    tr.children[2].className = "distance";
    if (r.own) tr.children[1].append(ownMark());
    return tr;
  }));
  $("result").hidden = false;
  lastClip = { data: raw.data, frames, label };
  updateEnrolControls();
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
  lastClip = null;
  updateEnrolControls();
  try {
    const raw = await produce();
    await recognizeRaw(raw, label);
  } catch (err) {
    console.error(err);
    showError(err.message || String(err));
  } finally {
    busy = false;
    $("progress").textContent = "";
    updateEnrolControls();
    finishRun();
  }
}

function ownMark() {
  const mark = document.createElement("span");
  mark.className = "own-mark";
  mark.textContent = "my sign";
  return mark;
}

// ------------------------------------------------------------------ my signs
function finishDictionaryOp() {
  document.body.dataset.dictionaryOps = String(Number(document.body.dataset.dictionaryOps) + 1);
}

function say(message, isError = false) {
  const box = $("own-message");
  box.textContent = message;
  box.classList.toggle("error", isError);
  box.dataset.kind = isError ? "error" : "ok";
}

function updateEnrolControls() {
  const ready = Boolean(dictionary) && !busy;
  $("enrol-gloss").disabled = !dictionary;
  $("enrol-signer").disabled = !dictionary;
  $("enrol-add").disabled = !ready || !lastClip || !$("enrol-gloss").value.trim();
}

function glossCount(entries) {
  return new Set(entries.map((e) => e.gloss)).size;
}

/** Re-rank with the current own signs and redraw their list. */
function refreshOwn() {
  recognizer.setOwnSigns(dictionary.usable());
  describeGallery();
  const body = $("own-list").querySelector("tbody");
  body.replaceChildren(...dictionary.entries.map((e) => {
    const tr = document.createElement("tr");
    const current = e.model_digest === dictionary.fingerprint;
    tr.dataset.id = String(e.id);
    tr.dataset.gloss = e.gloss;
    tr.dataset.stale = String(!current);
    if (!current) tr.className = "stale";
    const model = current ? "this model" : `other model (${e.model_digest || "unknown"}): not used`;
    for (const text of [e.gloss, e.video_id, String(e.frames), (e.added || "").slice(0, 16).replace("T", " "), model]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    const actions = document.createElement("td");
    for (const [what, title] of [["clip", "this clip"], ["gloss", `every clip of "${e.gloss}"`]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.delete = what;
      button.textContent = what;
      button.title = `delete ${title}`;
      actions.appendChild(button);
    }
    tr.appendChild(actions);
    return tr;
  }));
  $("own-list").hidden = dictionary.entries.length === 0;
  $("own-export").disabled = dictionary.usable().length === 0;
  $("own-reembed").hidden = dictionary.stale().length === 0;
  $("own-storage").textContent = dictionary.persistent
    ? `kept in this browser (IndexedDB "spoter-personal-dictionary", this site only); model ${dictionary.fingerprint}`
    : "this browser offers no IndexedDB here: your signs are kept for this visit only (export them to keep them)";
  updateEnrolControls();
}

async function dictionaryOp(action) {
  try {
    await action();
  } catch (err) {
    console.error(err);
    say(err.message || String(err), true);
  } finally {
    refreshOwn();
    finishDictionaryOp();
  }
}

function clipName(label) {
  const base = label.replace(/^sample "[^"]*" \((.*)\)$/, "sample-$1").replace(/\.[a-z0-9]+$/i, "")
    .replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "") || "clip";
  const used = new Set(dictionary.entries.map((e) => e.video_id));
  if (!used.has(base)) return base;
  let n = 2;
  while (used.has(`${base}-${n}`)) n += 1;
  return `${base}-${n}`;
}

async function enrolLast() {
  const gloss = $("enrol-gloss").value.trim();
  if (!lastClip) throw new Error("Recognise a sign first: the last recognised clip is the one added.");
  if (!gloss) throw new Error("Type a gloss (the sign's name) first.");
  const embedding = await recognizer.embedRaw(lastClip.data, lastClip.frames);
  const entry = await dictionary.add({
    gloss, video_id: clipName(lastClip.label), signer_id: $("enrol-signer").value.trim(),
    embedding, landmarks: lastClip.data, frames: lastClip.frames,
  });
  const clips = dictionary.usable().filter((e) => e.gloss === gloss).length;
  say(`Added "${gloss}" (${entry.video_id}, ${entry.frames} frames): ${clips} clip${clips > 1 ? "s" : ""} of it in my signs.`);
}

function exportOwn() {
  const doc = dictionary.toJson({ metric: recognizer.gallery.metric, embeddingDim: recognizer.manifest.model.embedding_dim });
  const blob = new Blob([JSON.stringify(doc)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = "personal-dictionary.json";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  const left = dictionary.stale().length;
  say(`Exported ${doc.signs.length} clips of ${glossCount(doc.signs)} glosses to personal-dictionary.json`
    + (left ? ` (${left} clip${left > 1 ? "s" : ""} of another model left out: re-embed them first).` : "."));
}

async function importOwn(file) {
  let signs;
  try {
    signs = parseDictionary(await file.text(), {
      fingerprint: dictionary.fingerprint, metric: recognizer.gallery.metric,
      embeddingDim: recognizer.manifest.model.embedding_dim, rawFeatures: recognizer.layout.rawFeatures,
    });
  } catch (err) {
    if (err instanceof DictionaryError) throw new Error(`Could not import "${file.name}": ${err.message}.`);
    throw err;
  }
  const have = new Set(dictionary.usable().map((e) => `${e.gloss}\u0000${e.video_id}`));
  let added = 0;
  for (const sign of signs) {
    if (have.has(`${sign.gloss}\u0000${sign.video_id}`)) continue;
    await dictionary.add(sign);
    added += 1;
  }
  const skipped = signs.length - added;
  say(`Imported ${added} clips of ${glossCount(signs)} glosses from "${file.name}"`
    + (skipped ? ` (${skipped} already in my signs).` : "."));
}

function wireDictionary() {
  $("enrol-gloss").addEventListener("input", updateEnrolControls);
  $("enrol-add").addEventListener("click", () => dictionaryOp(enrolLast));
  $("own-export").addEventListener("click", () => dictionaryOp(async () => exportOwn()));
  $("own-import").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) dictionaryOp(() => importOwn(file));
    event.target.value = "";
  });
  $("own-reembed").addEventListener("click", () => dictionaryOp(async () => {
    const n = await dictionary.reembed((raw, frames) => recognizer.embedRaw(raw, frames));
    say(`Re-embedded ${n} clip${n > 1 ? "s" : ""} with this model from their landmarks.`);
  }));
  $("own-list").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-delete]");
    if (!button) return;
    const row = button.closest("tr");
    dictionaryOp(async () => {
      if (button.dataset.delete === "gloss") {
        const n = await dictionary.removeGloss(row.dataset.gloss);
        say(`Deleted "${row.dataset.gloss}" (${n} clip${n > 1 ? "s" : ""}).`);
      } else {
        await dictionary.remove(Number(row.dataset.id));
        say(`Deleted one clip of "${row.dataset.gloss}".`);
      }
    });
  });
}

async function openDictionary() {
  try {
    dictionary = await new PersonalDictionary(modelFingerprint(recognizer.manifest)).open();
    $("own-import").disabled = false;
    const stale = dictionary.stale().length;
    if (stale) say(`${stale} of my signs were embedded with another model and are not used: re-embed them with this one.`, true);
    refreshOwn();
    document.body.dataset.dictionary = "ready";
  } catch (err) {
    console.error(err);
    say(`My signs are unavailable: ${err.message || err}`, true);
    document.body.dataset.dictionary = "error";
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
    wireDictionary();
    await openDictionary();
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
