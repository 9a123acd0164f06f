// Who may talk to whom, tested the way an attacker or an operator would: policies applied to a
// running mesh through the controller's YAML, impostors with foreign or wrong-identity certificates.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
    // Without an ALLOW policy any mesh identity may connect (Istio semantics)...
    expect((await run()).stdout.trim()).toBe("status 200");
    fx.applyExtra([policy("allow-client", "ALLOW", ["cluster.local/ns/default/sa/client"])]);
    await policyActive("allow-client");
    // ...with one, only the allowed identity does.
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
