import { describe, expect, it } from "vitest";
import { cgroup2Mount } from "../helpers/privileges.ts";

describe("test environment", () => {
  it("finds the cgroup v2 mount from /proc/mounts", () => {
    expect(cgroup2Mount()).toMatch(/^\//);
  });
});
