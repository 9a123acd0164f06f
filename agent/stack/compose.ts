// Middleware as composition (undici's `compose()`, tower's layers): a handler turns a per-request
// context into a response; a layer wraps a handler into another. Generic: no mesh types here, so a layer
// (route, retry, timeout, breaker, fault, rate limit, authz) is a file of its own that sees only `next`.

export type Handler<Ctx, Res> = (ctx: Ctx) => Promise<Res>;
export type Layer<Ctx, Res> = (next: Handler<Ctx, Res>) => Handler<Ctx, Res>;

/** `compose([a, b], t)` runs a, then b, then t: the first layer is the outermost. */
export function compose<Ctx, Res>(
  layers: readonly Layer<Ctx, Res>[],
  terminal: Handler<Ctx, Res>,
): Handler<Ctx, Res> {
  let handler = terminal;
  for (let i = layers.length - 1; i >= 0; i--) handler = layers[i]!(handler);
  return handler;
}
