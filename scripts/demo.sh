#!/usr/bin/env bash
# The demo bundle: a busybox rootfs built from the busybox-static package and a config from
# `tsrun spec`, set to print something and exit (with a terminal when there is one).
set -euo pipefail
cd "$(dirname "$0")/.."
tsrun=${TSRUN:-build/tsrun}
bundle=build/demo
tests/make-rootfs.sh "$bundle/rootfs"
if [ ! -f "$bundle/config.json" ]; then
  (cd "$bundle" && "$OLDPWD/$tsrun" spec)
  node -e '
    const fs = require("fs"); const f = process.argv[1]; const c = JSON.parse(fs.readFileSync(f, "utf8"));
    c.process.terminal = false;
    c.process.args = ["sh", "-c", "echo \"hello from a tsrun container: $(hostname), pid $$, uid $(id -u)\"; grep -c . /proc/mounts | sed \"s/^/mounts: /\""];
    fs.writeFileSync(f, JSON.stringify(c, null, "\t") + "\n");' "$bundle/config.json"
fi
"$tsrun" --root "${TSRUN_ROOT:-/run/tsrun}" run --bundle "$bundle" "tsrun-demo-$$"
