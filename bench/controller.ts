// Controller benchmark (not a test): 50 services, 10,000 workloads on 100 nodes, 100 agent clients
// over the real TLS stream. Measures time to full sync, delay from a file change to every agent
// holding it (p50/p99), CSR signings per second, and the controller's RSS (a child process, so the
// figure is the controller's alone). Targets: sync ≤ 2 s, change p99 ≤ 250 ms, RSS ≤ 200 MiB.
//
//   node --disable-warning=ExperimentalWarning bench/controller.ts [--agents 100] [--workloads 10000]
import { fork, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pino from "pino";
import { buildCsr } from "../agent/identity/csr.ts";
import { ControllerClient } from "../agent/control/client.ts";
import { controllerMain } from "../controller/main.ts";

if (process.argv[2] === "--controller") {
  await controllerMain(process.argv.slice(3));
  process.exit(0);
}
if (process.argv[2] === "--agents-worker") {
  await agentsWorker(JSON.parse(process.argv[3] ?? "{}"));
}

/** A child process hosting simulated agents [from, to), driven by IPC from the bench. */
async function agentsWorker(o: {
  port: number;
  rootPem: string;
  from: number;
  to: number;
  services: number;
}): Promise<void> {
  const log = pino({ level: "silent" });
  const at = () => performance.timeOrigin + performance.now();
  const clients: ControllerClient[] = [];
  for (let n = o.from; n < o.to; n++) {
    const name = `node-${String(n).padStart(3, "0")}`;
    // validate: false — these agents share one CPU; a real agent validates on its own node.
    clients.push(
      new ControllerClient({
        address: `127.0.0.1:${o.port}`,
        node: name,
        token: `bench-token-${name}-0123456789`,
        trustBundle: [o.rootPem],
        log,
        validate: false,
      }),
    );
  }
  let expect: { name: string; rev: string } | undefined;
  const holds = (c: ControllerClient) =>
    !!expect &&
    c.config?.workloads.find((w) => w.metadata.name === expect?.name)?.spec.labels.rev === expect.rev;
  const allHold = (pred: (c: ControllerClient) => boolean, reply: (t: number) => void) => {
    let pending = clients.filter((c) => !pred(c)).length;
    if (pending === 0) return reply(at());
    for (const c of clients) {
      if (pred(c)) continue;
      const on = () => {
        if (!pred(c)) return;
        c.off("config", on);
        if (--pending === 0) reply(at());
      };
      c.on("config", on);
    }
  };
  const keys = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
  const csrs = clients.map((c, j) => {
    const s = (o.from + j) % o.services;
    const id = `spiffe://cluster.local/ns/ns-${s % 10}/sa/svc-${s}`;
    return { c, id, pem: buildCsr(id, keys.privateKey, keys.publicKey) };
  });
  process.on("message", (m: { id: number; type: string; name?: string; rev?: string; count?: number }) => {
    const send = (r: object) => process.send?.({ id: m.id, ...r });
    if (m.type === "ping") send({});
    else if (m.type === "start") {
      allHold(
        (c) => c.config !== undefined,
        (t) => send({ at: t, workloads: clients[0]?.config?.workloads.length }),
      );
      for (const c of clients) c.start();
    } else if (m.type === "expect") {
      expect = { name: m.name ?? "", rev: m.rev ?? "" };
      send({});
    } else if (m.type === "wait") allHold(holds, (t) => send({ at: t }));
    else if (m.type === "csr") {
      let next = 0;
      let done = 0;
      const total = m.count ?? 0;
      void Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < total) {
            const r = csrs[next++ % csrs.length];
            if (!r) break;
            await r.c.signCsr(r.pem, r.id);
            done++;
          }
        }),
      ).then(() => send({ count: done }));
    } else if (m.type === "stop") void Promise.all(clients.map((c) => c.stop())).then(() => send({}));
  });
  await new Promise(() => {});
}

