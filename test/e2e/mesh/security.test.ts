// Who may talk to whom, tested the way an attacker or an operator would: policies applied to a
// running mesh through the controller's YAML, impostors with foreign or wrong-identity certificates.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LabHost } from "../../../lab/index.ts";
import { opensslLeaf, opensslRoot, type PemPair } from "../../helpers/openssl-certs.ts";
import { eventually, meshFixture, VIP, type MeshFixture } from "../../helpers/mesh-fixture.ts";

const FIXTURES = join(import.meta.dirname, "fixtures");
let fx: MeshFixture;
let dir: string;

beforeAll(async () => {
  fx = await meshFixture("msec");
  dir = mkdtempSync(join(tmpdir(), "nm-sec-"));
}, 120_000);
afterAll(async () => {
  await fx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const policy = (name: string, action: "ALLOW" | "DENY", principals: string[]) => ({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "AuthorizationPolicy",
  metadata: { name, namespace: "default" },
  spec: {
    selector: { matchLabels: { app: "echo" } },
    action,
    rules: [{ from: [{ source: { principals } }] }],
  },
});

/** Waits until both agents report the config version that carries `policyName`. */
async function policyActive(policyName: string): Promise<void> {
  await eventually(`policy ${policyName} on both agents`, async () => {
    for (const node of ["n1", "n2"]) {
      const dump = await fx.mesh.agentHttp(node, 15000, "/config_dump");
      if (!dump.includes(policyName)) return false;
    }
    return true;
  });
}

function issue(name: string, spiffeId: string, caCert: string, caKey: string): PemPair {
  return opensslLeaf(dir, name, spiffeId, { cert: caCert, key: caKey });
}

describe("authorization policy", () => {
  it("a DENY policy stops new connections and cuts a live one; the access log says why", async () => {
    const live = fx.lab.spawn("n2p1", [process.execPath, join(FIXTURES, "keepalive-client.ts")], {
      env: { ...process.env, TARGET: `${VIP}:80` },
    });
    await live.waitForOutput(/ok 5\n/);
    const before = await fx.curl("n2p1", `http://${VIP}/`, ["--fail"]);
    expect(before.code).toBe(0);

    fx.applyExtra([policy("deny-legacy", "DENY", ["cluster.local/ns/default/sa/legacy"])]);
    await policyActive("deny-legacy");

    // The live connection is closed by the destination agent's connection manager.
    await live.waitForOutput(/closed after \d+/, 10_000);
    await live.exited;
    // New connections from sa/legacy are refused...
    const denied = await fx.curl("n2p1", `http://${VIP}/`);
    expect(denied.code).not.toBe(0);
    expect(denied.body).toBe("");
    // ...while sa/client keeps working.
    const allowed = await fx.curl("n1p1", `http://${VIP}/`, ["--fail"]);
    expect(allowed.code).toBe(0);

    // The agents write their logs in batches (at least every 100 ms).
    const denials = () =>
      [...fx.agentLog("n1"), ...fx.agentLog("n2")].filter(
        (l) =>
          l["log"] === "access" &&
          l["direction"] === "inbound" &&
          l["response_flags"] === "AuthorizationPolicyDenied",
      );
    await eventually("both denial records", () => {
      const reasons = denials().map((r) => String(r["error"]));
      return (
        reasons.some((x) => /policy change/.test(x) && /deny-legacy/.test(x)) &&
        reasons.some((x) => /denied by DENY policy default\/deny-legacy/.test(x))
      );
    });
    expect(denials().every((r) => r["src.identity"] === "spiffe://cluster.local/ns/default/sa/legacy")).toBe(
      true,
    );

    fx.applyExtra([]);
    await eventually(
      "legacy allowed again",
      async () => (await fx.curl("n2p1", `http://${VIP}/`, ["--fail"])).code === 0,
    );
  });
});

describe("impostors at a pod's HBONE port", () => {
  const target = () => fx.lab.pod(2, 2).address;

  it("openssl s_client with a certificate from another CA is cut off", async () => {
    opensslRoot(dir, "evil-ca", "/O=evil");
    const evil = issue(
      "evil",
      "spiffe://cluster.local/ns/default/sa/client",
      join(dir, "evil-ca.crt"),
      join(dir, "evil-ca.key"),
    );
    const r = await fx.lab.exec(fx.lab.node(1), [
      "sh",
      "-c",
      `printf 'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n' | timeout 5 openssl s_client -connect ${target()}:15008 -tls1_3 -alpn h2 -key ${evil.key} -cert ${evil.cert} -ign_eof`,
    ]);
    const out = r.stdout + r.stderr;
    // The handshake itself completes from the client's side in TLS 1.3; the server then refuses it.
    expect(out).toMatch(/alert|unexpected eof|errno=104|reset/i);
    expect(r.code).not.toBe(124); // cut by the server, not by our timeout

    const viaH2 = await fx.lab.exec(fx.lab.node(1), [
      process.execPath,
      join(FIXTURES, "hbone-client.ts"),
      `https://${target()}:15008`,
      `${target()}:8080`,
      evil.key,
      evil.cert,
      fx.mesh.caFile,
    ]);
    expect(viaH2.stdout.trim()).toMatch(/^(error |closed by server)/);
    // The destination agent counts the rejected handshakes by reason and says so at info level.
    await eventually("unknown_ca counted on node 2", async () =>
      /nodemesh_tls_handshake_failures_total\{reason="unknown_ca"\} [1-9]/.test(
        await fx.mesh.agentHttp("n2", 15020, "/metrics"),
      ),
    );
    // The agents write their logs in batches (at least every 100 ms).
    await eventually("the info line on node 2", () =>
      fx
        .agentLog("n2")
        .some((l) => l["level"] === 30 && l["reason"] === "unknown_ca" && l["peer"] !== undefined),
    );
  });

  it("a valid mesh certificate for an identity the policy does not allow gets 401", async () => {
    const caKey = join(fx.mesh.dir, "ca", "ca-key.pem");
    const intruder = issue(
      "intruder",
      "spiffe://cluster.local/ns/default/sa/intruder",
      fx.mesh.caFile,
      caKey,
    );
    const run = () =>
      fx.lab.exec(fx.lab.node(1), [
        process.execPath,
        join(FIXTURES, "hbone-client.ts"),
        `https://${target()}:15008`,
        `${target()}:8080`,
        intruder.key,
        intruder.cert,
        fx.mesh.caFile,
      ]);
    // Even without an ALLOW policy: sa/intruder has no workload on node 1, where the tunnel comes from,
    // so its certificate is no good there (agent/proxy/tunnel/source-check.ts).
    expect((await run()).stdout.trim()).toBe("status 401");
    expect(await fx.mesh.agentHttp("n2", 15020, "/metrics")).toMatch(
      /nodemesh_tunnel_source_refused_total\{reason="identity_not_on_node"\} [1-9]/,
    );
    fx.applyExtra([policy("allow-client", "ALLOW", ["cluster.local/ns/default/sa/client"])]);
    await policyActive("allow-client");
    expect((await run()).stdout.trim()).toBe("status 401");
    expect((await fx.curl("n1p1", `http://${VIP}/`, ["--fail"])).code).toBe(0);
    // A CONNECT for an address that is not the pod behind this port is refused too.
    const client = issue("client", "spiffe://cluster.local/ns/default/sa/client", fx.mesh.caFile, caKey);
    const mismatch = await fx.lab.exec(fx.lab.node(1), [
      process.execPath,
      join(FIXTURES, "hbone-client.ts"),
      `https://${target()}:15008`,
      `${fx.lab.pod(1, 2).address}:8080`,
      client.key,
      client.cert,
      fx.mesh.caFile,
    ]);
    expect(mismatch.stdout.trim()).toBe("status 400");
    fx.applyExtra([]);
  });
});

describe("peer authentication", () => {
  it("STRICT by default: plaintext from outside the mesh never reaches the app; PERMISSIVE lets it in", async () => {
    const echo = fx.lab.pod(2, 2);
    // Node 1's own namespace is outside the mesh: a plain client there talks straight to the pod.
    const plaintext = () =>
      fx.lab.exec(fx.lab.node(1), ["curl", "-sS", "--max-time", "2", `http://${echo.address}:8080/plain`]);
    const refused = await plaintext();
    expect(refused.code).toBe(28); // the kernel drops the SYN: a filtered port
    // ...and the destination agent counts it.
    expect(await fx.mesh.agentHttp("n2", 15020, "/metrics")).toMatch(
      /nodemesh_plaintext_refused_total\{destination_workload="echo-n2p2",destination_workload_namespace="default"\} [1-9]/,
    );
    // Meshed clients still get through (the agent delivers from inside the pod).
    expect((await fx.curl("n1p1", `http://${echo.address}:8080/`, ["--fail"])).code).toBe(0);

    fx.applyExtra([
      {
        apiVersion: "nodemesh.io/v1alpha1",
        kind: "PeerAuthentication",
        metadata: { name: "echo-permissive", namespace: "default" },
        spec: { selector: { matchLabels: { app: "echo" } }, mtls: { mode: "PERMISSIVE" } },
      },
    ]);
    await eventually(
      "echo PERMISSIVE on node 2",
      async () =>
        (await fx.mesh.agentHttp("n2", 15000, "/config_dump")).match(/"mtls": ?"PERMISSIVE"/) !== null,
    );
    const admitted = await plaintext();
    expect(admitted.code).toBe(0);
    expect(JSON.parse(admitted.stdout)).toMatchObject({ pod: "n2p2", url: "/plain" });

    fx.applyExtra([]);
    await eventually("STRICT again", async () => (await plaintext()).code === 28);
  });
});

describe("per-port peer authentication in the kernel", () => {
  const echo = () => fx.lab.pod(2, 2);
  // Server-first TCP (the echo pod's banner on 2525): prints the banner, or exits 28 like curl on a timeout.
  const BANNER = `const [h, p] = process.argv.slice(1); const s = require("node:net").connect(Number(p), h);
    setTimeout(() => { console.log("timeout"); process.exit(28); }, 2000);
    s.once("data", (d) => { console.log(String(d).trim()); process.exit(0); });
    s.once("error", (e) => { console.log("error " + e.code); process.exit(1); });`;
  const banner = (where: LabHost | string) =>
    fx.lab.exec(where, [process.execPath, "-e", BANNER, echo().address, "2525"]);
  const http = (where: LabHost | string) =>
    fx.lab.exec(where, ["curl", "-sS", "--max-time", "2", `http://${echo().address}:8080/plain`]);
  // Node 1's own namespace is outside the mesh: plaintext from there reaches the pod directly.
  const outside = () => fx.lab.node(1);
  async function refusedCount(): Promise<number> {
    const m = (await fx.mesh.agentHttp("n2", 15020, "/metrics")).match(
      /nodemesh_plaintext_refused_total\{destination_workload="echo-n2p2",destination_workload_namespace="default"\} (\d+)/,
    );
    return m ? Number(m[1]) : 0;
  }
  const peerAuth = (mode: "STRICT" | "PERMISSIVE", port: string, portMode: "STRICT" | "PERMISSIVE") => ({
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "PeerAuthentication",
    metadata: { name: "echo-ports", namespace: "default" },
    spec: {
      selector: { matchLabels: { app: "echo" } },
      mtls: { mode },
      portLevelMtls: { [port]: { mode: portMode } },
    },
  });
  async function applied(mtls: string, port: string, portMode: string): Promise<void> {
    const want = new RegExp(`"mtls": ?"${mtls}", ?"portLevelMtls": ?\\{ ?"${port}": ?"${portMode}" ?\\}`);
    await eventually(`echo ${mtls} with ${port} ${portMode} on node 2`, async () =>
      want.test(JSON.stringify(JSON.parse(await fx.mesh.agentHttp("n2", 15000, "/config_dump")))),
    );
  }
  async function meshReachesBothPorts(): Promise<void> {
    expect((await fx.curl("n1p1", `http://${echo().address}:8080/`, ["--fail"])).code).toBe(0);
    const viaMesh = await banner("n1p1");
    expect(viaMesh.stdout.trim()).toBe("220 n2p2 ready");
  }

  it("STRICT with port 8080 PERMISSIVE: plaintext reaches 8080 only, the rest is dropped and counted", async () => {
    fx.applyExtra([peerAuth("STRICT", "8080", "PERMISSIVE")]);
    await applied("STRICT", "8080", "PERMISSIVE");
    const admitted = await http(outside());
    expect(admitted.code).toBe(0);
    expect(JSON.parse(admitted.stdout)).toMatchObject({ pod: "n2p2", url: "/plain" });
    const before = await refusedCount();
    const refused = await banner(outside());
    expect(refused.code, refused.stdout).toBe(28); // the SYN to 2525 is dropped: a filtered port
    await eventually("the refused SYN counted", async () => (await refusedCount()) > before);
    await meshReachesBothPorts();
  });

  it("PERMISSIVE with port 2525 STRICT: plaintext is dropped on 2525 only", async () => {
    fx.applyExtra([peerAuth("PERMISSIVE", "2525", "STRICT")]);
    await applied("PERMISSIVE", "2525", "STRICT");
    expect((await http(outside())).code).toBe(0);
    const before = await refusedCount();
    const refused = await banner(outside());
    expect(refused.code, refused.stdout).toBe(28);
    await eventually("the refused SYN counted", async () => (await refusedCount()) > before);
    await meshReachesBothPorts();

    fx.applyExtra([]);
    await eventually("STRICT on every port again", async () => (await http(outside())).code === 28);
    expect((await banner(outside())).code).toBe(28);
  });
});

describe("restart with a workload the new agent cannot enroll", () => {
  it("holds that workload in the kernel with its STRICT enforcement (no fail open), and enrolls it once its port frees", async () => {
    const echo = fx.lab.pod(2, 2);
    const plaintext = () =>
      fx.lab.exec(fx.lab.node(1), ["curl", "-sS", "--max-time", "2", `http://${echo.address}:8080/plain`]);
    expect((await plaintext()).code).toBe(28);
    const agent = fx.mesh.agent("n2");
    agent.process.kill("SIGTERM");
    await agent.process.exited; // it leaves its enrollments in the kernel for the next agent
    // And its listeners with the node's socket keeper: without the keeper (killed here) the pod's
    // 15008 is free for the blocker below.
    const keeper = `nodemesh.js keeper --pin-dir ${agent.pinDir} `;
    await fx.lab.exec(fx.lab.root, ["pkill", "-KILL", "-f", keeper]);
    await eventually(
      "the keeper gone",
      async () => (await fx.lab.exec(fx.lab.root, ["pgrep", "-f", keeper])).code === 1,
    );
    // Something else holds 15008 in the pod: the next agent's HBONE listener there fails to bind.
    const blocker = fx.lab.spawn(echo.name, [
      process.execPath,
      "-e",
      `require("node:net").createServer().listen(15008, "0.0.0.0", () => console.log("blocking"))`,
    ]);
    try {
      await blocker.waitForOutput("blocking");
      await fx.mesh.restartAgent("n2"); // the old process is gone: this only starts the new agent
      await agent.process.waitForOutput('"msg":"agent ready"', 30_000);
      const failed = fx
        .agentLog("n2")
        .find(
          (l) => l.workload === "default/echo-n2p2" && String(l.msg).startsWith("cannot enroll workload"),
        );
      expect((failed?.err as { message?: string } | undefined)?.message).toMatch(
        /cannot open the in-pod listeners of workload default\/echo-n2p2: .*EADDRINUSE.*refused until they open/,
      );
      const dump = JSON.parse(await fx.mesh.agentHttp("n2", 15000, "/config_dump")) as {
        notEnrolled: { uid: string; held: boolean }[];
      };
      expect(dump.notEnrolled).toMatchObject([{ uid: "default/echo-n2p2", held: true }]);
      // Held with its own STRICT: plaintext is dropped, not let through.
      expect((await plaintext()).code).toBe(28);
    } finally {
      blocker.kill("SIGKILL");
      await blocker.exited;
    }
    // The agent retries the enrolment (no config change needed), and mesh traffic reaches it again.
    await eventually(
      "echo-n2p2 enrolled by the retry and served",
      async () => (await fx.curl("n1p1", `http://${echo.address}:8080/`, ["--fail"])).code === 0,
      30_000,
    );
    expect((await plaintext()).code).toBe(28);
  });
});
