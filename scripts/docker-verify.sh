#!/usr/bin/env bash
# Usage: scripts/docker-verify.sh            (make docker-verify; .ci/run runs it)
#
# Builds the Dockerfile and runs the image the way `docker run -e … -p 8080:8080 paysim` would, on a
# machine with no Docker engine and no registry: Debian's buildah builds it (--isolation chroot)
# on a base image made locally by scripts/docker-base.sh, and `buildah run --isolation chroot`
# runs the image's ENTRYPOINT + CMD as its USER with -e variables, in the host's network (so
# 127.0.0.1:PORT is the published port). Then it checks what a user relies on: /healthz, /readyz,
# a payment whose signed webhook reaches a receiver on the host, the HEALTHCHECK command, the
# non-root user, the environment reaching the process, production dependencies only, the size,
# and SIGTERM draining in-flight work and exiting 0. Each step is printed; the first failure stops
# the run with its reason and the server's last log lines. Everything talks to 127.0.0.1 only.
#
# Environment: IMAGE (tag given to the build, default localhost/paysim:verify),
# DOCKER_VERIFY_NO_CACHE=1 (build without buildah's layer cache).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
IMAGE="${IMAGE:-localhost/paysim:verify}"
BASE_IMAGE=docker.io/library/node:24-bookworm-slim
SECRET='whsec_ZG9ja2VyLXZlcmlmeS13ZWJob29rLXNlY3JldA=='   # base64 of "docker-verify-webhook-secret"
MAX_ADDED_MB=100
STEPS=12
started=$SECONDS

step_no=0 step_name=''
step() { step_no=$((step_no + 1)); step_name="$*"; echo "docker-verify: [$step_no/$STEPS] $*"; }
info() { echo "docker-verify:        $*"; }
fail() {
  echo "docker-verify: FAILED at [$step_no/$STEPS] $step_name: $*" >&2
  if [[ -n "${server_log:-}" && -s "$server_log" ]]; then
    echo "docker-verify: the server's last log lines ($server_log):" >&2
    tail -n 25 "$server_log" | cut -c1-400 >&2
  fi
  exit 1
}
now_ms() { date +%s%3N; }
descendants() { local c; for c in $(pgrep -P "$1" 2>/dev/null || true); do echo "$c"; descendants "$c"; done; }

[[ $EUID -eq 0 ]] || { echo "docker-verify: must run as root (buildah's store, debootstrap)" >&2; exit 1; }

