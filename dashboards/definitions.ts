// The three nodemesh dashboards: the mesh overview, one service, one workload. Golden signals (rate,
// success rate, p50/p95/p99 latency, TCP connections and bytes), per route, plus resilience and the
// control plane. Success is Istio's: a response that is not 5xx (and not 0, no response at all).
// `reporter="source"` is what clients saw (it includes the mesh's own failures: no route, no endpoint,
// open breakers, denials on the way); `reporter="destination"` is what the serving side saw.
import type { DashboardSpec } from "./grafana.ts";
import {
  FAIL_CODES,
  goldenStats,
  latencyPanel,
  openConns,
  q,
  quantile,
  reqRate,
  RI,
  routePanels,
  stat,
  success,
  tcp,
  ts,
} from "./panels.ts";

const LINKS = [
  { title: "Mesh", uid: "nodemesh-mesh" },
  { title: "Service", uid: "nodemesh-service" },
  { title: "Workload", uid: "nodemesh-workload" },
];
const ANY_TRAFFIC = `{__name__=~"nodemesh_requests_total|nodemesh_tcp_connections_opened_total"}`;

export const MESH: DashboardSpec = {
  uid: "nodemesh-mesh",
  title: "nodemesh / Mesh",
  description: "Every service of the mesh as its clients see it, resilience, and the control plane.",
  links: LINKS,
  variables: [],
  rows: [
    { title: "Requests (client side)", panels: goldenStats(`reporter="source"`) },
    {
      title: "Services",
      panels: [
        {
          title: "HTTP and gRPC services",
          type: "table",
          width: 24,
          queries: [
            q(reqRate(`reporter="source"`, "destination_service"), "rps"),
            q(success(`reporter="source"`, "destination_service"), "success"),
            q(quantile(0.99, `reporter="source"`, "destination_service"), "p99"),
          ],
        },
        ts(
          "Requests by service",
          "reqps",
          q(reqRate(`reporter="source"`, "destination_service"), "{{destination_service}}"),
        ),
        ts(
          "Errors (5xx or no response) by service",
          "reqps",
          q(
            reqRate(`reporter="source",${FAIL_CODES}`, "destination_service, response_code"),
            "{{destination_service}} {{response_code}}",
          ),
        ),
        ts(
          "p99 latency by service",
          "s",
          q(quantile(0.99, `reporter="source"`, "destination_service"), "{{destination_service}}"),
        ),
      ],
    },
    { title: "Routes", panels: routePanels(`reporter="source"`) },
    {
      title: "TCP",
      panels: [
        ts(
          "Connections opened by service",
          "cps",
          q(tcp("connections_opened", `reporter="source"`, "destination_service"), "{{destination_service}}"),
        ),
        ts(
          "Open connections by service",
          "short",
          q(openConns(`reporter="source"`, "destination_service"), "{{destination_service}}"),
        ),
        ts(
          "Failed connections",
          "cps",
          q(
            tcp("connections_failed", "", "reporter, destination_service, response_flags"),
            "{{reporter}} {{destination_service}} {{response_flags}}",
          ),
        ),
        ts(
          "Bytes by service",
          "Bps",
          q(tcp("sent_bytes", `reporter="source"`, "destination_service"), "{{destination_service}} sent"),
          q(
            tcp("received_bytes", `reporter="source"`, "destination_service"),
            "{{destination_service}} received",
          ),
        ),
      ],
    },
    {
      title: "Resilience",
      panels: [
        ts(
          "Retries by destination and reason",
          "reqps",
          q(
            `sum by (destination_service, reason) (rate(nodemesh_request_retries_total${RI}))`,
            "{{destination_service}} {{reason}}",
          ),
        ),
        ts(
          "Open circuit breakers",
          "short",
          q(
            `sum by (destination_service, endpoint) (nodemesh_circuit_breaker_state{state="open"})`,
            "{{destination_service}} {{endpoint}}",
          ),
        ),
        ts(
          "Breaker transitions",
          "short",
          q(
            `sum by (destination_service, to) (increase(nodemesh_circuit_breaker_transitions_total${RI}))`,
            "{{destination_service}} to {{to}}",
          ),
        ),
      ],
    },
    {
      title: "Control plane",
      panels: [
        stat("Agents reporting", "short", `count(nodemesh_build_info{component="agent"})`),
        stat("Agents connected to the controller", "short", `sum(nodemesh_controller_connected_agents)`),
        stat(
          "Config accepted (1 = last read applied)",
          "short",
          `min(nodemesh_controller_config_last_reload_successful)`,
          [
            [null, "red"],
            [1, "green"],
          ],
        ),
        stat(
          "Earliest certificate expiry",
          "s",
          `min(nodemesh_identity_cert_expiration_timestamp_seconds) - time()`,
          [
            [null, "red"],
            [3600, "orange"],
            [21600, "green"],
          ],
        ),
        ts(
          "Config pushes",
          "ops",
          q(`sum by (type) (rate(nodemesh_controller_pushes_total${RI}))`, "{{type}}"),
        ),
        ts(
          "Acknowledgements",
          "ops",
          q(`sum by (result) (rate(nodemesh_controller_acks_total${RI}))`, "{{result}}"),
        ),
        ts(
          "Config rejections",
          "short",
          q(`sum by (reason) (increase(nodemesh_controller_config_rejections_total${RI}))`, "{{reason}}"),
        ),
        ts(
          "Push latency (accepted → acknowledged)",
          "s",
          q(
            `histogram_quantile(0.99, sum by (le) (rate(nodemesh_controller_push_latency_seconds_bucket${RI})))`,
            "p99",
          ),
          q(
            `histogram_quantile(0.5, sum by (le) (rate(nodemesh_controller_push_latency_seconds_bucket${RI})))`,
            "p50",
          ),
        ),
        ts(
          "Certificates issued and refused",
          "ops",
          q(`sum(rate(nodemesh_controller_csr_signed_total${RI}))`, "signed"),
          q(`sum by (reason) (rate(nodemesh_controller_csr_rejected_total${RI}))`, "rejected {{reason}}"),
        ),
        {
          title: "Certificate expiry by identity",
          type: "table",
          unit: "s",
          width: 24,
          queries: [
            q(
              `min by (spiffe_id) (nodemesh_identity_cert_expiration_timestamp_seconds) - time()`,
              "seconds left",
            ),
          ],
        },
      ],
    },
  ],
};

