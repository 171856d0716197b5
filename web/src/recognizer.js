// Model + gallery: embed a normalised clip with onnxruntime-web and rank the gallery's glosses.
//
// Top-k follows evaluation/ranking.py: glosses are ranked by the distance of their
// nearest gallery sample (ties to the lower label), so the k guesses are k different signs.

import { makeLayout, prepareRaw, resampleIndices, takeFrames, normalize, rawToSpoter } from "./landmarks.js";
import { mergeGallery } from "./dictionary.js";

export const ORT_DIST = "/node_modules/onnxruntime-web/dist/";

async function fetchOk(url, kind) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load ${kind} (${url}: HTTP ${response.status}); run web/build.py`);
  return response;
}

/** Threads the page can use: >1 only when cross-origin isolated (SharedArrayBuffer). */
export function availableThreads(requested) {
  if (!globalThis.crossOriginIsolated) return 1;
  const cores = navigator.hardwareConcurrency || 1;
  return Math.max(1, Math.min(requested || cores, cores));
}

export class Recognizer {
  constructor(ort, base = "/public/") {
    this.ort = ort;
    this.base = base;
  }

  /**
   * Load manifest, layout, gallery and model. `options`: threads, graphOptimization
   * ("disabled" | "basic" | "extended" | "all"), modelFile (another .onnx in the data
   * folder), precision ("fp32" or a variant of the manifest, e.g. "int8"),
   * freeDimensionOverrides (e.g. {batch: 1, frames: 100}: fixed input shape).
   */
  async load(options = {}) {
    const ort = this.ort;
    this.manifest = await (await fetchOk(`${this.base}manifest.json`, "the demo manifest")).json();
    const m = this.manifest;
    this.layout = makeLayout(await (await fetchOk(`${this.base}${m.layout}`, "layout constants")).json());
    const galleryMeta = await (await fetchOk(`${this.base}${m.gallery.meta}`, "gallery metadata")).json();
    const galleryBytes = await (await fetchOk(`${this.base}${m.gallery.file}`, "gallery embeddings")).arrayBuffer();
    if (galleryBytes.byteLength !== galleryMeta.count * galleryMeta.dim * 4) {
      throw new Error(`gallery.bin has ${galleryBytes.byteLength} bytes, expected ${galleryMeta.count} x ${galleryMeta.dim} float32`);
    }
    this.gallery = { ...galleryMeta, embeddings: new Float32Array(galleryBytes) };
    this.prep = m.model.preprocessing;

    ort.env.wasm.wasmPaths = new URL(ORT_DIST, location.href).href;
    this.threads = availableThreads(options.threads);
    ort.env.wasm.numThreads = this.threads;
    ort.env.wasm.proxy = false;
    this.graphOptimization = options.graphOptimization || "all";
    const started = performance.now();
    const variant = options.precision && options.precision !== "fp32" ? m.model.variants?.[options.precision] : null;
    if (options.precision && options.precision !== "fp32" && !variant) {
      throw new Error(`this build has no ${options.precision} model (build it with: python web/build.py --${options.precision} ...)`);
    }
    this.modelFile = options.modelFile || variant?.file || m.model.file;
    this.session = await ort.InferenceSession.create(`${this.base}${this.modelFile}`, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: this.graphOptimization,
      ...(options.freeDimensionOverrides ? { freeDimensionOverrides: options.freeDimensionOverrides } : {}),
    });
    this.inputs = m.model.inputs;
    // One throw-away run, so that the first clip's time is a warm one (kernels, memory arena).
    const warmFrames = options.freeDimensionOverrides?.frames ?? 16;
    await this.embed(new Float32Array(warmFrames * this.layout.numPoints * 2), warmFrames);
    this.loadMs = performance.now() - started;
    return this;
  }

  /** Normalised model input from raw (T, 150); `frames` optionally resamples to that length. */
  prepare(raw, frames, overrideFrames = 0) {
    if (overrideFrames) {
      const L = this.layout;
      const points = takeFrames(rawToSpoter(raw, frames, L), L, resampleIndices(frames, overrideFrames));
      return { points: normalize(points, overrideFrames, L, this.prep), frames: overrideFrames };
    }
    return prepareRaw(raw, frames, this.layout, this.prep);
  }

  /** Embedding of one normalised clip (T, P, 2) and the inference time in ms. */
  async embed(points, frames) {
    const ort = this.ort;
    const P = this.layout.numPoints;
    const feeds = { [this.inputs.landmarks]: new ort.Tensor("float32", points, [1, frames, P, 2]) };
    if (this.inputs.padding_mask) {
      feeds[this.inputs.padding_mask] = new ort.Tensor("bool", new Uint8Array(frames), [1, frames]);
    }
    const started = performance.now();
    const results = await this.session.run(feeds);
    const ms = performance.now() - started;
    const output = results[this.inputs.output];
    const embedding = Float32Array.from(output.data);
    for (const t of Object.values(results)) t.dispose?.();
    return { embedding, ms };
  }

  /** Rank the built-in gallery plus these own signs (entries of PersonalDictionary.usable()). */
  setOwnSigns(entries) {
    this.searched = mergeGallery(this.gallery, entries);
  }

  /** The gallery topK searches: the built-in one, merged with the own signs when there are any. */
  get active() {
    return this.searched ?? this.gallery;
  }

  /** k nearest glosses: [{label, gloss, distance, video_id, signer_id, own}] (nearest sample per gloss). */
  topK(embedding, k = this.manifest.top_k || 5) {
    const g = this.active;
    const { count, dim, embeddings, labels, label_names: names, metric } = g;
    const best = new Map(); // label -> [distance, sample index]
    let qn = 0;
    for (let d = 0; d < dim; d++) qn += embedding[d] * embedding[d];
    qn = Math.max(Math.sqrt(qn), 1e-12);
    for (let i = 0; i < count; i++) {
      const row = i * dim;
      let dist;
      if (metric === "cosine") {
        let dot = 0; let gn = 0;
        for (let d = 0; d < dim; d++) { dot += embedding[d] * embeddings[row + d]; gn += embeddings[row + d] ** 2; }
        dist = 1 - dot / (qn * Math.max(Math.sqrt(gn), 1e-12));
      } else {
        let s = 0;
        for (let d = 0; d < dim; d++) { const diff = embedding[d] - embeddings[row + d]; s += diff * diff; }
        dist = Math.sqrt(s);
      }
      const prev = best.get(labels[i]);
      if (prev === undefined || dist < prev[0]) best.set(labels[i], [dist, i]);
    }
    return [...best.entries()]
      .sort((a, b) => a[1][0] - b[1][0] || a[0] - b[0])
      .slice(0, k)
      .map(([label, [distance, i]]) => ({
        label, gloss: names[label], distance,
        video_id: g.video_ids?.[i] ?? "", signer_id: g.signer_ids?.[i] ?? "", own: Boolean(g.own?.[i]),
      }));
  }

  /** The embedding of a raw clip as trained (no frame override): what an enrolled sign keeps. */
  async embedRaw(raw, frames) {
    const input = this.prepare(raw, frames, 0);
    return (await this.embed(input.points, input.frames)).embedding;
  }

  /** raw (T, 150) -> {top, ms, points, frames, embedding}. */
  async recognize(raw, frames, overrideFrames = 0) {
    const input = this.prepare(raw, frames, overrideFrames);
    const { embedding, ms } = await this.embed(input.points, input.frames);
    return { top: this.topK(embedding), ms, points: input.points, frames: input.frames, embedding };
  }
}
