// Raw MediaPipe Holistic frames -> SPOTER points -> normalised model input.
//
// Every index and constant comes from public/layout.json, which web/build.py writes
// from datasets/layout.py (layout_spec) and augmentations/normalization.py; the formulas
// below follow augmentations/normalization.py line by line (same branches, same guards),
// so the page and Python give the same numbers. Arrays are flat Float32Arrays:
// raw (T, 150) and points (T, P, 2) in C order.

export class LandmarkError extends Error {
  constructor(message) {
    super(message);
    this.name = "LandmarkError";
  }
}

/** Derived, ready-to-use constants from layout.json's content. */
export function makeLayout(doc) {
  const raw = doc.layout.raw;
  const sp = doc.layout.spoter;
  const idx = sp.indices;
  return {
    rawFeatures: raw.features_per_frame,
    rawPoints: raw.features_per_frame / 2,
    numPoints: sp.num_points,
    pointNames: sp.point_names,
    sourceIndex: Int32Array.from(sp.raw_source_index),
    neck: sp.neck.index,
    neckFrom: sp.neck.from_raw,
    body: sp.body_slice,
    hands: [sp.left_hand_slice, sp.right_hand_slice],
    idx,
    headUnits: doc.normalization.signing_space_head_units,
    handPadding: doc.normalization.hand_box_padding,
    shift: doc.normalization.center_shift,
    bodyVariants: doc.normalization.body_variants,
    poseNames: raw.pose_points,
    handNames: raw.hand_points,
    leftHandOffset: raw.left_hand_offset,
    rightHandOffset: raw.right_hand_offset,
    poseFile: { componentSets: doc.layout.pose_file.component_sets, bodyNames: doc.layout.pose_file.body_names },
  };
}

/** Check a (T, 150) raw array: at least one frame, finite values. */
export function validateRaw(data, shape, L, source = "input") {
  if (shape.length !== 2 || shape[1] !== L.rawFeatures) {
    throw new LandmarkError(`${source}: expected landmarks of shape (frames, ${L.rawFeatures}) as written by `
      + `'preprocessing.py extract', got (${shape.join(", ")})`);
  }
  if (shape[0] < 1) throw new LandmarkError(`${source}: the clip has no frames`);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new LandmarkError(`${source}: frame ${Math.floor(i / L.rawFeatures)} holds a non-finite value`);
    }
  }
}

/** Parse a JSON landmark file: a (T, 150) array of arrays, or {"landmarks": [...]}. */
export function parseLandmarkJson(text, L, source = "JSON file") {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new LandmarkError(`${source}: not valid JSON (${err.message})`);
  }
  const rows = Array.isArray(doc) ? doc : doc && (doc.landmarks ?? doc.frames);
  if (!Array.isArray(rows)) {
    throw new LandmarkError(`${source}: expected an array of frames or an object with a "landmarks" array`);
  }
  const data = new Float32Array(rows.length * L.rawFeatures);
  rows.forEach((row, t) => {
    if (!Array.isArray(row) || row.length !== L.rawFeatures) {
      throw new LandmarkError(`${source}: frame ${t} has ${Array.isArray(row) ? row.length : "no"} values, `
        + `expected ${L.rawFeatures}`);
    }
    for (let k = 0; k < row.length; k++) {
      if (typeof row[k] !== "number") throw new LandmarkError(`${source}: frame ${t} value ${k} is not a number`);
      data[t * L.rawFeatures + k] = row[k];
    }
  });
  const shape = [rows.length, L.rawFeatures];
  validateRaw(data, shape, L, source);
  return { data, shape };
}

