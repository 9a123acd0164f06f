// Turns the addon's raw probe facts into a report that names each missing feature and how to
// fix it. Pure, so that the wording and the decisions are unit-tested without a kernel.

/** What the addon measured (native/addon/module.cc Probe()). Numbers are 0 / 1 / -errno. */
export interface RawProbe {
  kernelRelease: string;
  btfVmlinux: boolean;
  capBpf: number;
  capNetAdmin: number;
  capSysAdmin: number;
  progTypes: Record<string, number>;
  helpers: Record<string, number>;
  /** The optional sockmap shortcut's program/map types and helpers (absent on an older addon). */
  sockmap?: Record<string, number>;
}

export interface MissingFeature {
  feature: string;
  hint: string;
  /** true when the cause is a missing privilege rather than a missing kernel feature. */
  privilege: boolean;
}

export interface FeatureReport {
  kernelRelease: string;
  btf: boolean;
  cgroup2Mount: string | undefined;
  bpffsMounted: boolean;
  capabilities: { bpf: boolean; netAdmin: boolean; sysAdmin: boolean };
  progTypes: Record<string, boolean>;
  helpers: Record<string, boolean>;
  missing: MissingFeature[];
  /**
   * The sockmap shortcut (docs/capture.md): optional, so what it lacks is listed here and never in
   * `missing`; without it the pod-local legs stay loopback TCP.
   */
  sockmap: { available: boolean; missing: string[] };
}

/** Oldest kernel with every helper we use (bpf_get_netns_cookie in sock_ops came in 5.15). */
export const MIN_KERNEL: readonly [number, number] = [5, 15];

export function kernelAtLeast(release: string, min: readonly [number, number]): boolean {
  const match = /^(\d+)\.(\d+)/.exec(release);
  if (!match) return false;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return major > min[0] || (major === min[0] && minor >= min[1]);
}

export function assessFeatures(
  raw: RawProbe,
  env: { cgroup2Mount: string | undefined; bpffsMounted: boolean },
): FeatureReport {
  const missing: MissingFeature[] = [];
  const need = (ok: boolean, feature: string, hint: string, privilege = false): boolean => {
    if (!ok) missing.push({ feature, hint, privilege });
    return ok;
  };
  const caps = { bpf: raw.capBpf === 0, netAdmin: raw.capNetAdmin === 0, sysAdmin: raw.capSysAdmin === 0 };
  need(
    caps.bpf,
    "CAP_BPF",
    "creating a bpf map was refused; run as root or grant CAP_BPF (CAP_SYS_ADMIN before 5.8)",
    true,
  );
  need(caps.netAdmin, "CAP_NET_ADMIN", "setting SO_MARK was refused; grant CAP_NET_ADMIN", true);
  need(
    caps.sysAdmin,
    "CAP_SYS_ADMIN",
    "setns() into a network namespace was refused; grant CAP_SYS_ADMIN",
    true,
  );
  const minText = `${MIN_KERNEL[0]}.${MIN_KERNEL[1]}`;
  need(
    kernelAtLeast(raw.kernelRelease, MIN_KERNEL),
    `kernel >= ${minText}`,
    `running ${raw.kernelRelease}; upgrade the node kernel`,
  );
  need(raw.btfVmlinux, "BTF (/sys/kernel/btf/vmlinux)", "build the kernel with CONFIG_DEBUG_INFO_BTF=y");
  need(
    env.cgroup2Mount !== undefined,
    "cgroup v2 mount",
    "mount cgroup2 (e.g. mount -t cgroup2 none /sys/fs/cgroup/unified)",
  );
  const progTypes: Record<string, boolean> = {};
  const helpers: Record<string, boolean> = {};
  // Without CAP_BPF the kernel answers every probe with EPERM: report the privilege only.
  const probesMeaningful = caps.bpf;
  for (const [name, value] of Object.entries(raw.progTypes)) {
    progTypes[name] = value === 1;
    if (probesMeaningful)
      need(
        value === 1,
        `bpf program type ${name}`,
        "enable CONFIG_CGROUP_BPF and CONFIG_BPF_SYSCALL in the kernel",
      );
  }
  for (const [name, value] of Object.entries(raw.helpers)) {
    helpers[name] = value === 1;
    if (probesMeaningful)
      need(value === 1, `bpf helper ${name}`, `the kernel lacks this helper; use a kernel >= ${minText}`);
  }
  const sockmapMissing = Object.entries(raw.sockmap ?? { "sockmap probe": 0 })
    .filter(([, value]) => value !== 1)
    .map(([name]) => name);
  return {
    sockmap: { available: caps.bpf && sockmapMissing.length === 0, missing: sockmapMissing },
    kernelRelease: raw.kernelRelease,
    btf: raw.btfVmlinux,
    cgroup2Mount: env.cgroup2Mount,
    bpffsMounted: env.bpffsMounted,
    capabilities: caps,
    progTypes,
    helpers,
    missing,
  };
}

export function describeMissing(missing: readonly MissingFeature[]): string {
  return missing.map((m) => `${m.feature} (${m.hint})`).join("; ");
}

/** The cgroup v2 mount point from /proc/mounts text; never assumed. */
export function findCgroup2Mount(procMounts: string): string | undefined {
  for (const line of procMounts.split("\n")) {
    const fields = line.split(" ");
    if (fields[2] === "cgroup2" && fields[1]) return fields[1].replace(/\\040/g, " ");
  }
  return undefined;
}
