// A short-lived "agent": installs the datapath under a pin dir, enrolls one pod, meshes one
// destination, prints its kernel objects and exits without uninstalling (the pins must keep
// redirection working after it is gone).
import * as nm from "../../../native/index.ts";

const [pinDir = "", netnsPath = "", vip = "", port = ""] = process.argv.slice(2);
const dp = await nm.install({ pinDir });
const { netnsCookie } = await dp.enrollNetns(netnsPath);
dp.setMeshedDestinations([{ address: vip, port: Number(port) }]);
process.stdout.write(
  JSON.stringify({ adopted: dp.adopted, objects: dp.kernelObjects(), cookie: String(netnsCookie) }) + "\n",
);
