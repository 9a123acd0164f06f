// Kubernetes Node objects as declared node addresses: InternalIPs only, IPv4 only, sorted, nodes
// without one left out.
import { describe, expect, test } from "vitest";
import { nodeAddresses } from "../../../controller/sources/kube/nodes.ts";

describe("nodeAddresses", () => {
  test("each Node's IPv4 InternalIPs; ExternalIP, Hostname and IPv6 left out", () => {
    expect(
      nodeAddresses([
        {
          metadata: { name: "n2" },
          status: {
            addresses: [
              { type: "InternalIP", address: "10.0.0.2" },
              { type: "InternalIP", address: "fd00::2" },
              { type: "ExternalIP", address: "203.0.113.2" },
              { type: "Hostname", address: "n2" },
              { type: "InternalIP", address: "10.0.1.2" },
              { type: "InternalIP", address: "10.0.0.2" },
            ],
          },
        },
        { metadata: { name: "n1" }, status: { addresses: [{ type: "InternalIP", address: "10.0.0.1" }] } },
        { metadata: { name: "booting" }, status: {} },
        { metadata: {}, status: { addresses: [{ type: "InternalIP", address: "10.0.0.9" }] } },
      ]),
    ).toEqual({ n1: ["10.0.0.1"], n2: ["10.0.0.2", "10.0.1.2"] });
  });
});
