// The ingress benchmark (issue 12): HTTPS keep-alive 1 KiB POSTs from the lab's `outside` host to a
// meshed backend pod through the nodemesh Gateway (an agent role on n1) and through HAProxy as an
// HTTPS edge on the same node with the same certificate, beside a plain-HTTP direct baseline, in one
// run on the same cores. Paths, ports and the mesh layout are bench/ingress-spec.ts; the runs are
// bench/measure.ts's (fixed rate, then wrk's max; CPU of the proxies from /proc).
//
// Order: direct, HAProxy, then the mesh, because the mesh's STRICT PeerAuthentication drops plaintext
// to an enrolled pod in the kernel, which is what the other two paths send. The direct path needs a
// route from `outside` to the backend's node, removed before the mesh runs, so that every answer on
// the mesh path proves the gateway carried it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Lab, type LabHost, type LabPod } from "../lab/index.ts";
import { makeCa, makeLeaf, startHaproxyIngress } from "./haproxy.ts";
import {
  BACKEND_PORT,
  GATEWAY_PORT,
  HAPROXY_INGRESS_PORT,
  INGRESS_DURATIONS,
  INGRESS_QUICK_DURATIONS,
  INGRESS_RATES,
  ingressMeshSpec,
  ingressSan,
  type IngressPathName,
} from "./ingress-spec.ts";
import { emptyResult, Measurer, type PathResult, type PathUnderTest } from "./measure.ts";
import { startBenchMesh, type BenchMeshSpec } from "./mesh-path.ts";

export interface IngressOptions {
  quick?: boolean;
  /** lab name (1-6 of [a-z0-9]) */
  labName?: string;
  log?: (line: string) => void;
  paths?: readonly IngressPathName[];
}

const SERVER = fileURLToPath(new URL("./bench-server.ts", import.meta.url));
// The gateway listens once the agent has applied the config and holds the Gateway's SVID.
const MESH_READY_MS = 60_000;

/** Runs the chosen ingress paths; the mesh path is reported unavailable (with the reason) if it fails. */
export async function runIngress(opts: IngressOptions = {}): Promise<PathResult[]> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const wanted = (p: IngressPathName) => !opts.paths || opts.paths.includes(p);
  const lab = await Lab.up({ name: opts.labName ?? "bing", nodes: 2, podsPerNode: 1, outside: true });
  const tmp = await mkdtemp(join(tmpdir(), "nodemesh-bench-ingress-"));
  try {
    const outside = lab.outside;
    if (!outside) throw new Error("the lab has no outside host");
    const edge = lab.node(1);
    const backend = lab.pod(2, 1);
    const server = lab.spawn(backend, [process.execPath, "--disable-warning=ExperimentalWarning", SERVER], {
      env: { ...process.env, PORT: String(BACKEND_PORT) },
    });
    await server.waitForOutput("listening", 10_000);
    await makeCa(tmp);
    await makeLeaf(tmp, "ingress", ingressSan(edge.address), "serverAuth");
    const tls = { ca: join(tmp, "ca.pem") };
    const durations = opts.quick ? INGRESS_QUICK_DURATIONS : INGRESS_DURATIONS;
    const m = new Measurer(lab, outside, durations, tmp, log);
    const common = { conns: ["keepalive"] as const, rates: INGRESS_RATES, hold: false };
    const results: PathResult[] = [];

    if (wanted("direct")) results.push(await measureDirect(lab, m, outside, backend, common));
    if (wanted("haproxy-ingress")) {
      const hap = await startHaproxyIngress(lab, edge, tmp, {
        listen: `${edge.address}:${HAPROXY_INGRESS_PORT}`,
        certFile: join(tmp, "ingress.pem"),
        upstream: `${backend.address}:${BACKEND_PORT}`,
      });
      try {
        const path = { name: "haproxy-ingress", target: hap.target, proxies: hap.proxies, tls, ...common };
        await m.waitReady(path);
        results.push(await m.measure(path));
      } finally {
        await hap.stop();
      }
    }
    if (wanted("mesh-gateway")) {
      const cert = { certFile: join(tmp, "ingress.crt"), keyFile: join(tmp, "ingress.key") };
      results.push(await measureGateway(lab, m, ingressMeshSpec(cert, edge.address), tls, common, log));
    }
    return results;
  } finally {
    await lab.down().catch((err: Error) => log(`lab teardown: ${err.message}`));
    await rm(tmp, { recursive: true, force: true });
  }
}

type Common = Pick<PathUnderTest, "conns" | "rates" | "hold">;

/** Plain HTTP from outside straight to the pod, over a route to its node that exists for this run only. */
async function measureDirect(
  lab: Lab,
  m: Measurer,
  outside: LabHost,
  backend: LabPod,
  common: Common,
): Promise<PathResult> {
  const node = lab.node(backend.node);
  const route = [node.podCidr, "via", node.address];
  await lab.exec(outside, ["ip", "route", "add", ...route], { check: true });
  try {
    const path = { name: "direct", target: `${backend.address}:${BACKEND_PORT}`, proxies: [], ...common };
    await m.waitReady(path);
    return await m.measure(path);
  } finally {
    await lab.exec(outside, ["ip", "route", "del", ...route], { check: true });
  }
}

/** The Gateway path: both agents' CPU counts (the gateway's node and the backend's node). */
async function measureGateway(
  lab: Lab,
  m: Measurer,
  spec: BenchMeshSpec,
  tls: { ca: string },
  common: Common,
  log: (l: string) => void,
): Promise<PathResult> {
  const name = "mesh-gateway";
  let mesh: Awaited<ReturnType<typeof startBenchMesh>> | undefined;
  try {
    mesh = await startBenchMesh(lab, BACKEND_PORT, spec);
    const path = {
      name,
      target: `${lab.node(1).address}:${GATEWAY_PORT}`,
      proxies: mesh.proxies,
      tls,
      ...common,
    };
    try {
      await m.waitReady(path, MESH_READY_MS);
      return await m.measure(path);
    } catch (err) {
      const trouble = mesh.diagnose();
      throw new Error(`${(err as Error).message}${trouble ? `; ${trouble}` : ""}`, { cause: err });
    }
  } catch (err) {
    log(`${name}: not available (${(err as Error).message})`);
    return { ...emptyResult(name), reason: (err as Error).message };
  } finally {
    await mesh?.stop().catch((err: Error) => log(`mesh stop: ${err.message}`));
  }
}
