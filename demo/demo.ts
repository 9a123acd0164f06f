// `nodemesh demo`: the local demo mesh. Builds a lab of 2 nodes x 2 pods, starts the controller and one
// agent per node, runs unmodified sample apps (plain HTTP) in the pods, drives traffic through a service
// VIP, and prints what happens: requests per backend pod, identities on each side, latency, and a policy
// denial applied live. Runs until Ctrl-C or --duration, then removes everything it built.
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Lab, type LabProcess } from "../lab/index.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import {
  API_VERSION,
  DEMO_MESH,
  DEMO_ROUTES,
  DEMO_VIP,
  INGRESS_HOST,
  WEB_VIP,
  ingressDocs,
  meshConfigForLab,
} from "./mesh-config.ts";
import {
  CANARY_FAIL_PERCENT,
  CANARY_POD,
  CHECKOUT_POLICY,
  CHECKOUT_PORT,
  CHECKOUT_SERVICE,
  CHECKOUT_VIP,
  canaryEvidence,
} from "./canary.ts";
import { makeIngressCerts } from "./ingress-certs.ts";
import { startMesh, type Mesh } from "./mesh.ts";

const APPS = join(resolve(dirname(fileURLToPath(import.meta.url))), "apps");
const VIP = DEMO_VIP;
const DENY_AFTER_S = 8;

const DENY_LEGACY = {
  apiVersion: API_VERSION,
  kind: "AuthorizationPolicy",
  metadata: { name: "deny-legacy", namespace: "default" },
  spec: {
    selector: { matchLabels: { app: "echo" } },
    action: "DENY",
    rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/legacy"] } }] }],
  },
};

interface ClientWindow {
  ok: number;
  failed: number;
  byBackend: Record<string, number>;
  errors: Record<string, number>;
  p50ms: number;
  p99ms: number;
}

