// The TLS Secrets Gateway listeners name: one list+watch of `kubernetes.io/tls` Secrets (field
// selector: no other Secret is ever listed or held), cluster-wide or per allowed namespace (the
// chart's Roles grant exactly those), and the TLSCertificates made of the referenced ones.
//
// Invariants: a tracked TLSCertificate exists only for a Secret that a Gateway in the mesh names
// from its own namespace and that exists; a Secret that turns invalid keeps its last good
// certificate (the Gateway's Programmed condition says why); an unreferenced Secret never enters
// the mesh.
import type { CoreV1Api, KubeConfig, V1Secret } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { keyString, validateDocument } from "../../api/index.ts";
import { TLS_SECRET_TYPE, mapTlsSecret, secretRefsOf, tlsSecretProblem } from "./gateway.ts";
import { Watched } from "./informers.ts";
import { entryOf } from "./tracked.ts";
import type { Tracked } from "./tracked.ts";

export interface TlsSecretsOptions {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  log: Logger;
  /** Empty or absent: every namespace. */
  namespaces?: readonly string[] | undefined;
  backoffMs?: { initial: number; max: number } | undefined;
  onChange: (secret: V1Secret) => void;
}

const SELECTOR = `type=${TLS_SECRET_TYPE}`;

export class TlsSecrets {
  /** "" → the cluster-wide watch; else namespace → its watch. */
  readonly #watches = new Map<string, Watched<V1Secret>>();

  constructor(o: TlsSecretsOptions) {
    for (const ns of o.namespaces?.length ? o.namespaces : [""])
      this.#watches.set(
        ns,
        new Watched<V1Secret>(o.kubeConfig, {
          name: ns ? `secrets (${ns})` : "secrets",
          path: ns ? `/api/v1/namespaces/${ns}/secrets` : "/api/v1/secrets",
          fieldSelector: SELECTOR,
          list: () =>
            ns
              ? o.core.listNamespacedSecret({ namespace: ns, fieldSelector: SELECTOR })
              : o.core.listSecretForAllNamespaces({ fieldSelector: SELECTOR }),
          onChange: (_k, secret) => o.onChange(secret),
          log: o.log,
          ...(o.backoffMs ? { backoffMs: o.backoffMs } : {}),
        }),
      );
  }

  /** Starts every watch; resolves once each has listed (Gateways are mapped after). */
  async start(): Promise<void> {
    for (const w of this.#watches.values()) w.start();
    await Promise.all([...this.#watches.values()].map((w) => w.synced));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#watches.values()].map((w) => w.stop()));
  }

  get(namespace: string, name: string): V1Secret | undefined {
    return (this.#watches.get("") ?? this.#watches.get(namespace))?.get(name, namespace);
  }

  /** Why `ns/name` cannot serve a listener, or undefined when it can. */
  problem(namespace: string, name: string): string | undefined {
    const s = this.get(namespace, name);
    if (s) return tlsSecretProblem(s);
    if (!this.#watches.has("") && !this.#watches.has(namespace))
      return `Secret ${namespace}/${name}: namespace ${namespace} is not among the controller's TLS Secret namespaces (chart value controller.tlsSecretNamespaces)`;
    return `Secret ${namespace}/${name} of type ${TLS_SECRET_TYPE} does not exist`;
  }

  /** Makes the tracked TLSCertificates those of the referenced Secrets; true when an entry changed. */
  sync(tracked: Map<string, Tracked>): boolean {
    const wanted = referencedSecrets(tracked);
    let changed = false;
    for (const [key, t] of tracked)
      if (key.startsWith("TLSCertificate/")) {
        const ns = t.obj.metadata?.namespace ?? "";
        const name = t.obj.metadata?.name ?? "";
        if (!wanted.has(`${ns}/${name}`) || !this.get(ns, name)) {
          tracked.delete(key);
          changed ||= t.entry !== undefined;
        }
      }
    for (const ref of wanted) {
      const [ns = "", name = ""] = ref.split("/");
      const secret = this.get(ns, name);
      if (!secret) continue;
      const key = keyString({ kind: "TLSCertificate", namespace: ns, name });
      const prev = tracked.get(key);
      let entry = prev?.entry;
      if (tlsSecretProblem(secret) === undefined) {
        const m = mapTlsSecret(secret);
        const r = validateDocument("doc" in m ? m.doc : undefined, key, 1);
        if (r.ok) entry = entryOf(r, key, prev?.entry);
      }
      tracked.set(key, { entry, obj: secret, kind: undefined });
      changed ||= entry !== prev?.entry;
    }
    return changed;
  }
}

/** "ns/name" of every Secret a Gateway in the mesh names from its own namespace. */
function referencedSecrets(tracked: ReadonlyMap<string, Tracked>): Set<string> {
  const out = new Set<string>();
  for (const t of tracked.values()) {
    const r = t.entry?.resource;
    if (r?.kind !== "Gateway") continue;
    for (const l of r.spec.listeners)
      for (const c of l.tls?.certificateRefs ?? [])
        if ((c.namespace ?? r.metadata.namespace) === r.metadata.namespace)
          out.add(`${r.metadata.namespace}/${c.name}`);
  }
  return out;
}

/** Whether some tracked Gateway (valid or not) names `secret`: its status must follow the Secret. */
export function gatewayNames(tracked: ReadonlyMap<string, Tracked>, secret: V1Secret): boolean {
  const { namespace, name } = secret.metadata ?? {};
  for (const t of tracked.values())
    if (t.kind?.gateway && secretRefsOf(t.obj).some((r) => r.namespace === namespace && r.name === name))
      return true;
  return false;
}
