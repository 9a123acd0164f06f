// `nodemesh lab ...`: build, inspect, enter and remove labs from a shell. `parseLabArgs()` is the
// pure part (table-tested); `labCli()` runs the parsed command and returns the exit status.
import { spawn } from "node:child_process";
import { LabError } from "./errors.ts";
import { Lab, wrap } from "./lab.ts";
import { validateLabName, validateSpec } from "./plan.ts";

export const DEFAULT_LAB_NAME = "lab";

export type LabCommand =
  | { cmd: "help" }
  | { cmd: "up"; name: string; nodes: number; pods: number }
  | { cmd: "down"; name: string | undefined; all: boolean }
  | { cmd: "status"; name: string | undefined }
  | { cmd: "exec"; name: string | undefined; host: string; argv: string[] };

export const LAB_USAGE = `usage: nodemesh lab <command>
  up     [--name <lab>] [--nodes <n>] [--pods <m>]   build a lab (default: ${DEFAULT_LAB_NAME}, 2 nodes, 2 pods per node)
  down   [--name <lab> | --all]                      remove a lab and everything in it
  status [--name <lab>]                              list labs, hosts and addresses
  exec   [--name <lab>] <host> -- <cmd> [args...]    run a command in host root, n<i> or n<i>p<j>
--name may be left out of status, down and exec when exactly one lab exists.`;

function badArgs(message: string): LabError {
  return new LabError("NODEMESH_ERR_LAB_BAD_ARGS", `${message}; see \`nodemesh lab help\``);
}

function count(flag: string, value: string): number {
  if (!/^[0-9]+$/.test(value)) throw badArgs(`${flag} needs a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

export function parseLabArgs(argv: readonly string[]): LabCommand {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") return { cmd: "help" };
  const dash = rest.indexOf("--");
  const own = dash < 0 ? rest : rest.slice(0, dash);
  const tail = dash < 0 ? [] : rest.slice(dash + 1);
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < own.length; i++) {
    const arg = own[i] ?? "";
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    if (flag === "--all") {
      flags.set(flag, "true");
      continue;
    }
    if (!["--name", "--nodes", "--pods"].includes(flag)) throw badArgs(`unknown option ${flag} for ${cmd}`);
    const value = eq < 0 ? own[++i] : arg.slice(eq + 1);
    if (value === undefined || value === "") throw badArgs(`${flag} needs a value`);
    flags.set(flag, value);
  }
  const name = flags.has("--name") ? validateLabName(flags.get("--name")) : undefined;
  const allowed: Record<string, string[]> = {
    up: ["--name", "--nodes", "--pods"],
    down: ["--name", "--all"],
    status: ["--name"],
    exec: ["--name"],
  };
  const ok = allowed[cmd];
  if (!ok) throw badArgs(`unknown command ${JSON.stringify(cmd)}`);
  for (const flag of flags.keys()) if (!ok.includes(flag)) throw badArgs(`${cmd} takes no ${flag}`);
  if (cmd !== "exec" && (positional.length > 0 || dash >= 0)) {
    throw badArgs(`unexpected argument ${JSON.stringify(positional[0] ?? "--")} for ${cmd}`);
  }
  switch (cmd) {
    case "up": {
      const spec = validateSpec({
        name: name ?? DEFAULT_LAB_NAME,
        nodes: count("--nodes", flags.get("--nodes") ?? "2"),
        podsPerNode: count("--pods", flags.get("--pods") ?? "2"),
      });
      return { cmd, name: spec.name, nodes: spec.nodes, pods: spec.podsPerNode };
    }
    case "down":
      if (name !== undefined && flags.has("--all")) throw badArgs("give either --name or --all, not both");
      return { cmd, name, all: flags.has("--all") };
    case "status":
      return { cmd, name };
    default: {
      const [host, ...extra] = positional;
      if (host === undefined || !/^(root|n[1-9][0-9]*(p[1-9][0-9]*)?)$/.test(host)) {
        throw badArgs(`exec needs a host: root, n<i> or n<i>p<j> (got ${JSON.stringify(host ?? "")})`);
      }
      if (extra.length > 0) throw badArgs(`put the command after --: exec ${host} -- ${extra.join(" ")}`);
      if (tail.length === 0) throw badArgs("exec needs a command after --");
      return { cmd: "exec", name, host, argv: tail };
    }
  }
}

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const stdio: CliIo = {
  out: (line) => process.stdout.write(line + "\n"),
  err: (line) => process.stderr.write(line + "\n"),
};

/** Runs `nodemesh lab <argv>`; returns the exit status (0 ok, 1 failed, 2 usage error). */
export async function labCli(argv: string[], io: CliIo = stdio): Promise<number> {
  let command: LabCommand;
  try {
    command = parseLabArgs(argv);
  } catch (err) {
    io.err(`error: ${(err as Error).message}`);
    return 2;
  }
  try {
    return await runCommand(command, io);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    io.err(`error: ${(err as Error).message}${typeof code === "string" ? ` (${code})` : ""}`);
    return 1;
  }
}

async function runCommand(command: LabCommand, io: CliIo): Promise<number> {
  switch (command.cmd) {
    case "help":
      io.out(LAB_USAGE);
      return 0;
    case "up": {
      const started = Date.now();
      const lab = await Lab.up(
        { name: command.name, nodes: command.nodes, podsPerNode: command.pods },
        { cleanupOnExit: false },
      );
      io.out(`lab ${lab.name} is up in ${Date.now() - started} ms`);
      describe(lab, io);
      return 0;
    }
    case "down": {
      if (!command.all && command.name === undefined && (await Lab.list()).length === 0) {
        io.out("no labs to remove");
        return 0;
      }
      const report = command.all ? await Lab.downAll() : await Lab.down(await pickLab(command.name));
      io.out(`removed ${report.netns.length} namespaces and ${report.cgroups.length} cgroups`);
      return 0;
    }
    case "status": {
      const names = command.name ? [command.name] : await Lab.list();
      if (names.length === 0) io.out("no labs");
      for (const name of names) describe(await Lab.attach(name), io);
      return 0;
    }
    case "exec": {
      const lab = await Lab.attach(await pickLab(command.name));
      const [file, ...args] = wrap(lab.host(command.host), command.argv);
      const child = spawn(file ?? "ip", args, { stdio: "inherit" });
      return await new Promise<number>((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      });
    }
  }
}

async function pickLab(name: string | undefined): Promise<string> {
  if (name !== undefined) return name;
  const labs = await Lab.list();
  if (labs.length === 1 && labs[0] !== undefined) return labs[0];
  if (labs.length === 0) {
    throw new LabError("NODEMESH_ERR_LAB_NOT_FOUND", "no lab exists; build one with `nodemesh lab up`");
  }
  throw badArgs(`several labs exist (${labs.join(", ")}): pick one with --name`);
}

function describe(lab: Lab, io: CliIo): void {
  io.out(`lab ${lab.name}  cgroup ${lab.cgroupPath}`);
  io.out(`  root   ${lab.root.netns.padEnd(16)} ${lab.root.address} (controller host)`);
  for (const node of lab.nodes) {
    io.out(`  ${node.name.padEnd(6)} ${node.netns.padEnd(16)} ${node.address} pods ${node.podCidr}`);
    for (const pod of lab.pods.filter((p) => p.node === node.index)) {
      io.out(`  ${pod.name.padEnd(6)} ${pod.netns.padEnd(16)} ${pod.address} cgroup ${pod.cgroupPath}`);
    }
  }
}
