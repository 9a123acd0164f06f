// The controller's book of node addresses (controller/api/node-addresses.ts): what each node's agent
// last reported, and which nodes have a live reporting session. An address claimed by one node is that
// node's; claimed by several, it goes to the one live claimant if there is exactly one (a node that is
// gone does not keep an address a new node now holds), else to nobody: an ambiguous address must not
// name a node, or a tunnel from it could be judged as coming from the wrong one. Addresses may also
// be declared by the platform (Kubernetes Node objects' InternalIPs, through the source): a declared
// address is its node's whatever agents report (it is known before the agent connects and after it
// goes), unless several nodes declare it (then nobody's, as above). Pure and synchronous.
export class NodeBook {
  readonly #claims = new Map<string, readonly string[]>();
  /** Declared by the platform: address → the nodes that declare it. */
  #declared = new Map<string, string[]>();
  readonly #live = new Map<string, number>();
  #book: Record<string, string[]> = {};
  #signature = "{}";

  /** The current book: node → addresses, each address under at most one node. */
  get book(): Readonly<Record<string, readonly string[]>> {
    return this.#book;
  }

  /** A node's agent reported its addresses; true when the book changed. */
  report(node: string, addresses: readonly string[]): boolean {
    this.#claims.set(node, [...new Set(addresses)].sort());
    return this.#rebuild();
  }

  /** Replaces the platform's declaration (node → addresses); true when the book changed. */
  declare(nodes: Readonly<Record<string, readonly string[]>>): boolean {
    const declared = new Map<string, string[]>();
    for (const [node, addresses] of Object.entries(nodes))
      for (const a of new Set(addresses)) {
        const list = declared.get(a);
        if (list) list.push(node);
        else declared.set(a, [node]);
      }
    this.#declared = declared;
    return this.#rebuild();
  }

  /** A reporting session of `node` opened (true) or closed (false); true when the book changed. */
  live(node: string, open: boolean): boolean {
    const n = (this.#live.get(node) ?? 0) + (open ? 1 : -1);
    if (n > 0) this.#live.set(node, n);
    else this.#live.delete(node);
    return this.#rebuild();
  }

  #rebuild(): boolean {
    const claimants = new Map<string, string[]>();
    for (const [node, addresses] of this.#claims)
      for (const a of addresses) {
        const list = claimants.get(a);
        if (list) list.push(node);
        else claimants.set(a, [node]);
      }
    const book: Record<string, string[]> = {};
    for (const [address, nodes] of this.#declared)
      if (nodes.length === 1) (book[nodes[0]!] ??= []).push(address);
    for (const [address, nodes] of claimants) {
      if (this.#declared.has(address)) continue;
      const liveOnes = nodes.filter((n) => this.#live.has(n));
      const owner = nodes.length === 1 ? nodes[0] : liveOnes.length === 1 ? liveOnes[0] : undefined;
      if (owner !== undefined) (book[owner] ??= []).push(address);
    }
    const sorted = Object.fromEntries(
      Object.keys(book)
        .sort()
        .map((n) => [n, book[n]!.sort()]),
    );
    const signature = JSON.stringify(sorted);
    if (signature === this.#signature) return false;
    this.#book = sorted;
    this.#signature = signature;
    return true;
  }
}
