// A fast 32-bit string hash for balancing: MurmurHash3 x86_32 (Austin Appleby, public domain) over
// the UTF-8 bytes of a string. Chosen over xxhash32 because it is as well distributed for short keys
// (header values, addresses, "host_i" ring labels), needs no 64-bit arithmetic, and its reference
// vectors are widely published, so callers in other languages can reproduce our hashes.
// Not a cryptographic hash: a client that controls the key can aim at one endpoint, as with Envoy.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const encoder = new TextEncoder();

/** MurmurHash3 x86_32 of `text`'s UTF-8 encoding; an unsigned 32-bit integer. */
export function hash32(text: string, seed = 0): number {
  // ASCII keys (the common case: addresses, tokens) are hashed straight from char codes with no
  // allocation; anything else goes through one UTF-8 encode so the result matches the byte-wise spec.
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) return hashBytes(encoder.encode(text), seed);
  }
  return hashCodes(text, seed);
}

/** MurmurHash3 x86_32 of raw bytes. */
export function hashBytes(bytes: Uint8Array, seed = 0): number {
  const n = bytes.length;
  const blocks = n & ~3;
  let h = seed >>> 0;
  for (let i = 0; i < blocks; i += 4) {
    const b0 = bytes[i] ?? 0;
    const b1 = bytes[i + 1] ?? 0;
    const b2 = bytes[i + 2] ?? 0;
    const b3 = bytes[i + 3] ?? 0;
    h = mixBlock(h, b0 | (b1 << 8) | (b2 << 16) | (b3 << 24));
  }
  let k = 0;
  const rest = n & 3;
  if (rest === 3) k ^= (bytes[blocks + 2] ?? 0) << 16;
  if (rest >= 2) k ^= (bytes[blocks + 1] ?? 0) << 8;
  if (rest >= 1) h ^= mixTail(k ^ (bytes[blocks] ?? 0));
  return finalize(h, n);
}

function hashCodes(text: string, seed: number): number {
  const n = text.length;
  const blocks = n & ~3;
  let h = seed >>> 0;
  for (let i = 0; i < blocks; i += 4) {
    const k =
      text.charCodeAt(i) |
      (text.charCodeAt(i + 1) << 8) |
      (text.charCodeAt(i + 2) << 16) |
      (text.charCodeAt(i + 3) << 24);
    h = mixBlock(h, k);
  }
  let k = 0;
  const rest = n & 3;
  if (rest === 3) k ^= text.charCodeAt(blocks + 2) << 16;
  if (rest >= 2) k ^= text.charCodeAt(blocks + 1) << 8;
  if (rest >= 1) h ^= mixTail(k ^ text.charCodeAt(blocks));
  return finalize(h, n);
}

function mixTail(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixBlock(h: number, k: number): number {
  h ^= mixTail(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * MurmurHash3's 32-bit finalizer (fmix32): a bijection on 32-bit integers with full avalanche. Cheap
 * derivation of many well-spread values from one string hash (ring points) without rehashing text.
 */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function finalize(h: number, length: number): number {
  return mix32(h ^ length);
}
