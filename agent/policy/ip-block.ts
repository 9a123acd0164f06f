// IPv4 CIDR membership for `ipBlocks`, `source.ip` and `destination.ip`. Pure; no allocation beyond
// the split, since it runs per rule per connection. The mesh is IPv4-only (Service and WorkloadEntry
// addresses are IPv4), so an IPv6 peer never matches a block.

/**
 * Is `ip` inside `block` ("a.b.c.d/n" or a single "a.b.c.d")? Node reports IPv4 peers of a
 * dual-stack socket as "::ffff:a.b.c.d"; that form is the IPv4 address it carries. Anything
 * malformed (on either side) is outside every block.
 */
export function inBlock(ip: string, block: string): boolean {
  const slash = block.indexOf("/");
  const base = slash < 0 ? block : block.slice(0, slash);
  const bits = slash < 0 ? 32 : Number(block.slice(slash + 1));
  if (slash >= 0 && !/^\d{1,2}$/.test(block.slice(slash + 1))) return false;
  const a = ipv4ToInt(ip.startsWith("::ffff:") ? ip.slice("::ffff:".length) : ip);
  const b = ipv4ToInt(base);
  if (a === undefined || b === undefined || !(bits >= 0 && bits <= 32)) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (a & mask) >>> 0 === (b & mask) >>> 0;
}

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}
