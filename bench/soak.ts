// The soak benchmark (issue 10, not a test): a whole lab mesh under steady mixed load for a long time,
// with the workload certificates rotating and the config changing every minute, watching for what only
// time shows: memory that grows, file descriptors that leak, a request lost to a rotation or a reload.
//   npm run bench -- --only soak [--quick]       (30 minutes; --quick: 3)
//   node bench/soak.ts [--minutes 30] [--quick]
//
// Load, from the client pod n1p1, both open-loop (bench/loadgen.ts): 250 rps of keep-alive HTTP/1.1 to
// the `web` route (L7: HTTPRoute, per-request balancing over both echo pods, one on each node) and
// 250 rps of new connections to the `echo` VIP (opaque TCP: one HBONE CONNECT each). Certificates: a
// 2-minute SVID lifetime, so every agent renews each of its workloads' certificates about every minute.
// Config: every minute the file flips between two valid states (an ALLOW-all AuthorizationPolicy on
// the echo pods and a TrafficPolicy timeout on `web`, then neither), which the controller pushes and
// every agent applies, none of which may fail a request.
//
// Targets: 0 failed requests; after the warm-up, the RSS of each agent and of the controller grows by
// at most 5 % (the mean of the last tenth of the samples against the first tenth) and their open files
// stay flat (the same two means at most FD_SLACK apart: connections in flight come and go).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEMO_MESH, DEMO_VIP, meshConfigForLab, WEB_VIP } from "../demo/mesh-config.ts";
import { startMesh, type Mesh } from "../demo/mesh.ts";
import { Lab, type LabProcess } from "../lab/index.ts";
import { runLoadgen } from "./measure.ts";
import { openFiles, rssBytes } from "./proc-stats.ts";
import { fmt, renderTargets, table, type TargetCheck } from "./report.ts";

const APPS = new URL("../demo/apps/", import.meta.url).pathname;
const SAMPLE_MS = 10_000;
const CHANGE_MS = 60_000;
const RATE_EACH = 250;
const RSS_GROWTH_MAX = 0.05;
/** Open files that may come and go with the connections in flight at 500 rps. */
export const FD_SLACK = 16;
const MiB = 1024 * 1024;

export interface Sample {
  readonly atS: number;
  readonly rssMiB: number;
  readonly fds: number;
}

/** The mean of the first and of the last tenth (at least one sample each) of `values`. */
export function ends(values: readonly number[]): { first: number; last: number } {
  const n = Math.max(1, Math.floor(values.length / 10));
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { first: mean(values.slice(0, n)), last: mean(values.slice(-n)) };
}

/** Growth of RSS and drift of open files of one process over its post-warm-up samples. */
export function drift(samples: readonly Sample[]): { rssGrowth: number; fdDrift: number } {
  const rss = ends(samples.map((s) => s.rssMiB));
  const fds = ends(samples.map((s) => s.fds));
  return { rssGrowth: rss.last / rss.first - 1, fdDrift: fds.last - fds.first };
}

/** The soak's targets for each watched process, and the failed requests. */
export function soakTargets(
  watched: ReadonlyMap<string, readonly Sample[]>,
  failed: number | undefined,
): TargetCheck[] {
  const out: TargetCheck[] = [];
  out.push(
    failed === undefined
      ? { target: "0 failed requests", value: "not measured", ok: undefined }
      : { target: "0 failed requests", value: String(failed), ok: failed === 0 },
  );
  for (const [name, samples] of watched) {
    if (samples.length < 2) {
      out.push({ target: `${name}: RSS and open files`, value: "too few samples", ok: undefined });
      continue;
    }
    const d = drift(samples);
    out.push({
      target: `${name}: RSS growth after warm-up <= 5 %`,
      value: `${fmt(d.rssGrowth * 100)} %`,
      ok: d.rssGrowth <= RSS_GROWTH_MAX,
    });
    out.push({
      target: `${name}: open files flat (drift <= ${FD_SLACK})`,
      value: fmt(d.fdDrift),
      ok: Math.abs(d.fdDrift) <= FD_SLACK,
    });
  }
  return out;
}

/** The two config states the soak flips between. */
function extraFor(step: number): object[] {
  if (step % 2 === 0) return [];
  return [
    {
      apiVersion: "nodemesh.io/v1alpha1",
      kind: "AuthorizationPolicy",
      metadata: { name: "soak-allow-all", namespace: "default" },
      spec: { selector: { matchLabels: { app: "echo" } }, action: "ALLOW", rules: [{}] },
    },
    {
      apiVersion: "nodemesh.io/v1alpha1",
      kind: "TrafficPolicy",
      metadata: { name: "soak-web", namespace: "default" },
      spec: { targetRefs: [{ group: "", kind: "Service", name: "web" }], timeout: "9s" },
    },
  ];
}

