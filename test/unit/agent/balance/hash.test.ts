// hash32 is MurmurHash3 x86_32: published reference vectors, UTF-8 handling, and the finalizer.
import { describe, expect, test } from "vitest";
import { hash32, hashBytes, mix32 } from "../../../../agent/balance/hash.ts";

describe("hash32 (MurmurHash3 x86_32)", () => {
  test.each<[string, number, number]>([
    ["", 0, 0],
    ["", 1, 0x514e28b7],
    ["", 0xffffffff, 0x81f16f39],
    ["test", 0, 0xba6bd213],
    ["abc", 0, 0xb3dd93fa],
    ["aaaa", 0x9747b28c, 0x5a97808a],
    ["Hello, world!", 0, 0xc0363e43],
    ["Hello, world!", 0x9747b28c, 0x24884cba],
    ["The quick brown fox jumps over the lazy dog", 0, 0x2e4ff723],
  ])("%j seed %i", (text, seed, expected) => {
    expect(hash32(text, seed)).toBe(expected);
  });

  test("non-ASCII text hashes its UTF-8 bytes", () => {
    for (const text of ["€uro", "ümlaut-ß", "日本語", "emoji 🎉"]) {
      expect(hash32(text)).toBe(hashBytes(new TextEncoder().encode(text)));
    }
  });

  test("every tail length (0-3 bytes after the last block) takes its own path", () => {
    const seen = new Set(["abcd", "abcde", "abcdef", "abcdefg"].map((t) => hash32(t)));
    expect(seen.size).toBe(4);
    for (const t of ["abcde", "abcdef", "abcdefg"])
      expect(hash32(t)).toBe(hashBytes(new TextEncoder().encode(t)));
  });

  test("mix32 is fmix32: a 32-bit result, 0 maps to 0, neighbours land far apart", () => {
    expect(mix32(0)).toBe(0);
    const a = mix32(1);
    const b = mix32(2);
    expect(a).toBeGreaterThan(0);
    expect(a).toBeLessThan(2 ** 32);
    // Avalanche: about half of the 32 bits differ between the images of neighbouring inputs.
    const differing = (a ^ b).toString(2).replace(/0/g, "").length;
    expect(differing).toBeGreaterThan(8);
  });
});
