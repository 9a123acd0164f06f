// The agent's memory diet (RSS of an idle agent): the hand-written CSR is byte for byte
// what node-forge built, and loading the agent pulls in none of the modules that cost an idle agent RSS
// for nothing (node-forge, @opentelemetry/api through prom-client, undici through `import "node:http"`).
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { fileURLToPath } from "node:url";
import forge from "node-forge";
import { describe, expect, it } from "vitest";
import { buildCsr, csrUris } from "../../../agent/identity/csr.ts";
import { AgentMetrics } from "../../../agent/telemetry/metrics.ts";
import { accessLogger, createLogger } from "../../../agent/log.ts";

const MAIN = fileURLToPath(new URL("../../../agent/main.ts", import.meta.url));

function forgeCsr(spiffeId: string, privateKeyPem: string, publicKeyPem: string): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  csr.setSubject([]);
  csr.setAttributes([
    {
      name: "extensionRequest",
      extensions: [{ name: "subjectAltName", altNames: [{ type: 6, value: spiffeId }] }],
    },
  ]);
  csr.sign(forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

describe("CSR without node-forge", () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });

  it.each([
    "spiffe://cluster.local/ns/default/sa/client",
    // > 255 bytes: long-form DER lengths on every level
    `spiffe://cluster.local/ns/${"n".repeat(240)}/sa/${"s".repeat(60)}`,
  ])("builds the same bytes as node-forge and verifies with it (%#)", (id) => {
    const pem = buildCsr(id, privateKey, publicKey);
    expect(pem).toBe(forgeCsr(id, privateKey, publicKey));
    const parsed = forge.pki.certificationRequestFromPem(pem);
    expect(parsed.verify()).toBe(true);
    expect(csrUris(pem)).toEqual([id]);
  });

  it("reads no URI from a CSR without SANs, and rejects truncated input", () => {
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.publicKeyFromPem(publicKey);
    csr.setSubject([{ name: "commonName", value: "x" }]);
    csr.sign(forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
    expect(csrUris(forge.pki.certificationRequestToPem(csr))).toEqual([]);
    const pem = buildCsr("spiffe://td/ns/a/sa/b", privateKey, publicKey);
    const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    const cut = `-----BEGIN CERTIFICATE REQUEST-----\n${der.subarray(0, 100).toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(() => csrUris(cut)).toThrow(/truncated DER/);
  });
});

describe("agent module footprint", () => {
  it("loads neither node-forge, @opentelemetry/api nor undici", () => {
    const script = `
      const before = new Set(process.moduleLoadList);
      await import(${JSON.stringify(MAIN)});
      const { createRequire } = await import("node:module");
      const cjs = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify({
        builtins: process.moduleLoadList.filter((m) => !before.has(m)),
        cjs: cjs.filter((f) => /node-forge|@opentelemetry|@kubernetes/.test(f)),
      }));`;
    const r = spawnSync(
      process.execPath,
      ["--disable-warning=ExperimentalWarning", "--input-type=module", "-e", script],
      { encoding: "utf8" },
    );
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout) as { builtins: string[]; cjs: string[] };
    expect(out.cjs).toEqual([]);
    expect(out.builtins.filter((m) => /undici|webstreams|perf_hooks/.test(m))).toEqual([]);
  });

  it("still exposes prom-client's process metrics, CPU counters included", async () => {
    const m = new AgentMetrics({ version: "t", node: "n", access: accessLogger(createLogger("silent")) });
    const text = await m.text();
    for (const name of [
      "process_cpu_user_seconds_total",
      "process_cpu_system_seconds_total",
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_heap_size_used_bytes",
      "nodejs_eventloop_lag_seconds",
      "nodejs_gc_duration_seconds",
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} `, "m"));
    }
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).not.toMatch(/nodejs_active_handles_total/);
  });
});
