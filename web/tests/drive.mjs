// Drive the demo in headless Chromium (playwright-core + the system's Chromium) and print JSON.
//
//   node web/tests/drive.mjs SPEC.json
//
// SPEC: {"url": "http://127.0.0.1:PORT/", "chromium": "/usr/bin/chromium",
//        "query": "threads=1", "steps": [...]}
// Steps (each gives one entry of "results", in order):
//   {"op": "info"}                                  what the page shows as loaded
//   {"op": "normalize", "files": [...], "out": DIR, "variants": [{"body": "centered", "hands": true}, ...]}
//        the page's own modules read each .npy and normalise it; writes DIR/<file i>.<variant j>.f32
//   {"op": "resample", "pairs": [[frames, target], ...]}   the page's frame indices for each pair
//   {"op": "upload", "file": PATH}                  landmark file through the file input
//   {"op": "sample", "index": N}                    a bundled sample clip
//   {"op": "video", "file": PATH}                   a video through MediaPipe Holistic
//   {"op": "camera", "frames": N}                   the (fake) webcam for about N frames
//   {"op": "enrol", "file": PATH, "gloss": G, "signer": S}   recognise a landmark file, then add it to my signs as G
//   {"op": "reload"}                                reload the page (my signs must come back from IndexedDB)
//   {"op": "own"}                                   my signs as listed, and the dictionary message
//   {"op": "delete", "gloss": G, "what": "clip"|"gloss", "index": 0}   a delete button of G's index-th row
//   {"op": "export", "out": PATH}                   "Export my signs": the downloaded file saved to PATH
//   {"op": "import", "file": PATH}                  a file through "Import signs"
//   {"op": "restamp", "model_digest": D}            mark every stored own sign as made by model D (then "reload")
//   {"op": "reembed"}                               "Re-embed the signs of another model"
//   {"op": "bench", "frames": 100, "runs": 50, "warmup": 10, "opt": "all", "model": "x.onnx", "static": false}
//        warm inference latency (threads: the page's ?threads=N), plus normalise and top-k times
// Every request the browser makes is recorded; any to a host other than the page's is
// also blocked and reported in "foreign_requests".

import { chromium } from "playwright-core";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const spec = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const base = new URL(spec.url);
const requests = [];
const foreign = [];
const consoleErrors = [];

// The page is ready when it has loaded (or failed) and has opened my signs (IndexedDB).
const waitReadyFirst = (page) => page.waitForFunction(() => document.body.dataset.state !== "loading"
  && (document.body.dataset.state === "error" || document.body.dataset.dictionary));

