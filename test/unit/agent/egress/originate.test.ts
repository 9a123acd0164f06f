// Origination of the outside connection against real local servers: target order, failover to the next
// target, the connect budget, and TLS origination verified against the service's CA file (and refused
// for a certificate of another name).
import { mkdtempSync } from "node:fs";
import { connect, createServer, Socket, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderTargets, originate, type OpenSocket } from "../../../../agent/egress/originate.ts";
import type { ExternalPortInfo } from "../../../../agent/egress/registry.ts";
import { serverCert, type ServerCert } from "../../../helpers/server-cert.ts";

const open: OpenSocket = async (_uid, address, port) => connect({ host: address, port });

function ext(targets: { address: string; port: number }[], tls?: ExternalPortInfo["tls"]): ExternalPortInfo {
  return { host: "api.outside.test", targets, tls } as unknown as ExternalPortInfo;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as { port: number }).port;
}

let plain: Server;
let secure: Server;
let plainPort: number;
let securePort: number;
let cert: ServerCert;

beforeAll(async () => {
  cert = serverCert(mkdtempSync(join(tmpdir(), "nm-egress-")), "api.outside.test");
  plain = createServer((s) => s.end("plain|"));
  secure = createTlsServer({ key: cert.key, cert: cert.cert }, (s) => s.end("secure|"));
  plainPort = await listen(plain);
  securePort = await listen(secure);
});
afterAll(() => {
  plain.close();
  secure.close();
});

function read(s: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let out = "";
    s.on("data", (d: Buffer) => (out += d.toString()));
    s.on("end", () => resolve(out));
  });
}

describe("orderTargets", () => {
  const t = [1, 2, 3].map((i) => ({ address: `10.0.0.${i}`, port: 80 }));
  it.each([
    [undefined, 0, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]],
    [undefined, 4, ["10.0.0.2", "10.0.0.3", "10.0.0.1"]],
    ["10.0.0.3", 0, ["10.0.0.3", "10.0.0.1", "10.0.0.2"]],
    ["10.9.9.9", 0, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]],
  ])("prefer %s, rotation %d", (prefer, rotate, want) => {
    expect(orderTargets(t, prefer, rotate).map((x) => x.address)).toEqual(want);
  });
});

describe("originate", () => {
  it("fails over from a refusing target to the next one", async () => {
    const closed = createServer();
    const deadPort = await listen(closed);
    closed.close();
    const dead = { address: "127.0.0.1", port: deadPort };
    const live = { address: "127.0.0.1", port: plainPort };
    const o = await originate(open, "ns/w", ext([dead, live]), {
      timeoutMs: 1000,
      attempts: 3,
      prefer: "127.0.0.1",
    });
    expect(o.target).toEqual(live);
    expect(await read(o.socket)).toBe("plain|");
  });

  it("fails with the flag and the last reason when no target answers", async () => {
    await expect(originate(open, "ns/w", ext([]), { timeoutMs: 100, attempts: 1 })).rejects.toMatchObject({
      flag: "NoHealthyUpstream",
      message: expect.stringMatching(/has no address/),
    });
    await expect(
      originate(open, "ns/w", ext([{ address: "127.0.0.1", port: 1 }]), { timeoutMs: 1000, attempts: 1 }),
    ).rejects.toMatchObject({
      flag: "ConnectionFailure",
      message: expect.stringMatching(/127\.0\.0\.1:1: .*ECONNREFUSED/),
    });
    // A peer that never answers the SYN: the budget ends the attempt and the socket is destroyed.
    const hung = new Socket();
    Object.defineProperty(hung, "connecting", { value: true });
    const never: OpenSocket = async () => hung;
    await expect(
      originate(never, "ns/w", ext([{ address: "192.0.2.1", port: 9 }]), { timeoutMs: 150, attempts: 1 }),
    ).rejects.toMatchObject({
      flag: "ConnectionFailure",
      message: expect.stringMatching(/timed out after 150 ms/),
    });
    expect(hung.destroyed).toBe(true);
  });

  it("originates TLS verified against the CA file and the service's host", async () => {
    const target = { address: "127.0.0.1", port: securePort };
    const o = await originate(open, "ns/w", ext([target], { mode: "SIMPLE", caCertificates: cert.caFile }), {
      timeoutMs: 2000,
      attempts: 1,
    });
    expect(await read(o.socket)).toBe("secure|");
    await expect(
      originate(
        open,
        "ns/w",
        ext([target], { mode: "SIMPLE", sni: "other.outside.test", caCertificates: cert.caFile }),
        {
          timeoutMs: 2000,
          attempts: 1,
        },
      ),
    ).rejects.toMatchObject({ flag: "TlsFailure", message: expect.stringMatching(/other\.outside\.test/) });
    await expect(
      originate(open, "ns/w", ext([target], { mode: "SIMPLE" }), { timeoutMs: 2000, attempts: 1 }),
    ).rejects.toMatchObject({ flag: "TlsFailure" }); // not a system root
    await expect(
      originate(open, "ns/w", ext([target], { mode: "SIMPLE", caCertificates: "/nonexistent/ca.pem" }), {
        timeoutMs: 2000,
        attempts: 1,
      }),
    ).rejects.toMatchObject({
      flag: "TlsFailure",
      message: expect.stringMatching(/cannot read tls\.caCertificates/),
    });
  });
});