/** Distinct certificate expiry times an agent has reported: each new one is a rotation. */
async function certExpiries(mesh: Mesh, node: string, seen: Set<string>): Promise<void> {
  const text = await mesh.agentHttp(node, 15020, "/metrics").catch(() => "");
  for (const line of text.split("\n"))
    if (line.startsWith("nodemesh_identity_cert_expiration_timestamp_seconds{")) seen.add(line);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { quick: { type: "boolean", default: false }, minutes: { type: "string" } },
  });
  const minutes = Number(values.minutes ?? (values.quick ? 3 : 30));
  if (!(minutes >= 2)) throw new Error(`--minutes must be at least 2, got ${values.minutes}`);
  const warmupS = values.quick ? 30 : 300;
  const durationS = minutes * 60;
  const log = (l: string) => process.stderr.write(`${l}\n`);

  const lab = await Lab.up({ name: "bsk", nodes: 2, podsPerNode: 2 });
  let mesh: Mesh | undefined;
  const apps: LabProcess[] = [];
  try {
    mesh = await startMesh({ lab, yaml: meshConfigForLab(lab, DEMO_MESH), svidTtl: "2m" });
    for (const pod of [lab.pod(1, 2), lab.pod(2, 2)]) {
      const p = lab.spawn(pod, [process.execPath, join(APPS, "echo-server.ts")], {
        env: { ...process.env, POD_NAME: pod.name },
      });
      await p.waitForOutput("listening");
      apps.push(p);
    }
    const m = mesh;
    const watched = new Map<string, number>([
      ...m.agents.map((a) => [`agent ${a.node.name}`, a.process.pid] as [string, number]),
      ["controller", m.controller.pid],
    ]);
    log(
      `soak: ${minutes} min at ${2 * RATE_EACH} rps, warm-up ${warmupS} s, watching ${[...watched.keys()].join(", ")}`,
    );
    const common = [
      "--mode",
      "open",
      "--rate",
      String(RATE_EACH),
      "--duration",
      String(durationS),
      "--warmup",
      "0",
    ];
    const client = lab.pod(1, 1);
    const keepalive = runLoadgen(lab, client, "web", [
      "--target",
      `${WEB_VIP}:80`,
      "--conn",
      "keepalive",
      ...common,
    ]);
    const fresh = runLoadgen(lab, client, "echo", ["--target", `${DEMO_VIP}:80`, "--conn", "new", ...common]);

    const samples = new Map<string, Sample[]>([...watched.keys()].map((k) => [k, []]));
    const certs = new Map<string, Set<string>>(m.agents.map((a) => [a.node.name, new Set<string>()]));
    const started = Date.now();
    let step = 0;
    let nextChange = started + CHANGE_MS;
    let changes = 0;
    while (Date.now() - started < durationS * 1000) {
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
      const atS = Math.round((Date.now() - started) / 1000);
      for (const [name, pid] of watched) {
        if (atS < warmupS) continue;
        samples.get(name)!.push({ atS, rssMiB: rssBytes(pid) / MiB, fds: openFiles(pid) });
      }
      for (const [node, seen] of certs) await certExpiries(m, node, seen);
      if (Date.now() >= nextChange) {
        step++;
        changes++;
        m.writeConfig(meshConfigForLab(lab, { ...DEMO_MESH, extra: extraFor(step) }));
        nextChange += CHANGE_MS;
      }
      if (atS % 60 < SAMPLE_MS / 1000) {
        const now = [...watched].map(
          ([n, pid]) => `${n} ${fmt(rssBytes(pid) / MiB)} MiB ${openFiles(pid)} fds`,
        );
        log(`soak ${atS} s: ${now.join("; ")}`);
      }
    }
    const [ka, nc] = await Promise.all([keepalive, fresh]);
    const failed = ka.errors + nc.errors;

    const rows = [...samples].map(([name, s]) => {
      const d = s.length >= 2 ? drift(s) : undefined;
      const rss = ends(s.map((x) => x.rssMiB));
      const fds = ends(s.map((x) => x.fds));
      return [
        name,
        fmt(rss.first),
        fmt(rss.last),
        d ? `${fmt(d.rssGrowth * 100)} %` : "-",
        fmt(fds.first),
        fmt(fds.last),
      ];
    });
    process.stdout.write(
      `\n== soak: ${minutes} min, ${2 * RATE_EACH} rps (keep-alive L7 + new connections L4), ` +
        `warm-up ${warmupS} s, ${changes} config changes\n\n`,
    );
    process.stdout.write(
      `${table(["process", "RSS MiB first 10 %", "RSS MiB last 10 %", "growth", "fds first 10 %", "fds last 10 %"], rows)}\n\n`,
    );
    process.stdout.write(
      `${table(
        ["load", "sent", "completed", "errors", "p50 ms", "p99 ms"],
        (
          [
            ["keep-alive HTTP (web, L7)", ka],
            ["new connections (echo, L4)", nc],
          ] as const
        ).map(([label, r]) => [
          label,
          String(r.sent),
          String(r.completed),
          String(r.errors),
          fmt(r.latencyMs.p50),
          fmt(r.latencyMs.p99),
        ]),
      )}\n\n`,
    );
    const rotations = [...certs].map(([node, seen]) => `${node} ${Math.max(0, seen.size - 1)}`).join(", ");
    process.stdout.write(
      `certificate renewals seen (new expiry values over all of the agent's identities): ${rotations}\n`,
    );
    if (failed > 0)
      process.stdout.write(`errors: ${JSON.stringify({ keepalive: ka.errorKinds, new: nc.errorKinds })}\n`);
    process.stdout.write(`\n${renderTargets(soakTargets(samples, failed))}\n`);
  } finally {
    for (const p of apps) p.kill("SIGTERM");
    await mesh?.stop().catch((err: Error) => log(`mesh stop: ${err.message}`));
    await lab.down().catch((err: Error) => log(`lab teardown: ${err.message}`));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: Error) => {
    process.stderr.write(`soak: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
