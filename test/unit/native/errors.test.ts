import { describe, expect, it } from "vitest";
import { CallSite, classifyErrno, errnoName, NativeError } from "../../../native/errors.ts";

describe("native errors", () => {
  it("carry op, positive errno, errnoCode, a stable code and a lowercase message with a hint", () => {
    function attach(): NativeError {
      return new CallSite(attach).fail("attach to cgroup", -1, "/sys/fs/cgroup/unified");
    }
    const err = attach();
    expect(err).toBeInstanceOf(NativeError);
    expect(err).toMatchObject({
      name: "NativeError",
      code: "NODEMESH_ERR_NATIVE_PERMISSION",
      op: "attach to cgroup",
      errno: 1,
      errnoCode: "EPERM",
    });
    expect(err.message).toBe(
      "attach to cgroup (/sys/fs/cgroup/unified) failed: operation not permitted (EPERM); run the agent as root, or grant it CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN (CAP_SYS_ADMIN alone on kernels before 5.8)",
    );
  });

  it("keep the stack of the caller captured before the (async) native call", async () => {
    async function callerBeforeAwait(): Promise<NativeError> {
      const site = new CallSite(callerBeforeAwait);
      await new Promise((r) => setTimeout(r, 1));
      return site.fail("load bpf object", -22, undefined, "libbpf: verifier log");
    }
    const err = await callerBeforeAwait();
    expect(err.stack).toMatch(/^NativeError: load bpf object failed: invalid argument \(EINVAL\)/);
    expect(err.stack).toContain("errors.test.ts");
    expect(err.detail).toBe("libbpf: verifier log");
  });

  it.each([
    ["bind", -98, "NODEMESH_ERR_NATIVE_SOCKET", /already holds this address/],
    ["open network namespace", -2, "NODEMESH_ERR_NATIVE_NETNS", /check that the pod is running/],
    ["setns", -22, "NODEMESH_ERR_NATIVE_NETNS", /network namespace/],
    ["setns", -1, "NODEMESH_ERR_NATIVE_PERMISSION", /CAP_SYS_ADMIN/],
    ["open cgroup", -2, "NODEMESH_ERR_NATIVE_BPF", /cgroup v2 directory/],
    ["load bpf object", -7, "NODEMESH_ERR_NATIVE_BPF", /libbpf log/],
  ])("classify %s / %i as %s", (op, errno, code, hint) => {
    const result = classifyErrno(op, errno);
    expect(result.code).toBe(code);
    expect(result.hint).toMatch(hint);
  });

  it("name errnos like node does", () => {
    expect(errnoName(98)).toBe("EADDRINUSE");
    expect(errnoName(-2)).toBe("ENOENT");
  });
});
