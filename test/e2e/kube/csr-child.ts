// One CSR on the controller's agent endpoint as an agent sends it (ControllerClient.signCsr, the
// node's token file, the CA file), from a process a test starts in the lab's root namespace where
// the controller listens: argv address node tokenFile caFile identity; prints {"ok":true} or
// {"status":…,"reason":…}. Used by mesh.test.ts to show who gets a pending pod's certificate.
import pino from "pino";
import { ControlError, ControllerClient } from "../../../agent/control/client.ts";
import { generateKeyAndCsr } from "../../../agent/identity/csr.ts";

const [address, node, tokenFile, caFile, identity] = process.argv.slice(2);
if (!address || !node || !tokenFile || !caFile || !identity)
  throw new Error("usage: csr-child.ts <address> <node> <tokenFile> <caFile> <identity>");
const c = new ControllerClient({ address, node, tokenFile, caFile, log: pino({ level: "silent" }) });
const { csrPem } = await generateKeyAndCsr(identity);
try {
  await c.signCsr(csrPem, identity);
  process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
} catch (err) {
  if (!(err instanceof ControlError)) throw err;
  process.stdout.write(`${JSON.stringify({ status: err.status, reason: err.reason })}\n`);
}
