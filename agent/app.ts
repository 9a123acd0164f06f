// The agent's one composition root: wires datapath, config source, identities, the pooled HBONE client,
// inbound tunnels, telemetry and the operator endpoints. Config snapshots are applied one at a time:
// local workloads added are enrolled (listeners from the datapath, certificate requested), removed ones
// released, meshed destinations handed to the datapath, and live inbound connections re-checked against
// the new policies (ztunnel's connection manager). `agent/main.ts` (the lead's) builds the real datapath
// and controller client and calls createAgent.
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { MeshConfig, NodeAddressBook } from "../controller/api/index.ts";
import { AdminServer, Readiness } from "./admin/server.ts";
import { DEFAULT_OUTLIER, type AgentSettings } from "./config.ts";
import type { Datapath } from "./datapath/datapath.ts";
import { runWithDrain } from "./drain.ts";
import { POD_UID_ANNOTATION, PodPlacer, podLocatorOptionsFromEnv } from "./node/pod-placement.ts";
import type { PodEnrollment } from "./node/cni-server.ts";
import { nameConflict, withHintedPods, type CniPodHint } from "./node/pending-pods.ts";
import { podMembership } from "./node/membership.ts";
import { IdentityManager, type CsrSigner } from "./identity/manager.ts";
import { accessLogger, createLogger, type Logger } from "./log.ts";
import { evaluateAuthz } from "./policy/authz.ts";
import { plaintextPlan, samePlan, type MtlsPlan } from "./policy/peer-auth.ts";
import { ConnectionManager } from "./proxy/connections.ts";
import { explainPage } from "./proxy/explain-page.ts";
import { InboundTunnel } from "./proxy/inbound.ts";
import { OutboundProxy } from "./proxy/outbound.ts";
import { HboneConnector } from "./proxy/tunnel/hbone.ts";
import { SessionPool } from "./proxy/tunnel/session-pool.ts";
import { sessionIdleMs } from "./proxy/tunnel/settings.ts";
import { EndpointStates } from "./balance/endpoint-state.ts";
import { AppClients } from "./http/app-client.ts";
import { serveInboundRequest, type InboundHttpDeps } from "./http/inbound.ts";
import { reportInbound } from "./http/inbound-report.ts";
import { HttpOutbound } from "./http/outbound.ts";
import { GatewayRole } from "./gateway/role.ts";
import { inboundTracing, outboundTracing } from "./http/trace.ts";
import { createResilience } from "./http/resilience.ts";
import { LocalRateLimiter } from "./http/local-ratelimit.ts";
import {
  GlobalRateLimitReporter,
  registerGlobalRateLimitMetrics,
  type RateLimitChannel,
} from "./http/global-report.ts";
import { ResilienceMetrics } from "./telemetry/resilience.ts";
import { RequestTelemetry } from "./telemetry/http.ts";
import type { ConfigSource } from "./state/source.ts";
import { HostPeerNodes } from "./state/peer-nodes.ts";
import { MeshView, type WorkloadInfo } from "./state/view.ts";
import { EgressRole } from "./egress/role.ts";
import type { EgressGateway } from "./egress/gateway.ts";
import { AgentMetrics } from "./telemetry/metrics.ts";
import { tapPage } from "./telemetry/tap-page.ts";
import { registerTracingMetrics, type MeshTracer } from "./telemetry/tracing/index.ts";

export interface AgentDeps {
  readonly settings: AgentSettings;
  readonly datapath: Datapath;
  readonly configSource: ConfigSource;
  readonly signer: CsrSigner;
  readonly log?: Logger;
  readonly version?: string;
  /** Finds Kubernetes pods on this node by UID; default: the host's cgroup2 and NODEMESH_PROC_ROOT. */
  readonly podPlacer?: PodPlacer;
  /** Called by POST /quitquitquit (main.ts exits the process); defaults to stop(). */
  readonly onQuit?: () => void;
  /** Request spans over OTLP (main.ts loads it when an endpoint is configured); absent = tracing off. */
  readonly tracer?: MeshTracer;
  /** Global rate limits' demand and shares (the controller client); absent = the initial split only. */
  readonly rateLimitChannel?: RateLimitChannel;
  /** The controller's node address book (the controller client); absent = peers named from routes only. */
  readonly nodeBook?: { onNodes(cb: (message: NodeAddressBook) => void): () => void };
}

