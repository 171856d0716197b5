// The user's own signs: enrolled clips kept in the browser (IndexedDB), exported and
// imported as one JSON file, and merged with the built-in gallery for recognition.
//
// Each entry keeps the embedding (what recognition compares), the raw landmarks
// (T, 150) (so it can be embedded again when the model changes) and the model
// fingerprint it was embedded with: an entry of another model is never ranked, it is
// listed as such until re-embedded. The file format is read by Python too
// (datasets/personal_dictionary.py): predict.py --gallery, evaluate.py --gallery/--queries.

export const FORMAT = "spoter-personal-dictionary";
export const VERSION = 1;
const DB_NAME = "spoter-personal-dictionary";
const STORE = "signs";

export class DictionaryError extends Error {
  constructor(message) {
    super(message);
    this.name = "DictionaryError";
  }
}

/** The fingerprint of the page's model: the weights' digest, else the ONNX file's sha256. */
export function modelFingerprint(manifest) {
  return manifest.model.digest || manifest.gallery.model_digest || `onnx-sha256:${manifest.model.sha256.slice(0, 16)}`;
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** IndexedDB storage, one record per enrolled clip (auto-numbered `id`). */
class IndexedStore {
  static async open() {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    const store = new IndexedStore();
    store.db = await request(req);
    return store;
  }

  async run(mode, action) {
    const tx = this.db.transaction(STORE, mode);
    const result = await request(action(tx.objectStore(STORE)));
    await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); tx.onabort = () => reject(tx.error); });
    return result;
  }

  all() { return this.run("readonly", (s) => s.getAll()); }
  add(entry) { return this.run("readwrite", (s) => s.add(entry)); }
  put(entry) { return this.run("readwrite", (s) => s.put(entry)); }
  remove(id) { return this.run("readwrite", (s) => s.delete(id)); }
}

/** Fallback when the browser offers no IndexedDB here: kept for this visit only. */
class MemoryStore {
  constructor() { this.rows = new Map(); this.next = 1; }
  async all() { return [...this.rows.values()]; }
  async add(entry) { const id = this.next++; this.rows.set(id, { ...entry, id }); return id; }
  async put(entry) { this.rows.set(entry.id, entry); return entry.id; }
  async remove(id) { this.rows.delete(id); }
}

export class PersonalDictionary {
  /** `fingerprint`: the page's model; entries made with another one are flagged, not used. */
  constructor(fingerprint) {
    this.fingerprint = fingerprint;
    this.entries = [];
    this.persistent = true;
  }

  async open() {
    try {
      this.store = await IndexedStore.open();
    } catch (err) {
      console.warn("IndexedDB unavailable, own signs are kept for this visit only:", err);
      this.store = new MemoryStore();
      this.persistent = false;
    }
    await this.reload();
    return this;
  }

  async reload() {
    this.entries = (await this.store.all()).sort((a, b) => a.id - b.id);
  }

  /** Entries embedded with the page's model (the ones recognition uses), in enrolment order. */
  usable() {
    return this.entries.filter((e) => e.model_digest === this.fingerprint);
  }

  stale() {
    return this.entries.filter((e) => e.model_digest !== this.fingerprint);
  }

  /** Add a clip: {gloss, video_id, signer_id, embedding: Float32Array, landmarks: Float32Array, frames}. */
  async add(sign) {
    const entry = {
      gloss: sign.gloss, video_id: sign.video_id, signer_id: sign.signer_id ?? "",
      embedding: Float32Array.from(sign.embedding), landmarks: Float32Array.from(sign.landmarks),
      frames: sign.frames, model_digest: sign.model_digest ?? this.fingerprint, added: sign.added ?? new Date().toISOString(),
    };
    entry.id = await this.store.add(entry);
    this.entries.push(entry);
    return entry;
  }

  async remove(id) {
    await this.store.remove(id);
    this.entries = this.entries.filter((e) => e.id !== id);
  }

  async removeGloss(gloss) {
    const gone = this.entries.filter((e) => e.gloss === gloss);
    for (const e of gone) await this.store.remove(e.id);
    this.entries = this.entries.filter((e) => e.gloss !== gloss);
    return gone.length;
  }

  /** Embed the landmarks of entries of another model again, with `embedRaw(landmarks, frames)`. */
  async reembed(embedRaw) {
    const stale = this.stale();
    for (const e of stale) {
      e.embedding = Float32Array.from(await embedRaw(e.landmarks, e.frames));
      e.model_digest = this.fingerprint;
      await this.store.put(e);
    }
    return stale.length;
  }

  /** The export document of the usable entries (see datasets/personal_dictionary.py). */
  toJson({ metric, embeddingDim }) {
    return {
      format: FORMAT, version: VERSION, model_digest: this.fingerprint, metric, embedding_dim: embeddingDim,
      signs: this.usable().map((e) => ({
        gloss: e.gloss, video_id: e.video_id, signer_id: e.signer_id, added: e.added,
        embedding: Array.from(e.embedding), landmarks: rows(e.landmarks, e.frames),
      })),
    };
  }
}

