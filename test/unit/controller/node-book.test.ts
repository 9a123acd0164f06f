// The controller's node address book: one owner per address, ambiguity resolved only by liveness.
import { describe, expect, it } from "vitest";
import { NodeBook } from "../../../controller/distribution/node-book.ts";

describe("NodeBook", () => {
  it("gives each node the addresses it reported, and says when the book changed", () => {
    const b = new NodeBook();
    b.live("n1", true);
    expect(b.report("n1", ["10.0.0.1", "10.244.1.0", "10.0.0.1"])).toBe(true);
    expect(b.report("n1", ["10.244.1.0", "10.0.0.1"])).toBe(false);
    b.live("n2", true);
    b.report("n2", ["10.0.0.2"]);
    expect(b.book).toEqual({ n1: ["10.0.0.1", "10.244.1.0"], n2: ["10.0.0.2"] });
  });

  it("an address two live nodes claim belongs to neither (a docker0 on every node)", () => {
    const b = new NodeBook();
    for (const n of ["n1", "n2"]) b.live(n, true);
    b.report("n1", ["10.0.0.1", "172.17.0.1"]);
    b.report("n2", ["10.0.0.2", "172.17.0.1"]);
    expect(b.book).toEqual({ n1: ["10.0.0.1"], n2: ["10.0.0.2"] });
  });

  it("a node that is gone loses a contested address to the live one, and keeps its own", () => {
    const b = new NodeBook();
    b.live("old", true);
    b.report("old", ["10.0.0.9", "10.0.0.8"]);
    expect(b.live("old", false)).toBe(false); // uncontested: a restarting agent keeps its addresses
    b.live("new", true);
    expect(b.report("new", ["10.0.0.9"])).toBe(true);
    expect(b.book).toEqual({ old: ["10.0.0.8"], new: ["10.0.0.9"] });
    // Neither live: nobody can be told apart.
    b.live("new", false);
    expect(b.book).toEqual({ old: ["10.0.0.8"] });
  });

  it("declared addresses (Kubernetes Node InternalIPs) are their node's before and after its agent reports", () => {
    const b = new NodeBook();
    expect(b.declare({ n1: ["10.0.0.1"], n3: ["10.0.0.3"] })).toBe(true);
    expect(b.book).toEqual({ n1: ["10.0.0.1"], n3: ["10.0.0.3"] });
    expect(b.declare({ n1: ["10.0.0.1"], n3: ["10.0.0.3"] })).toBe(false);
    b.live("n1", true);
    b.report("n1", ["10.0.0.1", "10.244.1.0"]);
    expect(b.book).toEqual({ n1: ["10.0.0.1", "10.244.1.0"], n3: ["10.0.0.3"] });
    // Another live agent reporting a declared address does not take it.
    b.live("n2", true);
    b.report("n2", ["10.0.0.2", "10.0.0.3"]);
    expect(b.book).toEqual({ n1: ["10.0.0.1", "10.244.1.0"], n2: ["10.0.0.2"], n3: ["10.0.0.3"] });
    // Declared by two nodes: nobody's; the declaration gone: the reports' rules again.
    b.declare({ n1: ["10.0.0.1"], n3: ["10.0.0.3"], n4: ["10.0.0.3"] });
    expect(b.book).toEqual({ n1: ["10.0.0.1", "10.244.1.0"], n2: ["10.0.0.2"] });
    expect(b.declare({})).toBe(true);
    expect(b.book).toEqual({ n1: ["10.0.0.1", "10.244.1.0"], n2: ["10.0.0.2", "10.0.0.3"] });
  });
});
