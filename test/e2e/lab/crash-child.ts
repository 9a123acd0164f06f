// Fixture for lab.test.ts: builds a lab, starts long-lived processes in a pod and a node and
// prints their pids as JSON. Mode "crash" (default) then waits to be SIGKILLed, so no teardown of
// any kind runs; mode "exit" exits normally without calling down(), so only the exit hook can clean up.
import { Lab } from "../../../lab/lab.ts";

const name = process.argv[2] ?? "crash";
const mode = process.argv[3] ?? "crash";
const lab = await Lab.up({ name, nodes: 2, podsPerNode: 1 });
const inPod = lab.spawn(lab.pod(1, 1), ["sleep", "600"]);
const inNode = lab.spawn(lab.node(2), ["sleep", "600"]);
process.stdout.write(JSON.stringify({ podPid: inPod.pid, nodePid: inNode.pid }) + "\n");
if (mode === "exit") process.exit(0);
setInterval(() => {}, 60_000);
