#!/usr/bin/env bash
# Build and start paysim locally. Env (PORT, HOST, LOG_LEVEL, ...) passes through.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PORT="${PORT:-8080}" HOST="${HOST:-0.0.0.0}" LOG_LEVEL="${LOG_LEVEL:-info}"
echo "paysim: http://localhost:$PORT (LOG_LEVEL=$LOG_LEVEL)" >&2
exec scripts/with-node.sh sh -c 'npm run build && exec node dist/server.js'
