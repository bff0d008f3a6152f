/*
 * The container's root filesystem, in the child, in its new mount namespace.
 *
 * Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)
 * from an O_PATH fd of the rootfs: a symlink in the rootfs (absolute, or a ../../.. chain)
 * resolves inside the rootfs and can never make a mount land on the host. Mounts then target
 * the resolved fd through its /proc/self/fd/N magic link, using the host's /proc: all of this,
 * including the console, sysctls, masked and read-only paths, happens before pivot_root, so
 * nothing depends on what the container has (or fakes) at its own /proc.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <dirent.h>
#include <limits.h>
#include <sys/sendfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PROCFD(buf, fd) snprintf((buf), sizeof(buf), "/proc/self/fd/%d", (fd))

/*
 * The host's /dev is never written. Device nodes, the /dev links and /dev/console replace what
 * is there only on a tmpfs this helper mounted itself; on the rootfs's own filesystem a missing
 * one is made and an existing one left as it is; on any other mount (a bind of the host's /dev,
 * a devtmpfs, ...) nothing is made or removed. Mounts are told apart by their mount ids.
 */
#define MAX_OWN_TMPFS 64
static uint64_t g_own_tmpfs[MAX_OWN_TMPFS];
static size_t g_n_own_tmpfs;
static uint64_t g_rootfs_mnt;
static bool g_have_rootfs_mnt;

static int mount_id_of(int fd, uint64_t *id)
{
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0)
		return -1;
	if (!(stx.stx_mask & STATX_MNT_ID)) {
		errno = ENOSYS;
		return -1;
	}
	*id = stx.stx_mnt_id;
	return 0;
}

enum node_place node_place(int fd)
{
	uint64_t id;
	if (mount_id_of(fd, &id) < 0)
		die(ERR(MOUNT_ID), errno, NULL, 0);
	for (size_t i = 0; i < g_n_own_tmpfs; i++)
		if (g_own_tmpfs[i] == id)
			return PLACE_OWN_TMPFS;
	return g_have_rootfs_mnt && id == g_rootfs_mnt ? PLACE_ROOTFS : PLACE_OTHER_MOUNT;
}