tmp="$(mktemp -d /var/tmp/paysim-docker-verify.XXXXXX)"
server_log="$tmp/server.log"
ctr='' run_pid='' rx_pid='' node_pid='' mounted=''
cleanup() {
  local rc=$?
  set +e
  # `buildah run` killed alone leaves its chroot runtime and node running: the whole tree goes.
  if [[ -n "$run_pid" ]]; then
    mapfile -t tree < <(descendants "$run_pid")
    ((${#tree[@]} == 0)) || kill -KILL "${tree[@]}" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done   # it reaps them
    kill -KILL "$run_pid" 2>/dev/null
    wait "$run_pid" 2>/dev/null
  fi
  [[ -z "$node_pid" ]] || kill -KILL "$node_pid" 2>/dev/null
  [[ -z "$rx_pid" ]] || { kill "$rx_pid" 2>/dev/null; wait "$rx_pid" 2>/dev/null; }
  [[ -z "$mounted" ]] || buildah umount "$ctr" >/dev/null 2>&1
  [[ -z "$ctr" ]] || buildah rm "$ctr" >/dev/null 2>&1
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
step "tools: buildah, debootstrap, zstd, curl (Debian packages), node on the host"
missing=()
for pair in buildah:buildah debootstrap:debootstrap zstd:zstd curl:curl pgrep:procps; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  info "apt-get install ${missing[*]}"
  timeout 300 apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
fi
# Node on the host runs the webhook receiver and reads JSON (scripts/with-node.sh: Node >= 22.19).
NODE="$(WITH_NODE_QUIET=1 scripts/with-node.sh sh -c 'command -v node')" || fail "no node on the host (scripts/with-node.sh)"
info "$(buildah --version), $(debootstrap --version), host node $("$NODE" --version)"

# A small Node helper for the host side: JSON reading, a free port, the webhook receiver.
cat >"$tmp/helper.mjs" <<'EOF'
import { createHmac } from 'node:crypto';
import { appendFileSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const [cmd, ...args] = process.argv.slice(2);
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const out = (v) => console.log(typeof v === 'string' ? v : JSON.stringify(v));

if (cmd === 'get') {
  // get FILE EXPR: evaluates EXPR with `x` the parsed file (strings printed raw, the rest as JSON).
  const x = readJson(args[0]);
  const v = new Function('x', `return (${args[1]});`)(x);
  out(v === undefined || v === null ? '' : v);
} else if (cmd === 'free-port') {
  const s = createServer().listen(0, '127.0.0.1', () => { out(String(s.address().port)); s.close(); });
} else if (cmd === 'receiver') {
  // receiver PORTFILE LOG SECRET: records every request as JSON lines, `received` then `answered`;
  // /slow… is answered after 1500 ms (a delivery in flight when SIGTERM arrives).
  const [portFile, log, secret] = args;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const h = req.headers;
      const expected = 'v1,' + createHmac('sha256', key).update(`${h['webhook-id']}.${h['webhook-timestamp']}.${body}`).digest('base64');
      const rec = { path: req.url, method: req.method, signature: h['webhook-signature'] ?? null,
        signature_ok: String(h['webhook-signature'] ?? '').split(' ').includes(expected), body };
      appendFileSync(log, JSON.stringify({ event: 'received', at: Date.now(), ...rec }) + '\n');
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok', () => {
        appendFileSync(log, JSON.stringify({ event: 'answered', at: Date.now(), path: req.url }) + '\n');
      }), req.url.startsWith('/slow') ? 1500 : 0);
    });
  });
  server.listen(0, '127.0.0.1', () => writeFileSync(portFile, String(server.address().port)));
} else if (cmd === 'webhook') {
  // webhook LOG PATH EVENT: the first record of EVENT for PATH, or nothing.
  const [log, path, event] = args;
  let lines = [];
  try { lines = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)); } catch { /* none yet */ }
  const rec = lines.find((r) => r.path === path && r.event === event);
  if (rec) out(rec);
} else if (cmd === 'layers') {
  // layers IMAGE.json BASE.json: uncompressed bytes of the image, of its base, and of the layers added.
  const sizes = (f) => JSON.parse(readJson(f).Manifest).layers.map((l) => ({ digest: l.digest, size: l.size }));
  const image = sizes(args[0]);
  const base = sizes(args[1]);
  const shared = base.every((l, i) => image[i]?.digest === l.digest);
  const sum = (ls) => ls.reduce((n, l) => n + l.size, 0);
  out({ image: sum(image), base: sum(base), added: sum(image.slice(base.length)), shared, layers: image.length - base.length });
} else if (cmd === 'modules') {
  // modules NODE_MODULES PACKAGE.JSON LOCKFILE: what the image's node_modules holds, and any dev dependency in it.
  const [dir, pkgFile, lockFile] = args;
  const pkg = readJson(pkgFile);
  const lock = readJson(lockFile);
  const du = (p) => { const s = statSync(p); return s.isDirectory() ? readdirSync(p).reduce((n, e) => n + du(join(p, e)), 0) : s.size; };
  const installed = [];
  const walk = (nm, prefix) => {
    for (const e of readdirSync(nm)) {
      if (e.startsWith('.')) continue;
      if (e.startsWith('@')) { for (const s of readdirSync(join(nm, e))) installed.push({ path: `${prefix}${e}/${s}`, dir: join(nm, e, s) }); continue; }
      installed.push({ path: `${prefix}${e}`, dir: join(nm, e) });
    }
  };
  walk(dir, 'node_modules/');
  for (let i = 0; i < installed.length; i++) {
    try { walk(join(installed[i].dir, 'node_modules'), `${installed[i].path}/node_modules/`); } catch { /* no nested node_modules */ }
  }
  const name = (p) => p.slice(p.lastIndexOf('node_modules/') + 13);
  // A devDependency may also be a dependency of a production package (@types/node of protobufjs):
  // npm then installs it with --omit=dev, and the lockfile does not mark it `dev`. Those are listed
  // with who needs them; any other devDependency, or any package the lockfile marks dev, fails.
  const devPresent = Object.keys(pkg.devDependencies ?? {}).filter((d) => installed.some((m) => name(m.path) === d));
  const neededBy = (d) => Object.entries(lock.packages ?? {})
    .filter(([k, v]) => k !== '' && !v.dev && (v.dependencies?.[d] !== undefined || v.optionalDependencies?.[d] !== undefined || v.peerDependencies?.[d] !== undefined))
    .map(([k]) => name(k));
  const devAlsoProd = devPresent.filter((d) => lock.packages?.[`node_modules/${d}`]?.dev !== true && neededBy(d).length > 0).map((d) => `${d} (needed by ${neededBy(d).join(', ')})`);
  const devDirect = devPresent.filter((d) => lock.packages?.[`node_modules/${d}`]?.dev === true || neededBy(d).length === 0);
  const devOnly = installed.filter((m) => lock.packages?.[m.path]?.dev === true).map((m) => m.path);
  const topLevel = installed.filter((m) => !m.path.slice(13).includes('node_modules/'));
  const largest = topLevel.map((m) => ({ name: name(m.path), size: du(m.dir) })).sort((a, b) => b.size - a.size).slice(0, 5);
  out({ count: installed.length, top: topLevel.map((m) => name(m.path)), bytes: du(dir), largest, devDirect, devOnly, devAlsoProd,
    missing: Object.keys(pkg.dependencies ?? {}).filter((d) => !topLevel.some((m) => name(m.path) === d)) });
} else {
  console.error(`helper: unknown command ${cmd}`);
  process.exit(2);
}
EOF
h() { "$NODE" "$tmp/helper.mjs" "$@"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

# ---------------------------------------------------------------------------------------------
step "base image $BASE_IMAGE, made locally (scripts/docker-base.sh)"
t0=$SECONDS
timeout --foreground 1200 bash scripts/docker-base.sh 2>&1 | sed 's/^/docker-verify:        /' || fail "scripts/docker-base.sh failed (its output is above)"
info "base ready in $((SECONDS - t0))s"

# ---------------------------------------------------------------------------------------------
step "buildah build --isolation chroot (the Dockerfile as it is; FROM resolves to the local base, never pulled)"
version="$(h get package.json 'x.version')"
revision="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
build_args=(--isolation chroot --pull=never --format docker --layers --force-rm
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --iidfile "$tmp/iid" -t "$IMAGE")
[[ -z "${DOCKER_VERIFY_NO_CACHE:-}" ]] || build_args+=(--no-cache)
t0=$SECONDS
# The full log goes to a file; the FROM, COPY and RUN steps are shown as they start.
set +e
timeout --foreground 1200 buildah build "${build_args[@]}" . 2>&1 | tee "$tmp/build.log" \
  | grep --line-buffered -E '^\[[0-9]+/[0-9]+\] STEP [0-9]+/[0-9]+: (FROM|COPY|RUN) ' \
  | sed -u -E 's/^(.{140}).*/\1 …/; s/^/docker-verify:          /'
build_rc=${PIPESTATUS[0]}
set -e
if [[ $build_rc -ne 0 ]]; then
  tail -n 40 "$tmp/build.log" >&2
  fail "buildah build exited $build_rc (the end of its log is above)"
fi
iid="$(cat "$tmp/iid")"
iid="${iid#sha256:}"
info "built $IMAGE (${iid:0:12}) version $version in $((SECONDS - t0))s ($(grep -c -- '--> Using cache' "$tmp/build.log" || true) steps from buildah's layer cache)"

# ---------------------------------------------------------------------------------------------
step "image configuration: USER, EXPOSE, HEALTHCHECK, STOPSIGNAL, ENV, OCI labels"
buildah inspect --type image "$iid" >"$tmp/image.json" || fail "buildah inspect $iid failed"
buildah inspect --type image "$BASE_IMAGE" >"$tmp/base.json" || fail "buildah inspect $BASE_IMAGE failed"
cfg='x.Docker.config'
user="$(h get "$tmp/image.json" "$cfg.User")"
[[ -n "$user" && "$user" != root && "$user" != 0 && "$user" != 0:* ]] || fail "the image's USER is '${user:-(none: root)}', not a non-root user"
[[ "$(h get "$tmp/image.json" "Object.keys($cfg.ExposedPorts ?? {}).join(' ')")" == 8080/tcp ]] || fail "the image does not EXPOSE 8080 (only)"
[[ "$(h get "$tmp/image.json" "$cfg.StopSignal")" == SIGTERM ]] || fail "STOPSIGNAL is not SIGTERM"
healthcheck="$(h get "$tmp/image.json" "$cfg.Healthcheck?.Test ?? null")"
[[ -n "$healthcheck" ]] || fail "the image has no HEALTHCHECK (is the build's --format docker? OCI images drop it)"
for kv in NODE_ENV=production HOST=0.0.0.0 PORT=8080; do
  [[ "$(h get "$tmp/image.json" "$cfg.Env.includes('$kv')")" == true ]] || fail "ENV $kv is missing from the image"
done
for label in title description version revision source licenses; do
  [[ -n "$(h get "$tmp/image.json" "$cfg.Labels?.['org.opencontainers.image.$label']")" ]] \
    || fail "OCI label org.opencontainers.image.$label is missing"
done
[[ "$(h get "$tmp/image.json" "$cfg.Labels['org.opencontainers.image.version']")" == "$version" ]] || fail "label version is not package.json's $version"
entrypoint="$(h get "$tmp/image.json" "JSON.stringify([...($cfg.Entrypoint ?? []), ...($cfg.Cmd ?? [])])")"
info "USER $user, EXPOSE 8080/tcp, STOPSIGNAL SIGTERM, ENTRYPOINT+CMD $entrypoint"
info "labels: $(h get "$tmp/image.json" "Object.entries($cfg.Labels).filter(([k]) => k.startsWith('org.opencontainers')).map(([k, v]) => k.slice(25) + '=' + (v.length > 40 ? v.slice(0, 37) + '...' : v)).join(', ')")"

# ---------------------------------------------------------------------------------------------
step "size, and node_modules free of dev dependencies"
ctr="$(buildah from --pull=never --name "paysim-verify-$$" "$iid")" || fail "buildah from $iid failed"
mnt="$(buildah mount "$ctr")" || fail "buildah mount failed"
mounted=1
[[ -f "$mnt/app/dist/server.js" ]] || fail "/app/dist/server.js is not in the image"
[[ -f "$mnt/app/package.json" ]] || fail "/app/package.json is not in the image (the OpenAPI plugin reads it)"
[[ ! -e "$mnt/app/src" && ! -e "$mnt/app/test" && ! -e "$mnt/app/tsconfig.json" ]] || fail "sources, tests or tsconfig ended up in the runtime image"
h modules "$mnt/app/node_modules" package.json package-lock.json >"$tmp/modules.json" || fail "could not read the image's node_modules"
sizes="$(h layers "$tmp/image.json" "$tmp/base.json")"
echo "$sizes" >"$tmp/sizes.json"
buildah umount "$ctr" >/dev/null && mounted=
info "node_modules: $(h get "$tmp/modules.json" 'x.count') packages, $(mb "$(h get "$tmp/modules.json" 'x.bytes')"); largest: $(h get "$tmp/modules.json" "x.largest.map((m) => m.name + ' ' + (m.size / 1e6).toFixed(1) + ' MB').join(', ')")"
info "top level: $(h get "$tmp/modules.json" "x.top.join(' ')")" | fold -s -w 150 | sed '2,$s/^/docker-verify:          /'
[[ -z "$(h get "$tmp/modules.json" "x.missing.join(' ')")" ]] || fail "dependencies missing from the image: $(h get "$tmp/modules.json" "x.missing.join(' ')")"
dev="$(h get "$tmp/modules.json" "[...x.devDirect, ...x.devOnly].join(' ')")"
[[ -z "$dev" ]] || fail "dev dependencies in the image's node_modules: $dev"
info "no dev-only package in node_modules (package.json devDependencies, package-lock.json \"dev\")"
also="$(h get "$tmp/modules.json" "x.devAlsoProd.join('; ')")"
[[ -z "$also" ]] || info "devDependencies that production also needs, so rightly there: $also"
[[ "$(h get "$tmp/sizes.json" 'x.shared')" == true ]] || fail "the image does not start with the base image's layers"
image_b="$(h get "$tmp/sizes.json" 'x.image')"
base_b="$(h get "$tmp/sizes.json" 'x.base')"
added_b="$(h get "$tmp/sizes.json" 'x.added')"
info "image $(mb "$image_b") = base $BASE_IMAGE $(mb "$base_b") + paysim $(mb "$added_b") in $(h get "$tmp/sizes.json" 'x.layers') layers (uncompressed)"
((added_b < MAX_ADDED_MB * 1000000)) || fail "paysim adds $(mb "$added_b") to its base, over the ${MAX_ADDED_MB} MB target"

# ---------------------------------------------------------------------------------------------
step "the container user is not root (buildah run … id)"
ids="$(timeout 60 buildah run --isolation chroot "$ctr" -- id 2>&1)" || fail "buildah run … id failed: $ids"
[[ "$(timeout 60 buildah run --isolation chroot "$ctr" -- id -u)" =~ ^[1-9][0-9]*$ ]] || fail "id -u in the container is 0 (root): $ids"
info "$ids"

# ---------------------------------------------------------------------------------------------
step "start it as docker run -e … -p PORT:PORT would: ENTRYPOINT + CMD, as USER, with -e variables"
: >"$tmp/webhooks.log"
"$NODE" "$tmp/helper.mjs" receiver "$tmp/rx.port" "$tmp/webhooks.log" "$SECRET" &
rx_pid=$!
port="$(h free-port)"
for _ in $(seq 50); do [[ -s "$tmp/rx.port" ]] && break; sleep 0.1; done
[[ -s "$tmp/rx.port" ]] || fail "the webhook receiver did not start"
rx_port="$(cat "$tmp/rx.port")"
mapfile -t argv < <(h get "$tmp/image.json" "[...($cfg.Entrypoint ?? []), ...($cfg.Cmd ?? [])].join('\n')")
run_env=(-e "PORT=$port" -e "WEBHOOK_SECRET=$SECRET" -e DEFAULT_APPROVE_DELAY_MS=0 -e SHUTDOWN_TIMEOUT_MS=10000 -e WEBHOOK_TIMEOUT_MS=5000 -e WEBHOOK_MAX_RETRIES=0)
buildah run --isolation chroot "${run_env[@]}" "$ctr" -- "${argv[@]}" >"$server_log" 2>&1 &
run_pid=$!
run_ms="$(now_ms)"
info "buildah run ${run_env[*]} … -- ${argv[*]} (pid $run_pid); receiver on 127.0.0.1:$rx_port"
base_url="http://127.0.0.1:$port"
up=
for _ in $(seq 300); do   # 30 s
  if ! kill -0 "$run_pid" 2>/dev/null; then
    rc=0; wait "$run_pid" || rc=$?; run_pid=
    fail "the container exited with code $rc before answering"
  fi
  if curl -fsS --max-time 2 "$base_url/healthz" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.1
done
[[ -n "$up" ]] || fail "nothing answers on $base_url within 30 s"
# The container's process: node (argv[0]; its thread name is MainThread), a descendant of
# `buildah run` (buildah-chroot-runtime, then buildah-chroot-exec, then the entrypoint's exec).
for p in $(descendants "$run_pid"); do
  argv0="$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | head -n1)" || true
  [[ "${argv0##*/}" == node ]] && { node_pid=$p; break; }
done
[[ -n "$node_pid" ]] || fail "no node process under buildah run $run_pid"
info "answering on $base_url $(( $(now_ms) - run_ms )) ms after buildah run; node pid $node_pid: $(tr '\0' ' ' <"/proc/$node_pid/cmdline")"

# ---------------------------------------------------------------------------------------------
step "the process: non-root uid, the image's ENV and the -e variables"
uid="$(awk '/^Uid:/ { print $2 }' "/proc/$node_pid/status")"
[[ "$uid" =~ ^[1-9][0-9]*$ ]] || fail "the server runs as uid $uid"
environ="$(tr '\0' '\n' <"/proc/$node_pid/environ")"
for kv in "PORT=$port" "WEBHOOK_SECRET=$SECRET" DEFAULT_APPROVE_DELAY_MS=0 NODE_ENV=production HOST=0.0.0.0; do
  grep -qxF -- "$kv" <<<"$environ" || fail "$kv is not in the server's environment"
done
info "uid $uid; environment has PORT=$port, WEBHOOK_SECRET, DEFAULT_APPROVE_DELAY_MS=0, NODE_ENV=production, HOST=0.0.0.0"

# ---------------------------------------------------------------------------------------------
step "/healthz and /readyz answer 200"
health="$(curl -sS --max-time 5 -w ' %{http_code}' "$base_url/healthz")" || fail "GET /healthz: curl failed"
[[ "$health" == '{"status":"ok"} 200' ]] || fail "GET /healthz answered: $health"
ready="$(curl -sS --max-time 5 -w ' %{http_code}' "$base_url/readyz")" || fail "GET /readyz: curl failed"
# No `details`: WEBHOOK_SECRET from -e reached the configuration (else /readyz warns of a generated one).
[[ "$ready" == '{"status":"ready"} 200' ]] || fail "GET /readyz answered: $ready"
info "/healthz $health; /readyz $ready"

# ---------------------------------------------------------------------------------------------
step "POST /v1/sim/intent: the signed webhook reaches the receiver on the host"
intent="$(curl -sS --max-time 10 -w ' %{http_code}' -H 'content-type: application/json' \
  -d "{\"reservation_id\":\"r1\",\"amount\":1000,\"scenario\":\"approve\",\"webhook_url\":\"http://127.0.0.1:$rx_port/hook\"}" \
  "$base_url/v1/sim/intent")" || fail "POST /v1/sim/intent: curl failed"
[[ "$intent" == *' 200' ]] || fail "POST /v1/sim/intent answered: $intent"
intent_id="$(sed -n 's/.*"payment_intent_id":"\([^"]*\)".*/\1/p' <<<"$intent")"
[[ -n "$intent_id" ]] || fail "no payment_intent_id in: $intent"
hook=
for _ in $(seq 150); do hook="$(h webhook "$tmp/webhooks.log" /hook received)"; [[ -n "$hook" ]] && break; sleep 0.1; done
[[ -n "$hook" ]] || fail "no webhook reached 127.0.0.1:$rx_port/hook within 15 s"
echo "$hook" >"$tmp/hook.json"
[[ -n "$(h get "$tmp/hook.json" 'x.signature')" ]] || fail "the webhook has no webhook-signature header"
[[ "$(h get "$tmp/hook.json" 'x.signature_ok')" == true ]] || fail "the webhook's signature does not verify with WEBHOOK_SECRET: $(h get "$tmp/hook.json" 'x.signature')"
[[ "$(h get "$tmp/hook.json" 'JSON.parse(x.body).payment_intent_id')" == "$intent_id" ]] || fail "the webhook is not about $intent_id: $(h get "$tmp/hook.json" 'x.body')"
info "intent $intent_id → webhook $(h get "$tmp/hook.json" 'JSON.parse(x.body).status ?? JSON.parse(x.body).type ?? ""') at /hook, webhook-signature verifies with WEBHOOK_SECRET (Standard Webhooks)"

# ---------------------------------------------------------------------------------------------
step "the HEALTHCHECK command, run inside the container, exits 0 (and 1 when nothing answers)"
mapfile -t hc < <(h get "$tmp/image.json" "$cfg.Healthcheck.Test.join('\n')")
case "${hc[0]}" in
  CMD) hc=("${hc[@]:1}") ;;
  CMD-SHELL) hc=(/bin/sh -c "${hc[1]}") ;;
  *) fail "unexpected HEALTHCHECK test ${hc[*]}" ;;