/** raw (T, 150) -> points (T, P, 2); the neck is the shoulder midpoint when both were seen. */
export function rawToSpoter(raw, frames, L) {
  const P = L.numPoints;
  const F = L.rawFeatures;
  const out = new Float32Array(frames * P * 2);
  const [ls, rs] = L.neckFrom;
  for (let t = 0; t < frames; t++) {
    const r = t * F;
    const o = t * P * 2;
    for (let p = 0; p < P; p++) {
      const s = Math.max(L.sourceIndex[p], 0);
      out[o + 2 * p] = raw[r + 2 * s];
      out[o + 2 * p + 1] = raw[r + 2 * s + 1];
    }
    const lx = raw[r + 2 * ls]; const ly = raw[r + 2 * ls + 1];
    const rx = raw[r + 2 * rs]; const ry = raw[r + 2 * rs + 1];
    const both = (lx !== 0 || ly !== 0) && (rx !== 0 || ry !== 0);
    out[o + 2 * L.neck] = both ? (lx + rx) / 2 : 0;
    out[o + 2 * L.neck + 1] = both ? (ly + ry) / 2 : 0;
  }
  return out;
}

function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : r;
}

/** Indices of `target` frames spread evenly over `frames` (numpy's round(linspace(...))). */
export function resampleIndices(frames, target) {
  if (target === 1) return [0];
  const step = (frames - 1) / (target - 1);
  const out = new Array(target);
  for (let i = 0; i < target; i++) out[i] = roundHalfEven(i * step);
  out[target - 1] = frames - 1;
  return out;
}

/** Keep the given frames of points (T, P, 2). */
export function takeFrames(points, L, indices) {
  const stride = L.numPoints * 2;
  const out = new Float32Array(indices.length * stride);
  indices.forEach((t, i) => out.set(points.subarray(t * stride, (t + 1) * stride), i * stride));
  return out;
}

/** Frame selection the model was trained with: fixed resampling, or a cap on the length. */
export function resampleForModel(points, frames, L, prep) {
  const target = prep.resample_frames || (prep.max_frames && frames > prep.max_frames ? prep.max_frames : 0);
  if (!target) return { points, frames };
  return { points: takeFrames(points, L, resampleIndices(frames, target)), frames: target };
}

const present = (x, y) => x !== 0 || y !== 0;

function headUnit(pts, o, L) {
  const { idx } = L;
  const g = (p, c) => pts[o + 2 * p + c];
  const shoulders = present(g(idx.left_shoulder, 0), g(idx.left_shoulder, 1))
    && present(g(idx.right_shoulder, 0), g(idx.right_shoulder, 1));
  if (shoulders) return Math.hypot(g(idx.left_shoulder, 0) - g(idx.right_shoulder, 0),
    g(idx.left_shoulder, 1) - g(idx.right_shoulder, 1));
  const neckNose = present(g(idx.neck, 0), g(idx.neck, 1)) && present(g(idx.nose, 0), g(idx.nose, 1));
  if (neckNose) return Math.hypot(g(idx.neck, 0) - g(idx.nose, 0), g(idx.neck, 1) - g(idx.nose, 1));
  return 0;
}

