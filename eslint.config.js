import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

// ---- Layering (docs: ../shared/CONVENTIONS.md "Dependency direction", LAYOUT.md) -------------------
// Enforced with no-restricted-imports regexes on the import specifier. Every import in this repository
// is relative, so `^(\.\./)+x/` means "climbs out of the current folder into a folder named x"; the
// top-level folders (agent, controller, native, lab, demo, bench, bin, test) and agent's subfolders have
// distinct names, so one pattern serves every depth. A flat-config block replaces (not merges) the
// options of a rule, so each block below lists every restriction for its files.

const up = (names) => `^(\\.\\./)+(${names.join("|")})/`;
const ban = (names, message) => ({ regex: up(names), message });

const NO_TEST = [
  {
    regex: "(^|/)(test|bench)/",
    message: "production code never imports test/ or bench/ (test helpers live in test/helpers)",
  },
];
/** agent/ and controller/ meet only in controller/api/, the wire schema both sides share. */
const AGENT_ANY = [
  ...NO_TEST,
  {
    regex: "^(\\.\\./)+controller/(?!api/)",
    message: "agent/ imports only controller/api/ of the controller",
  },
  ban(["lab", "demo", "bin"], "the agent never imports the lab, the demo or the CLI"),
  {
    regex: "^(\\.\\./)+(app|main|reconcile)\\.ts$",
    message: "app.ts is the one composition root: nothing imports it",
  },
];
/** Only the datapath drives the kernel (native/index.ts is the one loader of the addon). */
const AGENT = [...AGENT_ANY, ban(["native"], "only agent/datapath/ imports native/")];
/** Assemblies (proxy, http, datapath) sit above the domain: imports point downward. */
const ASSEMBLIES = ["proxy", "http", "datapath"];
const DOMAIN = [
  ...AGENT,
  ban(ASSEMBLIES, "domain code (state, identity, policy, ...) never imports the assemblies above it"),
];
/** linkerd2-proxy: mechanisms know nothing of workloads, so they compose anywhere (L4 and L7). */
const MECHANISM = [
  ...AGENT,
  ban(
    ["state", "policy", "identity", "proxy", "http", "datapath", "control", "tls", "node"],
    "generic mechanisms know nothing of workloads, identities, policy or the proxies",
  ),
  ban(["controller"], "generic mechanisms do not know the mesh schema (controller/api) either"),
];
/** Admin pages are registered by the parts that own the data, so admin depends on no feature. */
const ADMIN = [
  ...AGENT,
  ban(
    [
      "stack",
      "balance",
      "health",
      "retry",
      "breaker",
      "ratelimit",
      "state",
      "control",
      "identity",
      "tls",
      "policy",
      "datapath",
      "node",
      "proxy",
      "http",
      "telemetry",
    ],
    "admin depends on no feature: features register their pages with it",
  ),
  ban(["controller"], "admin depends on no feature, not even the wire schema"),
];
const CONTROLLER = [
  ...NO_TEST,
  ban(
    ["agent", "native", "lab", "demo", "bin"],
    "the controller never imports the agent, native/, the lab, the demo or the CLI",
  ),
];
const IO_MODULES = [
  "fs",
  "fs/promises",
  "net",
  "http",
  "http2",
  "https",
  "tls",
  "dgram",
  "dns",
  "child_process",
  "worker_threads",
];
/** linkerd2-proxy-api: the shared schema is types and validation only. */
const CONTROLLER_API = [
  ...CONTROLLER,
  {
    regex: "^\\.\\./",
    message: "controller/api/ is the wire schema: it imports nothing but itself (and zod)",
  },
  { regex: `^(node:)?(${IO_MODULES.join("|")})$`, message: "controller/api/ does no I/O" },
];
const NATIVE = [
  ...NO_TEST,
  ban(
    ["agent", "controller", "lab", "demo", "bin"],
    "native/ is a leaf: the addon facade imports nothing of the mesh",
  ),
];
/** The lab builds hosts and pods and runs the mesh as processes; it never links mesh code. */
const LAB = [
  ...NO_TEST,
  ban(
    ["agent", "controller", "native", "demo", "bin"],
    "lab/ runs the mesh as processes; it imports no mesh code",
  ),
];
const DEMO = [
  ...NO_TEST,
  {
    regex: "^(\\.\\./)+controller/(?!api/)",
    message: "the demo talks to the mesh through its config (controller/api/) and processes",
  },
  ban(
    ["agent", "native", "bin"],
    "the demo talks to the mesh through its config (controller/api/) and processes",
  ),
];
const DEMO_APPS = [
  ...NO_TEST,
  ban(
    ["agent", "controller", "native", "lab", "bin"],
    "the sample apps are plain HTTP servers: no mesh code",
  ),
];

const layer = (files, patterns) => ({ files, rules: { "no-restricted-imports": ["error", { patterns }] } });
const AGENT_MECHANISMS = ["stack", "balance", "health", "retry", "breaker", "ratelimit"].map(
  (d) => `agent/${d}/**`,
);
const AGENT_DOMAIN = ["state", "identity", "policy", "control", "tls", "telemetry"].map(
  (d) => `agent/${d}/**`,
);

export default tseslint.config(
  { ignores: ["node_modules/", ".toolchain/", "native/build/", "build/", "charts/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-restricted-imports": ["error", { patterns: NO_TEST }],
    },
  },
  // Later blocks win for the files they name: general first, most specific last.
  layer(["agent/**"], AGENT),
  layer(["agent/datapath/**"], AGENT_ANY),
  layer(AGENT_DOMAIN, DOMAIN),
  layer(AGENT_MECHANISMS, MECHANISM),
  layer(["agent/admin/**"], ADMIN),
  layer(["controller/**"], CONTROLLER),
  layer(["controller/api/**"], CONTROLLER_API),
  layer(["native/**"], NATIVE),
  layer(["lab/**"], LAB),
  layer(["demo/**"], DEMO),
  layer(["demo/apps/**"], DEMO_APPS),
  {
    files: ["test/**", "bench/**"],
    rules: { "no-restricted-imports": "off" },
  },
);
