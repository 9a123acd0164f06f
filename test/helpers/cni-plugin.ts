// The real CNI plugin executable (cni/nodemesh-cni) run as a container runtime runs it for a
// chained plugin (CNI spec, "Execution protocol"): CNI_* in the environment, the network config with
// the previous plugin's result on stdin, the result or error on stdout. Shared by the CNI
// integration tests and the Kubernetes e2e, so both drive the plugin exactly alike.
import { spawn } from "node:child_process";
import { join } from "node:path";

export const CNI_PLUGIN = join(import.meta.dirname, "../../cni/nodemesh-cni");

export interface CniAddOptions {
  /** The agent's CNI socket (network config `agentSocket`). */
  socket: string;
  /** CNI_NETNS: the sandbox's network namespace path. */
  netns: string;
  /** The pod's address as the previous plugin's result gives it (prevResult.ips, "/24" appended). */
  address: string;
  /** K8S_POD_UID, K8S_POD_NAMESPACE, K8S_POD_NAME in CNI_ARGS, as the kubelet passes them. */
  pod: { uid: string; namespace: string; name: string };
  /** Network config `enrollTimeoutMs`: how long ADD waits for the enrolment. */
  enrollTimeoutMs: number;
  containerId?: string;
}

export interface CniOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs ADD and resolves when the plugin exits (it blocks until the agent enrolled the pod). */
export function cniAdd(o: CniAddOptions): Promise<CniOutcome> {
  return cniRun("ADD", o);
}

/** Runs `command` (ADD, CHECK or DEL) with the same environment and network config as cniAdd. */
export function cniRun(command: "ADD" | "CHECK" | "DEL", o: CniAddOptions): Promise<CniOutcome> {
  const id = o.containerId ?? "0123456789ab";
  const stdin = JSON.stringify({
    cniVersion: "1.0.0",
    name: "k8s-pod-network",
    type: "nodemesh-cni",
    agentSocket: o.socket,
    enrollTimeoutMs: o.enrollTimeoutMs,
    prevResult: {
      cniVersion: "1.0.0",
      interfaces: [{ name: "eth0", sandbox: o.netns }],
      ips: [{ address: `${o.address}/24`, interface: 0 }],
    },
  });
  const child = spawn(CNI_PLUGIN, [], {
    env: {
      // The plugin's shebang finds node on PATH, as on a node where the installer put it.
      PATH: `${join(process.execPath, "..")}:/usr/bin:/bin`,
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: o.netns,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/opt/cni/bin",
      CNI_ARGS:
        `IgnoreUnknown=1;K8S_POD_NAMESPACE=${o.pod.namespace};K8S_POD_NAME=${o.pod.name};` +
        `K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=${o.pod.uid}`,
    },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
