// Path (c), the peer proxy: two HAProxy processes with mTLS between them, on the same topology as
// the mesh: client pod -> HAProxy in node 1 -> TLS 1.3 + client certificates -> HAProxy in node 2 ->
// server pod, in TCP mode (against the L4 mesh) or HTTP mode (against the L7 mesh); the configs are
// bench/haproxy-config.ts. Certificates (ECDSA P-256, a throw-away CA) are made with openssl in a
// temporary directory that stop() removes. startHaproxyIngress() runs the ingress bench's HTTPS edge
// HAProxy (one process, certificates made by the caller with makeCa()/makeLeaf()).
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Lab, LabHost, LabProcess } from "../lab/index.ts";
import { clientSideConfig, ingressConfig, serverSideConfig } from "./haproxy-config.ts";
import type { HaproxyIngress } from "./haproxy-config.ts";
import type { HaproxyMode } from "./haproxy-config.ts";

const run = promisify(execFile);

export const HAPROXY_FRONT_PORT = 15001;
export const HAPROXY_TUNNEL_PORT = 15008;

export interface HaproxyPath {
  /** where the client pod connects: node 1's address and HAPROXY_FRONT_PORT */
  target: string;
  proxies: { node: string; pid: number }[];
  stop(): Promise<void>;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A throw-away CA, `<dir>/ca.pem` and `<dir>/ca.key` (ECDSA P-256, valid 2 days). */
export async function makeCa(dir: string): Promise<void> {
  const out = ["-keyout", join(dir, "ca.key"), "-out", join(dir, "ca.pem")];
  await run("openssl", ["req", "-x509", ...EC, ...out, "-days", "2", "-subj", "/CN=nodemesh-bench-ca"]);
}

/**
 * A leaf signed by `<dir>/ca.pem`: `<dir>/<name>.crt`, `.key`, and `.pem` (both, for HAProxy's `crt`).
 * `san` is the subjectAltName value (`DNS:n1`, `IP:10.0.0.1,DNS:…`); `usage` the extendedKeyUsage.
 */
export async function makeLeaf(dir: string, name: string, san: string, usage: string): Promise<void> {
  const f = (ext: string) => join(dir, `${name}.${ext}`);
  await writeFile(f("ext"), `subjectAltName=${san}\nextendedKeyUsage=${usage}\n`);
  await run("openssl", ["req", ...EC, "-keyout", f("key"), "-out", f("csr"), "-subj", `/CN=${name}`]);
  const ca = ["-CA", join(dir, "ca.pem"), "-CAkey", join(dir, "ca.key"), "-CAcreateserial"];
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    f("csr"),
    ...ca,
    "-days",
    "2",
    "-extfile",
    f("ext"),
    "-out",
    f("crt"),
  ]);
  await run("sh", ["-c", `cat "$0" "$1" > "$2"`, f("crt"), f("key"), f("pem")]);
}

export async function makeCerts(dir: string): Promise<void> {
  await makeCa(dir);
  for (const n of ["n1", "n2"]) await makeLeaf(dir, n, `DNS:${n}`, "serverAuth,clientAuth");
}

/** A temporary directory and the processes of a peer path; `stop()` ends them and removes the directory. */
export async function peerProcesses(
  prefix: string,
): Promise<{ dir: string; procs: LabProcess[]; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const procs: LabProcess[] = [];
  const stop = async () => {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, procs, stop };
}

/** Starts both HAProxy processes in `mode`; the server is at `server` (host:port) behind node 2. */
export async function startHaproxy(lab: Lab, server: string, mode: HaproxyMode): Promise<HaproxyPath> {
  const { dir, procs, stop } = await peerProcesses("nodemesh-bench-haproxy-");
  try {
    await makeCerts(dir);
    const n1 = lab.node(1);
    const n2 = lab.node(2);
    const front = `${n1.address}:${HAPROXY_FRONT_PORT}`;
    const tunnel = `${n2.address}:${HAPROXY_TUNNEL_PORT}`;
    await writeFile(
      join(dir, "n1.cfg"),
      clientSideConfig(mode, { certDir: dir, listen: front, upstream: tunnel }),
    );
    await writeFile(
      join(dir, "n2.cfg"),
      serverSideConfig(mode, { certDir: dir, listen: tunnel, upstream: server }),
    );
    for (const [node, cfg] of [
      [n2, "n2.cfg"],
      [n1, "n1.cfg"],
    ] as const) {
      const p = lab.spawn(node, ["haproxy", "-db", "-f", join(dir, cfg)]);
      procs.push(p);
    }
    // -db prints nothing when it is up; the caller probes the path. Fail fast on a bad config.
    await new Promise((r) => setTimeout(r, 300));
    const dead = procs.find((p) => p.exitStatus);
    if (dead) throw new Error(`haproxy exited at start: ${dead.output.slice(-400)}`);
    return {
      target: front,
      proxies: [
        { node: n1.name, pid: procs[1]?.pid ?? 0 },
        { node: n2.name, pid: procs[0]?.pid ?? 0 },
      ],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The ingress bench's HAProxy in `node`; `stop()` ends it (the certificate files are the caller's). */
export async function startHaproxyIngress(
  lab: Lab,
  node: LabHost,
  cfgDir: string,
  ing: HaproxyIngress,
): Promise<HaproxyPath> {
  const cfg = join(cfgDir, "ingress.cfg");
  await writeFile(cfg, ingressConfig(ing));
  const p = lab.spawn(node, ["haproxy", "-db", "-f", cfg]);
  const stop = async () => {
    p.kill("SIGTERM");
    await p.exited;
  };
  await new Promise((r) => setTimeout(r, 300));
  if (p.exitStatus) {
    await stop();
    throw new Error(`haproxy exited at start: ${p.output.slice(-400)}`);
  }
  return { target: ing.listen, proxies: [{ node: node.name, pid: p.pid }], stop };
}