esac
hc_timeout="$(h get "$tmp/image.json" "Math.ceil(($cfg.Healthcheck.Timeout ?? 30e9) / 1e9)")"
info "HEALTHCHECK CMD ${hc[0]} … (timeout ${hc_timeout}s), run like docker exec: the container's ENV plus the -e variables"
set +e
hc_out="$(timeout $((hc_timeout + 20)) buildah run --isolation chroot "${run_env[@]}" "$ctr" -- "${hc[@]}" 2>&1)"
hc_rc=$?
set -e
[[ $hc_rc -eq 0 ]] || fail "the HEALTHCHECK command exited $hc_rc: $hc_out"
closed_port="$(h free-port)"
set +e
hc_out="$(timeout $((hc_timeout + 20)) buildah run --isolation chroot -e "PORT=$closed_port" "$ctr" -- "${hc[@]}" 2>&1)"
hc_bad=$?
set -e
[[ $hc_bad -ne 0 && $hc_bad -ne 124 ]] || fail "the HEALTHCHECK command exited $hc_bad with nothing listening on its port (it checks nothing?)"
info "exit 0 against the server; exit $hc_bad against a closed port"

# ---------------------------------------------------------------------------------------------
step "SIGTERM to the container's process drains in-flight work, then exits 0"
curl -sS --max-time 10 -o /dev/null -H 'content-type: application/json' \
  -d "{\"reservation_id\":\"r2\",\"amount\":2000,\"scenario\":\"approve\",\"webhook_url\":\"http://127.0.0.1:$rx_port/slow\"}" \
  "$base_url/v1/sim/intent" || fail "POST /v1/sim/intent (slow receiver): curl failed"
