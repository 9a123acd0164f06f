// Writes the dashboards' JSON next to this file (`node dashboards/build.ts`), from definitions.ts. The JSON
// is committed, so Grafana users and the Helm chart need no build step; test/unit/dashboards checks that
// it is up to date. `render()` is the pure part; it formats as the repository's prettier does, so
// `npm run format:check` and the generator agree.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { format, resolveConfig } from "prettier";
import { DASHBOARDS } from "./definitions.ts";
import { dashboard } from "./grafana.ts";

/** File name → JSON text, exactly as committed. */
export async function render(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [name, spec] of Object.entries(DASHBOARDS)) {
    const file = join(import.meta.dirname, `${name}.json`);
    const options = { ...(await resolveConfig(file)), filepath: file };
    out.set(`${name}.json`, await format(JSON.stringify(dashboard(spec)), options));
  }
  return out;
}

if (import.meta.main) {
  for (const [file, text] of await render()) {
    writeFileSync(join(import.meta.dirname, file), text);
    process.stdout.write(`wrote dashboards/${file}\n`);
  }
}
