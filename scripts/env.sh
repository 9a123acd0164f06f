# shellcheck shell=bash
# Puts the project's toolchain (Node 24 from .toolchain/, when bootstrap installed it) on PATH.
NODEMESH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NODEMESH_ROOT
if [ -x "$NODEMESH_ROOT/.toolchain/node/bin/node" ]; then
  export PATH="$NODEMESH_ROOT/.toolchain/node/bin:$PATH"
fi
npm_config_nodedir="$(dirname "$(dirname "$(command -v node)")")"
export npm_config_nodedir
