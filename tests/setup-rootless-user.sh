#!/usr/bin/env bash
# setup-rootless-user.sh [NAME]: make sure the unprivileged user the rootless tests run tsrun as
# exists (default name tsrun-rootless), as root, idempotently and safely when run concurrently:
#   - the user and its own group (no home directory, no login shell);
#   - one range of 65536 subordinate uids and gids (/etc/subuid, /etc/subgid), for the
#     multi-range mappings that newuidmap/newgidmap (package uidmap) write;
#   - its XDG_RUNTIME_DIR, /run/user/UID, owned by it, mode 0700 (no systemd to make it here).
# Prints "NAME UID GID SUBUID_START SUBUID_COUNT SUBGID_START SUBGID_COUNT".
set -euo pipefail

user=${1:-tsrun-rootless}
if [ "$(id -u)" -ne 0 ]; then
	echo "setup-rootless-user.sh: must run as root" >&2
	exit 1
fi
for tool in useradd usermod newuidmap newgidmap flock; do
	if ! command -v "$tool" >/dev/null; then
		echo "setup-rootless-user.sh: $tool is missing (apt-get install passwd uidmap util-linux)" >&2
		exit 1
	fi
done

mkdir -p /run/lock
exec 9>/run/lock/tsrun-rootless-user.lock
flock 9

if ! getent passwd "$user" >/dev/null; then
	useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$user"
fi
uid=$(id -u "$user")
gid=$(id -g "$user")

# The first free id at or above 100000 after every range already given out in FILE.
next_free() {
	awk -F: 'BEGIN { m = 100000 } NF >= 3 && $2 + $3 > m { m = $2 + $3 } END { print m }' "$1"
}
# NAME's (or UID's) first range in FILE, as "START COUNT".
range_of() {
	awk -F: -v n="$user" -v i="$2" '($1 == n || $1 == i) && NF >= 3 { print $2, $3; exit }' "$1"
}

touch /etc/subuid /etc/subgid
if [ -z "$(range_of /etc/subuid "$uid")" ]; then
	start=$(next_free /etc/subuid)
	usermod --add-subuids "$start-$((start + 65535))" "$user"
fi
if [ -z "$(range_of /etc/subgid "$gid")" ]; then
	start=$(next_free /etc/subgid)
	usermod --add-subgids "$start-$((start + 65535))" "$user"
fi

[ -d /run/user ] || install -d -m 0755 /run/user
install -d -m 0700 -o "$uid" -g "$gid" "/run/user/$uid"

echo "$user $uid $gid $(range_of /etc/subuid "$uid") $(range_of /etc/subgid "$gid")"
