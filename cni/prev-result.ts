// The pod's IPv4 address from the previous plugin's result (CNI spec "Result": `ips[]` of
// `{address: "10.1.0.5/24", interface: <index into interfaces[]>}`, 0.3.x adding `version: "4"`).
// A kubelet publishes status.podIP only after ADD returns, so this is the only source of the address
// while ADD waits; the agent enrolls a pod without an IP in the API with it (docs/kubernetes.md).
// Pure, no imports outside cni/: the installer copies cni/*.ts to the host by themselves.
import { CniError, ERR } from "./protocol.ts";
import { isIPv4 } from "node:net";

const where = "nodemesh-cni needs the pod's address from the previous plugin's result";

function ipOf(entry: unknown, i: number): { ip: string; v4: boolean; iface: number | undefined } {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry))
    throw new CniError(ERR.invalidConfig, `prevResult.ips[${i}] must be an object`);
  const o = entry as Record<string, unknown>;
  const address = o["address"];
  const slash = typeof address === "string" ? address.indexOf("/") : -1;
  const ip = typeof address === "string" && slash > 0 ? address.slice(0, slash) : "";
  const prefix = typeof address === "string" ? address.slice(slash + 1) : "";
  const v4 = isIPv4(ip) && /^\d{1,2}$/.test(prefix) && Number(prefix) <= 32;
  const v6 = ip.includes(":") && /^\d{1,3}$/.test(prefix) && Number(prefix) <= 128;
  if (!v4 && !v6)
    throw new CniError(
      ERR.invalidConfig,
      `prevResult.ips[${i}].address ${JSON.stringify(address)} is not an IP address with a prefix length (such as "10.1.0.5/24")`,
    );
  const iface = o["interface"];
  return { ip, v4, iface: typeof iface === "number" && Number.isInteger(iface) ? iface : undefined };
}

/**
 * The pod's IPv4 address: the first IPv4 of `ips` on an interface inside the sandbox (one with
 * `sandbox` set, as the spec marks container interfaces), else the first IPv4 at all. Throws a
 * CniError naming the field for a malformed result and when there is no IPv4 address.
 */
export function podIPv4(prevResult: Record<string, unknown> | undefined): string {
  if (!prevResult) throw new CniError(ERR.invalidConfig, `${where}, and there is none`);
  const ips = prevResult["ips"];
  if (!Array.isArray(ips) || ips.length === 0)
    throw new CniError(
      ERR.invalidConfig,
      `${where}, and prevResult.ips is ${Array.isArray(ips) ? "empty" : "missing"}: list nodemesh-cni after the plugin that assigns the pod's IP`,
    );
  const interfaces = Array.isArray(prevResult["interfaces"]) ? (prevResult["interfaces"] as unknown[]) : [];
  const inSandbox = (i: number | undefined) => {
    const itf = i === undefined ? undefined : interfaces[i];
    return (
      typeof itf === "object" && itf !== null && typeof (itf as { sandbox?: unknown }).sandbox === "string"
    );
  };
  const parsed = ips.map(ipOf);
  const v4 = parsed.filter((p) => p.v4);
  const pick = v4.find((p) => inSandbox(p.iface)) ?? v4[0];
  if (!pick)
    throw new CniError(
      ERR.invalidConfig,
      `the previous plugin's result has no IPv4 address (${parsed.map((p) => p.ip).join(", ")}); nodemesh meshes IPv4 pods only`,
    );
  return pick.ip;
}
