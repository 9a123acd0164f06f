// `nodemesh cni-install`: puts the chained CNI plugin on the host, as Istio's install-cni does, sized
// to us. It copies cni/nodemesh-cni (the shell wrapper), cni/*.ts and this Node binary into the host's
// CNI bin dir (nodemesh-cni.d/), and chains {"type": "nodemesh-cni"} last into the primary network
// config of the conf dir (conflist.ts). `--once` does that and exits (the agent pod's init
// container); `--watch` does it, then repairs both whenever the conf dir changes or every
// --interval-ms (a primary CNI that rewrites its file drops our entry; an agent pod of a rolling
// update that stops removes the files), and on SIGTERM/SIGINT takes the entry and the files out
// again: our plugin fails closed, so a node left with it but without an agent could start no pod.
//
// Every write is a temp file renamed into place, so the runtime never reads half a config or
// executes half a binary.
import { watch, type FSWatcher } from "node:fs";
import {
  chmod,
  copyFile,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  utimes,
  writeFile,
  mkdir,
} from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { PLUGIN_TYPE, conflistName, insertEntry, primaryConfName, removeEntry } from "./conflist.ts";

const CNI_DIR = join(import.meta.dirname, "..");
const SUBDIR = `${PLUGIN_TYPE}.d`;

export interface InstallerOptions {
  readonly binDir: string;
  readonly confDir: string;
  /** Fields of our conflist entry besides "type" (agentSocket, enrollTimeoutMs, excludeNamespaces). */
  readonly entry: Record<string, unknown>;
  /** The Node binary the wrapper runs; default this process's. */
  readonly nodeBinary?: string;
  readonly log?: (msg: string) => void;
}

