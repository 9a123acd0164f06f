// The file source behind the Source interface: controller/file-source.ts does the reading,
// validation, settling and watching; this adapter gives it the lifecycle the controller expects.
import { FileSource } from "../file-source.ts";
import type { FileSourceOptions } from "../file-source.ts";
import type { Source, SourceSnapshot } from "./source.ts";

export class FileConfigSource implements Source {
  readonly kind = "file";
  readonly holdsMassRemovals = true;
  readonly files: FileSource;

  constructor(path: string, opts: FileSourceOptions = {}) {
    this.files = new FileSource(path, opts);
  }

  async start(onChange: () => void): Promise<void> {
    // An editor's write in progress at start-up must not become the first configuration.
    await this.files.settled();
    this.files.watch(onChange);
  }

  read(opts: { force?: boolean } = {}): SourceSnapshot {
    return this.files.read({ allowEmpty: opts.force });
  }

  close(): Promise<void> {
    this.files.close();
    return Promise.resolve();
  }
}