const { values } = parseArgs({
  options: {
    agents: { type: "string", default: "100" },
    workloads: { type: "string", default: "10000" },
    services: { type: "string", default: "50" },
    changes: { type: "string", default: "30" },
    csrs: { type: "string", default: "1000" },
  },
});
const AGENTS = Number(values.agents);
const WORKLOADS = Number(values.workloads);
const SERVICES = Number(values.services);
const CHANGES = Number(values.changes);
const CSRS = Number(values.csrs);
const NS = 10;

const dir = mkdtempSync(join(tmpdir(), "nodemesh-bench-"));
const cfgDir = join(dir, "config");
mkdirSync(cfgDir);
const node = (i: number) => `node-${String(i).padStart(3, "0")}`;
const token = (i: number) => `bench-token-${node(i)}-0123456789`;
const ip = (i: number) => `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

function workloadDoc(i: number, extra = ""): string {
  const s = i % SERVICES;
  return `apiVersion: nodemesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: w-${i}, namespace: ns-${s % NS}}
spec:
  address: ${ip(i)}
  serviceAccount: svc-${s}
  node: ${node(i % AGENTS)}
  netns: /var/run/netns/pod-${i}
  labels: {app: svc-${s}${extra}}
`;
}
function writeNodeFile(n: number, changed?: { i: number; rev: number }): void {
  const docs: string[] = [];
  for (let i = n; i < WORKLOADS; i += AGENTS)
    docs.push(workloadDoc(i, changed?.i === i ? `, rev: "${changed.rev}"` : ""));
  writeFileSync(join(cfgDir, `${node(n)}.yaml`), docs.join("---\n"));
}
const svcDocs: string[] = [];
for (let s = 0; s < SERVICES; s++) {
  svcDocs.push(`apiVersion: nodemesh.io/v1alpha1
kind: Service
metadata: {name: svc-${s}, namespace: ns-${s % NS}}
spec:
  addresses: [10.96.${s >> 8}.${s & 255}]
  ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}, {name: grpc, port: 9090}]
  selector: {app: svc-${s}}
`);
  svcDocs.push(`apiVersion: nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: svc-${s}, namespace: ns-${s % NS}}
spec:
  selector: {matchLabels: {app: svc-${s}}}
  rules: [{from: [{source: {namespaces: [ns-${s % NS}]}}]}]
`);
}
writeFileSync(join(cfgDir, "services.yaml"), svcDocs.join("---\n"));
for (let n = 0; n < AGENTS; n++) writeNodeFile(n);
writeFileSync(
  join(dir, "tokens"),
  Array.from({ length: AGENTS }, (_, n) => `${node(n)} ${token(n)}`).join("\n"),
);

// ---- controller (child process) -------------------------------------------------------------------
const port = 20000 + Math.floor(Math.random() * 20000);
const mon = port + 1;
const child = spawn(
  process.execPath,
  [
    "--disable-warning=ExperimentalWarning",
    new URL(import.meta.url).pathname,
    "--controller",
    "--config",
    cfgDir,
    "--listen",
    `127.0.0.1:${port}`,
    "--monitoring",
    `127.0.0.1:${mon}`,
    "--ca-dir",
    join(dir, "ca"),
    "--node-tokens-file",
    join(dir, "tokens"),
    "--log-level",
    "warn",
  ],
  { stdio: ["ignore", "ignore", "inherit"] },
);
const cpuSec = () => {
  const f = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(f[11]) + Number(f[12])) / 100;
};
const rssMiB = () => {
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  const get = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: get("VmRSS"), peak: get("VmHWM") };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0 = performance.now();
for (;;) {
  const ok = await fetch(`http://127.0.0.1:${mon}/readyz`).then(
    (r) => r.ok,
    () => false,
  );
  if (ok) break;
  if (performance.now() - t0 > 30_000) throw new Error("controller not ready in 30 s");
  await sleep(50);
}
const startupMs = performance.now() - t0;
const rssAtReady = rssMiB();
const rootPem = readFileSync(join(dir, "ca", "ca-cert.pem"), "utf8");