export async function demoMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { duration: { type: "string" }, name: { type: "string" } },
  });
  const duration = values.duration === undefined ? Infinity : Number(values.duration);
  if (!(duration > 0))
    throw new Error(`--duration must be a positive number of seconds, got "${values.duration}"`);
  const say = (s: string) => process.stdout.write(`${s}\n`);

  say("building the lab: 2 nodes x 2 pods (network namespaces + cgroups)...");
  const lab = await Lab.up({ name: values.name ?? "demo", nodes: 2, podsPerNode: 2, outside: true });
  // The ingress (docs/ingress.md): a Gateway on n1 with a certificate an external client can verify.
  const certDir = mkdtempSync(join(tmpdir(), "nodemesh-demo-ingress-"));
  const certs = makeIngressCerts(certDir);
  const ingress = ingressDocs(certs.certFile, certs.keyFile);
  const MESH = {
    ...DEMO_MESH,
    services: [...DEMO_MESH.services, CHECKOUT_SERVICE],
    extra: [...DEMO_ROUTES, ...ingress, CHECKOUT_POLICY],
  };
  const gatewayAddress = lab.node(1).address;
  const external = [
    "curl",
    "-s",
    "--max-time",
    "2",
    "--cacert",
    certs.caFile,
    "--resolve",
    `${INGRESS_HOST}:443:${gatewayAddress}`,
    "-w",
    "\n%{http_code}",
    `https://${INGRESS_HOST}/`,
  ];
  let mesh: Mesh | undefined;
  let stopRequested = false;
  const stop = () => {
    stopRequested = true;
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    mesh = await startMesh({ lab, yaml: meshConfigForLab(lab, MESH), log: (l) => say(`  ${l}`) });
    const identities = new Map<string, number>();
    const denials: string[] = [];
    for (const a of mesh.agents) watchAccessLog(a.process, identities, denials);

    for (const pod of ["n1p2", "n2p2"]) {
      const p = lab.spawn(pod, [process.execPath, join(APPS, "echo-server.ts")], {
        env: { ...process.env, POD_NAME: pod, GRPC_PORT: "off" },
      });
      await p.waitForOutput("listening");
      // checkout's backend on 8081: the same app, and on the canary pod a version failing half the time.
      const c = lab.spawn(pod, [process.execPath, join(APPS, "echo-server.ts")], {
        env: {
          ...process.env,
          POD_NAME: pod,
          PORT: String(CHECKOUT_PORT),
          GRPC_PORT: "off",
          ...(pod === CANARY_POD ? { FAIL_PERCENT: String(CANARY_FAIL_PERCENT) } : {}),
        },
      });
      await c.waitForOutput("listening");
    }
    const clients: Record<string, ClientWindow> = {};
    const loads = [
      { name: "n1p1 tcp echo", pod: "n1p1", url: `http://${VIP}/`, rate: "10" },
      { name: "n2p1 tcp echo", pod: "n2p1", url: `http://${VIP}/`, rate: "10" },
      { name: "n1p1 http web (90/10)", pod: "n1p1", url: `http://${WEB_VIP}/`, rate: "20" },
      {
        name: "n1p1 http web x-canary",
        pod: "n1p1",
        url: `http://${WEB_VIP}/`,
        rate: "5",
        header: "x-canary: yes",
      },
      { name: "n1p1 http checkout (bad canary)", pod: "n1p1", url: `http://${CHECKOUT_VIP}/`, rate: "20" },
    ];
    for (const l of loads) {
      const p = lab.spawn(l.pod, [process.execPath, join(APPS, "load-client.ts")], {
        env: {
          ...process.env,
          TARGET_URL: l.url,
          RATE: l.rate,
          REPORT_MS: "2000",
          ...(l.header ? { HEADER: l.header } : {}),
        },
      });
      createInterface({ input: p.stdout }).on("line", (line) => {
        try {
          clients[l.name] = JSON.parse(line) as ClientWindow;
        } catch {
          /* not a report line */
        }
      });
    }

    say(`
the mesh is up. Unmodified clients call service VIPs routed nowhere: only the eBPF redirect to the
node agent reaches them.
  http://${VIP}/ (echo, declared TCP): each connection is balanced over the echo pods on both nodes and
    carried over mTLS (HTTP/2 CONNECT to port 15008) with SPIFFE identities.
  http://${WEB_VIP}/ (web, declared HTTP): each request is routed by the HTTPRoute default/web —
    x-canary: yes → v2 (n2p2); everything else 90 % v1 (n1p2) / 10 % v2 — and carried as its own
    HTTP/2 stream on the same pooled mTLS sessions.
  client n1p1 = spiffe://cluster.local/ns/default/sa/client     legacy n2p1 = .../sa/legacy
  https://${INGRESS_HOST}/ from the lab's "outside" host (in no mesh): the ingress gateway on n1
    (${gatewayAddress}:443, TLS with a certificate curl checks) routes it 3:1 to web-v1/web-v2 over mTLS
    under its own identity spiffe://cluster.local/ns/default/sa/ingress; http:// is redirected (301).
  http://${CHECKOUT_VIP}/ (checkout, declared HTTP, both echo pods on :${CHECKOUT_PORT}): a bad canary —
    ${CANARY_POD} runs a version answering 503 to ${CANARY_FAIL_PERCENT} % of requests. The TrafficPolicy default/checkout
    retries a 503 on the other pod and opens ${CANARY_POD}'s circuit breaker after 3 failures in a row
    (10 s, then half-open): the client keeps succeeding while the agent's counts show the containment.
  after ${DENY_AFTER_S} s a DENY AuthorizationPolicy for sa/legacy is applied live.
look around (in another shell, after \`. scripts/env.sh\`):
  node bin/nodemesh.js lab exec --name ${lab.name} n1 -- curl -s 127.0.0.1:15000/config_dump
  node bin/nodemesh.js lab exec --name ${lab.name} n1 -- curl -s 127.0.0.1:15020/metrics | grep nodemesh_tcp
  node bin/nodemesh.js lab exec --name ${lab.name} n1p1 -- curl -s http://${VIP}/hello
  node bin/nodemesh.js lab exec --name ${lab.name} n1p1 -- curl -s -H 'x-canary: yes' http://${WEB_VIP}/hello
  node bin/nodemesh.js lab exec --name ${lab.name} n1 -- curl -s 127.0.0.1:15020/metrics | grep nodemesh_requests_total
  node bin/nodemesh.js lab exec --name ${lab.name} outside -- ${external.slice(0, -3).join(" ")} https://${INGRESS_HOST}/hello
operator commands (they find this lab's agents by themselves; add --lab ${lab.name} when several labs exist):
  node bin/nodemesh.js stat service            golden signals per service (also: stat workload, stat route)
  node bin/nodemesh.js tap web --max 20         live requests matched by the web route
  node bin/nodemesh.js tap workload/legacy-n2p1 --kind tcp     legacy's connections, denied after ${DENY_AFTER_S} s
  node bin/nodemesh.js explain n2p1 echo:80     why legacy's connections to echo are (or are not) denied
  node bin/nodemesh.js explain n1p1 web:80 --header 'x-canary: yes'   which route rule and endpoints apply
  node bin/nodemesh.js check                    kernel, BPF, pins, agents, controller, certificates, clocks
  node bin/nodemesh.js config n1                the n1 agent's config dump (-o json for all of it)
`);
    const started = Date.now();
    let denyApplied = false;
    while (!stopRequested && (Date.now() - started) / 1000 < duration) {
      await new Promise((r) => setTimeout(r, 2000));
      const t = Math.round((Date.now() - started) / 1000);
      if (!denyApplied && t >= DENY_AFTER_S) {
        mesh.writeConfig(meshConfigForLab(lab, { ...MESH, extra: [...MESH.extra, DENY_LEGACY] }));
        denyApplied = true;
        say(`[${t}s] applied AuthorizationPolicy default/deny-legacy (DENY from sa/legacy to app=echo)`);
      }
      say(`[${t}s] ${summary(clients, identities, denials)}`);
      say(`  ${await canaryLine(mesh, lab)}`);
      const ext = await lab.exec("outside", external);
      const [body = "", code = "000"] = ext.stdout.trim().split("\n").slice(-2);
      const pod = /"pod":"([^"]+)"/.exec(body)?.[1] ?? "-";
      say(
        `  external client (outside) → https://${INGRESS_HOST}/ via the ingress on n1: ${code} from ${pod}`,
      );
    }
    return 0;
  } finally {
    say("stopping: agents, controller, apps, BPF pins, namespaces...");
    await mesh?.stop();
    await lab.down();
    rmSync(certDir, { recursive: true, force: true });
    say("clean.");
  }
}

