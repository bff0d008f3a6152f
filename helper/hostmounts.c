/*
 * A container without a mount namespace makes its mounts in the caller's (under the rootfs, as
 * runc does). Should the create fail before "ready", they are undone, so that a failed create
 * leaves the host as it was: the init reports each mount point in a FromHelper{mounted} frame,
 * which the helper's parent keeps (it is in the same mount namespace) and, on a fatal error, detaches
 * in reverse order once the init is gone. After "ready" they belong to the container (and, as
 * with runc, stay after it is deleted).
 */
#include "helper.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static char **g_paths;
static size_t g_n;
static bool g_tracking;

/* Child, no mount namespace of its own: from now on each mount is reported. */
void host_mounts_track(void)
{
	g_tracking = true;
}

/* Child: report the mount point fd names (an O_PATH fd of it, opened before or after the mount). */
void note_host_mount(int fd)
{
	Tsrun__FromHelper ev = TSRUN__FROM_HELPER__INIT;
	char link[64], path[4096];
	ssize_t n;

	if (!g_tracking)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return;
	path[n] = '\0';
	/* " (deleted)" and the like: not a path that can be undone */
	if (path[0] != '/')
		return;
	ev.event_case = TSRUN__FROM_HELPER__EVENT_MOUNTED;
	ev.mounted = path;
	send_event(&ev);
}

/* Parent: a FromHelper{mounted} frame's path. */
void host_mount_record(const char *path)
{
	char **paths = realloc(g_paths, (g_n + 1) * sizeof(*paths));
	if (!paths || !(paths[g_n] = strdup(path)))
		die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, 0);
	g_paths = paths;
	g_n++;
}

/* Parent, fatal error before "ready" (the init killed and reaped): detach them, last first. */
void host_mounts_undo(void)
{
	while (g_n > 0) {
		char *path = g_paths[--g_n];
		umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
		free(path);
	}
}

/* Parent, "ready": the mounts are the container's now. */
void host_mounts_forget(void)
{
	while (g_n > 0)
		free(g_paths[--g_n]);
}
