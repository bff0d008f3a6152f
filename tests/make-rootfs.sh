#!/usr/bin/env bash
# make-rootfs.sh DIR: build a minimal busybox root filesystem in DIR for tests and the demo.
#
# The busybox binary comes from Debian's busybox-static package only (statically linked, so the
# rootfs needs no libraries); no image is ever downloaded. /bin/busybox is used when
# busybox-static owns it, else the package is fetched with `apt-get download` and unpacked.
# Every applet of `busybox --list-full` becomes an absolute symlink to /bin/busybox, as in real
# images. Idempotent: a stamp in DIR/etc makes a rerun on a complete DIR a no-op.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
stamp=$dir/etc/.tsrun-rootfs-stamp
# Bump when what this script writes changes, so old rootfs directories are rebuilt.
layout=1

tmp=
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT

# Find a static busybox: the installed busybox-static, or the package unpacked into a temp dir.
busybox=/bin/busybox
if ! dpkg -S "$busybox" 2>/dev/null | grep -q '^busybox-static:'; then
	tmp=$(mktemp -d)
	chmod 0755 "$tmp" # lets apt's _apt user write the download
	echo "make-rootfs: busybox-static is not installed; fetching the package" >&2
	(cd "$tmp" && apt-get download busybox-static >&2)
	dpkg -x "$tmp"/busybox-static_*.deb "$tmp/x"
	busybox=$tmp/x/bin/busybox
fi

want="layout=$layout busybox=$(sha256sum "$busybox" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi
rm -f "$stamp"

mkdir -p "$dir"
chmod 0755 "$dir"
for d in bin sbin usr/bin usr/sbin etc proc sys dev tmp root home var run; do
	mkdir -p "$dir/$d"
done
chmod 1777 "$dir/tmp"
chmod 0700 "$dir/root"

install -m 0755 "$busybox" "$dir/bin/busybox.new"
mv -f "$dir/bin/busybox.new" "$dir/bin/busybox"

# --list-full prints paths relative to /, e.g. bin/sh, usr/bin/env, sbin/ifconfig.
"$dir/bin/busybox" --list-full | while IFS= read -r applet; do
	case "$applet" in
	"" | bin/busybox) continue ;;
	esac
	case "$applet" in
	*/*) [ -d "$dir/${applet%/*}" ] || mkdir -p "$dir/${applet%/*}" ;;
	esac
	ln -sfn /bin/busybox "$dir/$applet"
done

cat >"$dir/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$dir/etc/group" <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOF
echo tsrun >"$dir/etc/hostname"

echo "$want" >"$stamp"