async function canaryLine(mesh: Mesh, lab: Lab): Promise<string> {
  const podOf = (address: string) => lab.pods.find((p) => p.address === address)?.name ?? address;
  try {
    const e = canaryEvidence(await mesh.agentHttp("n1", 15020, "/metrics"), podOf);
    const open = e.openEndpoints.length ? e.openEndpoints.join(" ") : "none";
    return `checkout, as the client's agent (n1) saw it: ${e.retries} retries so far, breaker opened ${e.transitionsToOpen} times, open now: ${open}`;
  } catch (err) {
    return `checkout: n1's metrics unavailable (${(err as Error).message})`;
  }
}

function summary(
  clients: Record<string, ClientWindow>,
  identities: Map<string, number>,
  denials: string[],
): string {
  const rows = Object.entries(clients).map(([pod, w]) => {
    const backends =
      Object.entries(w.byBackend)
        .map(([b, n]) => `${b}=${n}`)
        .join(" ") || "-";
    const errors = Object.entries(w.errors)
      .map(([e, n]) => `${e}=${n}`)
      .join(" ");
    return `\n    ${pod}: ok ${w.ok} failed ${w.failed}  backends ${backends}  p50 ${w.p50ms} ms p99 ${w.p99ms} ms${errors ? `  errors ${errors}` : ""}`;
  });
  const pairs = [...identities].map(([k, n]) => `\n    ${k}  (${n} connections or requests)`);
  const denied = denials.length ? `\n  last denial: ${denials[denials.length - 1]}` : "";
  return `requests in the last 2 s:${rows.join("")}\n  identities seen by the destination agents:${pairs.join("")}${denied}`;
}

function watchAccessLog(p: LabProcess, identities: Map<string, number>, denials: string[]): void {
  createInterface({ input: p.stdout }).on("line", (line) => {
    if (!line.includes('"access"') || !line.includes('"inbound"')) return;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      const key = `${String(rec["src.identity"])} -> ${String(rec["dst.identity"])} @ ${String(rec["dst.workload"])}`;
      if (rec["response_flags"] === "AuthorizationPolicyDenied") {
        denials.push(
          `${String(rec["src.identity"])} -> ${String(rec["dst.workload"])}: ${String(rec["error"] ?? rec["response_code_details"])}`,
        );
        if (denials.length > 10) denials.shift();
      } else {
        identities.set(key, (identities.get(key) ?? 0) + 1);
      }
    } catch {
      /* not JSON */
    }
  });
}
