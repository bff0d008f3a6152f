/*
 * A container without a mount namespace makes its mounts in the caller's (under the rootfs, as
 * runc does). Should the create fail before "ready", they are undone, so that a failed create
 * leaves the host as it was: the init reports each mount point as a "mounted PATH" line, which
 * the helper's parent keeps (it is in the same mount namespace) and, on a fatal error, detaches
 * in reverse order once the init is gone. After "ready" they belong to the container (and, as
 * with runc, stay after it is deleted).
 */
#include "helper.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static char **g_paths;
static size_t g_n;

/* Child: report the mount point fd names (an O_PATH fd of it, opened before or after the mount). */
void note_host_mount(const struct plan *p, int fd)
{
	char link[64], path[4096];
	ssize_t n;

	if (plan_has_ns(p, CLONE_NEWNS))
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return;
	path[n] = '\0';
	/* the line protocol cannot carry these; such a mount point is not undone */
	if (path[0] != '/' || strpbrk(path, "\n\r"))
		return;
	report_line("mounted", "%s", path);
}

/* Parent: a "mounted PATH" line (without the word and the newline). */
void host_mount_record(const char *path, size_t len)
{
	char **paths = realloc(g_paths, (g_n + 1) * sizeof(*paths));
	if (!paths || !(paths[g_n] = strndup(path, len)))
		abort();
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
