// Test harness for the controller: a temp dir with a config and a CA dir, an in-process
// ControllerApp on 127.0.0.1 (random ports), and agent clients connected over real TLS.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { ControllerClient } from "../../../agent/control/client.ts";
import type { ControllerClientOptions } from "../../../agent/control/client.ts";
import type { MeshConfig } from "../../../controller/api/index.ts";
import { ControllerApp } from "../../../controller/app.ts";
import type { ControllerOptions } from "../../../controller/app.ts";

export const TOKENS = { "node-a": "token-node-a-0123456789", "node-b": "token-node-b-0123456789" } as const;
export const silent = pino({ level: "silent" });

export function workloadYaml(name: string, address: string, node: string, extra = ""): string {
  return `apiVersion: nodemesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: shop}
spec:
  address: ${address}
  serviceAccount: ${name}
  node: ${node}
  netns: /var/run/netns/${name}
  labels: {app: ${name}${extra}}
`;
}

export const BASE_CONFIG = [
  `apiVersion: nodemesh.io/v1alpha1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  addresses: [10.96.0.10]
  ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]
  selector: {app: web}
`,
  workloadYaml("web", "10.1.0.2", "node-a"),
  workloadYaml("db", "10.1.0.3", "node-b"),
  `apiVersion: nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: db-readers, namespace: shop}
spec:
  selector: {matchLabels: {app: db}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/shop/sa/web"]}}]
    to: [{operation: {ports: ["5432"]}}]
`,
].join("---\n");

export class Harness {
  readonly dir = mkdtempSync(join(tmpdir(), "nodemesh-ctl-"));
  readonly configFile = join(this.dir, "mesh.yaml");
  readonly caDir = join(this.dir, "ca");
  app: ControllerApp | undefined;
  readonly clients: ControllerClient[] = [];
  port = 0;

  constructor(config = BASE_CONFIG) {
    writeFileSync(this.configFile, config);
  }

  async startController(port = 0, extra: Partial<ControllerOptions> = {}): Promise<ControllerApp> {
    const app = new ControllerApp({
      configPath: this.configFile,
      listen: { host: "127.0.0.1", port },
      monitoring: { host: "127.0.0.1", port: 0 },
      ca: { dir: this.caDir },
      trustDomain: "cluster.local",
      rootNamespace: "nodemesh-system",
      svidTtlMs: 60_000,
      nodeTokens: new Map(Object.entries(TOKENS).map(([n, t]) => [t, n])),
      serverNames: { dns: ["localhost"], ips: ["127.0.0.1"] },
      heartbeatMs: 500,
      log: silent,
      defaultMetrics: false,
      ...extra,
    });
    await app.start();
    this.app = app;
    this.port = app.streamAddress?.port ?? 0;
    return app;
  }

  client(
    node: keyof typeof TOKENS,
    token: string = TOKENS[node],
    extra: Partial<ControllerClientOptions> = {},
  ): ControllerClient {
    const c = new ControllerClient({
      address: `127.0.0.1:${this.port}`,
      node,
      token,
      trustBundle: this.app?.ca.trustBundle ?? [],
      log: silent,
      backoffMinMs: 50,
      backoffMaxMs: 200,
      idleTimeoutMs: 2000,
      ...extra,
    });
    this.clients.push(c);
    return c;
  }

  async metrics(): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.app?.monitoringAddress?.port}/metrics`);
    return res.text();
  }

  /** One labelled sample of the in-process controller's metrics (0 when absent). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = await this.app?.metrics.registry.getSingleMetric(name)?.get();
    const match = m?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
    return match?.value ?? 0;
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.stop()));
    await this.app?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Resolves with the first config for which `pred` holds (checking the current one first). */
export function waitForConfig(
  c: ControllerClient,
  pred: (cfg: MeshConfig) => boolean,
  timeoutMs = 5000,
): Promise<MeshConfig> {
  return new Promise((resolve, reject) => {
    if (c.config && pred(c.config)) return resolve(c.config);
    const timer = setTimeout(() => {
      c.off("config", on);
      reject(new Error(`no matching config within ${timeoutMs} ms (have ${c.config?.version})`));
    }, timeoutMs);
    const on = (cfg: MeshConfig) => {
      if (!pred(cfg)) return;
      clearTimeout(timer);
      c.off("config", on);
      resolve(cfg);
    };
    c.on("config", on);
  });
}

export { until } from "../../helpers/until.ts";
