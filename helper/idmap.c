/*
 * Idmapped mounts (MOUNT_IDMAP records, runtime-spec "idmap"/"ridmap" and mounts[].uidMappings).
 *
 * Host side, in the helper's parent before any namespace is joined: for each id-mapped bind
 * mount, a detached copy of the source (open_tree OPEN_TREE_CLONE, AT_RECURSIVE for rbind) gets
 * the mapping with mount_setattr(MOUNT_ATTR_IDMAP). That needs CAP_SYS_ADMIN over the source's
 * filesystem (the initial user namespace for ext4, xfs, ...), which the container's init no
 * longer has once it is in its own user namespace. The user namespace that carries the mapping
 * is a short-lived child's (CLONE_NEWUSER), its uid_map and gid_map written from here, its
 * /proc/PID/ns/user kept open, the child reaped. The mapping is written as given: a file whose
 * owner on the source filesystem is containerID shows as hostID (as runc and crun do).
 *
 * The container's init inherits the detached trees and moves each onto its destination, which
 * it resolved inside the rootfs (rootfs.c, mount_one), in the order of the mounts.
 *
 * Bind mounts with MOUNT_DETACHED_SOURCE (a container with a user namespace) get the same
 * detached copy without a mapping: host root takes the source here, which the init, root only of
 * its user namespace, may not reach (a parent directory only host root can search).
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int *g_trees; /* per mount: the prepared detached tree, or -1 */
static size_t g_n_trees;

static bool same_maps(const struct plan_idmap *a, uint32_t na, const struct plan_idmap *b, uint32_t nb)
{
	if (na != nb)
		return false;
	for (uint32_t i = 0; i < na; i++)
		if (a[i].container_id != b[i].container_id || a[i].host_id != b[i].host_id || a[i].size != b[i].size)
			return false;
	return true;
}

static int write_idmap(pid_t pid, const char *file, const struct plan_idmap *m, uint32_t n)
{
	char path[64];
	size_t cap = (size_t)n * 36 + 1, len = 0;
	char *buf = malloc(cap);
	int r;

	if (!buf)
		abort();
	for (uint32_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%u %u %u\n", m[i].container_id, m[i].host_id, m[i].size);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	r = write_file(path, buf, len);
	free(buf);
	return r;
}

/* A user namespace holding the mount's mappings: an fd of it, for MOUNT_ATTR_IDMAP. */
static int mapping_userns(const struct plan_mount *m)
{
	int pipefd[2], nsfd = -1, err = 0, st;
	const char *step = NULL;
	char path[64];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		die_errno("idmapped mount %s on %s: pipe", m->source, m->destination);
	pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
	if (pid < 0)
		die_errno("idmapped mount %s on %s: create a user namespace for the mapping", m->source, m->destination);
	if (pid == 0) {
		/* Holds the namespace until the parent has opened it: EOF on the pipe (also when the
		 * parent dies), then leaves. Nothing else runs here. */
		char c;
		close(pipefd[1]);
		while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(pipefd[0]);
	if (write_idmap(pid, "uid_map", m->idmap_uid, m->n_idmap_uid) < 0) {
		err = errno;
		step = "write uid_map";
	} else if (write_idmap(pid, "gid_map", m->idmap_gid, m->n_idmap_gid) < 0) {
		err = errno;
		step = "write gid_map";
	} else {
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0) {
			err = errno;
			step = "open its user namespace";
		}
	}
	close(pipefd[1]);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			if (!step) {
				err = errno;
				step = "reap the user namespace holder";
			}
			break;
		}
	}
	if (step)
		die_errnum(err, "idmapped mount %s on %s: mapping user namespace: %s", m->source, m->destination, step);
	return nsfd;
}

static unsigned long tree_propagation(const struct plan *p)
{
	unsigned long prop = p->rootfs_propagation ? p->rootfs_propagation : (MS_SLAVE | MS_REC);
	if (prop & MS_SHARED)
		return 0;
	if (prop & (MS_PRIVATE | MS_UNBINDABLE))
		return MS_PRIVATE;
	return MS_SLAVE;
}

static _Noreturn void die_setattr(const struct plan_mount *m, int err)
{
	const char *hint = "";
	if (err == EINVAL)
		hint = (m->idmap_flags & MOUNT_IDMAP_RECURSIVE)
			       ? " (the filesystem of the source, or of a mount under it, does not support idmapped mounts)"
			       : " (the filesystem of the source does not support idmapped mounts)";
	else if (err == EPERM)
		hint = " (the source is already an idmapped mount, or its filesystem belongs to another user namespace)";
	else if (err == ENOSYS)
		hint = " (the kernel has no mount_setattr: idmapped mounts need Linux 5.12 or later)";
	die("idmapped mount %s on %s: set MOUNT_ATTR_IDMAP: %s%s", m->source, m->destination, errtext(err), hint);
}

