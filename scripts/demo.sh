#!/usr/bin/env bash
# The main job: the local demo mesh on lab hosts. Pass --duration <s> to stop by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
. scripts/env.sh
exec node --disable-warning=ExperimentalWarning bin/nodemesh.js demo "$@"
