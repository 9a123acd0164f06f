// A real Kubernetes control plane for the kube tests: etcd (Debian etcd-server) and kube-apiserver
// (scripts/kube-apiserver.sh builds and caches it), both on 127.0.0.1 with ports from the kernel,
// in a temp dir removed on stop; plus kubectl and helm (the same script's `tools`). No kubelet and
// no controller-manager: tests write pod status themselves, as a kubelet would.
//
// Teardown is certain: stop() kills both processes and removes the dir, and an exit hook does the
// same if the test process dies first. The admin authenticates with a static token (system:masters).
// With `netns`, everything (etcd, the API server, kubectl, the readiness probe) runs in that
// network namespace, e.g. a lab's root where the controller runs; kubeConfig() is then only for
// processes started in that namespace.
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "../../..");
const SCRIPT = join(ROOT, "scripts/kube-apiserver.sh");

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Paths of the binaries; builds the API server on first use (minutes, once per machine). */
export async function kubeBinaries(): Promise<{ apiserver: string; kubectl: string; helm: string }> {
  const opts = { maxBuffer: 1 << 20, timeout: 30 * 60_000 };
  const apiserver = (await run(SCRIPT, [], opts)).stdout.trim();
  const tools = (await run(SCRIPT, ["tools"], opts)).stdout.trim();
  return { apiserver, kubectl: join(tools, "kubectl"), helm: join(tools, "helm") };
}

/** A kubernetes.io/tls Secret manifest from a certificate and key file (any pair, even a mismatched one). */
export function tlsSecretYaml(namespace: string, name: string, certFile: string, keyFile: string): string {
  const b64 = (f: string) => readFileSync(f).toString("base64");
  return `apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: ${namespace}}
type: kubernetes.io/tls
data: {tls.crt: ${b64(certFile)}, tls.key: ${b64(keyFile)}}
`;
}