/* A tmpfs this helper just mounted at destination: what it holds is the container's own. */
static void note_own_tmpfs(int rootfd, const char *destination)
{
	int fd;
	if (g_n_own_tmpfs == MAX_OWN_TMPFS)
		return; /* then it counts as any other mount: nothing is replaced on it */
	fd = open_in_root(rootfd, destination, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		die(ERR(OWN_TMPFS_OPEN), errno, destination, 0);
	if (mount_id_of(fd, &g_own_tmpfs[g_n_own_tmpfs]) < 0)
		die(ERR(MOUNT_ID), errno, destination, 0);
	g_n_own_tmpfs++;
	close(fd);
}

/* Lexically cleans an absolute container path into a path relative to the root: no leading
 * slash, no "." or empty components, ".." never above the root. The root itself is ".". */
void clean_path(const char *in, char *out, size_t outlen)
{
	size_t len = 0;
	const char *s = in;

	while (*s) {
		const char *e;
		size_t n;
		while (*s == '/')
			s++;
		if (!*s)
			break;
		e = strchr(s, '/');
		n = e ? (size_t)(e - s) : strlen(s);
		if (n == 1 && s[0] == '.') {
			/* skip */
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
		} else if (len + n + 2 < outlen) {
			if (len > 0)
				out[len++] = '/';
			memcpy(out + len, s, n);
			len += n;
		}
		s += n;
	}
	if (len == 0)
		out[len++] = '.';
	out[len] = '\0';
}

int open_in_root(int rootfd, const char *path, int flags, uint64_t resolve)
{
	char rel[4096];
	struct open_how how;
	long fd;

	clean_path(path, rel, sizeof(rel));
	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve;
	do
		fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	return (int)fd;
}

/* The path of an fd inside the root, without symlinks ("" for the root itself). */
static int path_in_root(int rootfd, int fd, char *out, size_t outlen)
{
	char link[64], rootp[4096], p[4096];
	ssize_t rn, pn;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", rootfd);
	rn = readlink(link, rootp, sizeof(rootp) - 1);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	pn = readlink(link, p, sizeof(p) - 1);
	if (rn < 0 || pn < 0)
		return -1;
	rootp[rn] = p[pn] = '\0';
	if (strcmp(rootp, "/") == 0)
		rn = 0;
	if (strncmp(p, rootp, (size_t)rn) != 0 || (p[rn] != '/' && p[rn] != '\0')) {
		errno = EXDEV;
		return -1;
	}
	snprintf(out, outlen, "%s", p + rn);
	return 0;
}

/*
 * Returns an O_PATH fd of path inside the root (symlinks followed, inside the root), creating
 * what is missing: directories, and the final component as a directory or an empty file.
 * Each missing component is created in its resolved parent, then resolved again from the
 * root, so that creation and resolution agree. A dangling symlink on the way is followed: its
 * target is created inside the root (as runc's securejoin.MkdirAll does).
 */
static int mkdir_in_root_depth(int rootfd, const char *path, bool final_is_file, int depth)
{
	char rel[4096], prefix[4096];
	int fd, parent;
	char *comp, *save = NULL;
	size_t plen = 0;

	fd = open_in_root(rootfd, path, O_PATH, 0);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (depth > 40) {
		errno = ELOOP;
		return -1;
	}

	clean_path(path, rel, sizeof(rel));
	parent = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
	if (parent < 0)
		return -1;
	prefix[0] = '\0';
	for (comp = strtok_r(rel, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		bool last = save == NULL || *save == '\0';
		if (plen > 0)
			prefix[plen++] = '/';
		memcpy(prefix + plen, comp, strlen(comp) + 1);
		plen += strlen(comp);

		fd = open_in_root(rootfd, prefix, O_PATH, 0);
		if (fd < 0 && errno == ENOENT) {
			if (last && final_is_file) {
				int f = openat(parent, comp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
				if (f < 0 && errno != EEXIST)
					goto fail;
				if (f >= 0)
					close(f);
			} else if (mkdirat(parent, comp, 0755) < 0 && errno != EEXIST) {
				goto fail;
			}
			fd = open_in_root(rootfd, prefix, O_PATH, 0);
		}
		if (fd < 0 && errno == ENOENT) {
			/* Still missing although something is there: a dangling symlink. */
			char target[4096], base[4096], next[8192];
			ssize_t n = readlinkat(parent, comp, target, sizeof(target) - 1);
			if (n < 0) {
				errno = ENOENT;
				goto fail;
			}
			target[n] = '\0';
			base[0] = '\0';
			if (target[0] != '/' && path_in_root(rootfd, parent, base, sizeof(base)) < 0)
				goto fail;
			snprintf(next, sizeof(next), "%s/%s%s%s", base, target, last ? "" : "/", last ? "" : save);
			close(parent);
			return mkdir_in_root_depth(rootfd, next, final_is_file, depth + 1);
		}
		if (fd < 0)
			goto fail;
		close(parent);
		parent = fd;
	}
	return parent;
fail: {
	int e = errno;
	close(parent);
	errno = e;
	return -1;
}
}

int mkdir_in_root(int rootfd, const char *path, bool final_is_file)
{
	return mkdir_in_root_depth(rootfd, path, final_is_file, 0);
}

/* Splits a container path into its (created) parent directory fd and its last component. */
static int parent_in_root(int rootfd, const char *path, char *name, size_t namelen)
{
	char rel[4096];
	char *slash;
	int fd;

	clean_path(path, rel, sizeof(rel));
	if (strcmp(rel, ".") == 0) {
		errno = EINVAL;
		return -1;
	}
	slash = strrchr(rel, '/');
	if (slash) {
		*slash = '\0';
		snprintf(name, namelen, "%s", slash + 1);
		fd = mkdir_in_root(rootfd, rel, false);
	} else {
		snprintf(name, namelen, "%s", rel);
		fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
	}
	return fd;
}

/* Removes whatever is at name (a file, a node, a symlink, an empty directory). */
static int remove_existing(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno == EISDIR && unlinkat(dirfd, name, AT_REMOVEDIR) == 0)
		return 0;
	return -1;
}

static unsigned long statvfs_to_ms(unsigned long f)
{
	unsigned long ms = 0;
	if (f & ST_RDONLY)
		ms |= MS_RDONLY;
	if (f & ST_NOSUID)
		ms |= MS_NOSUID;
	if (f & ST_NODEV)
		ms |= MS_NODEV;
	if (f & ST_NOEXEC)
		ms |= MS_NOEXEC;
	if (f & ST_NOATIME)
		ms |= MS_NOATIME;
	if (f & ST_NODIRATIME)
		ms |= MS_NODIRATIME;
	if (f & ST_RELATIME)
		ms |= MS_RELATIME;
	return ms;
}

/* MS_BIND|MS_REMOUNT with flags; when that is refused (EPERM: flags locked by a less
 * privileged mount namespace owner), keep the mount's locked flags and try again, as runc. */
static int remount_bind(const char *target, unsigned long flags)
{
	struct statvfs sv;
	unsigned long locked;

	if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | flags, NULL) == 0)
		return 0;
	if (errno != EPERM)
		return -1;
	if (statvfs(target, &sv) < 0) {
		errno = EPERM;
		return -1;
	}
	locked = statvfs_to_ms(sv.f_flag) & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY | MS_NOATIME |
					     MS_NODIRATIME | MS_RELATIME);
	if (flags & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME))
		locked &= ~(unsigned long)(MS_NOATIME | MS_RELATIME);
	if ((locked & ~flags) == 0) {
		errno = EPERM;
		return -1;
	}
	return mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | flags | locked, NULL);
}

