// End-to-end: real curl and Node clients in network namespaces, redirected by the BPF programs
// to in-pod listeners owned by this test process through the addon. Pods: a and c enrolled,
// b not enrolled (and the peer of a over a veth pair).
import { spawn } from "node:child_process";
import { closeSync } from "node:fs";
import type net from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as nm from "../../../native/index.ts";
import { requireRoot } from "../../helpers/privileges.ts";
import { NetnsFixture, runIn } from "./netns-fixture.ts";
import type { Pod } from "./netns-fixture.ts";
import { captureListener, directServer, getOverFd } from "./servers.ts";
import type { CaptureReply } from "./servers.ts";

const VIP_A = "10.96.0.10";
const VIP_C = "10.96.0.11";
const APP_SERVER = `require("node:http").createServer((q, s) => s.end("app")).listen(7171, () => console.log("up"))`;
const BUSY_APP = `require("node:net").createServer().listen(15999, "127.0.0.1", () => console.log("up"))`;
const CLIENT = fileURLToPath(new URL("./same-port-client.ts", import.meta.url));

const fx = new NetnsFixture("r");
const pin = `/sys/fs/bpf/${fx.prefix}`;
const servers: net.Server[] = [];
let dp: nm.Datapath | undefined;
let a: Pod, b: Pod, c: Pod;

async function curl(pod: Pod, url: string): Promise<string> {
  const res = await runIn(pod, "curl", ["-s", "--max-time", "5", url]);
  expect(res.code, `curl ${url} in ${pod.name}: ${res.stderr}`).toBe(0);
  return res.stdout;
}

function meshAll(): void {
  dp!.setMeshedDestinations([
    { address: VIP_A, port: 80 },
    { address: VIP_C, port: 81 },
    { address: b.address!, port: 8080 },
    { address: a.address!, port: 0 },
  ]);
}

beforeAll(async () => {
  requireRoot("native redirect e2e");
  a = fx.pod("a");
  b = fx.pod("b");
  c = fx.pod("c");
  fx.link(a, b);
  dp = await nm.install({ pinDir: pin });
  for (const pod of [a, c]) servers.push(await captureListener(pod, 15001, () => dp));
  for (const port of [8080, 9090, 7070]) servers.push(await directServer(b, port));
  servers.push(await directServer(a, 8081));
  await dp.enrollNetns(a.netnsPath);
  await dp.enrollNetns(c.netnsPath, { outboundPort: 15001 });
  meshAll();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  try {
    dp?.uninstall();
  } catch {
    nm.removePins(pin);
  }
  fx.destroy();
});