const SVC = `destination_service="$service"`;
export const SERVICE: DashboardSpec = {
  uid: "nodemesh-service",
  title: "nodemesh / Service",
  description:
    "One service: golden signals as clients see them, per route, per client, per serving workload, TCP.",
  links: LINKS,
  variables: [
    { name: "service", label: "Service", query: `label_values(${ANY_TRAFFIC}, destination_service)` },
  ],
  rows: [
    { title: "Golden signals (client side)", panels: goldenStats(`reporter="source",${SVC}`) },
    {
      title: "Requests",
      panels: [
        ts(
          "Requests by response code",
          "reqps",
          q(reqRate(`reporter="source",${SVC}`, "response_code"), "{{response_code}}"),
        ),
        latencyPanel("Latency", `reporter="source",${SVC}`),
        ts(
          "Requests by client workload",
          "reqps",
          q(
            reqRate(`reporter="source",${SVC}`, "source_workload_namespace, source_workload"),
            "{{source_workload_namespace}}/{{source_workload}}",
          ),
        ),
      ],
    },
    { title: "Routes", panels: routePanels(`reporter="source",${SVC}`) },
    {
      title: "Serving workloads (server side)",
      panels: [
        ts(
          "Requests by serving workload",
          "reqps",
          q(reqRate(`reporter="destination",${SVC}`, "destination_workload"), "{{destination_workload}}"),
        ),
        ts(
          "Success rate by serving workload",
          "percentunit",
          q(success(`reporter="destination",${SVC}`, "destination_workload"), "{{destination_workload}}"),
        ),
        ts(
          "p99 latency by serving workload",
          "s",
          q(
            quantile(0.99, `reporter="destination",${SVC}`, "destination_workload"),
            "{{destination_workload}}",
          ),
        ),
      ],
    },
    {
      title: "TCP",
      panels: [
        ts(
          "Connections opened",
          "cps",
          q(
            tcp("connections_opened", `reporter="source",${SVC}`, "source_workload"),
            "from {{source_workload}}",
          ),
        ),
        ts(
          "Open connections",
          "short",
          q(openConns(`reporter="source",${SVC}`, "source_workload"), "from {{source_workload}}"),
        ),
        ts(
          "Failed connections",
          "cps",
          q(tcp("connections_failed", SVC, "reporter, response_flags"), "{{reporter}} {{response_flags}}"),
        ),
        ts(
          "Bytes",
          "Bps",
          q(tcp("sent_bytes", `reporter="source",${SVC}`, "destination_service"), "sent (responses)"),
          q(tcp("received_bytes", `reporter="source",${SVC}`, "destination_service"), "received (requests)"),
        ),
      ],
    },
  ],
};