/* mountinfo writes space, tab, newline and backslash as \ooo. */
static void unescape_mountinfo(const char *raw, char *out, size_t outlen)
{
	size_t j = 0;
	for (size_t i = 0; raw[i] && j < outlen - 1; i++) {
		if (raw[i] == '\\' && raw[i + 1] && raw[i + 2] && raw[i + 3]) {
			out[j++] = (char)(((raw[i + 1] - '0') << 6) | ((raw[i + 2] - '0') << 3) | (raw[i + 3] - '0'));
			i += 3;
		} else {
			out[j++] = raw[i];
		}
	}
	out[j] = '\0';
}

/* Makes the mount that holds the rootfs private if it is shared: pivot_root refuses a shared
 * parent, and the bind of the rootfs must not propagate to the host. Not needed after the
 * default recursive slave change of /, which leaves nothing shared. */
static void make_rootfs_parent_private(const char *rootfs)
{
	struct statx stx;
	FILE *f;
	char line[8192];

	if (statx(AT_FDCWD, rootfs, 0, STATX_MNT_ID, &stx) < 0)
		die(ERR(STATX), errno, rootfs, 0);
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		die(ERR(OPEN), errno, "/proc/self/mountinfo", 0);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long id;
		char mp[4096], raw[4096];
		if (sscanf(line, "%llu %*u %*s %*s %4095s", &id, raw) != 2 || id != stx.stx_mnt_id)
			continue;
		unescape_mountinfo(raw, mp, sizeof(mp));
		if (strstr(line, " shared:") && mount(NULL, mp, NULL, MS_PRIVATE, NULL) < 0)
			die(ERR(ROOTFS_PARENT_PRIVATE), errno, mp, 0);
		break;
	}
	fclose(f);
}

/*
 * --no-pivot keeps the host's root in the container's mount namespace, under the chroot, and
 * with it the host's /proc and /sys. While a whole procfs or sysfs is mounted there, a user
 * namespace made in the container may mount a fresh one, without the masked and read-only paths
 * (the kernel's mount_too_revealing() lets it). As runc does, every procfs and sysfs mounted
 * whole outside the rootfs is made a slave (so that nothing propagates to the host) and
 * detached, or covered with a tmpfs where it cannot be detached. Called after the last use of
 * the host's /proc.
 */
static void hide_host_proc_and_sys(const char *rootfs)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, **points = NULL;
	size_t cap = 0, n = 0, rlen = strlen(rootfs);

	if (!f)
		die(ERR(NO_PIVOT_MOUNTINFO), errno, "/proc/self/mountinfo", 0);
	while (getline(&line, &cap, f) > 0) {
		char root[16], raw[4096], type[32], *mp;
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*u %*u %*s %15s %4095s", root, raw) != 2 || sscanf(dash + 3, "%31s", type) != 1)
			continue;
		if (strcmp(root, "/") != 0 || (strcmp(type, "proc") != 0 && strcmp(type, "sysfs") != 0))
			continue;
		if (!(mp = malloc(4096)))
			die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, 0);
		unescape_mountinfo(raw, mp, 4096);
		if (strncmp(mp, rootfs, rlen) == 0 && (mp[rlen] == '/' || mp[rlen] == '\0' || rlen == 1)) {
			free(mp);
			continue;
		}
		if (!(points = realloc(points, (n + 1) * sizeof(*points))))
			die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, 0);
		points[n++] = mp;
	}
	free(line);
	fclose(f);
	/* Deepest (listed last) first. */
	while (n > 0) {
		char *mp = points[--n];
		if (mount(NULL, mp, NULL, MS_SLAVE | MS_REC, NULL) < 0) {
			/* Gone with a mount above it already (or no longer a mount point). */
			if (errno != ENOENT && errno != EINVAL)
				die(ERR(NO_PIVOT_SLAVE), errno, mp, 0);
		} else if (umount2(mp, MNT_DETACH) < 0) {
			if (errno != EINVAL && errno != EPERM)
				die(ERR(NO_PIVOT_DETACH), errno, mp, 0);
			if (mount("tmpfs", mp, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
				die(ERR(NO_PIVOT_COVER), errno, mp, 0);
		}
		free(mp);
	}
	free(points);
}

/* The rootfs as the fd everything in it is resolved from, and its mount (node_place). */
static void open_rootfs(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc)
{
	rc->rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rc->rootfd < 0)
		die(ERR(ROOTFS_OPEN), errno, c->rootfs, 0);
	if (mount_id_of(rc->rootfd, &g_rootfs_mnt) < 0)
		die(ERR(MOUNT_ID), errno, c->rootfs, 0);
	g_have_rootfs_mnt = true;
}

