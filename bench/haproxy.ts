// Path (c), the peer proxy: two HAProxy processes with mTLS between them, on the same topology as
// the mesh: client pod -> HAProxy in node 1 -> TLS 1.3 + client certificates -> HAProxy in node 2 ->
// server pod, in TCP mode (against the L4 mesh) or HTTP mode (against the L7 mesh); the configs are
// bench/haproxy-config.ts. Certificates (ECDSA P-256, a throw-away CA) are made with openssl in a
// temporary directory that stop() removes.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Lab, LabProcess } from "../lab/index.ts";
import { clientSideConfig, serverSideConfig } from "./haproxy-config.ts";
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

async function makeCerts(dir: string): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    join(dir, "ca.key"),
    "-out",
    join(dir, "ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=nodemesh-bench-ca",
  ]);
  for (const n of ["n1", "n2"]) {
    const ext = join(dir, `${n}.ext`);
    await writeFile(ext, `subjectAltName=DNS:${n}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    await run("openssl", [
      "req",
      ...ec,
      "-keyout",
      join(dir, `${n}.key`),
      "-out",
      join(dir, `${n}.csr`),
      "-subj",
      `/CN=${n}`,
    ]);
    await run("openssl", [
      "x509",
      "-req",
      "-in",
      join(dir, `${n}.csr`),
      "-CA",
      join(dir, "ca.pem"),
      "-CAkey",
      join(dir, "ca.key"),
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      ext,
      "-out",
      join(dir, `${n}.crt`),
    ]);
    await run("sh", ["-c", `cat "$0/${n}.crt" "$0/${n}.key" > "$0/${n}.pem"`, dir]);
  }
}

/** Starts both HAProxy processes in `mode`; the server is at `server` (host:port) behind node 2. */
export async function startHaproxy(lab: Lab, server: string, mode: HaproxyMode): Promise<HaproxyPath> {
  const dir = await mkdtemp(join(tmpdir(), "nodemesh-bench-haproxy-"));
  const procs: LabProcess[] = [];
  const stop = async () => {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
    await rm(dir, { recursive: true, force: true });
  };
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