// ---- agents (child processes, so the 100 agents' heaps do not distort each other or the controller) ----
const WORKERS = Math.min(4, AGENTS);
const now = () => performance.timeOrigin + performance.now();
type Reply = { id: number; at?: number; count?: number; workloads?: number };
const workers = Array.from({ length: WORKERS }, (_, w) =>
  fork(
    new URL(import.meta.url).pathname,
    [
      "--agents-worker",
      JSON.stringify({
        port,
        rootPem,
        from: Math.floor((w * AGENTS) / WORKERS),
        to: Math.floor(((w + 1) * AGENTS) / WORKERS),
        services: SERVICES,
      }),
    ],
    {
      execArgv: ["--disable-warning=ExperimentalWarning"],
    },
  ),
);
let reqId = 0;
function ask(msg: object): Promise<Reply[]> {
  const id = ++reqId;
  return Promise.all(
    workers.map(
      (w) =>
        new Promise<Reply>((resolve) => {
          const on = (m: Reply) => {
            if (m.id !== id) return;
            w.off("message", on);
            resolve(m);
          };
          w.on("message", on);
          w.send({ ...msg, id });
        }),
    ),
  );
}
await ask({ type: "ping" }); // workers loaded and clients created
const cpuBeforeSync = cpuSec();
const syncStart = now();
const synced = await ask({ type: "start" });
const syncMs = Math.max(...synced.map((r) => r.at ?? NaN)) - syncStart;
const workloadsSeen = synced[0]?.workloads;
const rssAfterSync = rssMiB();
const syncCpu = cpuSec() - cpuBeforeSync;

const delays: number[] = [];
for (let k = 1; k <= CHANGES; k++) {
  const i = (k * 7919) % WORKLOADS;
  await ask({ type: "expect", name: `w-${i}`, rev: String(k) });
  const start = now();
  const done = ask({ type: "wait" });
  writeNodeFile(i % AGENTS, { i, rev: k });
  const replies = await done;
  delays.push(Math.max(...replies.map((r) => r.at ?? NaN)) - start);
  await sleep(20);
}
delays.sort((a, b) => a - b);
const pct = (p: number) =>
  delays[Math.min(delays.length - 1, Math.ceil((p / 100) * delays.length) - 1)] ?? NaN;

const csrStart = now();
const csrReplies = await ask({ type: "csr", count: Math.ceil(CSRS / WORKERS) });
const signed = csrReplies.reduce((a, r) => a + (r.count ?? 0), 0);
const csrPerSec = signed / ((now() - csrStart) / 1000);
const rssEnd = rssMiB();

await ask({ type: "stop" });
for (const w of workers) w.kill();

child.kill("SIGTERM");
await new Promise((r) => child.once("exit", r));
rmSync(dir, { recursive: true, force: true });

const rows: [string, string, string][] = [
  ["controller startup (10k workloads, CA)", `${startupMs.toFixed(0)} ms`, ""],
  [`full sync, ${AGENTS} agents × ${workloadsSeen} workloads`, `${syncMs.toFixed(0)} ms`, "≤ 2000 ms"],
  ["  controller CPU during the sync", `${(syncCpu * 1000).toFixed(0)} ms`, ""],
  [`file change → all agents, p50 (n=${CHANGES})`, `${pct(50).toFixed(1)} ms`, ""],
  [`file change → all agents, p99 (n=${CHANGES})`, `${pct(99).toFixed(1)} ms`, "≤ 250 ms"],
  ["CSR signings per second (32 in flight)", `${csrPerSec.toFixed(0)} /s`, ""],
  ["controller RSS when ready (before agents)", `${rssAtReady.rss.toFixed(0)} MiB`, ""],
  [
    "controller RSS after sync / peak",
    `${rssAfterSync.rss.toFixed(0)} / ${rssEnd.peak.toFixed(0)} MiB`,
    "≤ 200 MiB",
  ],
];
process.stdout.write(
  `\nnodemesh controller benchmark (${SERVICES} services, ${WORKLOADS} workloads, ${AGENTS} agents)\n`,
);
for (const [what, value, target] of rows)
  process.stdout.write(`  ${what.padEnd(48)} ${value.padStart(16)}  ${target}\n`);