void rootfs_prepare(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc)
{
	unsigned long prop = c->rootfs_propagation;

	set_stage(STAGE(ROOTFS));
	if (!launch_has_ns(c->launch, CLONE_NEWNS)) {
		/* No mount namespace: this is the caller's. As runc, the mounts are made in it, under
		 * the rootfs, and the process is chrooted there; unlike runc, the propagation of its
		 * "/" is left alone and the rootfs is not bound on itself (both would change the host
		 * for good; TypeScript refuses rootfsPropagation and a read-only root here). Each
		 * mount is reported to the helper's parent, which undoes them if the create fails. */
		host_mounts_track();
		open_rootfs(c, rc);
		return;
	}
	if (mount(NULL, "/", NULL, prop, NULL) < 0)
		die(ERR(ROOTFS_PROPAGATION), errno, "/", prop);
	/* Only a recursive slave/private change leaves no shared mount between / and the rootfs. */
	if ((prop & MS_SHARED) || !(prop & MS_REC))
		make_rootfs_parent_private(c->rootfs);
	if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		die(ERR(ROOTFS_BIND), errno, c->rootfs, 0);
	open_rootfs(c, rc);
}

/* tmpcopyup: copies the tree under the directory fd `from` (the directory as it was before
 * the tmpfs covered it) into `to`, keeping types, modes and owners. Never follows symlinks. */
/* "where/name", for a failure's path. */
static const char *copy_path(const char *where, const char *name)
{
	static char buf[8192];
	snprintf(buf, sizeof(buf), "%s/%s", where, name);
	return buf;
}

