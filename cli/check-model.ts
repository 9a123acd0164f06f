// `nodemesh check`'s decisions, pure: facts gathered by check.ts (from /proc/mounts, the kernel probe, the
// agents' admin pages and the controller's monitoring port) → one result per check, each with a fix hint
// when it is not ok. Linkerd's `check` shape: a stable id, ok / warn / fail, a detail line.

export type CheckStatus = "ok" | "warn" | "fail";

export interface CheckResult {
  /** Stable id: kernel, btf, cgroup2, bpffs, bpf-features, pins, agent-ready, ports, controller, certificates, clock. */
  readonly check: string;
  /** The host, node or controller it is about. */
  readonly target: string;
  readonly status: CheckStatus;
  readonly detail: string;
  readonly hint?: string;
}

/** Oldest kernel with every BPF helper the datapath uses (native/features.ts MIN_KERNEL). */
export const MIN_KERNEL = "5.15";
/** A clock further off than this breaks certificate validity windows at rotation time. */
export const MAX_SKEW_SECONDS = 5;
/** Rotation happens at half-life: a certificate under a quarter of its life left was not renewed. */
export const ROTATION_OVERDUE_FRACTION = 0.25;

const result = (
  check: string,
  target: string,
  status: CheckStatus,
  detail: string,
  hint?: string,
): CheckResult =>
  hint === undefined || status === "ok"
    ? { check, target, status, detail }
    : { check, target, status, detail, hint };

export function kernelCheck(release: string): CheckResult {
  const m = /^(\d+)\.(\d+)/.exec(release);
  const [minMajor, minMinor] = MIN_KERNEL.split(".").map(Number) as [number, number];
  const ok =
    m !== null && (Number(m[1]) > minMajor || (Number(m[1]) === minMajor && Number(m[2]) >= minMinor));
  return result(
    "kernel",
    "host",
    ok ? "ok" : "fail",
    `Linux ${release}`,
    `upgrade the node kernel to ${MIN_KERNEL} or newer`,
  );
}

export function btfCheck(present: boolean): CheckResult {
  return result(
    "btf",
    "host",
    present ? "ok" : "fail",
    present ? "/sys/kernel/btf/vmlinux present" : "/sys/kernel/btf/vmlinux missing",
    "use a kernel built with CONFIG_DEBUG_INFO_BTF=y",
  );
}

/** cgroup v2 and bpffs, from /proc/mounts (never assumed at a path). */
export function mountChecks(procMounts: string): CheckResult[] {
  const mounts = procMounts
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f.length > 2);
  const cg = mounts.find((f) => f[2] === "cgroup2")?.[1];
  const bpf = mounts.filter((f) => f[2] === "bpf").map((f) => f[1] as string);
  return [
    result(
      "cgroup2",
      "host",
      cg ? "ok" : "fail",
      cg ? `cgroup2 mounted at ${cg}` : "no cgroup2 mount in /proc/mounts",
      "mount cgroup v2: mount -t cgroup2 none /sys/fs/cgroup (or boot with systemd.unified_cgroup_hierarchy=1)",
    ),
    result(
      "bpffs",
      "host",
      bpf.includes("/sys/fs/bpf") ? "ok" : "fail",
      bpf.length ? `bpffs mounted at ${bpf.join(", ")}` : "no bpf filesystem in /proc/mounts",
      "mount -t bpf bpf /sys/fs/bpf (the pins that keep capture alive across agent restarts live there)",
    ),
  ];
}

/** The native probe's verdict on program types, helpers and privileges. */
export function featureCheck(missing: readonly { feature: string; hint: string }[] | string): CheckResult {
  if (typeof missing === "string")
    return result("bpf-features", "host", "fail", missing, "build the native addon: ./scripts/bootstrap.sh");
  if (missing.length === 0)
    return result("bpf-features", "host", "ok", "cgroup/connect4, sockops and helpers available");
  return result(
    "bpf-features",
    "host",
    "fail",
    `missing ${missing.map((m) => m.feature).join(", ")}`,
    missing.map((m) => m.hint).join("; "),
  );
}

export function pinsCheck(node: string, pinDir: string, entries: readonly string[] | undefined): CheckResult {
  const ok = entries !== undefined && entries.length > 0;
  const detail =
    entries === undefined ? `${pinDir} does not exist` : `${pinDir}: ${entries.length} pinned objects`;
  return result(
    "pins",
    node,
    ok ? "ok" : "fail",
    detail,
    "start the agent (it installs and pins its programs); `nodemesh agent --uninstall --pin-dir <dir>` removes stale ones",
  );
}