function rows(flat, frames) {
  const width = flat.length / frames;
  const out = [];
  for (let t = 0; t < frames; t++) out.push(Array.from(flat.subarray(t * width, (t + 1) * width)));
  return out;
}

function finiteNumbers(values, length, what) {
  if (!Array.isArray(values)) throw new DictionaryError(`${what} must be an array of numbers`);
  if (values.length !== length) throw new DictionaryError(`${what} has ${values.length} values, expected ${length}`);
  for (let k = 0; k < values.length; k++) {
    if (typeof values[k] !== "number" || !Number.isFinite(values[k])) throw new DictionaryError(`${what} value ${k} is not a finite number`);
  }
  return values;
}

function readSign(sign, i, dim, rawFeatures) {
  const where = `sign ${i}`;
  if (!sign || typeof sign !== "object" || Array.isArray(sign)) throw new DictionaryError(`${where} is not an object`);
  const gloss = typeof sign.gloss === "string" ? sign.gloss.trim() : "";
  if (!gloss) throw new DictionaryError(`${where} has no gloss`);
  const embedding = Float32Array.from(finiteNumbers(sign.embedding, dim, `${where}: embedding`));
  if (!Array.isArray(sign.landmarks) || !sign.landmarks.length) throw new DictionaryError(`${where}: landmarks must be a non-empty array of frames`);
  const landmarks = new Float32Array(sign.landmarks.length * rawFeatures);
  sign.landmarks.forEach((row, t) => landmarks.set(finiteNumbers(row, rawFeatures, `${where}: landmarks frame ${t}`), t * rawFeatures));
  const text = (v) => (v === undefined || v === null ? "" : String(v));
  return { gloss, video_id: text(sign.video_id), signer_id: text(sign.signer_id), embedding, landmarks, frames: sign.landmarks.length,
    added: typeof sign.added === "string" ? sign.added : undefined };
}

/**
 * Validate an export file's text against the page: returns the signs to add, or throws a
 * DictionaryError whose message is one line (the caller prefixes the file name).
 */
export function parseDictionary(text, { fingerprint, metric, embeddingDim, rawFeatures }) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DictionaryError(`not valid JSON (${err.message})`);
  }
  if (!doc || typeof doc !== "object" || doc.format !== FORMAT) throw new DictionaryError(`not a personal dictionary (expected "format": "${FORMAT}")`);
  if (!Number.isInteger(doc.version) || doc.version < 1) throw new DictionaryError(`version must be a positive integer, got ${JSON.stringify(doc.version)}`);
  if (doc.version > VERSION) throw new DictionaryError(`version ${doc.version} is newer than this page (${VERSION})`);
  if (doc.model_digest !== fingerprint) {
    throw new DictionaryError(`made with another model (${doc.model_digest || "unknown"}; this page runs ${fingerprint}): its embeddings cannot be compared`);
  }
  if ((doc.metric ?? "euclidean") !== metric) throw new DictionaryError(`uses ${doc.metric} distance, this page's gallery uses ${metric}`);
  if (doc.embedding_dim !== embeddingDim) throw new DictionaryError(`embedding_dim is ${JSON.stringify(doc.embedding_dim)}, this model makes ${embeddingDim}`);
  if (!Array.isArray(doc.signs)) throw new DictionaryError("no signs array");
  return doc.signs.map((sign, i) => readSign(sign, i, embeddingDim, rawFeatures));
}

/**
 * The built-in gallery plus own signs, as one gallery for Recognizer.topK. Glosses merge by
 * name (an own "hello" and a built-in "hello" are one gloss), new ones get the next labels in
 * enrolment order: the same gallery Python's merge_galleries builds from the two files.
 */
export function mergeGallery(gallery, own) {
  if (!own.length) return gallery;
  const { count, dim } = gallery;
  const names = [...gallery.label_names];
  const position = new Map(names.map((n, i) => [n, i]));
  const embeddings = new Float32Array((count + own.length) * dim);
  embeddings.set(gallery.embeddings);
  const labels = [...gallery.labels];
  const videoIds = [...(gallery.video_ids ?? new Array(count).fill(""))];
  const signerIds = [...(gallery.signer_ids ?? new Array(count).fill(""))];
  const isOwn = new Uint8Array(count + own.length);
  own.forEach((e, j) => {
    if (!position.has(e.gloss)) { position.set(e.gloss, names.length); names.push(e.gloss); }
    embeddings.set(e.embedding, (count + j) * dim);
    labels.push(position.get(e.gloss));
    videoIds.push(e.video_id);
    signerIds.push(e.signer_id);
    isOwn[count + j] = 1;
  });
  return {
    ...gallery, count: count + own.length, embeddings, labels, label_names: names,
    video_ids: videoIds, signer_ids: signerIds, own: isOwn, num_glosses: new Set(labels).size,
  };
}