static void copy_tree(int from, int to, const char *where, int depth)
{
	DIR *dir;
	struct dirent *e;
	int dupfd;

	if (depth > 64)
		die(ERR(TMPCOPYUP_TOO_DEEP), 0, where, depth);
	dupfd = fcntl(from, F_DUPFD_CLOEXEC, 0);
	if (dupfd < 0 || !(dir = fdopendir(dupfd)))
		die(ERR(TMPCOPYUP_READ_DIR), errno, where, 0);
	while ((errno = 0, e = readdir(dir))) {
		struct stat st;
		const char *n = e->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (fstatat(from, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die(ERR(TMPCOPYUP_STAT), errno, copy_path(where, n), 0);
		mode_t perm = st.st_mode & 07777;
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(to, n, perm) < 0)
				die(ERR(TMPCOPYUP_MKDIR), errno, copy_path(where, n), 0);
			int sub_from = openat(from, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int sub_to = openat(to, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub_from < 0 || sub_to < 0)
				die(ERR(TMPCOPYUP_OPEN), errno, copy_path(where, n), 0);
			copy_tree(sub_from, sub_to, where, depth + 1);
			if (fchmod(sub_to, perm) < 0) /* after the copy: a read-only dir must still be filled */
				die(ERR(TMPCOPYUP_CHMOD), errno, copy_path(where, n), 0);
			close(sub_from);
			close(sub_to);
		} else if (S_ISREG(st.st_mode)) {
			int in = openat(from, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			int out = openat(to, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm);
			if (in < 0 || out < 0)
				die(ERR(TMPCOPYUP_OPEN), errno, copy_path(where, n), 0);
			for (off_t left = st.st_size; left > 0;) {
				ssize_t k = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
				if (k < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL))
					k = sendfile(out, in, NULL, (size_t)left);
				if (k < 0)
					die(ERR(TMPCOPYUP_COPY), errno, copy_path(where, n), 0);
				if (k == 0)
					break;
				left -= k;
			}
			if (fchmod(out, perm) < 0) /* the umask trimmed the create mode */
				die(ERR(TMPCOPYUP_CHMOD), errno, copy_path(where, n), 0);
			close(in);
			close(out);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t len = readlinkat(from, n, target, sizeof(target) - 1);
			if (len < 0)
				die(ERR(TMPCOPYUP_READLINK), errno, copy_path(where, n), 0);
			target[len] = '\0';
			if (symlinkat(target, to, n) < 0)
				die(ERR(TMPCOPYUP_SYMLINK), errno, copy_path(where, n), 0);
		} else if (mknodat(to, n, st.st_mode, st.st_rdev) < 0) {
			die(ERR(TMPCOPYUP_MKNOD), errno, copy_path(where, n), 0);
		}
		if (fchownat(to, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
			die(ERR(TMPCOPYUP_CHOWN), errno, copy_path(where, n), 0);
	}
	if (errno)
		die(ERR(TMPCOPYUP_READ_DIR), errno, where, 0);
	closedir(dir);
}

/* tree: the detached copy of its source taken on the host side (idmap.c), or -1. Failures
 * carry the mount's index: TypeScript names its source and destination. */
static void mount_one(int rootfd, const Tsrun__Mount *m, size_t index, int tree)
{
	char target[64];
	int fd, before = -1;
	bool bind = (m->flags & MS_BIND) != 0;
	int64_t ix = (int64_t)index;
	bool pseudo = tree < 0 && !bind && (strcmp(m->fstype, "proc") == 0 || strcmp(m->fstype, "sysfs") == 0);

	if (pseudo) {
		/* As runc: procfs and sysfs only on a directory, never through a symlink the rootfs
		 * put at the destination (a procfs landing elsewhere escapes the masked paths). */
		struct stat st;
		fd = open_in_root(rootfd, m->destination, O_PATH | O_NOFOLLOW, 0);
		if (fd < 0 && errno != ENOENT)
			die(ERR(PSEUDO_FS_OPEN), errno, m->destination, ix);
		if (fd >= 0) {
			if (fstat(fd, &st) < 0)
				die(ERR(PSEUDO_FS_OPEN), errno, m->destination, ix);
			if (!S_ISDIR(st.st_mode))
				die(ERR(PSEUDO_FS_NOT_DIR), 0, m->destination, ix);
			close(fd);
		}
	}
	fd = mkdir_in_root(rootfd, m->destination, m->dest_is_file);
	if (fd < 0)
		die(ERR(MOUNT_POINT), errno, m->destination, ix);
	/* Opened before the mount covers it: this fd still reads the directory underneath. */
	if (m->copy_up && (before = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		die(ERR(TMPCOPYUP_OPEN_BEFORE), errno, m->destination, ix);
	PROCFD(target, fd);
	if (tree >= 0) {
		if (move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			die(m->idmap ? ERR(MOUNT_IDMAPPED_MOVE) : ERR(DETACHED_SOURCE_MOVE), errno, m->destination, ix);
		close(tree);
	} else if (bind) {
		if (mount(m->source, target, NULL, m->flags, NULL) < 0)
			die(ERR(MOUNT), errno, m->destination, ix);
	} else {
		if (mount(m->source, target, m->fstype, m->flags, m->data[0] ? m->data : NULL) < 0)
			die(ERR(MOUNT), errno, m->destination, ix);
		if (strcmp(m->fstype, "tmpfs") == 0)
			note_own_tmpfs(rootfd, m->destination);
	}
	note_host_mount(fd);
	close(fd);
	if (before >= 0) {
		int after = open_in_root(rootfd, m->destination, O_RDONLY | O_DIRECTORY, 0);
		if (after < 0)
			die(ERR(TMPCOPYUP_OPEN_AFTER), errno, m->destination, ix);
		copy_tree(before, after, m->destination, 0);
		close(before);
		close(after);
	}
	if (!(bind && m->remount_flags) && m->n_propagation == 0 && !m->rec_attr_set && !m->rec_attr_clr)
		return;

	/* The fd above is the mount point under the new mount: open the new mount itself. */
	fd = open_in_root(rootfd, m->destination, O_PATH, 0);
	if (fd < 0)
		die(ERR(MOUNT_REOPEN), errno, m->destination, ix);
	PROCFD(target, fd);
	if (bind && m->remount_flags && remount_bind(target, m->remount_flags) < 0)
		die(ERR(MOUNT_REMOUNT), errno, m->destination, ix);
	for (size_t i = 0; i < m->n_propagation; i++)
		if (mount(NULL, target, NULL, m->propagation[i], NULL) < 0)
			die(ERR(MOUNT_PROPAGATION), errno, m->destination, ix);
	if (m->rec_attr_set || m->rec_attr_clr) {
		struct mount_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.attr_set = m->rec_attr_set;
		attr.attr_clr = m->rec_attr_clr;
		if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
			die(ERR(MOUNT_SETATTR), errno, m->destination, ix);
	}
	close(fd);
}

void rootfs_mounts(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc)
{
	set_stage(STAGE(MOUNTS));
	for (size_t i = 0; i < c->n_mounts; i++)
		mount_one(rc->rootfd, c->mounts[i], i, idmap_take(i));
}

/* Where a node at path would go: the place of its directory, or of the nearest ancestor that
 * exists (what parent_in_root would create the rest in). Nothing is created. */
static enum node_place place_for(int rootfd, const char *path)
{
	char rel[4096];
	clean_path(path, rel, sizeof(rel));
	for (;;) {
		char *slash = strrchr(rel, '/');
		int fd;
		if (slash)
			*slash = '\0';
		else
			snprintf(rel, sizeof(rel), ".");
		fd = open_in_root(rootfd, rel, O_PATH, 0);
		if (fd >= 0) {
			enum node_place place = node_place(fd);
			close(fd);
			return place;
		}
		if ((errno != ENOENT && errno != ENOTDIR) || strcmp(rel, ".") == 0)
			die(ERR(NODE_DIR_OPEN), errno, path, 0);
	}
}

/*
 * The directory a node at path is made in, and whether what is there may be replaced. Returns
 * -1 when nothing may be made: there is a node already and it is not on a tmpfs of ours (it is
 * left as it is), or the directory is on a mount that is not the container's own (a bind of the
 * host's /dev): then a missing node is said in a warning and not made.
 */
static int node_dir(int rootfd, const char *path, bool device, char *name, size_t namelen, bool *replace)
{
	struct stat st;
	enum node_place place = place_for(rootfd, path);
	Tsrun__WarningCode not_made = device ? WARN(DEVICE_NOT_MADE) : WARN(SYMLINK_NOT_MADE);
	int dir;

	if (place == PLACE_OTHER_MOUNT) {
		int fd = open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0);
		if (fd >= 0)
			close(fd);
		else
			warn_event(not_made, path, 0);
		return -1;
	}
	dir = parent_in_root(rootfd, path, name, namelen);
	if (dir < 0)
		die(device ? ERR(DEVICE_PARENT) : ERR(SYMLINK_PARENT), errno, path, 0);
	place = node_place(dir);
	*replace = place == PLACE_OWN_TMPFS;
	if (!*replace && fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		close(dir);
		return -1;
	}
	if (place == PLACE_OTHER_MOUNT) {
		close(dir);
		warn_event(not_made, path, 0);
		return -1;
	}
	return dir;
}

static void make_device(int rootfd, const Tsrun__Device *d)
{
	char name[4096], target[64];
	bool replace;
	struct stat st;
	int dir, fd = open_in_root(rootfd, d->path, O_PATH | O_NOFOLLOW, 0);

	if (fd >= 0) {
		/* Something is there. Kept unless the directory is a tmpfs of ours; then it must be
		 * the device asked for (runtime-spec config-linux.md, Devices: an error otherwise). */
		char rel[4096], *slash;
		int parent;
		clean_path(d->path, rel, sizeof(rel));
		slash = strrchr(rel, '/');
		if (slash)
			*slash = '\0';
		parent = open_in_root(rootfd, slash ? rel : ".", O_PATH, 0);
		if (parent < 0 || fstat(fd, &st) < 0)
			die(ERR(DEVICE_EXISTING_STAT), errno, d->path, 0);
		replace = node_place(parent) == PLACE_OWN_TMPFS;
		close(parent);
		close(fd);
		if (!replace) {
			bool same = (st.st_mode & S_IFMT) == (d->mode & S_IFMT) &&
				    (S_ISFIFO(st.st_mode) || st.st_rdev == makedev(d->major, d->minor));
			/* value: what is there, its S_IFMT bits above bit 32 and its device number below */
			if (!same)
				die(ERR(DEVICE_OCCUPIED), 0, d->path,
				    (int64_t)(st.st_mode & S_IFMT) << 32 | (int64_t)major(st.st_rdev) << 20 | minor(st.st_rdev));
			return;
		}
	}
	dir = node_dir(rootfd, d->path, true, name, sizeof(name), &replace);
	if (dir < 0)
		return;
	if (replace && remove_existing(dir, name) < 0)
		die(ERR(DEVICE_REMOVE), errno, d->path, 0);
	if (d->bind_from_host) {
		int f = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		int t;
		if (f < 0)
			die(ERR(DEVICE_BIND_TARGET), errno, d->path, 0);
		close(f);
		t = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (t < 0)
			die(ERR(DEVICE_BIND_TARGET), errno, d->path, 0);
		PROCFD(target, t);
		if (mount(d->path, target, NULL, MS_BIND, NULL) < 0)
			die(ERR(DEVICE_BIND), errno, d->path, 0);
		note_host_mount(t);
		close(t);
	} else {
		if (mknodat(dir, name, d->mode, makedev(d->major, d->minor)) < 0)
			die(ERR(MKNOD), errno, d->path, 0);
		if (fchownat(dir, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
			die(ERR(CHOWN), errno, d->path, 0);
	}
	close(dir);
}

static void make_symlink(int rootfd, const Tsrun__Symlink *l, size_t index)
{
	char name[4096];
	bool replace;
	int dir = node_dir(rootfd, l->path, false, name, sizeof(name), &replace);

	if (dir < 0)
		return;
	if (replace && remove_existing(dir, name) < 0)
		die(ERR(SYMLINK_REMOVE), errno, l->path, (int64_t)index);
	if (symlinkat(l->target, dir, name) < 0)
		die(ERR(SYMLINK), errno, l->path, (int64_t)index);
	close(dir);
}

void rootfs_devices(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc)
{
	mode_t old = umask(0);
	set_stage(STAGE(DEVICES));
	for (size_t i = 0; i < c->n_devices; i++)
		make_device(rc->rootfd, c->devices[i]);
	for (size_t i = 0; i < c->n_symlinks; i++)
		make_symlink(rc->rootfd, c->symlinks[i], i);
	umask(old);
}

/* As runc: a missing cwd is created (0755, inside the rootfs, after the mounts it may lie
 * in). If that fails the chdir later says why. */
void rootfs_make_cwd(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc)
{
	const char *cwd = c->launch->process->cwd;
	int fd;
	if (!cwd[0])
		return;
	mode_t old = umask(022);
	fd = mkdir_in_root(rc->rootfd, cwd, false);
	umask(old);
	if (fd >= 0)
		close(fd);
}

/* TypeScript gives the path below /proc/sys; it is opened without following symlinks and must
 * be on procfs. Failures carry the sysctl's index: TypeScript names its key. */
static void write_sysctl(int rootfd, const Tsrun__Sysctl *s, size_t index)
{
	char path[4200];
	struct statfs sfs;
	int fd;
	size_t len = strlen(s->value);

	snprintf(path, sizeof(path), "/proc/sys/%s", s->path);
	fd = open_in_root(rootfd, path, O_WRONLY | O_NOCTTY, RESOLVE_NO_SYMLINKS);
	if (fd < 0)
		die(ERR(SYSCTL_OPEN), errno, path, (int64_t)index);
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)
		die(ERR(SYSCTL_NOT_PROCFS), 0, path, (int64_t)index);
	ssize_t n;
	do
		n = write(fd, s->value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die(ERR(SYSCTL_WRITE), errno, path, (int64_t)index);
	close(fd);
}

static void readonly_path(int rootfd, const char *path)
{
	char target[64];
	struct stat st;
	struct statvfs sv;
	unsigned long keep;
	int fd = open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0);

	if (fd < 0) {
		if (errno == ENOENT)
			return;
		die(ERR(READONLY_PATH), errno, path, 0);
	}
	if (fstat(fd, &st) < 0)
		die(ERR(READONLY_PATH_STAT), errno, path, 0);
	if (S_ISLNK(st.st_mode)) {
		warn_event(WARN(READONLY_PATH_SYMLINK), path, 0);
		close(fd);
		return;
	}
	PROCFD(target, fd);
	if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) < 0)
		die(ERR(READONLY_PATH_BIND), errno, path, 0);
	close(fd);
	fd = open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		die(ERR(READONLY_PATH_REOPEN), errno, path, 0);
	PROCFD(target, fd);
	if (statvfs(target, &sv) < 0)
		die(ERR(READONLY_PATH_STATVFS), errno, path, 0);
	keep = statvfs_to_ms(sv.f_flag) & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
	if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | keep, NULL) < 0)
		die(ERR(READONLY_PATH_REMOUNT), errno, path, 0);
	close(fd);
}

/* The container's /dev/null, checked to be the real null device before it is used to mask
 * anything (a rootfs could make it a symlink to, or a bind of, something else). The same fd
 * that was checked is the bind source, so nothing can be swapped in between. */
static int open_dev_null(int rootfd)
{
	struct stat st;
	int fd = open_in_root(rootfd, "/dev/null", O_PATH | O_NOFOLLOW, 0);

	if (fd < 0)
		die(ERR(MASK_DEV_NULL_OPEN), errno, "/dev/null", 0);
	if (fstat(fd, &st) < 0)
		die(ERR(MASK_DEV_NULL_STAT), errno, "/dev/null", 0);
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
		die(ERR(MASK_DEV_NULL_NOT_NULL), 0, "/dev/null", 0);
	return fd;
}

static void mask_path(int rootfd, int nullfd, const char *path)
{
	char target[64], source[64];
	struct stat st;
	int fd = open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0);

	if (fd < 0) {
		if (errno == ENOENT)
			return;
		die(ERR(MASK), errno, path, 0);
	}
	if (fstat(fd, &st) < 0)
		die(ERR(MASK_STAT), errno, path, 0);
	PROCFD(target, fd);
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", target, "tmpfs", MS_RDONLY, NULL) < 0)
			die(ERR(MASK_TMPFS), errno, path, 0);
	} else if (S_ISLNK(st.st_mode)) {
		warn_event(WARN(MASKED_PATH_SYMLINK), path, 0);
	} else {
		PROCFD(source, nullfd);
		if (mount(source, target, NULL, MS_BIND, NULL) < 0)
			die(ERR(MASK_BIND), errno, path, 0);
	}
	close(fd);
}

