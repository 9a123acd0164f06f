#!/usr/bin/env bash
# The whole test suite: bootstrap (which builds the addon with cmake-js), static checks, the node-gyp
# build of the same addon, every test (unit, integration, e2e) against the cmake-js build, then the
# native e2e tests again against the node-gyp build, so CI proves both builds work.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
. scripts/env.sh
npm run check
npm run build:native:gyp
npx vitest run "$@"
if [ $# -eq 0 ]; then
  NODEMESH_NATIVE_ADDON="$PWD/build/Release/nodemesh_native.node" npx vitest run test/e2e/native test/unit/native
fi
