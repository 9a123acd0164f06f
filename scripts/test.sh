#!/usr/bin/env bash
# The whole test suite: bootstrap, static checks, both native builds, then every test (unit + e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
. scripts/env.sh
npm run check
npm run build:native:gyp
npx vitest run "$@"