export function readyCheck(node: string, answer: { status: number; body: string } | string): CheckResult {
  if (typeof answer === "string")
    return result(
      "agent-ready",
      node,
      "fail",
      answer,
      "start the agent, or pass its admin address with --agent node=http://host:15000",
    );
  const ok = answer.status === 200;
  return result(
    "agent-ready",
    node,
    ok ? "ok" : "fail",
    answer.body.trim() || `status ${answer.status}`,
    "see the agent log: it waits for the datapath, the controller's config and its certificates",
  );
}

/** The metrics and health ports answer next to the admin port. */
export function portsCheck(node: string, answers: Readonly<Record<number, number | string>>): CheckResult {
  const bad = Object.entries(answers).filter(([, a]) => a !== 200);
  const detail = Object.entries(answers)
    .map(([p, a]) => `${p}: ${typeof a === "number" ? a : "unreachable"}`)
    .join(", ");
  return result(
    "ports",
    node,
    bad.length === 0 ? "ok" : "fail",
    detail,
    "another process may hold the port (ss -ltnp); the agent binds 15000, 15020, 15021 on the node and 15001, 15008 in each pod",
  );
}

/** Whether the agent has its config from the controller (its only way to have one). */
export function controllerFromAgent(
  node: string,
  dump: { version?: unknown; pending?: unknown },
): CheckResult {
  const pending = Array.isArray(dump.pending) ? (dump.pending as string[]) : [];
  const ok = typeof dump.version === "string" && !pending.includes("config");
  return result(
    "controller",
    node,
    ok ? "ok" : "fail",
    ok ? `config version ${String(dump.version)} from the controller` : "no config from the controller yet",
    "check the agent's --controller address, its token file, and that TCP 15012 to the controller is open",
  );
}

export function controllerCheck(
  readyz: { status: number; body: string } | string,
  connectedAgents: number | undefined,
  expected: number,
): CheckResult {
  if (typeof readyz === "string")
    return result(
      "controller",
      "controller",
      "fail",
      readyz,
      "start the controller, or pass its monitoring address with --controller http://host:15014",
    );
  if (readyz.status !== 200)
    return result(
      "controller",
      "controller",
      "fail",
      `not ready: ${readyz.body.trim()}`,
      "see the controller log (config source, CA, leader election)",
    );
  const detail = `ready, ${connectedAgents ?? "?"} agent(s) connected`;
  const short = connectedAgents !== undefined && connectedAgents < expected;
  return result(
    "controller",
    "controller",
    short ? "warn" : "ok",
    detail,
    `${expected} agents were asked; some are not connected to this controller replica (another replica may hold them)`,
  );
}

export interface CertFacts {
  readonly spiffeId: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
  readonly lastError?: string;
}

export function certificatesCheck(node: string, certs: readonly CertFacts[], nowMs: number): CheckResult {
  if (certs.length === 0)
    return result("certificates", node, "ok", "no local workloads, no certificates needed");
  const problems: string[] = [];
  let overdue = false;
  let soonest = Infinity;
  for (const c of certs) {
    const end = c.notAfter ? Date.parse(c.notAfter) : NaN;
    const start = c.notBefore ? Date.parse(c.notBefore) : NaN;
    if (!Number.isFinite(end))
      problems.push(`${c.spiffeId}: no certificate${c.lastError ? ` (${c.lastError})` : ""}`);
    else if (end <= nowMs) problems.push(`${c.spiffeId}: expired ${c.notAfter}`);
    else {
      soonest = Math.min(soonest, end - nowMs);
      if (Number.isFinite(start) && end - nowMs < (end - start) * ROTATION_OVERDUE_FRACTION) overdue = true;
    }
  }
  if (problems.length > 0)
    return result(
      "certificates",
      node,
      "fail",
      problems.join("; "),
      "the agent cannot get certificates: check the controller's CA and its log (CSR rejections)",
    );
  const detail = `${certs.length} certificate(s), the next expires in ${humanDuration(soonest)}`;
  return result(
    "certificates",
    node,
    overdue ? "warn" : "ok",
    detail,
    "rotation is overdue (it runs at half-life): check the agent log for CSR errors",
  );
}

export function clockCheck(target: string, dateHeader: string | undefined, nowMs: number): CheckResult {
  const remote = dateHeader ? Date.parse(dateHeader) : NaN;
  if (!Number.isFinite(remote))
    return result("clock", target, "warn", "no Date header to compare", "cannot tell the clock skew");
  // The Date header has one-second resolution: skew within ±1 s is noise.
  const skew = (remote - nowMs) / 1000;
  const bad = Math.abs(skew) > MAX_SKEW_SECONDS;
  return result(
    "clock",
    target,
    bad ? "fail" : "ok",
    `skew ${skew >= 0 ? "+" : ""}${skew.toFixed(0)} s`,
    "run NTP (chrony, systemd-timesyncd) on every node: certificates are checked against the clock",
  );
}

export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export const failed = (results: readonly CheckResult[]): boolean => results.some((r) => r.status === "fail");
