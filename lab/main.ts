// Entry point: `node lab/main.ts <command>` (the same as `nodemesh lab <command>`). Also what a
// Lab's process-exit hook runs to tear the lab down synchronously.
import { labCli } from "./cli.ts";

process.exitCode = await labCli(process.argv.slice(2));
