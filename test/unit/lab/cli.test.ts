import { describe, expect, it } from "vitest";
import { LabError } from "../../../lab/errors.ts";
import { labCli, parseLabArgs } from "../../../lab/cli.ts";

function parseError(argv: string[]): LabError {
  try {
    parseLabArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(LabError);
    return err as LabError;
  }
  throw new Error(`parsed ${argv.join(" ")} without error`);
}

describe("parseLabArgs", () => {
  it.each([
    [[], { cmd: "help" }],
    [["help"], { cmd: "help" }],
    [["--help"], { cmd: "help" }],
    [["up"], { cmd: "up", name: "lab", nodes: 2, pods: 2 }],
    [["up", "--name", "demo", "--nodes", "3", "--pods", "1"], { cmd: "up", name: "demo", nodes: 3, pods: 1 }],
    [["up", "--name=e2e", "--nodes=1", "--pods=0"], { cmd: "up", name: "e2e", nodes: 1, pods: 0 }],
    [["down"], { cmd: "down", name: undefined, all: false }],
    [["down", "--name", "demo"], { cmd: "down", name: "demo", all: false }],
    [["down", "--all"], { cmd: "down", name: undefined, all: true }],
    [["status"], { cmd: "status", name: undefined }],
    [["status", "--name", "x1"], { cmd: "status", name: "x1" }],
    [
      ["exec", "n1", "--", "ip", "route"],
      { cmd: "exec", name: undefined, host: "n1", argv: ["ip", "route"] },
    ],
    [
      ["exec", "--name", "demo", "n2p1", "--", "curl", "--name", "x"],
      { cmd: "exec", name: "demo", host: "n2p1", argv: ["curl", "--name", "x"] },
    ],
    [["exec", "root", "--", "sh"], { cmd: "exec", name: undefined, host: "root", argv: ["sh"] }],
  ])("parses %j", (argv, expected) => {
    expect(parseLabArgs(argv)).toEqual(expected);
  });

  it.each([
    [["frobnicate"], /unknown command "frobnicate"/],
    [["up", "--nodes"], /--nodes needs a value/],
    [["up", "--nodes", "two"], /--nodes needs a whole number/],
    [["up", "--verbose"], /unknown option --verbose/],
    [["up", "extra"], /unexpected argument "extra"/],
    [["down", "--name", "a", "--all"], /either --name or --all/],
    [["status", "--nodes", "2"], /status takes no --nodes/],
    [["exec", "n1"], /needs a command after --/],
    [["exec", "--", "ls"], /exec needs a host/],
    [["exec", "pod1", "--", "ls"], /exec needs a host/],
    [["exec", "n1", "ls"], /put the command after --/],
  ])("rejects %j", (argv, message) => {
    const err = parseError(argv);
    expect(err.code).toBe("NODEMESH_ERR_LAB_BAD_ARGS");
    expect(err.message).toMatch(message);
    expect(err.message).toMatch(/nodemesh lab help/);
  });

  it("validates names and counts with the plan's rules", () => {
    expect(parseError(["up", "--name", "NoCaps"]).code).toBe("NODEMESH_ERR_LAB_BAD_NAME");
    expect(parseError(["up", "--nodes", "0"]).code).toBe("NODEMESH_ERR_LAB_BAD_SPEC");
  });
});

describe("labCli", () => {
  it("prints usage for help and exits 0", async () => {
    const out: string[] = [];
    expect(await labCli(["help"], { out: (l) => out.push(l), err: (l) => out.push(l) })).toBe(0);
    expect(out.join("\n")).toMatch(/usage: nodemesh lab/);
  });

  it("exits 2 with the error on stderr for bad arguments", async () => {
    const out: string[] = [];
    const err: string[] = [];
    expect(await labCli(["up", "--name", "BAD"], { out: (l) => out.push(l), err: (l) => err.push(l) })).toBe(
      2,
    );
    expect(out).toEqual([]);
    expect(err.join("\n")).toMatch(/^error: bad lab name "BAD"/);
  });
});
