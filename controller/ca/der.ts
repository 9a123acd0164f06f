// A small, strict ASN.1 DER reader and writer: the CA's only ASN.1 code, for PKCS#10 requests
// (csr.ts) and the certificates it issues (x509.ts). node:crypto parses keys and X.509 but not
// CSRs, and node-forge (which did both in JavaScript) left 20–40 MiB of garbage per 1,000-CSR
// burst in the controller (docs/benchmarks.md, "Controller").
//
// Strict means DER, not BER: single-byte tags only (no tag number ≥ 31), definite lengths in the
// minimal form, every length inside its parent, no bytes after the outermost value. Anything else
// is a DerError, which the caller turns into its own error (fail closed).

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific [n]: constructed (EXPLICIT or a constructed IMPLICIT type) or primitive. */
export const contextTag = (n: number, constructed: boolean): number => (constructed ? 0xa0 : 0x80) | n;
export const isConstructed = (tag: number): boolean => (tag & 0x20) !== 0;

/** One value: its tag, where its header starts, where its contents start and end. */
export interface Tlv {
  readonly tag: number;
  readonly at: number;
  readonly start: number;
  readonly end: number;
}

/** Nesting deeper than this is refused (PKCS#10 and X.509 need 8 or so; this bounds recursion). */
const MAX_DEPTH = 24;

/** The value at `pos`, which must end at or before `limit`. */
export function readTlv(der: Uint8Array, pos: number, limit = der.length): Tlv {
  if (pos + 2 > limit) throw new DerError(`truncated DER at byte ${pos}`);
  const tag = der[pos] as number;
  if ((tag & 0x1f) === 0x1f)
    throw new DerError(`multi-byte tag at byte ${pos} (not used by PKCS#10 or X.509)`);
  const first = der[pos + 1] as number;
  let start = pos + 2;
  let len = first;
  if (first === 0x80) throw new DerError(`indefinite length at byte ${pos} (BER, not DER)`);
  if (first > 0x80) {
    const bytes = first & 0x7f;
    if (bytes > 4) throw new DerError(`length of ${bytes} bytes at byte ${pos}`);
    if (start + bytes > limit) throw new DerError(`truncated DER length at byte ${pos}`);
    len = 0;
    for (let i = 0; i < bytes; i++) len = len * 256 + (der[start + i] as number);
    // DER: the shortest form; a long form only for lengths ≥ 128, without leading zero bytes.
    if (len < 0x80 || der[start] === 0) throw new DerError(`non-minimal length at byte ${pos}`);
    start += bytes;
  }
  if (start + len > limit) throw new DerError(`value at byte ${pos} runs past its container`);
  return { tag, at: pos, start, end: start + len };
}

/** The one value that fills `der` exactly. */
export function readRoot(der: Uint8Array): Tlv {
  const t = readTlv(der, 0);
  if (t.end !== der.length) throw new DerError(`${der.length - t.end} bytes after the DER value`);
  return t;
}

/** The values inside a constructed value, which must fill it exactly. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  if (!isConstructed(parent.tag))
    throw new DerError(`tag 0x${hex(parent.tag)} at byte ${parent.at} is not constructed`);
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end;) {
    const t = readTlv(der, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

/** Checks that every constructed value below `t` is well-formed DER (for parts read as a whole). */
export function checkTree(der: Uint8Array, t: Tlv, depth = 0): void {
  if (depth > MAX_DEPTH) throw new DerError(`DER nested deeper than ${MAX_DEPTH} levels`);
  if (!isConstructed(t.tag)) return;
  for (const c of children(der, t)) checkTree(der, c, depth + 1);
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t) throw new DerError(`${what} is missing`);
  if (t.tag !== tag) throw new DerError(`${what} has tag 0x${hex(t.tag)}, expected 0x${hex(tag)}`);
  return t;
}

/** A value's contents (a view into `der`, no copy). */
export const body = (der: Uint8Array, t: Tlv): Buffer =>
  Buffer.from(der.buffer, der.byteOffset + t.start, t.end - t.start);
/** A value with its header (a view into `der`, no copy): what is signed, or copied into a certificate. */
export const whole = (der: Uint8Array, t: Tlv): Buffer =>
  Buffer.from(der.buffer, der.byteOffset + t.at, t.end - t.at);

/** The bytes of a BIT STRING that has no unused bits (keys and signatures). */
export function bitStringBytes(der: Uint8Array, t: Tlv, what: string): Buffer {
  expectTag(t, TAG.BIT_STRING, what);
  if (t.end === t.start || der[t.start] !== 0) throw new DerError(`${what} is not a whole number of bytes`);
  return body(der, { ...t, start: t.start + 1 });
}

/** Dotted form of an OBJECT IDENTIFIER's contents (minimal base-128 arcs). */
export function oidString(der: Uint8Array, t: Tlv, what: string): string {
  expectTag(t, TAG.OID, what);
  if (t.end === t.start) throw new DerError(`${what} is an empty OID`);
  const arcs: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    const b = der[i] as number;
    if (v === 0 && b === 0x80) throw new DerError(`${what} has a non-minimal OID arc`);
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw new DerError(`${what} has an OID arc too large`);
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0;
    } else if (i === t.end - 1) throw new DerError(`${what} ends inside an OID arc`);
  }
  const first = arcs[0] as number;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join(".");
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}

// ---- writer -----------------------------------------------------------------------------------

/** tag ‖ length ‖ contents, with the minimal definite length. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const len =
    n < 0x80
      ? [n]
      : n < 0x100
        ? [0x81, n]
        : n < 0x10000
          ? [0x82, n >> 8, n & 0xff]
          : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), ...parts]);
}

export const sequence = (...parts: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, ...parts);

/** An OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const bytes = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) bytes.unshift(0x80 | (v & 0x7f));
    out.push(...bytes);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

/** A non-negative INTEGER from big-endian bytes, minimally encoded. */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  const pad = (trimmed[0] ?? 0) & 0x80 ? [0] : [];
  return tlv(TAG.INTEGER, Buffer.from(pad), trimmed.length ? trimmed : Buffer.from([0]));
}

export const booleanTrue = (): Buffer => tlv(TAG.BOOLEAN, Buffer.from([0xff]));

/** A BIT STRING of whole bytes (keys, signatures). */
export const bitString = (bytes: Uint8Array): Buffer => tlv(TAG.BIT_STRING, Buffer.from([0]), bytes);

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds, in UTC. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(digits.slice(2), "ascii"));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(digits, "ascii"));
}