/* A detached copy of a bind mount's source, propagation as a bind in the container would have. */
static int clone_source(const struct plan *p, const struct plan_mount *m)
{
	const char *what = m->idmap ? "idmapped mount" : "mount";
	struct mount_attr attr;
	unsigned long prop;
	unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((m->flags & MS_REC) ? AT_RECURSIVE : 0);
	int tree = open_tree(AT_FDCWD, m->source, flags);

	if (tree < 0) {
		int e = errno;
		if (!m->idmap)
			die_errnum(e, "mount %s on %s: open_tree", m->source, m->destination);
		die("idmapped mount %s on %s: open_tree %s: %s%s", m->source, m->destination, m->source, errtext(e),
		    e == EPERM ? " (idmapped mounts need CAP_SYS_ADMIN in the initial user namespace: run tsrun as root)"
		    : e == ENOSYS ? " (the kernel has no open_tree: idmapped mounts need Linux 5.12 or later)"
				  : "");
	}

	/* The copy joins the source's peer group if that is shared: follow rootfsPropagation, as a
	 * bind made in the container's mount namespace would. */
	prop = tree_propagation(p);
	if (prop) {
		memset(&attr, 0, sizeof(attr));
		attr.propagation = prop;
		if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
			die_errno("%s %s on %s: make the copy %s", what, m->source, m->destination,
				  prop == MS_SLAVE ? "a slave" : "private");
	}
	return tree;
}

/* One mount's detached, id-mapped copy of its source. */
static int prepare_one(const struct plan *p, size_t index, int *nsfds)
{
	const struct plan_mount *m = &p->mounts[index];
	struct mount_attr attr;
	int tree = clone_source(p, m);

	if (m->idmap_userns) {
		nsfds[index] = open(m->idmap_userns, O_RDONLY | O_CLOEXEC);
		if (nsfds[index] < 0)
			die_errno("idmapped mount %s on %s: open user namespace %s", m->source, m->destination, m->idmap_userns);
	} else {
		nsfds[index] = -1;
		for (size_t j = 0; j < index; j++) {
			const struct plan_mount *o = &p->mounts[j];
			if (nsfds[j] >= 0 && o->idmap && !o->idmap_userns &&
			    same_maps(o->idmap_uid, o->n_idmap_uid, m->idmap_uid, m->n_idmap_uid) &&
			    same_maps(o->idmap_gid, o->n_idmap_gid, m->idmap_gid, m->n_idmap_gid)) {
				nsfds[index] = fcntl(nsfds[j], F_DUPFD_CLOEXEC, 0);
				if (nsfds[index] < 0)
					die_errno("idmapped mount %s on %s: dup", m->source, m->destination);
				break;
			}
		}
		if (nsfds[index] < 0)
			nsfds[index] = mapping_userns(m);
	}

	memset(&attr, 0, sizeof(attr));
	attr.attr_set = MOUNT_ATTR_IDMAP;
	attr.userns_fd = (uint64_t)nsfds[index];
	if (mount_setattr(tree, "", AT_EMPTY_PATH | ((m->idmap_flags & MOUNT_IDMAP_RECURSIVE) ? AT_RECURSIVE : 0), &attr,
			  sizeof(attr)) < 0)
		die_setattr(m, errno);
	return tree;
}

void idmap_prepare(const struct plan *p)
{
	int *nsfds;
	bool any = false;

	for (size_t i = 0; i < p->n_mounts; i++)
		any = any || p->mounts[i].idmap || (p->mounts[i].dest_kind & MOUNT_DETACHED_SOURCE);
	if (!any)
		return;
	g_trees = calloc(p->n_mounts, sizeof(*g_trees));
	nsfds = calloc(p->n_mounts, sizeof(*nsfds));
	if (!g_trees || !nsfds)
		abort();
	g_n_trees = p->n_mounts;
	for (size_t i = 0; i < p->n_mounts; i++)
		g_trees[i] = nsfds[i] = -1;
	for (size_t i = 0; i < p->n_mounts; i++) {
		const struct plan_mount *m = &p->mounts[i];
		if (!m->idmap && !(m->dest_kind & MOUNT_DETACHED_SOURCE))
			continue;
		if (!(m->flags & MS_BIND))
			die("%s %s on %s: only the source of a bind mount can be taken ahead", m->idmap ? "idmapped mount" : "mount",
			    m->source, m->destination);
		if (m->idmap) {
			g_trees[i] = prepare_one(p, i, nsfds);
			debug_stage("idmapped mount %s prepared", m->destination);
		} else {
			g_trees[i] = clone_source(p, m);
			debug_stage("source of the mount on %s taken", m->destination);
		}
	}
	for (size_t i = 0; i < p->n_mounts; i++)
		if (nsfds[i] >= 0)
			close(nsfds[i]);
	free(nsfds);
}

int idmap_take(size_t index)
{
	int fd;
	if (index >= g_n_trees)
		return -1;
	fd = g_trees[index];
	g_trees[index] = -1;
	return fd;
}

void idmap_close_all(void)
{
	for (size_t i = 0; i < g_n_trees; i++) {
		if (g_trees[i] >= 0)
			close(g_trees[i]);
		g_trees[i] = -1;
	}
}