/* Mount.readonly_late: the mount (a read-only /dev or tmpfs, mounted writable) becomes read-only
 * now that it is filled, keeping its other per-mount flags (as runc's remountReadonly). */
static void readonly_late(int rootfd, const Tsrun__Mount *m)
{
	const unsigned long keep = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
	unsigned long flags = ((m->flags & MS_BIND) ? m->remount_flags : m->flags) & keep;
	char target[64];
	int fd = open_in_root(rootfd, m->destination, O_PATH, 0);

	if (fd < 0)
		die(ERR(READONLY_LATE_OPEN), errno, m->destination, 0);
	PROCFD(target, fd);
	if (remount_bind(target, flags | MS_RDONLY) < 0)
		die(ERR(READONLY_LATE_REMOUNT), errno, m->destination, 0);
	close(fd);
}

/* Before pivot_root, with the host's /proc for the magic links: sysctls (the container's
 * /proc/sys, which shows our namespaces), read-only paths, masked paths, late read-only mounts. */
void rootfs_finish_paths(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc)
{
	set_stage(STAGE(PATHS));
	for (size_t i = 0; i < c->n_sysctls; i++)
		write_sysctl(rc->rootfd, c->sysctls[i], i);
	for (size_t i = 0; i < c->n_readonly_paths; i++)
		readonly_path(rc->rootfd, c->readonly_paths[i]);
	if (c->n_masked_paths > 0) {
		int nullfd = open_dev_null(rc->rootfd);
		for (size_t i = 0; i < c->n_masked_paths; i++)
			mask_path(rc->rootfd, nullfd, c->masked_paths[i]);
		close(nullfd);
	}
	for (size_t i = c->n_mounts; i-- > 0;)
		if (c->mounts[i]->readonly_late)
			readonly_late(rc->rootfd, c->mounts[i]);
}