function normalizeBodyFrame(pts, out, o, L, variant) {
  const [b0, b1] = L.body;
  const { idx } = L;
  const g = (p, c) => pts[o + 2 * p + c];
  if (variant === "none") {
    for (let p = b0; p < b1; p++) { out[o + 2 * p] = g(p, 0); out[o + 2 * p + 1] = g(p, 1); }
    return;
  }
  const head = headUnit(pts, o, L);
  let valid = head > 0;
  const safe = valid ? head : 1;
  const neckX = g(idx.neck, 0);
  const neckY = g(idx.neck, 1);
  let originX; let originY; let spanX; let spanY;
  if (variant === "centered") {
    let count = 0; let sum = 0;
    for (const e of [idx.left_eye, idx.right_eye]) {
      if (present(g(e, 0), g(e, 1))) { count += 1; sum += g(e, 1); }
    }
    const eyeY = count > 0 ? sum / Math.max(count, 1) : neckY - safe;
    const size = L.headUnits * safe;
    originX = neckX - size / 2;
    originY = eyeY - safe / 2;
    spanX = size; spanY = size;
  } else if (variant === "spoter") {
    // The published box (y assumed upwards), its corners clamped at 0.
    const clamp = (v) => (v < 0 ? 0 : v);
    const startX = neckX - (L.headUnits / 2) * safe;
    const startY = g(idx.left_eye, 1) + safe / 2;
    const endX = neckX + (L.headUnits / 2) * safe;
    const endY = startY - L.headUnits * safe;
    const [sx, sy, ex, ey] = [startX, startY, endX, endY].map(clamp);
    const width = ex - sx; const height = sy - ey;
    const ok = width !== 0 && height !== 0;
    valid = valid && ok;
    originX = sx; originY = ey;
    spanX = ok ? width : 1; spanY = ok ? height : 1;
  } else {
    throw new LandmarkError(`unknown body normalisation '${variant}'; choose from ${L.bodyVariants.join(", ")}`);
  }
  for (let p = b0; p < b1; p++) {
    const x = g(p, 0); const y = g(p, 1);
    const keep = present(x, y) && valid;
    out[o + 2 * p] = keep ? (x - originX) / spanX - L.shift : 0;
    out[o + 2 * p + 1] = keep ? (y - originY) / spanY - L.shift : 0;
  }
}

function normalizeHandFrame(pts, out, o, L, [h0, h1]) {
  let loX = Infinity; let hiX = -Infinity; let loY = Infinity; let hiY = -Infinity;
  let any = false;
  for (let p = h0; p < h1; p++) {
    const x = pts[o + 2 * p]; const y = pts[o + 2 * p + 1];
    if (!present(x, y)) continue;
    any = true;
    loX = Math.min(loX, x); hiX = Math.max(hiX, x);
    loY = Math.min(loY, y); hiY = Math.max(hiY, y);
  }
  const width = any ? hiX - loX : 0;
  const height = any ? hiY - loY : 0;
  const wider = width > height;
  const pad = L.handPadding;
  const dx = wider ? pad * width : pad * height + (height - width) / 2;
  const dy = wider ? pad * width + (width - height) / 2 : pad * height;
  let spanX = width + 2 * dx;
  let spanY = height + 2 * dy;
  const usable = any && spanX > 0 && spanY > 0;
  if (!usable) { spanX = 1; spanY = 1; }
  const startX = usable ? loX - dx : 0;
  const startY = usable ? loY - dy : 0;
  for (let p = h0; p < h1; p++) {
    const x = pts[o + 2 * p]; const y = pts[o + 2 * p + 1];
    const keep = present(x, y) && usable;
    out[o + 2 * p] = keep ? (x - startX) / spanX - L.shift : 0;
    out[o + 2 * p + 1] = keep ? (y - startY) / spanY - L.shift : 0;
  }
}

/** Normalise points (T, P, 2) like augmentations.normalization.normalize(points, body, hands). */
export function normalize(points, frames, L, { body = "centered", hands = true } = {}) {
  if (!L.bodyVariants.includes(body)) {
    throw new LandmarkError(`unknown body normalisation '${body}'; choose from ${L.bodyVariants.join(", ")}`);
  }
  const stride = L.numPoints * 2;
  const out = new Float32Array(frames * stride);
  for (let t = 0; t < frames; t++) {
    const o = t * stride;
    normalizeBodyFrame(points, out, o, L, body);
    for (const slice of L.hands) {
      if (hands) normalizeHandFrame(points, out, o, L, slice);
      else out.set(points.subarray(o + 2 * slice[0], o + 2 * slice[1]), o + 2 * slice[0]);
    }
  }
  return out;
}

/** The whole input pipeline: raw (T, 150) -> normalised model input (T', P, 2). */
export function prepareRaw(raw, frames, L, prep) {
  const points = rawToSpoter(raw, frames, L);
  const picked = resampleForModel(points, frames, L, prep);
  return { points: normalize(picked.points, picked.frames, L, prep), frames: picked.frames };
}
