// The CNI network config edits of the installer (main.ts runs them on the host's conf dir): which
// file is the primary network, and our entry put at the end of its `plugins` or taken out again.
// Pure: text in, text out, so every case is a table test. Container runtimes (libcni) load the
// lexically first .conf/.conflist/.json of the conf dir, so that is the one we chain into; a single
// .conf is turned into a .conflist holding it, since only a list can chain plugins.
export const PLUGIN_TYPE = "nodemesh-cni";

export class ConflistError extends Error {
  readonly code = "NODEMESH_ERR_CNI_CONFLIST";
}

/** The primary network config among a conf dir's file names, as libcni picks it; undefined: none yet. */
export function primaryConfName(names: readonly string[]): string | undefined {
  return names.filter((n) => /\.(conflist|conf|json)$/.test(n) && !n.startsWith(".")).sort()[0];
}

/** The name the edited file is written under: a .conf becomes a .conflist (libcni reads lists only there). */
export function conflistName(name: string): string {
  return name.endsWith(".conf") ? `${name}list` : name;
}

type Json = Record<string, unknown>;

function parse(text: string, name: string): Json {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConflistError(
      `${name} is not JSON (${(err as Error).message}); fix or remove it, the installer will not guess`,
    );
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new ConflistError(`${name} must hold a JSON object`);
  return raw as Json;
}

/** A conflist object: a .conf's single plugin becomes the list's only one. */
function asList(o: Json, name: string): Json & { plugins: Json[] } {
  if (o["plugins"] === undefined) {
    if (typeof o["type"] !== "string")
      throw new ConflistError(`${name} has neither "plugins" nor a plugin "type": not a CNI config`);
    const { cniVersion, name: net, ...plugin } = o;
    return { cniVersion, name: net, plugins: [plugin] };
  }
  const plugins = o["plugins"];
  if (!Array.isArray(plugins) || !plugins.every((p) => typeof p === "object" && p !== null))
    throw new ConflistError(`${name}: "plugins" must be a list of objects`);
  return { ...o, plugins: plugins as Json[] };
}

const ours = (p: Json) => p["type"] === PLUGIN_TYPE;

export interface Edit {
  readonly text: string;
  /** false: the file already says this (nothing to write). */
  readonly changed: boolean;
}

/** `text` (a .conf or .conflist) with exactly one `entry`, last in its plugins; idempotent. */
export function insertEntry(text: string, name: string, entry: Json): Edit {
  const o = parse(text, name);
  const list = asList(o, name);
  const want = { ...entry, type: PLUGIN_TYPE };
  const last = list.plugins.at(-1);
  if (
    list.plugins.filter(ours).length === 1 &&
    last &&
    JSON.stringify(last) === JSON.stringify(want) &&
    o["plugins"] !== undefined
  )
    return { text, changed: false };
  const out = { ...list, plugins: [...list.plugins.filter((p) => !ours(p)), want] };
  return { text: `${JSON.stringify(out, null, 2)}\n`, changed: true };
}

/** `text` without any entry of ours (unchanged when it has none). */
export function removeEntry(text: string, name: string): Edit {
  const o = parse(text, name);
  const plugins = o["plugins"];
  if (!Array.isArray(plugins) || !plugins.some((p) => ours(p as Json))) return { text, changed: false };
  const out = { ...o, plugins: (plugins as Json[]).filter((p) => !ours(p)) };
  return { text: `${JSON.stringify(out, null, 2)}\n`, changed: true };
}