export interface Agent {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves when ready (datapath attached, first config applied, local certificates obtained). */
  whenReady(timeoutMs?: number): Promise<void>;
  readonly ready: boolean;
  /** Bound ports of the operator endpoints (after start). */
  readonly ports: { admin: number; metrics: number; health: number };
  readonly metrics: AgentMetrics;
  readonly identities: IdentityManager;
  view(): MeshView | undefined;
  /** Resolves once every config received so far has been applied. */
  settled(): Promise<void>;
  configDump(): object;
  /** Enrolment by pod UID, for the CNI plugin's socket (agent/node/cni-server.ts). */
  readonly pods: PodEnrollment;
  /**
   * Every workload the current config places on this node and its netns (undefined: unknown), enrolled
   * or not: what a previous agent's enrollments may be pruned against (EbpfDatapath.pruneInherited).
   */
  placedWorkloads(): Promise<{ uid: string; netns: string | undefined }[]>;
}

interface Enrolled {
  /** As last applied: a pod enrolled at CNI ADD is handed over to its published entry in place. */
  workload: WorkloadInfo;
  /** An egress gateway workload (docs/egress.md) is served by an EgressGateway instead. */
  readonly inbound: InboundTunnel | EgressGateway;
  /** PeerAuthentication (default and per-port exceptions) as last applied by the datapath. */
  mtls: MtlsPlan;
  /** A change failed: the kernel may hold a stricter mix of `mtls` and the failed plan; rewrite next time. */
  mtlsStale: boolean;
  /** Where it was enrolled: a recreated sandbox (new netns) of the same pod must re-enroll. */
  readonly netns: string | undefined;
}

/** Backoff of the retries of failed enrolments (a pod's process holding an in-pod port, say). */
const ENROL_RETRY_MIN_MS = 1000;
const ENROL_RETRY_MAX_MS = 30_000;

