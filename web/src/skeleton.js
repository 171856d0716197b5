// Canvas animation of the normalised skeleton: the body in its signing space and each
// hand in its own box, the way the model sees them. Bones are named by the layout's
// point names and resolved to indices through layout.json, never by number.

const BODY_BONES = [
  ["nose", "neck"], ["nose", "leftEye"], ["nose", "rightEye"], ["leftEye", "leftEar"], ["rightEye", "rightEar"],
  ["neck", "leftShoulder"], ["neck", "rightShoulder"], ["leftShoulder", "leftElbow"], ["leftElbow", "leftWrist"],
  ["rightShoulder", "rightElbow"], ["rightElbow", "rightWrist"],
];
const FINGERS = [
  ["wrist", "thumbCMC", "thumbMP", "thumbIP", "thumbTip"],
  ["wrist", "indexMCP", "indexPIP", "indexDIP", "indexTip"],
  ["middleMCP", "middlePIP", "middleDIP", "middleTip"],
  ["ringMCP", "ringPIP", "ringDIP", "ringTip"],
  ["wrist", "littleMCP", "littlePIP", "littleDIP", "littleTip"],
  ["indexMCP", "middleMCP", "ringMCP", "littleMCP"],
];

function bones(L) {
  const index = (name) => {
    const i = L.pointNames.indexOf(name);
    if (i < 0) throw new Error(`skeleton: unknown point ${name}`);
    return i;
  };
  const chains = (list, suffix) => list.flatMap((chain) =>
    chain.slice(1).map((name, k) => [index(chain[k] + suffix), index(name + suffix)]));
  return {
    body: BODY_BONES.map(([a, b]) => [index(a), index(b)]),
    left: chains(FINGERS, "_left"),
    right: chains(FINGERS, "_right"),
  };
}

export class SkeletonPlayer {
  constructor(canvas, layout) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.L = layout;
    this.bones = bones(layout);
    this.timer = null;
  }

  stop() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Loop over the frames of points (T, P, 2) at `fps`. */
  play(points, frames, fps = 25) {
    this.stop();
    this.points = points;
    this.frames = frames;
    this.frame = 0;
    this.draw();
    if (frames > 1) {
      this.timer = setInterval(() => {
        this.frame = (this.frame + 1) % this.frames;
        this.draw();
      }, 1000 / fps);
    }
  }

  draw() {
    const { ctx, canvas, L } = this;
    const W = canvas.width; const H = canvas.height;
    ctx.fillStyle = "#11151c";
    ctx.fillRect(0, 0, W, H);
    const o = this.frame * L.numPoints * 2;
    const bodySize = Math.min(W * 0.62, H);
    const handSize = Math.min(W - bodySize, H / 2) - 8;
    // Panels: [x, y, size, label, bones, point range]; coordinates are centred in [-0.5, 0.5].
    const panels = [
      [0, (H - bodySize) / 2, bodySize, "body", this.bones.body, L.body, "#7fc8ff"],
      [bodySize + 4, 4, handSize, "left hand", this.bones.left, L.hands[0], "#ffb86b"],
      [bodySize + 4, H / 2 + 4, handSize, "right hand", this.bones.right, L.hands[1], "#9be28c"],
    ];
    for (const [x0, y0, size, label, list, [p0, p1], colour] of panels) {
      ctx.strokeStyle = "#2a3342";
      ctx.strokeRect(x0 + 0.5, y0 + 0.5, size - 1, size - 1);
      ctx.fillStyle = "#8892a0";
      ctx.font = "11px sans-serif";
      ctx.fillText(label, x0 + 6, y0 + 14);
      const px = (p) => x0 + size * (0.5 + this.points[o + 2 * p] * 0.8);
      const py = (p) => y0 + size * (0.5 + this.points[o + 2 * p + 1] * 0.8);
      const seen = (p) => this.points[o + 2 * p] !== 0 || this.points[o + 2 * p + 1] !== 0;
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      for (const [a, b] of list) {
        if (!seen(a) || !seen(b)) continue;
        ctx.beginPath();
        ctx.moveTo(px(a), py(a));
        ctx.lineTo(px(b), py(b));
        ctx.stroke();
      }
      ctx.fillStyle = colour;
      for (let p = p0; p < p1; p++) {
        if (!seen(p)) continue;
        ctx.beginPath();
        ctx.arc(px(p), py(p), 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.fillStyle = "#8892a0";
    ctx.fillText(`frame ${this.frame + 1}/${this.frames}`, 6, H - 6);
  }
}
