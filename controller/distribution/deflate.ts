// The config stream's `content-encoding: deflate` (RFC 9110: a zlib stream, RFC 1950/1951), built
// so that a snapshot is compressed once per version and its bytes shared by every session.
//
// The response body is one endless zlib stream: the 2-byte zlib header, then for each message a
// sequence of byte-aligned, non-final deflate pieces. A piece is either a deflate segment
// compressed on its own and ended by a sync flush (it refers to nothing before it, so it can follow
// anything: pigz splices independently compressed blocks the same way), or a stored block written
// by hand (small per-node text: heartbeats, versions, a node's policies; no zlib call at all).
// Every message ends on a sync-flush boundary, so the agent's inflater yields the whole line as
// soon as its last byte arrives. The stream is never finished (no final block, no Adler-32): it
// ends when the HTTP/2 stream does, and the agent inflates with Z_SYNC_FLUSH as its finish flush.
//
// Measured on the benchmark's 10,000-workload snapshot (2.46 MB of JSON): 96 KB after level-6
// deflate (26 ms, once per version), 8 ms to inflate on the agent. The controller then encrypts and
// frames 25 times fewer bytes for each of its agents.
import { constants, deflateRawSync } from "node:zlib";

export const DEFLATE = "deflate";

/** zlib header: deflate, 32 KiB window, default level; (0x78 << 8 | 0x9c) % 31 === 0. */
export const ZLIB_HEADER: Buffer = Buffer.from([0x78, 0x9c]);

/** Text up to this size goes in stored blocks: compressing it saves less than the call costs. */
const STORE_BELOW = 4096;
const MAX_STORED = 0xffff;

/** `data` as non-final stored blocks (BFINAL=0, BTYPE=00), each at most 65,535 bytes. */
export function storedBlocks(data: string | Buffer): Buffer {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  const blocks = Math.max(1, Math.ceil(bytes.length / MAX_STORED));
  const out = Buffer.allocUnsafe(bytes.length + 5 * blocks);
  let at = 0;
  for (let i = 0; i < blocks; i++) {
    const chunk = bytes.subarray(i * MAX_STORED, (i + 1) * MAX_STORED);
    out[at] = 0; // header bits 0 (not final) + 00 (stored); the rest of the byte is padding
    out.writeUInt16LE(chunk.length, at + 1);
    out.writeUInt16LE(~chunk.length & 0xffff, at + 3);
    chunk.copy(out, at + 5);
    at += 5 + chunk.length;
  }
  return out;
}

/** `data` compressed on its own, ending on a byte boundary with no final block. */
export function deflatedSegment(data: string | Buffer, level = 6): Buffer {
  return deflateRawSync(data, { level, finishFlush: constants.Z_SYNC_FLUSH });
}

/** Stored when short, compressed when long. */
export function encodePiece(data: string | Buffer): Buffer {
  const n = typeof data === "string" ? data.length : data.length;
  return n < STORE_BELOW ? storedBlocks(data) : deflatedSegment(data);
}