export function createAgent(deps: AgentDeps): Agent {
  const { settings, datapath } = deps;
  const log = deps.log ?? createLogger(settings.logLevel);
  const metrics = new AgentMetrics({
    version: deps.version ?? "dev",
    node: settings.nodeName,
    access: accessLogger(log),
  });
  const identities = new IdentityManager(deps.signer, settings, log.child({ part: "identity" }));
  const pool = new SessionPool(settings);
  const endpoints = new EndpointStates();
  const requests = new RequestTelemetry({
    registry: metrics.registry,
    profile: settings.metricsProfile,
    access: accessLogger(log),
    tap: metrics.tap,
  });
  const apps = new AppClients((uid, address, port) => datapath.connectApp(uid, address, port));
  const connections = new ConnectionManager();
  // Egress (docs/egress.md): ExternalService DNS, the REGISTRY_ONLY capture mode, direct egress, gateways.
  const egress = new EgressRole({
    datapath,
    log,
    metrics,
    requests,
    connections,
    settings,
    view: () => view as MeshView,
    reapply: () => {
      const c = deps.configSource.current();
      if (c) onConfig(c);
    },
  });
  const placer =
    deps.podPlacer ??
    new PodPlacer({ locator: podLocatorOptionsFromEnv(), log: log.child({ part: "node" }) });
  const enrolled = new Map<string, Enrolled>();
  /**
   * Local workloads of the applied config whose enrolment failed, and why: retried with backoff. The
   * datapath holds them (their meshed connects refused) where it can, so they never bypass the mesh.
   */
  const unenrolled = new Map<string, string>();
  let retryTimer: NodeJS.Timeout | undefined;
  let retryDelayMs = ENROL_RETRY_MIN_MS;
  /** Pod UID → what the CNI plugin said at ADD (agent/node/pending-pods.ts); cleared by DEL. */
  const cniHints = new Map<string, CniPodHint>();
  /** From the last apply: hints not used, and why; workloads enrolled from a hint. */
  let hintRefusals: ReadonlyMap<string, string> = new Map();
  let fromHint: ReadonlySet<string> = new Set();
  /** The controller's config as last applied, before the hinted pods were added. */
  let controllerConfig: MeshConfig | undefined;
  let view: MeshView | undefined;
  let chain: Promise<void> = Promise.resolve();
  let started = false;
  /**
   * Set once a config has been applied to the end (every local workload enrolled or refused), not when it
   * arrived: readiness gates the hand-over and the pruning of a previous agent's enrollments, and a prune
   * run while enrolls were still in flight removed a pod from the kernel map for a moment, letting its
   * connects escape the mesh.
   */
  let applied = false;
  let stopping = false;
  let unsubscribe: (() => void) | undefined;
  const currentView = () => view as MeshView;

  const resilienceMetrics = new ResilienceMetrics(metrics.registry);
  const limiter = new LocalRateLimiter({ metrics: resilienceMetrics, node: settings.nodeName });
  registerGlobalRateLimitMetrics(metrics.registry, limiter.global);
  const globalRateLimits = new GlobalRateLimitReporter({
    limiter,
    channel: deps.rateLimitChannel,
    view: () => view,
  });
  const resilience = createResilience(settings, resilienceMetrics);
  if (deps.tracer) registerTracingMetrics(metrics.registry, deps.tracer);
  const tracingOut = deps.tracer ? outboundTracing(deps.tracer) : undefined;
  const tracingIn = deps.tracer ? inboundTracing(deps.tracer) : undefined;
  const http = new HttpOutbound({
    view: currentView,
    telemetry: requests,
    layers: resilience.layers,
    tracing: tracingOut,
    pool,
    identities,
    endpoints,
    settings,
    defaultOutlier: DEFAULT_OUTLIER,
    tunnel: (socket, plan, head) => outbound.carryUpgrade(socket as Socket, plan, head),
  });
  // The ingress gateway role (docs/ingress.md): idle unless a Gateway names this node.
  const gateway = new GatewayRole({
    nodeName: settings.nodeName,
    identities,
    telemetry: requests,
    layers: resilience.layers,
    pool,
    endpoints,
    settings,
    defaultOutlier: DEFAULT_OUTLIER,
    log,
    tracer: deps.tracer,
  });
  const outbound: OutboundProxy = new OutboundProxy({
    view: currentView,
    datapath,
    hbone: new HboneConnector(pool),
    endpoints,
    identities,
    metrics,
    settings,
    defaultOutlier: DEFAULT_OUTLIER,
    log,
    http,
    detected: (result, service) =>
      requests.countDetection(result === "closed" ? "opaque" : result, {
        reporter: "source",
        destination_service: service,
      }),
    egress: egress.direct,
  });
  // Built once: every inbound request is served with the same dependencies (not an object per request).
  const inboundHttp: InboundHttpDeps = {
    view: currentView,
    apps,
    limiter,
    onDone: (r) => reportInbound(requests, currentView(), r),
    ...(tracingIn ? { tracing: tracingIn } : {}),
  };
  const peerNodes = new HostPeerNodes();
  const unsubscribeNodes = deps.nodeBook?.onNodes((m) => peerNodes.setNodeBook(m.nodes));
  const inboundDeps = {
    peerNodes,
    view: currentView,
    metrics,
    connections,
    log,
    appConnectTimeoutMs: settings.connectTimeoutMs,
    sessionIdleMs: sessionIdleMs(settings.pingIntervalMs),
    connectApp: (uid: string, address: string, port: number, source?: string) =>
      datapath.connectApp(uid, address, port, source),
    onRequest: (...args: [string, ServerHttp2Stream, IncomingHttpHeaders, string | undefined, string]) =>
      serveInboundRequest(inboundHttp, ...args),
  };

  identities.on("svid", (id, svid) => {
    metrics.setCertExpiry(id, svid.notAfter);
    for (const e of enrolled.values()) {
      if (e.workload.spiffeId === id) e.inbound.setCredentials(svid, identities.bundle);
    }
  });
  identities.on("bundle", (bundle) => {
    for (const e of enrolled.values()) {
      const svid = identities.get(e.workload.spiffeId);
      if (svid) e.inbound.setCredentials(svid, bundle);
    }
  });

  async function enroll(w: WorkloadInfo, mtls: MtlsPlan): Promise<void> {
    // A Kubernetes pod comes with its UID, not its netns: found on this node (agent/node/).
    const where = await placer.place(w);
    const listeners = await datapath.enroll({
      uid: w.uid,
      address: w.address,
      netns: where.netns,
      cgroup: where.cgroup,
      mtls,
    });
    const inbound =
      view && egress.isGateway(view, w.uid)
        ? egress.gateway(w.uid, listeners.inbound)
        : new InboundTunnel(w.uid, listeners.inbound, inboundDeps);
    outbound.attach(w.uid, listeners.outbound);
    enrolled.set(w.uid, { workload: w, inbound, mtls, mtlsStale: false, netns: where.netns });
    identities.want(w.spiffeId);
    const svid = identities.get(w.spiffeId);
    if (svid) inbound.setCredentials(svid, identities.bundle);
    if (listeners.sourceUnavailable !== undefined)
      log.warn(
        { workload: w.uid, reason: listeners.sourceUnavailable },
        "opaque TCP reaches this workload from its own address, not the client's",
      );
    log.info({ workload: w.uid, address: w.address, identity: w.spiffeId }, "workload enrolled");
  }

  async function release(uid: string): Promise<void> {
    const e = enrolled.get(uid);
    if (!e) return;
    enrolled.delete(uid);
    e.inbound.close();
    apps.release(uid);
    connections.closeWhere((c) => c.uid === uid, "workload released");
    await datapath.release(uid);
    identities.release(e.workload.spiffeId);
    if (![...enrolled.values()].some((o) => o.workload.spiffeId === e.workload.spiffeId)) {
      metrics.removeCert(e.workload.spiffeId);
    }
    log.info({ workload: uid }, "workload released");
  }

  async function apply(config: MeshConfig): Promise<void> {
    if (stopping) return;
    controllerConfig = config;
    const hinted = withHintedPods(config, cniHints, settings.nodeName);
    for (const [podUid, why] of hinted.refused)
      if (!hintRefusals.has(podUid)) log.warn({ podUid, reason: why }, "CNI hint not used");
    // A refused hint must not place the pod either (its netns is as doubtful as its names).
    for (const [podUid, h] of cniHints)
      if (hinted.refused.has(podUid)) placer.forget(podUid);
      else placer.hint(podUid, h.netns);
    const wasFromHint = fromHint;
    hintRefusals = hinted.refused;
    fromHint = hinted.fromHint;
    const next = new MeshView(hinted.config, { nodeName: settings.nodeName, resolved: egress.resolved() });
    identities.setTrustBundle(config.trustBundle);
    view = next;
    datapath.setMeshedDestinations(next.meshedDestinations());
    egress.applied(next);
    const wanted = new Map(next.localWorkloads().map((w) => [w.uid, w]));
    for (const [uid, e] of enrolled) {
      const w = wanted.get(uid);
      if (
        !w ||
        w.address !== e.workload.address ||
        w.netns !== e.workload.netns ||
        w.cgroup !== e.workload.cgroup ||
        w.spiffeId !== e.workload.spiffeId ||
        hintMoved(w, e, hinted.refused) ||
        next.external.isGateway(uid) !== !(e.inbound instanceof InboundTunnel)
      ) {
        if (w && wasFromHint.has(uid) && !fromHint.has(uid) && w.address !== e.workload.address)
          log.warn(
            { workload: uid, hinted: e.workload.address, published: w.address },
            "the pod's published IP differs from its CNI result's; re-enrolling with the published one",
          );
        await release(uid);
      } else {
        if (wasFromHint.has(uid) && !fromHint.has(uid))
          log.info(
            { workload: uid, address: w.address },
            "the pod's published entry replaces the one enrolled at CNI ADD (no re-enrolment)",
          );
        e.workload = w;
      }
    }
    await releaseUnwanted(wanted);
    for (const [uid, w] of wanted) {
      const mtls = planOf(next, w);
      const e = enrolled.get(uid);
      if (!e) await enrollOrNote(w, mtls);
      else if (e.mtlsStale || !samePlan(e.mtls, mtls)) {
        await changeMtls(e, mtls).catch((err: unknown) =>
          log.error(
            { err, workload: uid },
            "cannot apply peer authentication; the previous enforcement stays",
          ),
        );
      }
    }
    scheduleEnrolRetry();
    endpoints.retain((key) => next.servicePort(key) !== undefined);
    resilience.retain(next);
    try {
      await gateway.apply(next);
    } catch (err) {
      log.error({ err }, "cannot apply the gateways of this config; the previous listeners stay");
    }
    const closed = connections.recheck((c) => evaluateAuthz(next.authorizationPoliciesFor(c.uid), c.request));
    log.info({ version: next.version, workloads: enrolled.size, closedByPolicy: closed }, "config applied");
    applied = true;
  }

  /** Forgets the failed enrolments of workloads no longer wanted here, and drops their holds. */
  async function releaseUnwanted(wanted: ReadonlyMap<string, WorkloadInfo>): Promise<void> {
    for (const uid of [...unenrolled.keys()]) {
      if (wanted.has(uid)) continue;
      unenrolled.delete(uid);
      await datapath.release(uid);
    }
  }

  /** enroll(), with a failure noted for the retry instead of thrown. */
  async function enrollOrNote(w: WorkloadInfo, mtls: MtlsPlan): Promise<void> {
    try {
      await enroll(w, mtls);
      if (unenrolled.delete(w.uid)) log.info({ workload: w.uid }, "enrolment succeeded on retry");
    } catch (err) {
      const first = !unenrolled.has(w.uid);
      unenrolled.set(w.uid, (err as Error).message);
      const msg =
        "cannot enroll workload; its meshed connects stay refused (held in the kernel, or a previous agent's " +
        "enrollment) where the datapath can hold it, and enrolment is retried";
      if (first) log.error({ err, workload: w.uid }, msg);
      else log.debug({ err, workload: w.uid }, msg);
    }
  }

  /** Retries the failed enrolments of the applied config, backing off from 1 s to 30 s while they fail. */
  function scheduleEnrolRetry(): void {
    if (retryTimer || stopping) return;
    if (unenrolled.size === 0) {
      retryDelayMs = ENROL_RETRY_MIN_MS;
      return;
    }
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      chain = chain
        .then(retryEnrolments)
        .catch((err: unknown) => log.error({ err }, "enrolment retry failed"));
    }, retryDelayMs);
    retryTimer.unref();
    retryDelayMs = Math.min(retryDelayMs * 2, ENROL_RETRY_MAX_MS);
  }

  async function retryEnrolments(): Promise<void> {
    const v = view;
    if (stopping || !v) return;
    const wanted = new Map(v.localWorkloads().map((w) => [w.uid, w]));
    await releaseUnwanted(wanted);
    for (const uid of [...unenrolled.keys()]) {
      const w = wanted.get(uid);
      // Enrolled meanwhile from a CNI hint, which does not go through enrollOrNote.
      if (!w || enrolled.has(uid)) unenrolled.delete(uid);
      else await enrollOrNote(w, planOf(v, w));
    }
    scheduleEnrolRetry();
  }

  async function changeMtls(e: Enrolled, mtls: MtlsPlan): Promise<void> {
    e.mtlsStale = true;
    await datapath.setMtls(e.workload.uid, mtls);
    e.mtls = mtls;
    e.mtlsStale = false;
    log.info({ workload: e.workload.uid, ...mtlsDump(mtls) }, "peer authentication changed");
  }

  const podUidOf = (w: WorkloadInfo) => w.entry.metadata.annotations?.[POD_UID_ANNOTATION];
  /** A recreated sandbox: the plugin names another netns for an enrolled pod. */
  const hintMoved = (w: WorkloadInfo, e: Enrolled, refused: ReadonlyMap<string, string>) => {
    const uid = podUidOf(w);
    const h = uid === undefined ? undefined : cniHints.get(uid);
    return h !== undefined && uid !== undefined && !refused.has(uid) && e.netns !== h.netns;
  };
  const enrolledPod = (podUid: string) => [...enrolled.values()].find((e) => podUidOf(e.workload) === podUid);

  /** A CNI hint for a pod the config already has: enroll it now, in the sandbox's netns. */
  async function enrollHinted(podUid: string, netns: string): Promise<void> {
    const v = view;
    const c = controllerConfig;
    if (stopping || !v || !c) return;
    const w = v.localWorkloads().find((x) => podUidOf(x) === podUid);
    const pending = (c.pendingWorkloads ?? []).some(
      (p) => p.spec.podUid === podUid && p.spec.node === settings.nodeName,
    );
    // A pending pod's entry is built from the hint, so the config is applied again with it.
    if (!w) return pending ? apply(c) : undefined; // else apply() uses the hint when the pod arrives
    if (fromHint.has(w.uid)) return apply(c);
    const hint = cniHints.get(podUid);
    const conflict = hint && nameConflict(podUid, hint, w.entry.metadata);
    if (conflict) {
      hintRefusals = new Map([...hintRefusals, [podUid, conflict]]);
      placer.forget(podUid);
      log.warn({ podUid, reason: conflict }, "CNI hint not used");
      return;
    }
    const e = enrolled.get(w.uid);
    if (e?.netns === netns) return;
    if (e) await release(w.uid);
    try {
      await enroll(w, planOf(v, w));
    } catch (err) {
      log.error({ err, workload: w.uid, podUid }, "cannot enroll hinted pod; its sandbox stays held");
    }
  }

  const pods: PodEnrollment = {
    hintPod(podUid, netns, facts) {
      cniHints.set(podUid, { netns, ...facts });
      hintRefusals = new Map([...hintRefusals].filter(([uid]) => uid !== podUid));
      placer.hint(podUid, netns);
      chain = chain
        .then(() => enrollHinted(podUid, netns))
        .catch((err: unknown) => log.error({ err, podUid }, "hinted enrolment failed"));
    },
    forgetPod(podUid) {
      cniHints.delete(podUid);
      placer.forget(podUid);
    },
    whyNotEnrolled(podUid, netns) {
      const refused = hintRefusals.get(podUid);
      if (refused) return refused;
      const e = enrolledPod(podUid);
      if (e && (netns === undefined || e.netns === netns)) return undefined;
      if (e) return `enrolled in ${e.netns ?? "another netns"}, not yet in ${netns}`;
      if (!view) return "the agent has no config from the controller yet";
      if (view.localWorkloads().some((w) => podUidOf(w) === podUid))
        return "the agent could not enroll it (see the agent's log)";
      if ((controllerConfig?.pendingWorkloads ?? []).some((p) => p.spec.podUid === podUid))
        return "the pod has no IP in the API yet and the CNI plugin has not sent its address";
      return notInConfig(podUid);
    },
    membership(podUid) {
      return podMembership(controllerConfig, settings.nodeName, podUid, cniHints.get(podUid));
    },
  };

  /** Also names a pod the controller knows under another UID (recreated, not seen again yet). */
  function notInConfig(podUid: string): string {
    const hint = cniHints.get(podUid);
    const c = controllerConfig;
    const same = (m: { namespace: string; name: string }) =>
      hint?.namespace === m.namespace && hint.name === m.name;
    const other =
      c?.workloads.find((w) => same(w.metadata) && w.spec.node === settings.nodeName) ??
      c?.pendingWorkloads?.find((p) => same(p.metadata) && p.spec.node === settings.nodeName);
    const otherUid =
      other &&
      (other.kind === "PendingWorkload"
        ? other.spec.podUid
        : other.metadata.annotations?.[POD_UID_ANNOTATION]);
    if (otherUid && otherUid !== podUid)
      return (
        `the controller knows pod ${hint?.namespace}/${hint?.name} with uid ${otherUid}, not ${podUid} ` +
        "(a recreated pod it has not seen yet?)"
      );
    return (
      `the controller's config does not name this pod on node ${settings.nodeName} yet, neither as a ` +
      "workload nor as not meshed (its pod watch lags, or this agent's config from it is stale); held, fail closed"
    );
  }

  function onConfig(config: MeshConfig): void {
    chain = chain
      .then(() => apply(config))
      .catch((err: unknown) => log.error({ err }, "config apply failed"));
  }

  if (datapath.plaintextRefused) {
    const refused = datapath.plaintextRefused.bind(datapath);
    metrics.plaintextRefused(() =>
      refused().flatMap(({ uid, count }) => {
        const w = enrolled.get(uid)?.workload;
        return w ? [{ workload: w.name, namespace: w.namespace, count }] : [];
      }),
    );
  }

  const readiness = new Readiness();
  readiness.condition("datapath", () => started);
  readiness.condition("config", () => applied);
  readiness.condition("certificates", () => identities.allReady());
  readiness.condition("outbound-traffic-policy", () => egress.problem === undefined);

  const admin = new AdminServer("admin");
  const metricsServer = new AdminServer("metrics");
  const health = new AdminServer("health");
  const metricsPage = async () => ({ contentType: metrics.contentType, body: await metrics.text() });
  metricsServer.page("/metrics", "Prometheus metrics", metricsPage);
  metricsServer.page("/stats/prometheus", "alias of /metrics", metricsPage);
  const readyPage = () =>
    readiness.ready
      ? { body: "ready\n" }
      : { status: 503, body: `not ready: waiting for ${readiness.pending().join(", ")}\n` };
  health.page("/healthz/ready", "200 when ready", readyPage);
  admin.page("/healthz/ready", "200 when ready", readyPage);
  admin.page("/config_dump", "workloads, services, policies, certificates, connections", () => ({
    body: agent.configDump(),
  }));
  // The operator commands (cli/) need only the admin address: metrics are served here too, as Envoy's admin does.
  admin.page("/metrics", "Prometheus metrics (as on the metrics port)", metricsPage);
  admin.page(
    "/tap",
    "GET: NDJSON stream of finished requests and connections (nodemesh tap)",
    tapPage(metrics.tap),
  );
  admin.page(
    "/explain",
    "GET ?pod=&to=host:port: would this connection be captured, routed, allowed (nodemesh explain)",
    explainPage({
      node: settings.nodeName,
      settings,
      view: () => view,
      enrolled: (uid) => enrolled.has(uid),
      kernel: datapath.kernelEnrollment?.bind(datapath),
      balancing: () => endpoints.dump(),
      breakers: () => resilience.dump(),
    }),
  );
  admin.page("/logging", "GET: level; POST ?level=debug sets it", (req, url) => {
    const level = url.searchParams.get("level");
    if (req.method === "POST" || level) {
      if (!level || !(level in log.levels.values))
        return { status: 400, body: `unknown level ${level ?? ""}\n` };
      log.level = level;
    }
    return { body: { level: log.level } };
  });
  admin.page("/quitquitquit", "POST: drain and exit", (req) => {
    if (req.method !== "POST") return { status: 405, body: "use POST\n" };
    setImmediate(() => (deps.onQuit ? deps.onQuit() : void agent.stop()));
    return { body: "OK\n" };
  });

  const agent: Agent = {
    async start() {
      await Promise.all([
        admin.listen(settings.adminPort, settings.adminHost),
        metricsServer.listen(settings.metricsPort, settings.metricsHost),
        health.listen(settings.healthPort, settings.metricsHost),
      ]);
      unsubscribe = deps.configSource.onConfig(onConfig);
      const first = deps.configSource.current();
      if (first) onConfig(first);
      globalRateLimits.start();
      started = true;
      await chain;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      clearTimeout(retryTimer);
      unsubscribe?.();
      unsubscribeNodes?.();
      globalRateLimits.stop();
      await chain;
      const result = await runWithDrain({
        stopAccepting: async () => {
          await gateway.close();
          for (const uid of [...enrolled.keys()]) {
            const e = enrolled.get(uid);
            e?.inbound.close();
            await datapath.release(uid);
          }
        },
        inflight: () => connections.size + pool.stats().streams,
        force: () => {
          connections.closeWhere(() => true, "agent shutting down");
          pool.close();
          apps.close();
          http.close();
        },
        deadlineMs: settings.drainMs,
      });
      identities.close();
      egress.close();
      enrolled.clear();
      await Promise.all([admin.close(), metricsServer.close(), health.close()]);
      log.info(result, "agent stopped");
    },
    async whenReady(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!readiness.ready) {
        if (Date.now() > deadline)
          throw new Error(`agent not ready after ${timeoutMs} ms: ${readiness.pending().join(", ")}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    get ready() {
      return readiness.ready;
    },
    get ports() {
      return { admin: admin.port ?? 0, metrics: metricsServer.port ?? 0, health: health.port ?? 0 };
    },
    metrics,
    identities,
    view: () => view,
    settled: () => chain,
    pods,
    async placedWorkloads() {
      const v = view;
      // No config yet: nothing may be judged stale.
      if (!v) return [{ uid: "(no config yet)", netns: undefined }];
      return Promise.all(
        v.localWorkloads().map(async (w) => {
          const e = enrolled.get(w.uid);
          if (e) return { uid: w.uid, netns: e.netns };
          const netns = await placer.place(w).then(
            (p) => p.netns,
            () => undefined,
          );
          return { uid: w.uid, netns };
        }),
      );
    },
    configDump() {
      const v = view;
      const held = new Set(datapath.heldWorkloads?.());
      return {
        node: settings.nodeName,
        version: v?.version,
        ready: readiness.ready,
        pending: readiness.pending(),
        workloads: [...enrolled.values()].map((e) => ({
          uid: e.workload.uid,
          address: e.workload.address,
          identity: e.workload.spiffeId,
          ...mtlsDump(e.mtls),
          authorizationPolicies: v
            ?.authorizationPoliciesFor(e.workload.uid)
            .map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
        })),
        notEnrolled: [...unenrolled].map(([uid, error]) => ({ uid, error, held: held.has(uid) })),
        services: v
          ?.services()
          .map((s) => ({ host: s.host, loadBalancer: s.loadBalancer, connectTimeoutMs: s.connectTimeoutMs })),
        balancing: endpoints.dump(),
        circuitBreakers: resilience.dump(),
        egress: egress.dump(v),
        gateways: gateway.dump(),
        connectionPools: resilience.pools.dump(),
        globalRateLimits: limiter.global.dump(),
        nodeAddresses: peerNodes.nodeBook,
        policies: {
          authorization: v?.config.authorizationPolicies.map(
            (p) => `${p.metadata.namespace}/${p.metadata.name} ${p.spec.action}`,
          ),
          peerAuthentication: v?.config.peerAuthentications.map(
            (p) => `${p.metadata.namespace}/${p.metadata.name} ${p.spec.mtls.mode}`,
          ),
        },
        certificates: identities.dump(),
        trustBundle: { roots: identities.bundle.length },
        connections: { inbound: connections.dump(), pool: pool.dump() },
      };
    },
  };
  return agent;
}

function planOf(v: MeshView, w: WorkloadInfo): MtlsPlan {
  return plaintextPlan(v.config.peerAuthentications, w.entry, v.config.rootNamespace);
}

/** `mtls` is the default; `portLevelMtls` lists the ports that differ from it. */
function mtlsDump(plan: MtlsPlan): { mtls: string; portLevelMtls: Record<string, string> } {
  const mode = (strict: boolean) => (strict ? "STRICT" : "PERMISSIVE");
  return {
    mtls: mode(plan.strict),
    portLevelMtls: Object.fromEntries(plan.ports.map((p) => [String(p.port), mode(p.strict)])),
  };
}
