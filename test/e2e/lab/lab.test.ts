// The lab end to end: a 2-node x 2-pod lab, real traffic between pods (Node TCP server, curl),
// cgroup membership, nothing in the host namespace, and teardown, also after a crash.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lab } from "../../../lab/lab.ts";
import type { LabHost } from "../../../lab/plan.ts";
import { run } from "../../../lab/system.ts";
import { cgroup2Mount, requireRoot } from "../../helpers/privileges.ts";

const NODE = process.execPath;
const NAME = "e2elab";
const CRASH_NAME = "e2ecr";
const EXIT_NAME = "e2eex";
const TCP_SERVER =
  'require("node:net").createServer((s) => s.end("hello " + s.remoteAddress + "\\n"))' +
  '.listen(8080, "0.0.0.0", () => console.log("listening"))';
const TCP_CLIENT =
  'const [host, port] = process.argv.slice(1); const s = require("node:net").connect(+port, host);' +
  's.setEncoding("utf8").on("data", (d) => process.stdout.write(d));' +
  's.on("error", (e) => { console.error(e.code); process.exit(3); });';
const HTTP_SERVER =
  'require("node:http").createServer((q, r) => r.end("pod says hi to " + q.socket.remoteAddress))' +
  '.listen(8081, "0.0.0.0", () => console.log("listening"))';

const CHILD = fileURLToPath(new URL("./crash-child.ts", import.meta.url));

function startChild(name: string, mode: "crash" | "exit") {
  const child = spawn(NODE, ["--disable-warning=ExperimentalWarning", CHILD, name, mode], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const pids = new Promise<{ podPid: number; nodePid: number }>((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (out.includes("\n")) resolve(JSON.parse(out) as { podPid: number; nodePid: number });
    });
    child.on("exit", (code) => reject(new Error(`crash-child exited with ${code} before printing pids`)));
  });
  return { child, pids };
}

let lab: Lab;
let upMs = 0;

function tcp(from: LabHost, host: string, port = 8080) {
  return lab.exec(from, [NODE, "-e", TCP_CLIENT, host, String(port)], { timeoutMs: 10_000 });
}

