/*
 * Idmapped mounts (Mount.idmap: runtime-spec "idmap"/"ridmap" and mounts[].uidMappings).
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
 * Bind mounts with a detached_source (a container with a user namespace) get the same detached
 * copy without a mapping: host root takes the source here, which the init, root only of its
 * user namespace, may not reach (a parent directory only host root can search).
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

static bool same_maps(Tsrun__IdMapping *const *a, size_t na, Tsrun__IdMapping *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i]->container_id != b[i]->container_id || a[i]->host_id != b[i]->host_id || a[i]->size != b[i]->size)
			return false;
	return true;
}

static int write_idmap(pid_t pid, const char *file, Tsrun__IdMapping *const *m, size_t n)
{
	char path[64];
	size_t cap = n * 36 + 1, len = 0;
	char *buf = malloc(cap);
	int r;

	if (!buf)
		abort();
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%u %u %u\n", m[i]->container_id, m[i]->host_id, m[i]->size);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	r = write_file(path, buf, len);
	free(buf);
	return r;
}

/* A user namespace holding the mount's mappings: an fd of it, for MOUNT_ATTR_IDMAP. */
static int mapping_userns(const Tsrun__Mount *m, size_t index)
{
	const Tsrun__MountIdmap *im = m->idmap;
	int pipefd[2], nsfd = -1, err = 0, st;
	Tsrun__ErrorCode step = ERR(ERROR_UNSPECIFIED);
	char path[64];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		die(ERR(IDMAP_PIPE), errno, m->destination, (int64_t)index);
	pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
	if (pid < 0)
		die(ERR(IDMAP_USERNS_CREATE), errno, m->destination, (int64_t)index);
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
	if (write_idmap(pid, "uid_map", im->uid_mappings, im->n_uid_mappings) < 0) {
		err = errno;
		step = ERR(IDMAP_USERNS_UID_MAP);
	} else if (write_idmap(pid, "gid_map", im->gid_mappings, im->n_gid_mappings) < 0) {
		err = errno;
		step = ERR(IDMAP_USERNS_GID_MAP);
	} else {
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0) {
			err = errno;
			step = ERR(IDMAP_USERNS_OPEN);
		}
	}
	close(pipefd[1]);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			if (!step) {
				err = errno;
				step = ERR(IDMAP_USERNS_REAP);
			}
			break;
		}
	}
	if (step)
		die(step, err, m->destination, (int64_t)index);
	return nsfd;
}

/* A detached copy of a bind mount's source (open_tree), given the propagation a bind made in
 * the container's mount namespace would get (TypeScript chose it): the copy joins the source's
 * peer group if that is shared. Failures carry the mount's index. */
static int clone_source(const Tsrun__Mount *m, size_t index, uint32_t propagation, Tsrun__ErrorCode open_err,
			Tsrun__ErrorCode prop_err)
{
	struct mount_attr attr;
	unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((m->flags & MS_REC) ? AT_RECURSIVE : 0);
	int tree = open_tree(AT_FDCWD, m->source, flags);

	if (tree < 0)
		die(open_err, errno, m->destination, (int64_t)index);
	if (propagation) {
		memset(&attr, 0, sizeof(attr));
		attr.propagation = propagation;
		if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
			die(prop_err, errno, m->destination, (int64_t)index);
	}
	return tree;
}

/* One mount's detached, id-mapped copy of its source. */
static int prepare_one(const Tsrun__CreatePlan *c, size_t index, int *nsfds)
{
	const Tsrun__Mount *m = c->mounts[index];
	const Tsrun__MountIdmap *im = m->idmap;
	struct mount_attr attr;
	int tree = clone_source(m, index, im->tree_propagation, ERR(IDMAP_OPEN_TREE), ERR(IDMAP_PROPAGATION));
	int64_t ix = (int64_t)index;

	if (im->userns_path[0]) {
		nsfds[index] = open(im->userns_path, O_RDONLY | O_CLOEXEC);
		if (nsfds[index] < 0)
			die(ERR(IDMAP_OPEN_USERNS), errno, m->destination, ix);
	} else {
		nsfds[index] = -1;
		for (size_t j = 0; j < index; j++) {
			const Tsrun__MountIdmap *o = c->mounts[j]->idmap;
			if (nsfds[j] >= 0 && o && !o->userns_path[0] &&
			    same_maps(o->uid_mappings, o->n_uid_mappings, im->uid_mappings, im->n_uid_mappings) &&
			    same_maps(o->gid_mappings, o->n_gid_mappings, im->gid_mappings, im->n_gid_mappings)) {
				nsfds[index] = fcntl(nsfds[j], F_DUPFD_CLOEXEC, 0);
				if (nsfds[index] < 0)
					die(ERR(IDMAP_DUP), errno, m->destination, ix);
				break;
			}
		}
		if (nsfds[index] < 0)
			nsfds[index] = mapping_userns(m, index);
	}

	memset(&attr, 0, sizeof(attr));
	attr.attr_set = MOUNT_ATTR_IDMAP;
	attr.userns_fd = (uint64_t)nsfds[index];
	if (mount_setattr(tree, "", AT_EMPTY_PATH | (im->recursive ? AT_RECURSIVE : 0), &attr, sizeof(attr)) < 0)
		die(ERR(IDMAP_SETATTR), errno, m->destination, ix);
	return tree;
}

/* Host side, before any namespace is joined: the sources of idmapped mounts and of mounts with
 * a detached_source, each a detached tree the init moves onto its destination (mount_one). */
void idmap_prepare(const Tsrun__CreatePlan *c)
{
	int *nsfds;
	bool any = false;

	for (size_t i = 0; i < c->n_mounts; i++)
		any = any || c->mounts[i]->idmap || c->mounts[i]->detached_source;
	if (!any)
		return;
	set_stage(STAGE(MOUNTS));
	g_trees = calloc(c->n_mounts, sizeof(*g_trees));
	nsfds = calloc(c->n_mounts, sizeof(*nsfds));
	if (!g_trees || !nsfds)
		die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, 0);
	g_n_trees = c->n_mounts;
	for (size_t i = 0; i < c->n_mounts; i++)
		g_trees[i] = nsfds[i] = -1;
	for (size_t i = 0; i < c->n_mounts; i++) {
		const Tsrun__Mount *m = c->mounts[i];
		if (!m->idmap && !m->detached_source)
			continue;
		if (!(m->flags & MS_BIND))
			die(ERR(IDMAP_NOT_BIND), 0, m->destination, (int64_t)i);
		if (m->idmap) {
			g_trees[i] = prepare_one(c, i, nsfds);
			progress("idmapped mount %s prepared", m->destination);
		} else {
			g_trees[i] = clone_source(m, i, m->detached_source->tree_propagation, ERR(DETACHED_SOURCE_OPEN_TREE),
						  ERR(DETACHED_SOURCE_PROPAGATION));
			progress("source of the mount on %s taken", m->destination);
		}
	}
	for (size_t i = 0; i < c->n_mounts; i++)
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
