// A tiny namespace fixture for the native e2e tests (ztunnel src/test_helpers/netns.rs style):
// pods are network namespaces named after the test run, with lo up; `link()` joins two pods with
// a veth pair on a /30 of 10.240.<subnet>.0/24. Everything is removed by `destroy()`, which
// never throws, so afterAll can always call it. Deliberately independent of lab/.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";

export interface Pod {
  name: string;
  netnsPath: string;
  address?: string;
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Runs a command inside a pod; resolves with exit code and output (never rejects). */
export function runIn(
  pod: Pod,
  cmd: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("ip", ["netns", "exec", pod.name, cmd, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

export class NetnsFixture {
  readonly prefix: string;
  readonly subnet: number;
  readonly pods: Pod[] = [];
  #links = 0;

  constructor(tag: string) {
    // Short and unique: netns and veth names (<= 15 chars) are derived from it.
    this.prefix = `nm${tag}${randomBytes(2).toString("hex")}`;
    this.subnet = 100 + ((randomBytes(1)[0] ?? 0) % 150);
  }

  pod(suffix: string): Pod {
    const name = `${this.prefix}${suffix}`;
    sh("ip", ["netns", "add", name]);
    const pod: Pod = { name, netnsPath: `/var/run/netns/${name}` };
    this.pods.push(pod);
    sh("ip", ["-n", name, "link", "set", "lo", "up"]);
    return pod;
  }

  /** A veth pair between two pods; each side gets an address of the same /30. */
  link(a: Pod, b: Pod): void {
    const n = this.#links++;
    const base = n * 4;
    const va = `${this.prefix}v${n}a`;
    const vb = `${this.prefix}v${n}b`;
    sh("ip", ["link", "add", va, "netns", a.name, "type", "veth", "peer", "name", vb, "netns", b.name]);
    a.address = `10.240.${this.subnet}.${base + 1}`;
    b.address = `10.240.${this.subnet}.${base + 2}`;
    sh("ip", ["-n", a.name, "addr", "add", `${a.address}/30`, "dev", va]);
    sh("ip", ["-n", b.name, "addr", "add", `${b.address}/30`, "dev", vb]);
    sh("ip", ["-n", a.name, "link", "set", va, "up"]);
    sh("ip", ["-n", b.name, "link", "set", vb, "up"]);
  }

  destroy(): void {
    for (const pod of this.pods.splice(0)) {
      try {
        sh("ip", ["netns", "del", pod.name]); // veths go with their namespace
      } catch {
        // already gone
      }
    }
  }
}
