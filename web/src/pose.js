// Reader for pose-format's binary .pose files (versions 0.1 and 0.2): header of named
// components and points, body of (frames, people, points, dims) pixels with a confidence.
// Components understood and point names come from layout.json (datasets/layout.py), so the
// page maps MediaPipe Holistic and OpenPose .pose files exactly as the Python reader does.

export class PoseError extends Error {}

class Reader {
  constructor(buffer) {
    this.view = new DataView(buffer);
    this.buffer = buffer;
    this.at = 0;
  }
  need(bytes) {
    if (this.at + bytes > this.view.byteLength) throw new PoseError("truncated .pose file");
  }
  float() { this.need(4); const v = this.view.getFloat32(this.at, true); this.at += 4; return v; }
  ushort() { this.need(2); const v = this.view.getUint16(this.at, true); this.at += 2; return v; }
  uint() { this.need(4); const v = this.view.getUint32(this.at, true); this.at += 4; return v; }
  str() {
    const length = this.ushort();
    this.need(length);
    const text = new TextDecoder().decode(new Uint8Array(this.buffer, this.at, length));
    this.at += length;
    return text;
  }
  floats(count) {
    this.need(count * 4);
    const out = new Float32Array(this.buffer.slice(this.at, this.at + count * 4));
    this.at += count * 4;
    return out;
  }
}

function readHeader(r) {
  const version = r.float();
  if (!(Math.abs(version - 0.1) < 1e-6 || Math.abs(version - 0.2) < 1e-6)) {
    throw new PoseError(`not a .pose file (or an unsupported version ${version})`);
  }
  const width = r.ushort(), height = r.ushort();
  r.ushort(); // depth
  const count = r.ushort();
  const components = [];
  for (let c = 0; c < count; c++) {
    const name = r.str(), format = r.str();
    const points = r.ushort(), limbs = r.ushort(), colors = r.ushort();
    const names = Array.from({ length: points }, () => r.str());
    r.need((limbs * 2 + colors * 3) * 2);
    r.at += (limbs * 2 + colors * 3) * 2;
    components.push({ name, format, names });
  }
  return { version, width, height, components };
}

/** Raw-layout index -> flat point index of this header (-1: not in the file). */
function sourceIndex(header, L) {
  const starts = {}, byName = {};
  let offset = 0;
  for (const c of header.components) {
    starts[c.name] = offset;
    byName[c.name] = c;
    offset += c.names.length;
  }
  for (const [, body, left, right] of L.poseFile.componentSets) {
    if (!byName[body]) continue;
    const source = new Int32Array(L.rawPoints).fill(-1);
    byName[body].names.forEach((name, i) => {
      const pose = L.poseFile.bodyNames[name];
      if (pose !== undefined) source[pose] = starts[body] + i;
    });
    for (const [component, rawOffset] of [[left, L.leftHandOffset], [right, L.rightHandOffset]]) {
      if (!byName[component]) continue;
      const n = byName[component].names.length;
      if (n !== L.handNames.length) throw new PoseError(`component ${component} has ${n} points, expected ${L.handNames.length}`);
      for (let i = 0; i < n; i++) source[rawOffset + i] = starts[component] + i;
    }
    return { source, total: offset };
  }
  const have = header.components.map((c) => c.name).join(", ") || "none";
  throw new PoseError(`no known body component (expected ${L.poseFile.componentSets.map((s) => s[1]).join(" or ")}); `
    + `the file has ${have}`);
}

/** Parse the bytes of a .pose file -> {data: Float32Array (T*150), shape: [T, 150], fps, note}. */
export function parsePose(buffer, L) {
  const r = new Reader(buffer);
  const header = readHeader(r);
  const { source, total } = sourceIndex(header, L);
  const dims = Math.max(...header.components.map((c) => c.format.length)) - 1;
  const fps = header.version > 0.15 ? r.float() : r.ushort();
  const frames = header.version > 0.15 ? r.uint() : r.ushort();
  const people = r.ushort();
  if (header.width <= 0 || header.height <= 0) throw new PoseError(`header dimensions ${header.width}x${header.height}`);
  if (frames < 1 || people < 1) throw new PoseError("the clip has no frames");
  const data = r.floats(frames * people * total * dims);
  const confidence = r.floats(frames * people * total);
  // the person with the most confidence over the mapped points; ties: nearest the centre
  let best = 0, bestTotal = -1, bestCentre = Infinity;
  for (let p = 0; p < people; p++) {
    let sum = 0, xs = 0, seen = 0;
    for (let t = 0; t < frames; t++) {
      for (const k of source) {
        if (k < 0) continue;
        const c = confidence[(t * people + p) * total + k];
        if (c > 0) { sum += c; xs += data[((t * people + p) * total + k) * dims] / header.width; seen++; }
      }
    }
    const centre = Math.abs(xs / Math.max(seen, 1) - 0.5);
    if (sum > bestTotal || (sum === bestTotal && centre < bestCentre)) { best = p; bestTotal = sum; bestCentre = centre; }
  }
  const out = new Float32Array(frames * L.rawFeatures);
  for (let t = 0; t < frames; t++) {
    const base = (t * people + best) * total;
    for (let j = 0; j < source.length; j++) {
      const k = source[j];
      if (k < 0 || !(confidence[base + k] > 0)) continue;
      out[t * L.rawFeatures + 2 * j] = data[(base + k) * dims] / header.width;
      out[t * L.rawFeatures + 2 * j + 1] = data[(base + k) * dims + 1] / header.height;
    }
  }
  const note = people > 1 ? `${people} people; kept person ${best} (most confident)` : "";
  return { data: out, shape: [frames, L.rawFeatures], fps, note };
}
