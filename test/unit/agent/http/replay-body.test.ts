// ReplayBody: the first try streams before the client finishes (no whole-body wait), a retry replays
// what came so far and follows the rest, and the cap or an aborted client body ends replayability.
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { ReplayBody } from "../../../../agent/http/replay-body.ts";
import { readAll } from "./resilience-fixture.ts";

const tick = () => new Promise((r) => setImmediate(r));

describe("ReplayBody", () => {
  it("streams to the current try before the body ends, and replays it all to the next", async () => {
    const src = new PassThrough();
    const body = new ReplayBody(src, 1024);
    const first = body.view();
    const got: string[] = [];
    first.on("data", (c: Buffer) => got.push(c.toString()));
    src.write("ab");
    await tick();
    expect(got).toEqual(["ab"]); // the client has not finished; the try already has its bytes
    const second = body.view();
    expect(first.destroyed).toBe(true);
    const all = readAll(second);
    src.end("cd");
    expect(await all).toBe("abcd");
    expect(await readAll(body.view())).toBe("abcd");
  });

  it("is not replayable past the cap, while the current try still gets every byte", async () => {
    const src = new PassThrough();
    const body = new ReplayBody(src, 4);
    const all = readAll(body.view());
    src.end("abcdef");
    expect(await all).toBe("abcdef");
    expect(body.replayable).toBe(false);
    expect(() => body.view()).toThrow(/over the retry buffer cap/);
  });

  it("is not replayable when the client's body was cut short", async () => {
    const src = new PassThrough();
    const body = new ReplayBody(src, 1024);
    const view = body.view();
    view.on("error", () => undefined);
    src.write("ab");
    src.destroy();
    await tick();
    expect(body.replayable).toBe(false);
    expect(view.destroyed).toBe(true);
  });
});