const browser = await chromium.launch({
  executablePath: spec.chromium || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-default-apps", "--disable-sync", "--no-first-run", "--disable-features=Translate,MediaRouter",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  ],
});
const output = { results: [], requests, foreign_requests: foreign, console_errors: consoleErrors };
try {
  const context = await browser.newContext({ permissions: ["camera"] });
  context.on("request", (request) => requests.push(request.url()));
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    const local = url.origin === base.origin || ["data:", "blob:"].includes(url.protocol);
    if (local) return route.continue();
    foreign.push(url.href);
    return route.abort("blockedbyclient");
  });
  const page = await context.newPage();
  page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
  page.on("pageerror", (err) => consoleErrors.push(String(err)));
  page.setDefaultTimeout(spec.timeout_ms || 120000);

  const url = new URL(base.href);
  if (spec.query) url.search = spec.query;
  await page.goto(url.href);
  await waitReadyFirst(page);

  const runs = () => page.evaluate(() => Number(document.body.dataset.runs));
  const waitRun = (before) => page.waitForFunction((n) => Number(document.body.dataset.runs) > n, before);
  const shown = () => page.evaluate(() => {
    const error = document.getElementById("error");
    return {
      error: error.hidden ? null : error.textContent,
      top: document.getElementById("result").hidden ? [] : [...document.querySelectorAll("#result tbody tr")]
        .map((tr) => ({ gloss: tr.dataset.gloss, distance: Number(tr.dataset.distance), own: tr.dataset.own === "true" })),
      ms: Number(document.getElementById("timing").dataset.ms ?? NaN),
      input: document.getElementById("input-info").textContent,
    };
  });

  const ops = () => page.evaluate(() => Number(document.body.dataset.dictionaryOps));
  const waitOp = (before) => page.waitForFunction((n) => Number(document.body.dataset.dictionaryOps) > n, before);
  const ownShown = () => page.evaluate(() => {
    const message = document.getElementById("own-message");
    return {
      message: message.textContent, kind: message.dataset.kind ?? null,
      own: [...document.querySelectorAll("#own-list tbody tr")].map((tr) => ({
        id: Number(tr.dataset.id), gloss: tr.dataset.gloss, stale: tr.dataset.stale === "true",
        video_id: tr.children[1].textContent, frames: Number(tr.children[2].textContent),
      })),
      gallery: document.getElementById("gallery-info").textContent,
      storage: document.getElementById("own-storage").textContent,
    };
  });
  const waitReady = () => waitReadyFirst(page);

  for (const step of spec.steps) {
    if (step.op === "info") {
      output.results.push(await page.evaluate(() => ({
        state: document.body.dataset.state,
        model: document.getElementById("model-info").textContent,
        gallery: document.getElementById("gallery-info").textContent,
        runtime: document.getElementById("runtime-info").textContent,
        error: document.getElementById("error").hidden ? null : document.getElementById("error").textContent,
        isolated: globalThis.crossOriginIsolated,
        samples: document.getElementById("sample-select").options.length,
      })));
    } else if (step.op === "normalize") {
      mkdirSync(step.out, { recursive: true });
      const variants = step.variants || [{ body: "centered", hands: true }];
      const frames = [];
      for (const [i, file] of step.files.entries()) {
        const b64 = readFileSync(file).toString("base64");
        const result = await page.evaluate(async ({ b64, variants }) => {
          const { parseNpy } = await import("/src/npy.js");
          const lm = await import("/src/landmarks.js");
          globalThis.driverLayout ??= lm.makeLayout(await (await fetch("/public/layout.json")).json());
          const L = globalThis.driverLayout;
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const { data, shape } = parseNpy(bytes.buffer);
          lm.validateRaw(data, shape, L);
          const points = lm.rawToSpoter(data, shape[0], L);
          const encoded = variants.map((v) => {
            const u8 = new Uint8Array(lm.normalize(points, shape[0], L, v).buffer);
            let s = "";
            for (let k = 0; k < u8.length; k += 0x8000) s += String.fromCharCode(...u8.subarray(k, k + 0x8000));
            return btoa(s);
          });
          return { frames: shape[0], encoded };
        }, { b64, variants });
        result.encoded.forEach((e, v) => writeFileSync(join(step.out, `${i}.${v}.f32`), Buffer.from(e, "base64")));
        frames.push(result.frames);
      }
      output.results.push({ frames });
    } else if (step.op === "resample") {
      output.results.push(await page.evaluate(async (pairs) => {
        const lm = await import("/src/landmarks.js");
        return pairs.map(([frames, target]) => lm.resampleIndices(frames, target));
      }, step.pairs));
    } else if (step.op === "upload" || step.op === "video") {
      const before = await runs();
      const input = step.op === "upload" ? "#file-input" : "#video-input";
      await page.setInputFiles(input, step.file);
      await waitRun(before);
      output.results.push(await shown());
    } else if (step.op === "sample") {
      const before = await runs();
      await page.selectOption("#sample-select", String(step.index));
      await page.click("#sample-run");
      await waitRun(before);
      output.results.push(await shown());
    } else if (step.op === "camera") {
      const before = await runs();
      await page.click("#camera-start");
      await page.waitForFunction((n) => {
        const m = /frame (\d+)/.exec(document.getElementById("progress").textContent);
        return m && Number(m[1]) >= n;
      }, step.frames || 2);
      await page.click("#camera-stop");
      await waitRun(before);
      output.results.push(await shown());
    } else if (step.op === "enrol") {
      let before = await runs();
      await page.setInputFiles("#file-input", step.file);
      await waitRun(before);
      const recognised = await shown();
      before = await ops();
      await page.fill("#enrol-gloss", step.gloss);
      await page.fill("#enrol-signer", step.signer ?? "");
      await page.click("#enrol-add");
      await waitOp(before);
      output.results.push({ recognised, ...(await ownShown()) });
    } else if (step.op === "reload") {
      await page.reload();
      await waitReady();
      output.results.push({ state: await page.evaluate(() => document.body.dataset.state), ...(await ownShown()) });
    } else if (step.op === "own") {
      output.results.push(await ownShown());
    } else if (step.op === "delete") {
      const before = await ops();
      const rows = page.locator(`#own-list tbody tr[data-gloss="${step.gloss}"]`);
      await rows.nth(step.index ?? 0).locator(`button[data-delete="${step.what ?? "clip"}"]`).click();
      await waitOp(before);
      output.results.push(await ownShown());
    } else if (step.op === "export") {
      const before = await ops();
      const [download] = await Promise.all([page.waitForEvent("download"), page.click("#own-export")]);
      await waitOp(before);
      await download.saveAs(step.out);
      output.results.push({ file: step.out, suggested: download.suggestedFilename(), ...(await ownShown()) });
    } else if (step.op === "import") {
      const before = await ops();
      await page.setInputFiles("#own-import", step.file);
      await waitOp(before);
      output.results.push(await ownShown());
    } else if (step.op === "restamp") {
      await page.evaluate((digest) => new Promise((resolve, reject) => {
        const open = indexedDB.open("spoter-personal-dictionary");
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction("signs", "readwrite");
          const store = tx.objectStore("signs");
          store.getAll().onsuccess = (event) => event.target.result.forEach((e) => store.put({ ...e, model_digest: digest }));
          tx.oncomplete = () => { open.result.close(); resolve(); };
          tx.onerror = () => reject(tx.error);
        };
      }), step.model_digest);
      output.results.push({});
    } else if (step.op === "reembed") {
      const before = await ops();
      await page.click("#own-reembed");
      await waitOp(before);
      output.results.push(await ownShown());
    } else if (step.op === "bench") {
      // Threads are fixed when the wasm runtime starts: set them with the page's ?threads=N.
      output.results.push(await page.evaluate(async (cfg) => {
        const ort = await import("/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs");
        const { Recognizer, availableThreads } = await import("/src/recognizer.js");
        const threads = availableThreads(Number(new URLSearchParams(location.search).get("threads")) || 0);
        const r = await new Recognizer(ort).load({
          threads, graphOptimization: cfg.opt, modelFile: cfg.model,
          freeDimensionOverrides: cfg.static ? { batch: 1, frames: cfg.frames } : undefined,
        });
        const P = r.layout.numPoints;
        const points = new Float32Array(cfg.frames * P * 2);
        let seed = 1;
        for (let i = 0; i < points.length; i++) {
          seed = (seed * 1103515245 + 12345) % 2147483648;
          points[i] = seed / 2147483648 - 0.5;
        }
        for (let i = 0; i < cfg.warmup; i++) await r.embed(points, cfg.frames);
        const times = [];
        for (let i = 0; i < cfg.runs; i++) times.push((await r.embed(points, cfg.frames)).ms);
        // The rest of the page's pipeline on a raw clip of the same length: normalise + top-k.
        const raw = new Float32Array(cfg.frames * r.layout.rawFeatures).map((_, i) => 0.2 + 0.6 * ((i * 7919) % 1000) / 1000);
        const prepTimes = [];
        const topTimes = [];
        let embedding = null;
        for (let i = 0; i < cfg.runs; i++) {
          let t0 = performance.now();
          const input = r.prepare(raw, cfg.frames);
          prepTimes.push(performance.now() - t0);
          embedding ??= (await r.embed(input.points, input.frames)).embedding;
          t0 = performance.now();
          r.topK(embedding);
          topTimes.push(performance.now() - t0);
        }
        const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
        const sorted = [...times].sort((a, b) => a - b);
        await r.session.release();
        return {
          model: r.modelFile, threads: r.threads, opt: r.graphOptimization, static_shape: Boolean(cfg.static),
          frames: cfg.frames, runs: cfg.runs, warmup: cfg.warmup, load_ms: r.loadMs,
          median_ms: median(times), min_ms: sorted[0], p90_ms: sorted[Math.floor(sorted.length * 0.9)],
          normalize_median_ms: median(prepTimes), topk_median_ms: median(topTimes), gallery_size: r.gallery.count,
          isolated: globalThis.crossOriginIsolated,
        };
      }, { frames: 100, runs: 50, warmup: 10, opt: "all", model: undefined, static: false, ...step }));
    } else {
      throw new Error(`unknown step ${step.op}`);
    }
  }
} catch (err) {
  output.fatal = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(output)}\n`);
process.exit(output.fatal ? 1 : 0);
