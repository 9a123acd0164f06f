// A controller replica's leader election in its own process, so a test can kill it like a crash:
// argv kubeconfig identity; prints "leading" once it holds the Lease. Used by source.test.ts.
import { KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { LeaderElector } from "../../../controller/sources/kube/leader.ts";

const [kubeconfig, identity] = process.argv.slice(2);
if (!kubeconfig || !identity) throw new Error("usage: leader-child.ts <kubeconfig> <identity>");
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const e = new LeaderElector({
  kubeConfig: kc,
  namespace: "default",
  name: "nodemesh-test",
  identity,
  log: pino({ level: "silent" }),
  leaseDurationMs: 2000,
  renewDeadlineMs: 1500,
  retryPeriodMs: 100,
  onChange: (leading) => leading && process.stdout.write("leading\n"),
});
e.start();
setInterval(() => {}, 1 << 30);