function hostNetnsView(): string {
  return [
    readFileSync("/proc/net/dev", "utf8"),
    readFileSync("/proc/net/route", "utf8"),
    readFileSync("/proc/net/fib_trie", "utf8"),
  ].join("\n");
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function netnsList(): Promise<string> {
  return (await run(["ip", "netns", "list"], { check: true })).stdout;
}

beforeAll(async () => {
  requireRoot("the lab e2e test");
  const started = performance.now();
  lab = await Lab.up({ name: NAME, nodes: 2, podsPerNode: 2 });
  upMs = performance.now() - started;
});

afterAll(async () => {
  await lab?.down();
  await Lab.down(CRASH_NAME);
  await Lab.down(EXIT_NAME);
});

describe("lab up", () => {
  it("builds a 2x2 lab quickly, with one netns per host and one cgroup per pod", async () => {
    expect(upMs).toBeLessThan(2_000);
    const list = await netnsList();
    for (const ns of ["root", "n1", "n2", "n1p1", "n1p2", "n2p1", "n2p2"])
      expect(list).toContain(`nm-${NAME}-${ns}`);
    for (const pod of lab.pods) {
      expect(pod.cgroupPath).toBe(`${cgroup2Mount()}/nodemesh-lab/${NAME}/n${pod.node}/p${pod.index}`);
      expect(existsSync(`${pod.cgroupPath}/cgroup.procs`)).toBe(true);
    }
    expect(lab.controllerAddress).toBe("10.0.0.254");
    expect(lab.pod(2, 1).address).toBe("10.1.2.2");
  });

  it("carries pod-to-pod TCP across nodes and on the same node, without NAT", async () => {
    const server = lab.spawn(lab.pod(2, 2), [NODE, "-e", TCP_SERVER]);
    await server.waitForOutput("listening");
    const across = await tcp(lab.pod(1, 1), lab.pod(2, 2).address);
    expect(across).toMatchObject({ code: 0, stdout: "hello 10.1.1.2\n" });
    const sameNode = await tcp(lab.pod(2, 1), lab.pod(2, 2).address);
    expect(sameNode).toMatchObject({ code: 0, stdout: "hello 10.1.2.2\n" });
    server.kill();
    expect((await server.exited).signal).toBe("SIGTERM");
  });

  it("serves HTTP from a pod to curl in a pod on another node", async () => {
    const server = lab.spawn(lab.pod(2, 1), [NODE, "-e", HTTP_SERVER]);
    await server.waitForOutput("listening");
    const res = await lab.exec(lab.pod(1, 2), ["curl", "-sS", "--max-time", "5", "http://10.1.2.2:8081/"]);
    expect(res).toMatchObject({ code: 0, stdout: "pod says hi to 10.1.1.3" });
  });

  it("lets nodes reach the controller host and each other's pods", async () => {
    const controller = lab.spawn(lab.root, [NODE, "-e", TCP_SERVER]);
    await controller.waitForOutput("listening");
    expect((await tcp(lab.node(2), lab.controllerAddress)).stdout).toBe("hello 10.0.0.2\n");
    expect((await tcp(lab.pod(1, 1), lab.controllerAddress)).stdout).toBe("hello 10.1.1.2\n");
    const podServer = lab.spawn(lab.pod(1, 2), [NODE, "-e", TCP_SERVER]);
    await podServer.waitForOutput("listening");
    expect((await tcp(lab.node(2), lab.pod(1, 2).address)).stdout).toBe("hello 10.0.0.2\n");
    expect((await tcp(lab.root, lab.pod(1, 2).address)).stdout).toBe("hello 10.0.0.254\n");
  });

  it("routes service VIPs nowhere", async () => {
    const res = await tcp(lab.pod(1, 1), "10.96.0.10", 80);
    expect(res.code).toBe(3);
    expect(res.stderr.trim()).toMatch(/^(ENETUNREACH|EHOSTUNREACH)$/);
  });

  it("puts a pod's processes in the pod's cgroup before they run, and node processes in none", async () => {
    const pod = lab.pod(1, 2);
    const proc = lab.spawn(pod, ["sleep", "30"]);
    // The wrapper execs (no fork), so the pid is sleep's own.
    await expect.poll(() => readFileSync(`/proc/${proc.pid}/comm`, "utf8").trim()).toBe("sleep");
    expect(readFileSync(`/proc/${proc.pid}/cgroup`, "utf8")).toMatch(
      new RegExp(`^0::/nodemesh-lab/${NAME}/n1/p2$`, "m"),
    );
    expect(readFileSync(`${pod.cgroupPath}/cgroup.procs`, "utf8").split("\n")).toContain(String(proc.pid));
    // The first thing a pod command sees is already its cgroup.
    const self = await lab.exec(pod, ["cat", "/proc/self/cgroup"]);
    expect(self.stdout).toMatch(new RegExp(`^0::/nodemesh-lab/${NAME}/n1/p2$`, "m"));
    const node = await lab.exec(lab.node(1), ["cat", "/proc/self/cgroup"]);
    expect(node.stdout).not.toContain("nodemesh-lab");
  });

  it("adds nothing to the host namespace", async () => {
    const view = hostNetnsView();
    for (const name of ["br0", "veth-n1", "veth-n2", "veth-p1", "veth-p2"]) {
      expect(view).not.toMatch(new RegExp(`^\\s*${name}:`, "m"));
    }
    for (const addr of ["10.0.0.254", "10.0.0.1", "10.1.1.2", "10.1.2.3"])
      expect(view).not.toContain(`|-- ${addr}\n`);
    const links = (await run(["ip", "-d", "-o", "link", "show"], { check: true })).stdout;
    expect(links).not.toContain(`nm-${NAME}-`);
    const route = (await run(["ip", "route", "get", "10.1.1.2"], { check: true })).stdout;
    const dev = /\bdev (\S+)/.exec(route)?.[1];
    expect(dev).toBeDefined();
    const devInfo = (await run(["ip", "-d", "-o", "link", "show", "dev", String(dev)], { check: true }))
      .stdout;
    expect(devInfo).not.toMatch(/nm-|veth|bridge/);
    const routes = (await run(["ip", "route", "show", "table", "all"], { check: true })).stdout;
    expect(routes).not.toMatch(/^(10\.0\.0\.0\/24|10\.1\.\d+\.\d+)/m);
  });

  it("exec reports failures by exit status and finds hosts by short name", async () => {
    expect((await lab.exec("n2p1", ["sh", "-c", "exit 7"])).code).toBe(7);
    expect((await lab.exec("n2", ["ip", "-o", "-4", "addr", "show", "dev", "eth0"])).stdout).toContain(
      "10.0.0.2/24",
    );
    await expect(lab.exec("n2", ["false"], { check: true })).rejects.toMatchObject({
      code: "NODEMESH_ERR_LAB_COMMAND",
    });
    expect(() => lab.host("n9")).toThrow(/has no host n9/);
  });
});

describe("lab down", () => {
  it("kills the lab's processes and removes every namespace and cgroup", async () => {
    const second = await Lab.up({ name: "e2edn", nodes: 2, podsPerNode: 1 });
    const inPod = second.spawn(second.pod(2, 1), ["sleep", "600"]);
    const inNode = second.spawn(second.node(1), ["sleep", "600"]);
    await expect.poll(() => readFileSync(`/proc/${inPod.pid}/comm`, "utf8").trim()).toBe("sleep");
    const report = await second.down();
    expect(report.netns).toHaveLength(5);
    expect(report.cgroups).toHaveLength(5); // the lab, 2 nodes, 2 pods
    expect((await inPod.exited).signal).toBe("SIGKILL");
    expect((await inNode.exited).signal).toBe("SIGKILL");
    expect(await netnsList()).not.toContain("nm-e2edn-");
    expect(existsSync(`${cgroup2Mount()}/nodemesh-lab/e2edn`)).toBe(false);
    // Idempotent.
    expect(await Lab.down("e2edn")).toEqual({ netns: [], cgroups: [] });
  });

  it("cleans up after a crashed process that built a lab", async () => {
    const { child, pids } = startChild(CRASH_NAME, "crash");
    const { podPid, nodePid } = await pids;
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("close", resolve));
    // Leftovers: namespaces, cgroups and orphaned processes.
    expect(await netnsList()).toContain(`nm-${CRASH_NAME}-n1p1`);
    expect(existsSync(`${cgroup2Mount()}/nodemesh-lab/${CRASH_NAME}/n1/p1`)).toBe(true);
    await expect
      .poll(() => alive(podPid) && readFileSync(`/proc/${podPid}/comm`, "utf8").trim())
      .toBe("sleep");
    expect(alive(nodePid)).toBe(true);

    const report = await Lab.down(CRASH_NAME);
    expect(report.netns.sort()).toEqual(
      ["n1", "n1p1", "n2", "n2p1", "root"].map((h) => `nm-${CRASH_NAME}-${h}`).sort(),
    );
    expect(await netnsList()).not.toContain(`nm-${CRASH_NAME}-`);
    expect(existsSync(`${cgroup2Mount()}/nodemesh-lab/${CRASH_NAME}`)).toBe(false);
    await expect.poll(() => alive(podPid) || alive(nodePid)).toBe(false);
  });

  it("removes the lab at process exit when the builder forgot down()", async () => {
    const { child, pids } = startChild(EXIT_NAME, "exit");
    const { podPid, nodePid } = await pids;
    const code = await new Promise((resolve) => child.once("close", resolve));
    expect(code).toBe(0);
    // The exit hook ran synchronously before the process ended.
    expect(await netnsList()).not.toContain(`nm-${EXIT_NAME}-`);
    expect(existsSync(`${cgroup2Mount()}/nodemesh-lab/${EXIT_NAME}`)).toBe(false);
    await expect.poll(() => alive(podPid) || alive(nodePid)).toBe(false);
  });
});