describe("connect redirection", () => {
  it("redirects curl to a service VIP and reports the exact original destination", async () => {
    const reply = JSON.parse(await curl(a, `http://${VIP_A}/`)) as CaptureReply;
    expect(reply).toMatchObject({ pod: a.name, orig: `${VIP_A}:80` });
  });

  it("answers getpeername() with the original destination, not the capture port", async () => {
    // Node's socket.remoteAddress/remotePort come from getpeername(); curl's %{remote_ip} too.
    const script = `const s = require("node:net").connect(80, "${VIP_A}", () => { console.log(s.remoteAddress + ":" + s.remotePort); s.destroy(); });`;
    const node = await runIn(a, process.execPath, ["-e", script]);
    expect(node.stdout.trim()).toBe(`${VIP_A}:80`);
    const res = await runIn(a, "curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{remote_ip}:%{remote_port}",
      `http://${VIP_A}/`,
    ]);
    expect(res.stdout).toBe(`${VIP_A}:80`);
  });

  it("redirects curl to a meshed pod address:port", async () => {
    const reply = JSON.parse(await curl(a, `http://${b.address}:8080/`)) as CaptureReply;
    expect(reply).toMatchObject({ pod: a.name, orig: `${b.address}:8080` });
  });

  it("leaves a non-meshed destination alone", async () => {
    expect(await curl(a, `http://${b.address}:9090/`)).toBe(`direct:${b.name}:9090`);
  });

  it("refuses a held pod's meshed connects (EPERM), leaves the rest alone, and redirects again once enrolled", async () => {
    try {
      await dp!.enrollNetns(a.netnsPath, { refuse: true });
      expect(dp!.workloads().netns.map((w) => w.outboundPort)).toContain(0);
      const held = await runIn(a, "curl", ["-sS", "--max-time", "5", `http://${b.address}:8080/`]);
      expect(held.code, held.stdout).toBe(7); // refused at connect(): no SYN left the pod
      expect(held.stderr).toMatch(/not permitted|couldn't connect/i);
      const node = await runIn(a, process.execPath, [
        "-e",
        `require("node:net").connect(80, "${VIP_A}").on("error", (e) => console.log(e.code))`,
      ]);
      expect(node.stdout.trim()).toBe("EPERM");
      expect(await curl(a, `http://${b.address}:9090/`)).toBe(`direct:${b.name}:9090`);
      await expect(dp!.enrollNetns(a.netnsPath, { refuse: true, outboundPort: 15001 })).rejects.toMatchObject(
        {
          code: "NODEMESH_ERR_NATIVE_INVALID_ARGUMENT",
        },
      );
    } finally {
      await dp!.enrollNetns(a.netnsPath);
    }
    const reply = JSON.parse(await curl(a, `http://${b.address}:8080/`)) as CaptureReply;
    expect(reply).toMatchObject({ pod: a.name, orig: `${b.address}:8080` });
  });

  it("leaves a pod that is not enrolled alone", async () => {
    // a's address is meshed on every port, but b is not enrolled.
    expect(await curl(b, `http://${a.address}:8081/`)).toBe(`direct:${a.name}:8081`);
  });

  it("does not redirect the listener's own marked sockets, and does redirect unmarked ones", async () => {
    const marked = await nm.socketInNetns(a.netnsPath);
    expect(await getOverFd(marked, b.address!, 8080)).toBe(`direct:${b.name}:8080`);
    const unmarked = await nm.socketInNetns(a.netnsPath, { mark: 0 });
    const reply = JSON.parse(await getOverFd(unmarked, b.address!, 8080)) as CaptureReply;
    expect(reply.orig).toBe(`${b.address}:8080`);
  });

  it("keeps 500 concurrent connections from two pods using the same source ports apart", async () => {
    const node = process.execPath;
    const flags = ["--disable-warning=ExperimentalWarning", CLIENT];
    // Below the kernel's ephemeral range (32768-60999): no earlier connection of these pods (curl's
    // ephemeral ports, in TIME_WAIT) can hold one of them, which made bind() fail with EADDRINUSE.
    const firstPort = "21000";
    const [ra, rc] = await Promise.all([
      runIn(a, node, [...flags, VIP_A, "80", firstPort, "250"], 45_000),
      runIn(c, node, [...flags, VIP_C, "81", firstPort, "250"], 45_000),
    ]);
    for (const [pod, res, vip] of [
      [a, ra, `${VIP_A}:80`],
      [c, rc, `${VIP_C}:81`],
    ] as const) {
      expect(res.code, res.stderr).toBe(0);
      const lines = res.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { localPort: number; body?: string; error?: string });
      expect(lines).toHaveLength(250);
      for (const line of lines) {
        expect(line.error).toBeUndefined();
        const reply = JSON.parse(line.body ?? "") as CaptureReply;
        expect(reply).toEqual({ pod: pod.name, orig: vip, peerPort: line.localPort });
      }
    }
  });

  it("captures all TCP except excluded ports and CIDRs in all-TCP mode", async () => {
    try {
      dp!.setCaptureMode({ allTcp: true, excludePorts: [9090] });
      expect((JSON.parse(await curl(a, `http://${b.address}:7070/`)) as CaptureReply).orig).toBe(
        `${b.address}:7070`,
      );
      expect(await curl(a, `http://${b.address}:9090/`)).toBe(`direct:${b.name}:9090`);
      dp!.setCaptureMode({ allTcp: true, excludeCidrs: [`${b.address}/32`] });
      expect(await curl(a, `http://${b.address}:7070/`)).toBe(`direct:${b.name}:7070`);
    } finally {
      dp!.setCaptureMode({ allTcp: false });
    }
    expect(await curl(a, `http://${b.address}:7070/`)).toBe(`direct:${b.name}:7070`);
  });
});

