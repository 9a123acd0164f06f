// Run with every capability dropped: each native entry point must fail with a clear error and
// leave nothing behind. Prints one JSON object per attempt.
import * as nm from "../../../native/index.ts";

const [pinDir = "", netnsPath = ""] = process.argv.slice(2);
const attempts: Record<string, () => Promise<unknown>> = {
  install: () => nm.install({ pinDir }),
  listenInNetns: () => nm.listenInNetns(netnsPath, "127.0.0.1", 15001),
};
const out: Record<string, unknown> = {};
for (const [name, attempt] of Object.entries(attempts)) {
  try {
    await attempt();
    out[name] = { ok: true };
  } catch (e) {
    const err = e as nm.NativeError;
    out[name] = {
      code: err.code,
      message: err.message,
      op: err.op,
      errno: err.errno,
      errnoCode: err.errnoCode,
    };
  }
}
process.stdout.write(JSON.stringify(out) + "\n");
