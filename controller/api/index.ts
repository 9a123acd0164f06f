// controller/api — the wire schema the agent and the controller share: zod schemas, inferred
// types and pure helpers. No I/O. The only controller module the agent may import.
//
// Exports (kept stable):
//   resources.ts  API_VERSION, KINDS; schemas + types Service, ServicePort, WorkloadEntry,
//                 AuthorizationPolicy (Source, Operation, Rule), PeerAuthentication (MtlsMode),
//                 TrafficPolicy, Resource (union on `kind`), Kind, Metadata, LabelSelector,
//                 TargetRef, Duration, PortRef; type ResourceKey; keyOf(r), keyString(k),
//                 durationMs("250ms") → 250; Condition (`when`), CONDITION_KEYS, HEADER_CONDITION_KEY
//   routes.ts     Gateway API kinds (GATEWAY_API_VERSION "gateway.networking.k8s.io/v1"): schemas + types
//                 HTTPRoute (HttpRouteRule, HttpRouteMatch, HttpPathMatch, HttpBackendRef,
//                 HttpRouteTimeouts, HttpRouteRetry), GRPCRoute (GrpcRouteRule, GrpcRouteMatch,
//                 GrpcMethodMatch, GrpcBackendRef), with route-parts.ts (ServiceParentRef,
//                 BackendObjectRef, HeaderMatch, QueryParamMatch, Fraction, RouteMetadata,
//                 isCoreService, compiles) and route-filters.ts (HttpRouteFilter, GrpcRouteFilter,
//                 HeaderFilter, PathModifier, RequestRedirect, UrlRewrite, RequestMirror);
//                 gatewayDurationMs("1h30m") → 5400000
//   gateway.ts    Gateway (Listener, CertificateRef, GATEWAY_CLASS_NAME, GATEWAY_NODES_ANNOTATION,
//                 GATEWAY_SERVICE_ACCOUNT_ANNOTATION, GATEWAY_TRUSTED_PROXIES_ANNOTATION), TLSCertificate;
//                 gatewayNodes(g), gatewayIdentity(g, td), gatewayTrustedProxies(g),
//                 isOurGateway(g); gateway-attach.ts: hostnameMatches, intersectHostnames, namesGateway,
//                 attachToGateway(route, parentRef, gateway) (docs/ingress.md)
//   external-service.ts  ExternalServiceSpec (ports, endpoints, egressGateway, tls), OutboundTrafficPolicy
//                 (ALLOW_ANY | REGISTRY_ONLY), externalTargetPort(port, endpoint), egressGatewayUid(spec, ns);
//                 the ExternalService kind itself is in resources.ts (docs/egress.md)
//   identity.ts   DEFAULT_TRUST_DOMAIN, type SpiffeId, spiffeIdOf(workload, td),
//                 parseSpiffeId(uri) → SpiffeId | undefined, formatSpiffeId(id), principalOf(uri),
//                 type PeerIdentity, peerIdentityOf(uri | undefined) (what policy sees of a peer)
//   selectors.ts  DEFAULT_ROOT_NAMESPACE, selectorMatches(sel, labels), type Endpoint,
//                 endpointsOf(service, workloads), resolveTargetPort(port, w), serviceSelects(s, w),
//                 policyAppliesTo(policy, w, services?, rootNs?), trafficPolicyTargets(tp, s),
//                 stringMatches(pattern, value)
//   stream.ts     CONTROLLER_PORT 15012, CONTROLLER_MONITORING_PORT 15014, PATH_STREAM, PATH_CSR,
//                 HEADER_NODE, HEADER_VERSION, NDJSON, HEARTBEAT_INTERVAL_MS; schemas + types
//                 MeshConfig, MeshDelta, ServerMessage, ClientMessage, CsrRequest, CsrResponse,
//                 ErrorBody; LIST_OF_KIND; applyDelta(config, delta); DeltaMismatchError
//   global-ratelimit.ts  the mesh-wide rate limit on the stream: DemandReport, RateLimitShares (+ entries),
//                 MAX_REPORTED_LIMITS, DEFAULT_DEMAND_REPORT_MS, type GlobalLimit, globalLimitsOf(config),
//                 globalLimitId(policy, host)
//   node-addresses.ts  node addresses on the stream: NodeAddressReport (agent → controller),
//                 NodeAddressBook (controller → reporting agents), MAX_NODE_ADDRESSES,
//                 NODE_ADDRESS_RESCAN_MS, reportableAddress(ip)
//   pending.ts    entryOfPending(pendingWorkload, address): the WorkloadEntry a PendingWorkload
//                 becomes when the CNI plugin reports its address (docs/kubernetes.md); UnmeshedPod
//                 (resources.ts) is a pod of a node that is not meshed, by UID, for the plugin's ADD
//   validate.ts   type ConfigIssue, validateDocument(doc, file, index), formatIssue(issue),
//                 formatPath(path), describeDocument(doc)
export * from "./resources.ts";
export * from "./routes.ts";
export * from "./gateway.ts";
export * from "./gateway-attach.ts";
export * from "./external-service.ts";
export * from "./identity.ts";
export * from "./selectors.ts";
export * from "./stream.ts";
export * from "./global-ratelimit.ts";
export * from "./node-addresses.ts";
export * from "./validate.ts";
export * from "./pending.ts";