async function writeAtomic(path: string, data: string | Buffer, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${PLUGIN_TYPE}-${process.pid}.tmp`);
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

/** Copies `from` unless `to` already has its size and mtime (the Node binary is ~100 MB). */
async function syncFile(from: string, to: string, mode: number): Promise<boolean> {
  const src = await stat(from);
  const dst = await stat(to).catch(() => undefined);
  // utimes() keeps about a millisecond of the source's nanosecond mtime: compare at that grain.
  if (dst && dst.size === src.size && Math.abs(dst.mtimeMs - src.mtimeMs) < 2) return false;
  const tmp = join(dirname(to), `.${PLUGIN_TYPE}-${process.pid}.tmp`);
  await copyFile(from, tmp);
  await chmod(tmp, mode);
  await utimes(tmp, src.atime, src.mtime);
  await rename(tmp, to);
  return true;
}

/** Where a primary .conf waits while its .conflist is written (no extension the runtime reads). */
const ASIDE_SUFFIX = `.${PLUGIN_TYPE}-aside`;
const asideName = (name: string) => `.${name}${ASIDE_SUFFIX}`;

/**
 * An installer that stopped between moving a .conf aside and writing its .conflist left the node without
 * a network config: the moved file goes back, unless a config of that name is there again. Returns the
 * conf dir's names after that.
 */
async function restoreAside(confDir: string, log: (msg: string) => void): Promise<string[]> {
  const names = await readdir(confDir);
  const aside = names.filter((n) => n.startsWith(".") && n.endsWith(ASIDE_SUFFIX));
  if (aside.length === 0) return names;
  for (const a of aside) {
    const name = a.slice(1, -ASIDE_SUFFIX.length);
    if (names.includes(name) || names.includes(conflistName(name))) await unlink(join(confDir, a));
    else {
      await rename(join(confDir, a), join(confDir, name));
      log(`restored ${name}, left aside by an installer that stopped while converting it`);
    }
  }
  return readdir(confDir);
}

export class CniInstaller {
  readonly #o: InstallerOptions;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();

  constructor(o: InstallerOptions) {
    this.#o = o;
  }

  #log(msg: string): void {
    (this.#o.log ?? ((m: string) => process.stderr.write(`cni-install: ${m}\n`)))(msg);
  }

  /** The files, then the entry; returns what changed (empty: all was in place). */
  async install(): Promise<string[]> {
    const { binDir, confDir } = this.#o;
    const changed: string[] = [];
    await mkdir(join(binDir, SUBDIR), { recursive: true });
    const sources = (await readdir(CNI_DIR)).filter((f) => f.endsWith(".ts"));
    for (const f of sources)
      if (await syncFile(join(CNI_DIR, f), join(binDir, SUBDIR, f), 0o644)) changed.push(`${SUBDIR}/${f}`);
    if (await syncFile(this.#o.nodeBinary ?? process.execPath, join(binDir, SUBDIR, "node"), 0o755))
      changed.push(`${SUBDIR}/node`);
    // The wrapper last: the runtime finds the plugin only once everything it runs is there.
    if (await syncFile(join(CNI_DIR, PLUGIN_TYPE), join(binDir, PLUGIN_TYPE), 0o755))
      changed.push(PLUGIN_TYPE);
    const name = primaryConfName(await restoreAside(confDir, this.#log.bind(this)));
    if (!name) {
      this.#log(`no network config in ${confDir} yet; waiting for the primary CNI to write one`);
      return changed;
    }
    const edit = insertEntry(await readFile(join(confDir, name), "utf8"), name, this.#o.entry);
    const target = conflistName(name);
    if (target !== name) {
      // The runtime takes the first config by name, and "x.conf" sorts before "x.conflist": with both
      // there for a moment it would start pods without our plugin. So the .conf is moved out of its sight
      // first; meanwhile it finds no config and fails the sandbox, which the kubelet retries (fail closed).
      const aside = join(confDir, asideName(name));
      await rename(join(confDir, name), aside);
      await writeAtomic(join(confDir, target), edit.text, 0o644);
      await unlink(aside);
      changed.push(target);
    } else if (edit.changed) {
      await writeAtomic(join(confDir, target), edit.text, 0o644);
      changed.push(target);
    }
    if (changed.length > 0) this.#log(`installed: ${changed.join(", ")}`);
    return changed;
  }

  /** Our entry out of every network config, then our files. */
  async uninstall(): Promise<void> {
    const { binDir, confDir } = this.#o;
    for (const name of await readdir(confDir).catch(() => [] as string[])) {
      if (!/\.(conflist|conf|json)$/.test(name)) continue;
      const path = join(confDir, name);
      try {
        const edit = removeEntry(await readFile(path, "utf8"), name);
        if (edit.changed) await writeAtomic(path, edit.text, 0o644);
      } catch (err) {
        this.#log(`left ${name} alone: ${(err as Error).message}`);
      }
    }
    await rm(join(binDir, PLUGIN_TYPE), { force: true });
    await rm(join(binDir, SUBDIR), { recursive: true, force: true });
    this.#log(`removed the ${PLUGIN_TYPE} entry and files`);
  }

  /** install() now, and again on every change of the conf dir and every `intervalMs`. */
  watch(intervalMs: number): void {
    const again = () => {
      this.#running = this.#running
        .then(() => this.install())
        .then(
          () => undefined,
          (err: unknown) => this.#log(`install failed, will retry: ${(err as Error).message}`),
        );
    };
    again();
    this.#watcher = watch(this.#o.confDir, () => again());
    this.#timer = setInterval(again, intervalMs);
  }

  /** Stops watching, waits for a repair in flight, and uninstalls. */
  async stop(): Promise<void> {
    this.#watcher?.close();
    clearInterval(this.#timer);
    await this.#running;
    await this.uninstall();
  }
}

const USAGE = `usage: nodemesh cni-install (--once | --watch) [flags]
  --bin-dir <dir>             host CNI bin dir as mounted (default /host/opt/cni/bin)
  --conf-dir <dir>            host CNI conf dir as mounted (default /host/etc/cni/net.d)
  --agent-socket <path>       the agent's CNI socket on the host (default /var/run/nodemesh/cni.sock)
  --enroll-timeout-ms <ms>    how long ADD waits for enrolment (plugin default 10000)
  --exclude-namespaces <a,b>  namespaces passed through (plugin default kube-system,nodemesh-system)
  --interval-ms <ms>          with --watch, how often to check besides conf dir events (default 5000)
`;

export async function cniInstallMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      once: { type: "boolean" },
      watch: { type: "boolean" },
      "bin-dir": { type: "string", default: "/host/opt/cni/bin" },
      "conf-dir": { type: "string", default: "/host/etc/cni/net.d" },
      "agent-socket": { type: "string" },
      "enroll-timeout-ms": { type: "string" },
      "exclude-namespaces": { type: "string" },
      "interval-ms": { type: "string", default: "5000" },
      help: { type: "boolean" },
    },
  });
  if (values.help || values.once === values.watch) {
    process.stderr.write(USAGE);
    return values.help ? 0 : 2;
  }
  const entry: Record<string, unknown> = {};
  if (values["agent-socket"]) entry["agentSocket"] = values["agent-socket"];
  if (values["enroll-timeout-ms"]) entry["enrollTimeoutMs"] = Number(values["enroll-timeout-ms"]);
  if (values["exclude-namespaces"] !== undefined)
    entry["excludeNamespaces"] = values["exclude-namespaces"].split(",").filter((s) => s !== "");
  const installer = new CniInstaller({ binDir: values["bin-dir"], confDir: values["conf-dir"], entry });
  if (values.once) {
    await installer.install();
    return 0;
  }
  installer.watch(Number(values["interval-ms"]));
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await installer.stop();
  return 0;
}