/** Series of `$namespace`'s workloads on one side, with that side's workload name copied to `workload`. */
function workloadsAs(side: "source" | "destination"): string {
  const sel = `{__name__=~"nodemesh_requests_total|nodemesh_tcp_connections_opened_total",${side}_workload_namespace="$namespace"}`;
  return `label_replace(${sel}, "workload", "$1", "${side}_workload", "(.+)")`;
}

const IN = `reporter="destination",destination_workload_namespace="$namespace",destination_workload="$workload"`;
const OUT = `reporter="source",source_workload_namespace="$namespace",source_workload="$workload"`;
export const WORKLOAD: DashboardSpec = {
  uid: "nodemesh-workload",
  title: "nodemesh / Workload",
  description: "One workload: what it serves (inbound) and what it calls (outbound), HTTP and TCP.",
  links: LINKS,
  variables: [
    {
      name: "namespace",
      label: "Namespace",
      query: `label_values(${ANY_TRAFFIC}, destination_workload_namespace)`,
    },
    {
      name: "workload",
      label: "Workload",
      // Serving and calling workloads alike: a client appears only as source_workload.
      query: `query_result(count by (workload) (${workloadsAs("destination")} or ${workloadsAs("source")}))`,
      regex: '/workload="([^"]+)"/',
    },
  ],
  rows: [
    { title: "Inbound (as it serves)", panels: goldenStats(IN) },
    {
      title: "Inbound requests",
      panels: [
        ts(
          "Requests by source workload",
          "reqps",
          q(
            reqRate(IN, "source_workload_namespace, source_workload"),
            "{{source_workload_namespace}}/{{source_workload}}",
          ),
        ),
        ts("Requests by response code", "reqps", q(reqRate(IN, "response_code"), "{{response_code}}")),
        latencyPanel("Latency", IN),
      ],
    },
    {
      title: "Outbound (as a client)",
      panels: [
        ts(
          "Requests by destination service",
          "reqps",
          q(reqRate(OUT, "destination_service"), "{{destination_service}}"),
        ),
        ts(
          "Success rate by destination service",
          "percentunit",
          q(success(OUT, "destination_service"), "{{destination_service}}"),
        ),
        ts(
          "p99 latency by destination service",
          "s",
          q(quantile(0.99, OUT, "destination_service"), "{{destination_service}}"),
        ),
      ],
    },
    {
      title: "TCP",
      panels: [
        ts(
          "Inbound connections opened",
          "cps",
          q(tcp("connections_opened", IN, "source_workload"), "from {{source_workload}}"),
        ),
        ts(
          "Outbound connections opened",
          "cps",
          q(tcp("connections_opened", OUT, "destination_service"), "to {{destination_service}}"),
        ),
        ts(
          "Open connections",
          "short",
          q(openConns(IN, "destination_workload"), "inbound"),
          q(openConns(OUT, "source_workload"), "outbound"),
        ),
        ts(
          "Bytes",
          "Bps",
          q(tcp("sent_bytes", IN, "destination_workload"), "responses it sent"),
          q(tcp("received_bytes", OUT, "source_workload"), "requests it sent"),
        ),
      ],
    },
    {
      title: "Identity",
      panels: [
        {
          title: "Certificates of the namespace: seconds to expiry",
          type: "table",
          unit: "s",
          width: 24,
          queries: [
            q(
              `min by (spiffe_id) (nodemesh_identity_cert_expiration_timestamp_seconds{spiffe_id=~".*/ns/$namespace/.*"}) - time()`,
              "seconds left",
            ),
          ],
        },
      ],
    },
  ],
};

export const DASHBOARDS: Readonly<Record<string, DashboardSpec>> = {
  "nodemesh-mesh": MESH,
  "nodemesh-service": SERVICE,
  "nodemesh-workload": WORKLOAD,
};