void rootfs_pivot(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc)
{
	bool mntns = launch_has_ns(c->launch, CLONE_NEWNS);

	set_stage(STAGE(PIVOT));
	if (fchdir(rc->rootfd) < 0)
		die(ERR(PIVOT_CHDIR_ROOTFS), errno, c->rootfs, 0);
	if (!mntns) {
		/* the caller's mount namespace: pivot_root or a move would change its root */
		if (chroot(".") < 0)
			die(ERR(CHROOT), errno, c->rootfs, 0);
	} else if (c->no_pivot) {
		hide_host_proc_and_sys(c->rootfs);
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
			die(ERR(NO_PIVOT_MOVE), errno, c->rootfs, 0);
		if (chroot(".") < 0)
			die(ERR(NO_PIVOT_CHROOT), errno, c->rootfs, 0);
	} else {
		/* The old root ends up stacked on the new one. It is reached through an fd taken
		 * before the pivot: a path such as "." names the new root for mount(2), and a
		 * recursive change there would undo the propagation of the container's own mounts
		 * (an "rshared" bind would lose its peer group). The old root becomes a slave so
		 * that detaching it does not propagate to the host. */
		int oldroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (oldroot < 0)
			die(ERR(PIVOT_OPEN_OLD_ROOT), errno, NULL, 0);
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			die(ERR(PIVOT_ROOT), errno, c->rootfs, 0);
		if (fchdir(oldroot) < 0)
			die(ERR(PIVOT_CHDIR_OLD_ROOT), errno, NULL, 0);
		if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			die(ERR(PIVOT_OLD_ROOT_SLAVE), errno, NULL, 0);
		if (umount2(".", MNT_DETACH) < 0)
			die(ERR(PIVOT_UNMOUNT_OLD_ROOT), errno, NULL, 0);
		close(oldroot);
	}
	if (chdir("/") < 0)
		die(ERR(PIVOT_CHDIR_NEW_ROOT), errno, NULL, 0);
	close(rc->rootfd);
	rc->rootfd = -1;
	/* The root mount itself only (TypeScript chose it: the recursive part was applied to the
	 * host's / before the container's mounts were made, and a mount's own propagation option
	 * must win over it). */
	if (mntns && c->root_propagation_after && mount(NULL, "/", NULL, c->root_propagation_after, NULL) < 0)
		die(ERR(PIVOT_ROOT_PROPAGATION), errno, "/", c->root_propagation_after);
}

void rootfs_after_pivot(const Tsrun__CreatePlan *c)
{
	if (!c->readonly_root)
		return;
	if (!launch_has_ns(c->launch, CLONE_NEWNS))
		die(ERR(READONLY_ROOT_NO_MNTNS), 0, "/", 0);
	if (remount_bind("/", MS_RDONLY) < 0)
		die(ERR(REMOUNT_ROOT_READONLY), errno, "/", 0);
}