describe("bad input is a clear error and changes nothing", () => {
  it("rejects a namespace that does not exist", async () => {
    const before = dp!.workloads();
    await expect(dp!.enrollNetns(`/var/run/netns/${fx.prefix}missing`)).rejects.toMatchObject({
      code: "NODEMESH_ERR_NATIVE_NETNS",
      message: expect.stringMatching(/does not exist; check that the pod is running/),
    });
    expect(dp!.workloads()).toEqual(before);
  });

  it("rejects a path that is not a network namespace, naming op and errno", async () => {
    await expect(dp!.enrollNetns("/proc/self/ns/uts")).rejects.toMatchObject({
      code: "NODEMESH_ERR_NATIVE_NETNS",
      op: "open network namespace",
      errnoCode: "EINVAL",
    });
  });

  it("rejects a malformed address without touching the meshed set", async () => {
    expect(() =>
      dp!.setMeshedDestinations([
        { address: VIP_A, port: 80 },
        { address: "10.96.0.300", port: 80 },
      ]),
    ).toThrow(expect.objectContaining({ code: "NODEMESH_ERR_NATIVE_INVALID_ARGUMENT" }));
    // The full set is still there: b:8080 is still redirected.
    expect((JSON.parse(await curl(a, `http://${b.address}:8080/`)) as CaptureReply).orig).toBe(
      `${b.address}:8080`,
    );
  });

  it("shares an in-pod port with another agent listener (SO_REUSEPORT, for upgrades)", async () => {
    // 15001 is held by the capture listener above; a second agent can bind it during a hand-over.
    const fd = await nm.listenInNetns(a.netnsPath, "127.0.0.1", 15001);
    expect(fd).toBeGreaterThan(2);
    closeSync(fd);
  });

  it("reports a busy in-pod port with op, errno and code", async () => {
    // An application's own listener (no SO_REUSEPORT) really makes the port busy.
    const app = spawn("nsenter", [`--net=${a.netnsPath}`, "--", process.execPath, "-e", BUSY_APP]);
    try {
      await new Promise<void>((resolve, reject) => {
        app.stdout.once("data", () => resolve());
        app.once("exit", (code) => reject(new Error(`busy-port app exited with ${code}`)));
      });
      await expect(nm.listenInNetns(a.netnsPath, "127.0.0.1", 15999)).rejects.toMatchObject({
        code: "NODEMESH_ERR_NATIVE_SOCKET",
        op: "bind",
        errno: 98,
        errnoCode: "EADDRINUSE",
        stack: expect.stringContaining("redirect.test.ts"),
      });
    } finally {
      app.kill();
    }
  });
});

describe("PeerAuthentication STRICT in the kernel (cgroup_skb ingress)", () => {
  it("drops plaintext from outside the pod, keeps loopback and the agent's own listeners", async () => {
    // The application is a process of the pod's own, not a socket the agent opened.
    const app = spawn("nsenter", [`--net=${b.netnsPath}`, "--", process.execPath, "-e", APP_SERVER]);
    let cookie: bigint | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        app.stdout.once("data", () => resolve());
        app.once("exit", (code) => reject(new Error(`app exited with ${code}`)));
      });
      const fromA = () => runIn(a, "curl", ["-s", "--max-time", "2", `http://${b.address}:7171/`]);
      expect((await fromA()).stdout).toBe("app");

      cookie = (await dp!.enrollNetns(b.netnsPath, { strict: true })).netnsCookie;
      expect(dp!.workloads().netns.find((w) => w.id === cookie)?.strict).toBe(true);
      const blocked = await fromA();
      expect(blocked.code).toBe(28); // the SYN is dropped: curl times out
      // The agent's in-pod listeners carry its mark and stay reachable from outside.
      expect(await curl(a, `http://${b.address}:9090/`)).toBe(`direct:${b.name}:9090`);
      // Inside the pod, over loopback, to 127.0.0.1 and to the pod's own address (how the agent delivers).
      expect((await runIn(b, "curl", ["-s", "--max-time", "2", "http://127.0.0.1:7171/"])).stdout).toBe(
        "app",
      );
      expect((await runIn(b, "curl", ["-s", "--max-time", "2", `http://${b.address}:7171/`])).stdout).toBe(
        "app",
      );

      await dp!.enrollNetns(b.netnsPath, { strict: false });
      expect((await fromA()).stdout).toBe("app");
    } finally {
      app.kill();
      if (cookie !== undefined) dp!.unenrollNetns(cookie);
    }
  });
});

describe("namespace handles (per-connection sockets)", () => {
  it("creates marked sockets inside the pod's namespace without a thread per socket", async () => {
    const h = nm.openNetns(a.netnsPath);
    try {
      // 127.0.0.1:15001 answers only inside pod a; the mark keeps connect4 from redirecting it.
      const body = await getOverFd(h.socket(), "127.0.0.1", 15001);
      expect(JSON.parse(body)).toMatchObject({ pod: a.name, orig: "none" });
    } finally {
      h.close();
    }
    expect(() => h.socket()).toThrow(/closed/);
    expect(() => nm.openNetns("/run/netns/nm-does-not-exist")).toThrow(/does not exist/);
  });
});
