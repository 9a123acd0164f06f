// The demo backend (demo/apps/echo-server.ts) as the L7 tests use it, driven with real curl over
// HTTP/1.1 and HTTP/2 prior knowledge on the same port, plus its process contract (env, drain).
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APPS, curl, run, startBackend, type Backend } from "./harness.ts";

const PROTOCOLS = [
  { flag: "--http1.1", protocol: "HTTP/1.1", version: "1.1" },
  { flag: "--http2-prior-knowledge", protocol: "HTTP/2", version: "2" },
];

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

describe("echo-server over HTTP/1.1 and h2c on one port", () => {
  let backend: Backend;
  let dir: string;
  let url: (path: string) => string;

  beforeAll(async () => {
    backend = await startBackend("pod-a");
    url = (path) => `http://127.0.0.1:${backend.http}${path}`;
    dir = mkdtempSync(join(tmpdir(), "nodemesh-backend-"));
  });
  afterAll(async () => {
    await backend?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe.each(PROTOCOLS)("$protocol", ({ flag, protocol, version }) => {
    it("reports the pod, the request as it arrived and the protocol", async () => {
      const r = await curl([flag, "-H", "x-test: 42", url("/a/b?route=canary&x=1")]);
      expect(r.status).toBe(200);
      expect(r.version).toBe(version);
      expect(r.headers["x-served-by"]).toEqual(["pod-a"]);
      const body = JSON.parse(r.body) as Record<string, unknown>;
      expect(body).toMatchObject({
        pod: "pod-a",
        method: "GET",
        url: "/a/b?route=canary&x=1",
        path: "/a/b",
        query: { route: "canary", x: "1" },
        authority: `127.0.0.1:${backend.http}`,
        bodyBytes: 0,
        protocol,
      });
      expect(body.headers).toMatchObject({ "x-test": "42", "user-agent": expect.stringMatching(/^curl\//) });
      expect(body.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    });

    it("answers the status asked for with ?status=, still with the report", async () => {
      const r = await curl([flag, url("/?status=503")]);
      expect(r.status).toBe(503);
      expect(JSON.parse(r.body)).toMatchObject({ pod: "pod-a", protocol });
    });

    it("waits ?delay= milliseconds before answering", async () => {
      const r = await curl([flag, url("/?delay=400")]);
      expect(r.status).toBe(200);
      expect(r.timeTotal).toBeGreaterThanOrEqual(0.39);
    });

    it("rejects a bad parameter with 400 naming it", async () => {
      const r = await curl([flag, url("/?delay=soon")]);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body)).toMatchObject({
        field: "delay",
        error: expect.stringMatching(/^query parameter delay:/),
      });
    });

    it("fails every request at ?fail=100% and none at ?fail=0%", async () => {
      expect((await curl([flag, url("/?fail=100%25")])).status).toBe(503);
      expect((await curl([flag, url("/?fail=0%25")])).status).toBe(200);
    });

    it("streams a body of ?bytes= bytes with its content-length", async () => {
      const r = await curl([flag, "-o", "/dev/null", url("/big?bytes=3000000")]);
      expect(r.status).toBe(200);
      expect(r.sizeDownload).toBe(3_000_000);
      expect(r.headers["content-length"]).toEqual(["3000000"]);
    });

    it("echoes a 4 MiB request body byte for byte with ?echo=1", async () => {
      const sent = randomBytes(4 * 1024 * 1024);
      const inFile = join(dir, `in-${version}`);
      const outFile = join(dir, `out-${version}`);
      writeFileSync(inFile, sent);
      const r = await curl([flag, "--data-binary", `@${inFile}`, "-o", outFile, url("/up?echo=1")]);
      expect(r.status).toBe(200);
      expect(sha(readFileSync(outFile))).toBe(sha(sent));
    });

    it("answers an Expect: 100-continue upload normally", async () => {
      const inFile = join(dir, `expect-${version}`);
      writeFileSync(inFile, randomBytes(1_000_000));
      const r = await curl([
        flag,
        "-H",
        "expect: 100-continue",
        "--data-binary",
        `@${inFile}`,
        url("/upload"),
      ]);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ method: "POST", bodyBytes: 1_000_000 });
    });

    it("answers 426 on /ws without a WebSocket upgrade", async () => {
      const r = await curl([flag, url("/ws")]);
      expect(r.status).toBe(426);
      expect(JSON.parse(r.body).error).toMatch(/WebSocket endpoint/);
    });
  });

  it("serves several HTTP/1.1 requests on one keep-alive connection", async () => {
    const r = await run("curl", ["-sS", "--http1.1", url("/one"), url("/two")]);
    const [one, two] = r.stdout
      .split(/(?<=\})(?=\{)/)
      .map((s) => JSON.parse(s) as { path: string; peer: string });
    expect(one?.path).toBe("/one");
    expect(two?.path).toBe("/two");
    expect(two?.peer).toBe(one?.peer);
  });

  it("serves an HTTP/1.1 request that offers Upgrade: h2c as plain HTTP/1.1", async () => {
    const r = await curl(["--http2", url("/offer")]);
    expect(r.version).toBe("1.1");
    expect(JSON.parse(r.body)).toMatchObject({ protocol: "HTTP/1.1", headers: { upgrade: "h2c" } });
  });

  it("answers bytes that are neither HTTP/1 nor HTTP/2 with 400 and closes", async () => {
    const socket = connect(backend.http, "127.0.0.1");
    socket.end("\x16\x03\x01 not http at all\r\n\r\n");
    let got = "";
    for await (const chunk of socket) got += String(chunk);
    expect(got).toMatch(/^HTTP\/1\.1 400 /);
  });
});

describe("echo-server process contract", () => {
  it("names a bad port variable and exits 2 before listening", async () => {
    const r = await run(process.execPath, [join(APPS, "echo-server.ts")], { PORT: "80a", POD_NAME: "x" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PORT must be a TCP port 0\.\.65535 or "off", got "80a"/);
    const g = await run(process.execPath, [join(APPS, "echo-server.ts")], { PORT: "0", GRPC_PORT: "70000" });
    expect(g.code).toBe(2);
    expect(g.stderr).toMatch(/GRPC_PORT must be a TCP port/);
  });

  it("leaves gRPC and the banner off when asked and says so in its ready line", async () => {
    const b = await startBackend("pod-off", { GRPC_PORT: "off", TCP_BANNER_PORT: "" });
    expect(b.grpc).toBeNull();
    expect(b.banner).toBeNull();
    expect(await b.stop()).toBe(0);
  });

  it("finishes a request in flight on SIGTERM, then exits 0", async () => {
    const b = await startBackend("pod-drain", { GRPC_PORT: "off" });
    const pending = curl(["--http1.1", `http://127.0.0.1:${b.http}/?delay=600`]);
    await new Promise((r) => setTimeout(r, 200));
    const code = b.stop();
    const r = await pending;
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).pod).toBe("pod-drain");
    expect(await code).toBe(0);
  });
});
