// A small generic HTTP server for operator endpoints. The agent runs three (admin 127.0.0.1:15000,
// metrics :15020, health :15021); the parts that own data register their pages, so this module depends
// on no feature. Handlers return a body (string or JSON-able value) or write the response themselves.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

// Not `import … from "node:http"`: an ES import of node:http reads every export, and its lazy WebSocket,
// CloseEvent and MessageEvent getters load undici, web streams, zlib and perf_hooks (+4 to 12 MiB of RSS
// on an idle agent, measured with /proc/<pid>/status). getBuiltinModule returns the exports unread.
const { createServer } = process.getBuiltinModule("node:http");

export type PageResult = { status?: number; contentType?: string; body: string | object } | undefined;
export type PageHandler = (
  req: IncomingMessage,
  url: URL,
  res: ServerResponse,
) => PageResult | Promise<PageResult>;

export class AdminServer {
  readonly name: string;
  readonly #pages = new Map<string, { handler: PageHandler; help: string }>();
  readonly #server: Server;

  constructor(name: string) {
    this.name = name;
    this.#server = createServer((req, res) => void this.#serve(req, res));
    this.#server.keepAliveTimeout = 5_000;
  }

  /** Registers `path` (exact match). `help` is shown on the index page. */
  page(path: string, help: string, handler: PageHandler): this {
    this.#pages.set(path, { handler, help });
    return this;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      // reusePort: during an upgrade the new agent binds the operator ports while the old one drains.
      this.#server.listen({ port, host, reusePort: true }, () => {
        this.#server.off("error", reject);
        resolve((this.#server.address() as AddressInfo).port);
      });
    });
  }

  get port(): number | undefined {
    const a = this.#server.address();
    return a && typeof a === "object" ? a.port : undefined;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const page = this.#pages.get(url.pathname);
    try {
      if (!page) {
        if (url.pathname === "/") return send(res, 200, "text/plain; charset=utf-8", this.#index());
        return send(res, 404, "text/plain; charset=utf-8", `no page ${url.pathname}; see / for the list\n`);
      }
      const out = await page.handler(req, url, res);
      if (!out) return; // the handler wrote the response
      const isText = typeof out.body === "string";
      send(
        res,
        out.status ?? 200,
        out.contentType ?? (isText ? "text/plain; charset=utf-8" : "application/json"),
        isText ? (out.body as string) : JSON.stringify(out.body, null, 2) + "\n",
      );
    } catch (err) {
      send(res, 500, "text/plain; charset=utf-8", `error: ${(err as Error).message}\n`);
    }
  }

  #index(): string {
    const lines = [...this.#pages].map(([p, { help }]) => `${p.padEnd(20)} ${help}`);
    return `nodemesh agent ${this.name}\n\n${lines.join("\n")}\n`;
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** Named readiness conditions; ready when all are true. */
export class Readiness {
  readonly #conditions = new Map<string, () => boolean>();

  condition(name: string, check: () => boolean): void {
    this.#conditions.set(name, check);
  }

  pending(): string[] {
    return [...this.#conditions].filter(([, check]) => !check()).map(([name]) => name);
  }

  get ready(): boolean {
    return this.pending().length === 0;
  }
}