slow=
for _ in $(seq 150); do slow="$(h webhook "$tmp/webhooks.log" /slow received)"; [[ -n "$slow" ]] && break; sleep 0.1; done
[[ -n "$slow" ]] || fail "the second webhook did not reach the receiver within 15 s"
# What `docker stop` does: STOPSIGNAL to the container's main process (node, exec'd by the entrypoint).
# `buildah run` itself does not forward signals (it kills its child), so node gets the signal directly.
sent_ms="$(now_ms)"
kill -TERM "$node_pid"
# The drain keeps the server answering, /readyz with 503, until the in-flight delivery is done.
draining=
for _ in $(seq 10); do
  draining="$(curl -sS --max-time 2 -w ' %{http_code}' "$base_url/readyz" 2>/dev/null || true)"
  [[ "$draining" == *' 503' ]] && break
  sleep 0.1
done
exited=
for _ in $(seq 300); do   # 30 s: SHUTDOWN_TIMEOUT_MS=10000 plus margins
  kill -0 "$run_pid" 2>/dev/null || { exited=1; break; }
  sleep 0.1
done
exit_ms="$(now_ms)"
[[ -n "$exited" ]] || fail "still running 30 s after SIGTERM"
set +e
wait "$run_pid"
rc=$?
set -e
run_pid='' node_pid=''
answered="$(h webhook "$tmp/webhooks.log" /slow answered)"
[[ $rc -eq 0 ]] || fail "exit code $rc after SIGTERM (expected 0)"
[[ -n "$answered" ]] || fail "the process exited before the in-flight webhook was answered (not drained)"
echo "$answered" >"$tmp/answered.json"
answered_ms="$(h get "$tmp/answered.json" 'x.at')"
((answered_ms <= exit_ms)) || fail "the in-flight webhook was answered after the process had exited"
grep -q '"signal":"SIGTERM","msg":"shutting down"' "$server_log" || fail "no 'shutting down' (SIGTERM) in the server's log"
grep -q '"msg":"shutdown complete"' "$server_log" || fail "no 'shutdown complete' in the server's log"
info "/readyz while draining: ${draining:-(no answer)}; in-flight webhook answered $((answered_ms - sent_ms)) ms after SIGTERM; exit 0 after $((exit_ms - sent_ms)) ms"
info "log: $(grep -o '"msg":"\(shutting down\|shutdown[^"]*\)"' "$server_log" | sed 's/"msg"://' | paste -sd ' ')"

echo "docker-verify: OK — $IMAGE ($(mb "$image_b"); paysim adds $(mb "$added_b") to $BASE_IMAGE) built, run and checked in $((SECONDS - started))s"
