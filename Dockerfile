# nodemesh image: one image runs the agent (DaemonSet, root with the data path's capabilities) and
# the controller (Deployment, uid 65532). Built by CI's release job, not by the test suite (the test
# machines have no container engine). charts/nodemesh deploys it.
#
#   docker build -t ghcr.io/nodemesh/nodemesh:0.1.0 .

# ---- build: the N-API addon and the BPF objects (clang, libbpf), production node_modules ----------
FROM node:24-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool cmake make g++ python3 pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY CMakeLists.txt binding.gyp ./
COPY native/ native/
RUN npm run build:native && npm prune --omit=dev
COPY bin/ bin/
COPY agent/ agent/
COPY controller/ controller/
COPY cni/ cni/
COPY lab/ lab/
COPY demo/ demo/

# ---- runtime: Node 24 and the shared libraries the addon links ------------------------------------
FROM node:24-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf1 libelf1 zlib1g iproute2 util-linux ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/nodemesh
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/native/build/Release/ native/build/Release/
COPY --from=build /src/native/*.ts native/
COPY --from=build /src/bin/ bin/
COPY --from=build /src/agent/ agent/
COPY --from=build /src/controller/ controller/
# The agent serves the CNI plugin's socket (cni/wire.ts); cni-install copies cni/ to the host.
COPY --from=build /src/cni/ cni/
COPY --from=build /src/lab/ lab/
COPY --from=build /src/demo/ demo/
# Warm Node's compile cache (bin/nodemesh.js enables it) so no pod pays for type stripping at start;
# the root filesystem is read-only at run time, and a cache that is only read is enough.
ENV NODE_COMPILE_CACHE=/opt/nodemesh/.compile-cache NODE_ENV=production
# (`--help` exits non-zero by design for the controller; loading the modules is what counts. The
# controller imports its Kubernetes modules only with --source kube, so they are loaded on their own.)
RUN node bin/nodemesh.js help >/dev/null \
 && (node bin/nodemesh.js controller --help >/dev/null 2>&1 || true) \
 && (node bin/nodemesh.js agent --help >/dev/null 2>&1 || true) \
 && node --disable-warning=ExperimentalWarning --input-type=module \
      -e 'for (const m of ["source", "leader", "token-review"]) await import(`/opt/nodemesh/controller/sources/kube/${m}.ts`)' \
 && chmod -R a+rX /opt/nodemesh/.compile-cache
USER 65532:65532
ENTRYPOINT ["node", "--disable-warning=ExperimentalWarning", "bin/nodemesh.js"]
CMD ["help"]
