#!/usr/bin/env bash
# One command for a fresh Debian 12 machine, as root: install what is missing, build,
# install tsrun on PATH, and run a container from the demo bundle.
set -euo pipefail
cd "$(dirname "$0")/.."

# uidmap: newuidmap/newgidmap, for rootless containers mapping more than the caller's own id.
# protobuf-compiler, protobuf-c-compiler, libprotobuf-c-dev, libprotobuf-dev: the boundary (boundary/helper.proto).
# strace: tests/integration/runc-compat.test.ts traces the cgroup writes of a device update.
packages=(build-essential pkg-config libseccomp-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev busybox-static python3 iproute2 util-linux uidmap runc crun strace)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
command -v node >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "== npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "== make"
make
echo "== make install (PREFIX=${PREFIX:-/usr/local})"
make install PREFIX="${PREFIX:-/usr/local}"
echo "== make demo"
make demo
