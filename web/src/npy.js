// Minimal reader for NumPy .npy files (format versions 1-3), enough for landmark arrays.
//
// Accepts little-endian or single-byte float and integer dtypes in C order (a 2-D
// Fortran-order array is transposed), and returns the values as a Float32Array with
// the shape. Anything else throws NpyError with a message that says what is wrong.

export class NpyError extends Error {
  constructor(message) {
    super(message);
    this.name = "NpyError";
  }
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

const READERS = {
  f8: (view, o) => view.getFloat64(o, true),
  f4: (view, o) => view.getFloat32(o, true),
  f2: (view, o) => halfToFloat(view.getUint16(o, true)),
  i8: (view, o) => Number(view.getBigInt64(o, true)),
  i4: (view, o) => view.getInt32(o, true),
  i2: (view, o) => view.getInt16(o, true),
  i1: (view, o) => view.getInt8(o),
  u8: (view, o) => Number(view.getBigUint64(o, true)),
  u4: (view, o) => view.getUint32(o, true),
  u2: (view, o) => view.getUint16(o, true),
  u1: (view, o) => view.getUint8(o),
};

function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

// Parse the header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (30, 150), }
function parseHeader(text) {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) {
    throw new NpyError("damaged .npy header (needs descr, fortran_order and shape)");
  }
  const dims = shape[1].split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (!dims.every((d) => /^\d+$/.test(d))) throw new NpyError(`damaged .npy shape (${shape[1]})`);
  return { descr: descr[1], fortranOrder: fortran[1] === "True", shape: dims.map(Number) };
}

/** Parse an ArrayBuffer holding a .npy file -> {shape, data: Float32Array, dtype}. */
export function parseNpy(buffer) {
  if (!(buffer instanceof ArrayBuffer)) throw new NpyError("expected file bytes");
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new NpyError("not a .npy file (missing the \\x93NUMPY signature)");
  }
  const major = bytes[6];
  const view = new DataView(buffer);
  let headerLength;
  let headerStart;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyError("truncated .npy header");
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new NpyError(`unsupported .npy format version ${major}`);
  }
  if (headerStart + headerLength > bytes.length) throw new NpyError("truncated .npy header");
  const header = parseHeader(new TextDecoder(major === 3 ? "utf-8" : "latin1")
    .decode(bytes.subarray(headerStart, headerStart + headerLength)));
  const { descr, fortranOrder, shape } = header;
  const order = descr[0];
  const kind = descr.slice(1);
  const read = READERS[kind];
  if (!read || !"<|=".includes(order) || (order === "|" && !kind.endsWith("1"))) {
    throw new NpyError(`unsupported dtype '${descr}' (expected a little-endian float or integer array)`);
  }
  const itemSize = Number(kind.slice(1));
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = headerStart + headerLength;
  const needed = count * itemSize;
  if (bytes.length - offset < needed) {
    throw new NpyError(`truncated .npy data: shape (${shape.join(", ")}) needs ${needed} bytes, `
      + `file has ${bytes.length - offset}`);
  }
  let data;
  if (kind === "f4" && offset % 4 === 0) {
    data = new Float32Array(buffer.slice(offset, offset + needed));
  } else {
    data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = read(view, offset + i * itemSize);
  }
  if (fortranOrder && shape.length === 2) {
    const [rows, cols] = shape;
    const c = new Float32Array(count);
    for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) c[r * cols + k] = data[k * rows + r];
    data = c;
  } else if (fortranOrder && shape.length > 2) {
    throw new NpyError("Fortran-ordered arrays with more than 2 dimensions are not supported");
  }
  return { shape, data, dtype: descr };
}
