#!/usr/bin/env bash
# The main job: the local demo mesh on lab hosts. Pass --duration <s> to stop by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root: it builds network namespaces and cgroups and loads BPF programs" >&2
  exit 1
fi
./scripts/bootstrap.sh
. scripts/env.sh
exec node --disable-warning=ExperimentalWarning bin/nodemesh.js demo "$@"
