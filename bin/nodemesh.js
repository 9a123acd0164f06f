#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// Launcher: turns on Node's compile cache before any TypeScript is loaded, so that every start but
// the first after a code change skips type stripping — which otherwise keeps a WebAssembly compiler
// (~18 MiB of RSS) in the agent for its whole life. Then runs the CLI (nodemesh.ts).
import { enableCompileCache } from "node:module";

enableCompileCache();
await import("./nodemesh.ts");
