// Webcam / video file -> raw (T, 150) landmarks with MediaPipe Holistic, in the page.
//
// @mediapipe/holistic ships its wasm and models in node_modules, served from this
// origin, so nothing is fetched from elsewhere. Settings match preprocessing.py
// extract (model_complexity 1, tracking mode, smoothing on, unmirrored image), and
// each frame is written in the raw layout: pose, left hand, right hand, x then y,
// 0 where a group was not detected.

const HOLISTIC_DIR = "/node_modules/@mediapipe/holistic/";
const MODEL_COMPLEXITY = 1; // the only pose model bundled with the Python wheel too

let scriptLoading = null;

function loadScript() {
  if (globalThis.Holistic) return Promise.resolve();
  if (!scriptLoading) {
    scriptLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = `${HOLISTIC_DIR}holistic.js`;
      script.onload = () => resolve();
      script.onerror = () => reject(new Error("could not load MediaPipe Holistic (is web/node_modules installed?)"));
      document.head.appendChild(script);
    });
  }
  return scriptLoading;
}

export class HolisticExtractor {
  constructor(layout) {
    this.L = layout;
    this.holistic = null;
    this.pending = null;
  }

  async init() {
    if (this.holistic) return;
    await loadScript();
    const holistic = new globalThis.Holistic({ locateFile: (file) => `${HOLISTIC_DIR}${file}` });
    holistic.setOptions({
      modelComplexity: MODEL_COMPLEXITY, smoothLandmarks: true, selfieMode: false,
      enableSegmentation: false, refineFaceLandmarks: false,
    });
    holistic.onResults((results) => {
      if (this.pending) {
        this.pending(results);
        this.pending = null;
      }
    });
    await holistic.initialize();
    this.holistic = holistic;
  }

  /** One Holistic result -> raw frame (150,), zeros for undetected groups. */
  toRaw(results) {
    const L = this.L;
    const frame = new Float32Array(L.rawFeatures);
    const groups = [
      [results.poseLandmarks, 0, L.poseNames.length],
      [results.leftHandLandmarks, L.leftHandOffset, L.handNames.length],
      [results.rightHandLandmarks, L.rightHandOffset, L.handNames.length],
    ];
    for (const [points, offset, count] of groups) {
      if (!points || points.length < count) continue;
      for (let i = 0; i < count; i++) {
        frame[2 * (offset + i)] = points[i].x;
        frame[2 * (offset + i) + 1] = points[i].y;
      }
    }
    return frame;
  }

  async process(image) {
    const done = new Promise((resolve) => { this.pending = resolve; });
    await this.holistic.send({ image });
    return this.toRaw(await done);
  }

  reset() {
    this.holistic?.reset();
  }

  /** Run every 1/fps seconds of a video element's source (seeking, so no frame is skipped). */
  async fromVideo(video, { fps = 25, maxFrames = 300, onProgress = () => {} } = {}) {
    await this.init();
    this.reset();
    if (video.readyState < 1) await new Promise((resolve, reject) => {
      video.onloadedmetadata = resolve;
      video.onerror = () => reject(new Error("the browser cannot decode this video"));
    });
    const total = Math.max(1, Math.min(maxFrames, Math.floor(video.duration * fps)));
    const frames = [];
    for (let i = 0; i < total; i++) {
      const seeked = new Promise((resolve) => { video.onseeked = resolve; });
      video.currentTime = Math.min(i / fps, video.duration);
      await seeked;
      frames.push(await this.process(video));
      onProgress(i + 1, total);
    }
    return stack(frames, this.L);
  }

  /** Process webcam frames until `shouldStop()` returns true (or maxFrames). */
  async fromCamera(video, { maxFrames = 300, shouldStop = () => false, onProgress = () => {} } = {}) {
    await this.init();
    this.reset();
    const frames = [];
    while (frames.length < maxFrames && !shouldStop()) {
      frames.push(await this.process(video));
      onProgress(frames.length, maxFrames);
      await new Promise((resolve) => requestAnimationFrame(resolve));
    }
    return stack(frames, this.L);
  }
}

function stack(frames, L) {
  const data = new Float32Array(frames.length * L.rawFeatures);
  frames.forEach((f, t) => data.set(f, t * L.rawFeatures));
  return { data, shape: [frames.length, L.rawFeatures] };
}
