// The agent the CNI tests drive: on node-a, with a pod placer that never finds a process in a pod's
// cgroup (as while its sandbox is being set up), so only the CNI plugin's hint can place a pod; and a
// loopback datapath that records every enrolment.
import type { Logger } from "pino";
import { createAgent, type Agent } from "../../../agent/app.ts";
import { parseAgentSettings } from "../../../agent/config.ts";
import type { EnrolledListeners, LocalWorkload } from "../../../agent/datapath/datapath.ts";
import { LoopbackDatapath } from "../../../agent/datapath/loopback.ts";
import type { CsrSigner } from "../../../agent/identity/manager.ts";
import { PodPlacer } from "../../../agent/node/pod-placement.ts";
import type { StaticConfigSource } from "../../../agent/state/source.ts";

export class RecordingDatapath extends LoopbackDatapath {
  readonly enrolls: { uid: string; address: string; netns: string | undefined }[] = [];
  /** Workload uid → the netns of its last enrolment. */
  readonly netnsOf = new Map<string, string | undefined>();
  override async enroll(w: LocalWorkload): Promise<EnrolledListeners> {
    this.enrolls.push({ uid: w.uid, address: w.address, netns: w.netns });
    this.netnsOf.set(w.uid, w.netns);
    return super.enroll(w);
  }
}

export function hintOnlyAgent(deps: {
  datapath: RecordingDatapath;
  configSource: StaticConfigSource;
  signer: CsrSigner;
  log: Logger;
}): Agent {
  return createAgent({
    settings: parseAgentSettings({
      nodeName: "node-a",
      adminPort: 0,
      metricsPort: 0,
      healthPort: 0,
      metricsHost: "127.0.0.1",
      drainMs: 100,
    }),
    ...deps,
    podPlacer: new PodPlacer({ locator: {}, log: deps.log, attempts: 1, locate: () => undefined }),
  });
}
