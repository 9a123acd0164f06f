// The lab's public surface: build a local multi-host network from namespaces (see docs/lab.md).
export { Lab, wrap } from "./lab.ts";
export type { ExecOptions, LabOptions, SpawnOptions } from "./lab.ts";
export { LabProcess } from "./process.ts";
export type { ProcessExit } from "./process.ts";
export { LabError } from "./errors.ts";
export type { LabErrorCode } from "./errors.ts";
export {
  CONTROLLER_ADDRESS,
  NODE_SUBNET,
  OUTSIDE_ADDRESS,
  POD_SUPERNET,
  SERVICE_CIDR,
  netnsName,
  parseNetnsName,
  planLab,
  validateLabName,
} from "./plan.ts";
export type { LabHost, LabNode, LabOutside, LabPlan, LabPod, LabRoot, LabSpec } from "./plan.ts";
export type { ExecResult } from "./system.ts";
export type { TeardownReport } from "./teardown.ts";
export { labCli, parseLabArgs } from "./cli.ts";