export class KubeCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "nodemesh-kube-"));
  readonly token = randomBytes(16).toString("hex");
  readonly kubeconfigPath = join(this.dir, "kubeconfig");
  readonly #procs: ChildProcess[] = [];
  #apiserver: [string, string[]] = ["", []];
  readonly #logs: string[] = [];
  readonly #onExit = () => this.#kill();
  readonly #netns: string | undefined;
  #apiProc: ChildProcess | undefined;
  server = "";
  kubectlPath = "";
  helmPath = "";

  constructor(opts: { netns?: string } = {}) {
    this.#netns = opts.netns;
  }

  /** argv run in the cluster's network namespace (as is, without one). */
  #in(cmd: string, args: string[]): [string, string[]] {
    return this.#netns ? ["nsenter", [`--net=${this.#netns}`, "--", cmd, ...args]] : [cmd, args];
  }

  async start(): Promise<void> {
    process.once("exit", this.#onExit);
    const bins = await kubeBinaries();
    this.kubectlPath = bins.kubectl;
    this.helmPath = bins.helm;
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    this.#spawn("etcd", [
      "--name=default",
      `--data-dir=${join(this.dir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
    ]);
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(join(this.dir, "sa.key"), privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(join(this.dir, "sa.pub"), publicKey.export({ type: "spki", format: "pem" }));
    writeFileSync(join(this.dir, "tokens.csv"), `${this.token},admin,admin,system:masters\n`);
    this.#apiserver = [
      bins.apiserver,
      [
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${apiPort}`,
        "--insecure-port=0",
        `--cert-dir=${join(this.dir, "pki")}`,
        `--token-auth-file=${join(this.dir, "tokens.csv")}`,
        "--authorization-mode=RBAC",
        `--service-account-key-file=${join(this.dir, "sa.pub")}`,
        `--service-account-signing-key-file=${join(this.dir, "sa.key")}`,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--api-audiences=https://kubernetes.default.svc.cluster.local,nodemesh",
        "--service-cluster-ip-range=10.96.0.0/16",
        // No controller-manager creates the default ServiceAccount, which this admission requires.
        "--disable-admission-plugins=ServiceAccount",
        "--enable-priority-and-fairness=false",
      ],
    ];
    this.#apiProc = this.#spawn(...this.#apiserver);
    this.server = `https://127.0.0.1:${apiPort}`;
    await this.#waitReady();
    writeFileSync(this.kubeconfigPath, this.#kubeconfigYaml());
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /** Runs kubectl against this cluster; rejects with its stderr on a non-zero exit. */
  async kubectl(args: string[], stdin?: string): Promise<string> {
    return this.#tool(this.kubectlPath, ["--kubeconfig", this.kubeconfigPath, ...args], stdin);
  }

  async helm(args: string[]): Promise<string> {
    return this.#tool(this.helmPath, args, undefined, {
      HELM_CACHE_HOME: join(this.dir, "helm"),
      HELM_CONFIG_HOME: join(this.dir, "helm"),
    });
  }

  /** Kills the API server (etcd keeps the data) and starts it again on the same port: an outage. */
  async restartApiServer(downMs: number): Promise<void> {
    const p = this.#apiProc;
    if (!p || p.exitCode !== null || p.signalCode !== null) throw new Error("kube-apiserver is not running");
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await exited;
    await new Promise((r) => setTimeout(r, downMs));
    this.#apiProc = this.#spawn(...this.#apiserver);
    await this.#waitReady();
  }

  logs(): string {
    return this.#logs.join("").slice(-20_000);
  }

  async stop(): Promise<void> {
    this.#kill();
    await Promise.all(
      this.#procs.map((p) =>
        p.exitCode !== null || p.signalCode !== null ? undefined : new Promise((r) => p.once("exit", r)),
      ),
    );
    process.off("exit", this.#onExit);
    rmSync(this.dir, { recursive: true, force: true });
  }

  #kill(): void {
    for (const p of this.#procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  }

  #spawn(cmd: string, args: string[]): ChildProcess {
    // nsenter execs the program (no fork): the pid, and so kill(), are the program's.
    const p = spawn(...this.#in(cmd, args), { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (b: Buffer) => {
      this.#logs.push(b.toString());
      if (this.#logs.length > 2000) this.#logs.splice(0, 1000);
    };
    p.stdout?.on("data", keep);
    p.stderr?.on("data", keep);
    this.#procs.push(p);
    return p;
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + 90_000;
    let last = "";
    while (Date.now() < deadline) {
      for (const p of this.#procs)
        if (p.exitCode !== null) throw new Error(`${p.spawnfile} exited (${p.exitCode}):\n${this.logs()}`);
      try {
        const out = await run(
          ...this.#in("curl", [
            "-sk",
            "-m",
            "2",
            "-H",
            `Authorization: Bearer ${this.token}`,
            `${this.server}/readyz`,
          ]),
        );
        if (out.stdout.trim() === "ok") return;
        last = out.stdout.slice(0, 300);
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`kube-apiserver not ready in 90 s (last: ${last}):\n${this.logs()}`);
  }

  #kubeconfigYaml(): string {
    const ca = readFileSync(join(this.dir, "pki/apiserver.crt")).toString("base64");
    return `apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "${this.server}", certificate-authority-data: ${ca}}}]
users: [{name: admin, user: {token: "${this.token}"}}]
contexts: [{name: test, context: {cluster: test, user: admin}}]
current-context: test
`;
  }

  async #tool(
    bin: string,
    args: string[],
    stdin?: string,
    env: Record<string, string> = {},
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      const p = spawn(...this.#in(bin, args), {
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...process.env, ...env },
      });
      let out = "";
      let err = "";
      p.stdout.on("data", (b: Buffer) => (out += b.toString()));
      p.stderr.on("data", (b: Buffer) => (err += b.toString()));
      p.once("error", reject);
      p.once("exit", (code) =>
        code === 0
          ? resolve(out)
          : reject(new Error(`${bin} ${args.join(" ")} exited ${code}: ${err.trim()}`)),
      );
      p.stdin.end(stdin ?? "");
    });
  }
}
