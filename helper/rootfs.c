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

/* Makes the mount that holds the rootfs private if it is shared: pivot_root refuses a shared
 * parent, and the bind of the rootfs must not propagate to the host. Not needed after the
 * default recursive slave change of /, which leaves nothing shared. */
static void make_rootfs_parent_private(const char *rootfs)
{
	struct statx stx;
	FILE *f;
	char line[8192];

	if (statx(AT_FDCWD, rootfs, 0, STATX_MNT_ID, &stx) < 0)
		die_errno("statx %s", rootfs);
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		die_errno("open /proc/self/mountinfo");
	while (fgets(line, sizeof(line), f)) {
		unsigned long long id;
		char mp[4096], raw[4096];
		size_t j = 0;
		if (sscanf(line, "%llu %*u %*s %*s %4095s", &id, raw) != 2 || id != stx.stx_mnt_id)
			continue;
		for (size_t i = 0; raw[i] && j < sizeof(mp) - 1; i++) { /* undo \040-style escapes */
			if (raw[i] == '\\' && raw[i + 1] && raw[i + 2] && raw[i + 3]) {
				mp[j++] = (char)(((raw[i + 1] - '0') << 6) | ((raw[i + 2] - '0') << 3) | (raw[i + 3] - '0'));
				i += 3;
			} else {
				mp[j++] = raw[i];
			}
		}
		mp[j] = '\0';
		if (strstr(line, " shared:") && mount(NULL, mp, NULL, MS_PRIVATE, NULL) < 0)
			die_errno("make the parent mount of the rootfs (%s) private", mp);
		break;
	}
	fclose(f);
}

void rootfs_prepare(const struct plan *p, struct rootfs_ctx *rc)
{
	unsigned long prop = p->rootfs_propagation ? p->rootfs_propagation : (MS_SLAVE | MS_REC);

	if (!plan_has_ns(p, CLONE_NEWNS)) {
		/* No mount namespace: this is the caller's. As runc, the mounts are made in it, under
		 * the rootfs, and the process is chrooted there; unlike runc, the propagation of its
		 * "/" is left alone and the rootfs is not bound on itself (both would change the host
		 * for good; TypeScript refuses rootfsPropagation and a read-only root here). */
		rc->rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rc->rootfd < 0)
			die_errno("open rootfs %s", p->rootfs);
		return;
	}

	/* An unbindable "/" would refuse the bind of the rootfs below; private is what unbindable
	 * implies, and rootfs_pivot makes the container's "/" unbindable once it is in place. */
	if (prop & MS_UNBINDABLE)
		prop = (prop & ~(unsigned long)MS_UNBINDABLE) | MS_PRIVATE;
	if (mount(NULL, "/", NULL, prop, NULL) < 0)
		die_errno("set propagation of / (rootfsPropagation)");
	/* Only a recursive slave/private change leaves no shared mount between / and the rootfs. */
	if ((prop & MS_SHARED) || !(prop & MS_REC))
		make_rootfs_parent_private(p->rootfs);
	if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		die_errno("bind mount the rootfs %s on itself", p->rootfs);
	rc->rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rc->rootfd < 0)
		die_errno("open rootfs %s", p->rootfs);
}

/* tmpcopyup: copies the tree under the directory fd `from` (the directory as it was before
 * the tmpfs covered it) into `to`, keeping types, modes and owners. Never follows symlinks. */
static void copy_tree(int from, int to, const char *where, int depth)
{
	DIR *dir;
	struct dirent *e;
	int dupfd;

	if (depth > 64)
		die("tmpcopyup %s: directories nested too deep", where);
	dupfd = fcntl(from, F_DUPFD_CLOEXEC, 0);
	if (dupfd < 0 || !(dir = fdopendir(dupfd)))
		die_errno("tmpcopyup %s: read directory", where);
	while ((errno = 0, e = readdir(dir))) {
		struct stat st;
		const char *n = e->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (fstatat(from, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die_errno("tmpcopyup %s/%s: stat", where, n);
		mode_t perm = st.st_mode & 07777;
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(to, n, perm) < 0)
				die_errno("tmpcopyup %s/%s: mkdir", where, n);
			int sub_from = openat(from, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int sub_to = openat(to, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub_from < 0 || sub_to < 0)
				die_errno("tmpcopyup %s/%s: open directory", where, n);
			copy_tree(sub_from, sub_to, where, depth + 1);
			if (fchmod(sub_to, perm) < 0) /* after the copy: a read-only dir must still be filled */
				die_errno("tmpcopyup %s/%s: chmod", where, n);
			close(sub_from);
			close(sub_to);
		} else if (S_ISREG(st.st_mode)) {
			int in = openat(from, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			int out = openat(to, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm);
			if (in < 0 || out < 0)
				die_errno("tmpcopyup %s/%s: open", where, n);
			for (off_t left = st.st_size; left > 0;) {
				ssize_t k = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
				if (k < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL))
					k = sendfile(out, in, NULL, (size_t)left);
				if (k < 0)
					die_errno("tmpcopyup %s/%s: copy", where, n);
				if (k == 0)
					break;
				left -= k;
			}
			if (fchmod(out, perm) < 0) /* the umask trimmed the create mode */
				die_errno("tmpcopyup %s/%s: chmod", where, n);
			close(in);
			close(out);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t len = readlinkat(from, n, target, sizeof(target) - 1);
			if (len < 0)
				die_errno("tmpcopyup %s/%s: readlink", where, n);
			target[len] = '\0';
			if (symlinkat(target, to, n) < 0)
				die_errno("tmpcopyup %s/%s: symlink", where, n);
		} else if (mknodat(to, n, st.st_mode, st.st_rdev) < 0) {
			die_errno("tmpcopyup %s/%s: mknod", where, n);
		}
		if (fchownat(to, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
			die_errno("tmpcopyup %s/%s: chown", where, n);
	}
	if (errno)
		die_errno("tmpcopyup %s: read directory", where);
	closedir(dir);
}

/* tree: an idmapped mount's detached copy of its source (idmap.c), or -1. */
static void mount_one(const struct plan *p, int rootfd, const struct plan_mount *m, int tree)
{
	char target[64];
	int fd, before = -1;
	bool bind = (m->flags & MS_BIND) != 0;

	fd = mkdir_in_root(rootfd, m->destination, (m->dest_kind & MOUNT_DEST_FILE) != 0);
	if (fd < 0)
		die_errno("mount %s on %s: create mount point", m->source, m->destination);
	/* Opened before the mount covers it: this fd still reads the directory underneath. */
	if ((m->dest_kind & MOUNT_COPY_UP) && (before = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		die_errno("tmpcopyup %s: open the directory", m->destination);
	PROCFD(target, fd);
	if (tree >= 0) {
		if (move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			die_errno("%s %s on %s: move_mount", m->idmap ? "idmapped mount" : "mount", m->source, m->destination);
		close(tree);
	} else if (bind) {
		if (mount(m->source, target, NULL, m->flags, NULL) < 0)
			die_errno("mount %s on %s", m->source, m->destination);
	} else {
		if (mount(m->source, target, m->fstype, m->flags, *m->data ? m->data : NULL) < 0)
			die_errno("mount %s on %s", m->source, m->destination);
	}
	note_host_mount(p, fd);
	close(fd);
	if (before >= 0) {
		int after = open_in_root(rootfd, m->destination, O_RDONLY | O_DIRECTORY, 0);
		if (after < 0)
			die_errno("tmpcopyup %s: open the new mount", m->destination);
		copy_tree(before, after, m->destination, 0);
		close(before);
		close(after);
	}
	if (!(bind && m->remount_flags) && m->nprop == 0 && !m->rec_attr_set && !m->rec_attr_clr)
		return;

	/* The fd above is the mount point under the new mount: open the new mount itself. */
	fd = open_in_root(rootfd, m->destination, O_PATH, 0);
	if (fd < 0)
		die_errno("reopen %s after mounting", m->destination);
	PROCFD(target, fd);
	if (bind && m->remount_flags && remount_bind(target, m->remount_flags) < 0)
		die_errno("remount %s", m->destination);
	for (uint32_t i = 0; i < m->nprop; i++)
		if (mount(NULL, target, NULL, m->prop[i], NULL) < 0)
			die_errno("change propagation of %s", m->destination);
	if (m->rec_attr_set || m->rec_attr_clr) {
		struct mount_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.attr_set = m->rec_attr_set;
		attr.attr_clr = m->rec_attr_clr;
		if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
			die_errno("set recursive mount attributes of %s", m->destination);
	}
	close(fd);
}

void rootfs_mounts(const struct plan *p, struct rootfs_ctx *rc)
{
	for (size_t i = 0; i < p->n_mounts; i++)
		mount_one(p, rc->rootfd, &p->mounts[i], idmap_take(i));
}

static void make_device(const struct plan *p, int rootfd, const struct plan_device *d)
{
	char name[4096], target[64];
	int dir = parent_in_root(rootfd, d->path, name, sizeof(name));

	if (dir < 0)
		die_errno("create device %s: parent directory", d->path);
	if (remove_existing(dir, name) < 0)
		die_errno("create device %s: remove what is there", d->path);
	if (d->bind_from_host) {
		int f = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		int t;
		if (f < 0)
			die_errno("create device %s: create bind target", d->path);
		close(f);
		t = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (t < 0)
			die_errno("create device %s: open bind target", d->path);
		PROCFD(target, t);
		if (mount(d->path, target, NULL, MS_BIND, NULL) < 0)
			die_errno("bind mount device %s", d->path);
		note_host_mount(p, t);
		close(t);
	} else {
		mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
		dev_t dev = d->type == 'p' ? 0 : makedev(d->major, d->minor);
		if (mknodat(dir, name, type | (d->mode & 07777), dev) < 0)
			die_errno("mknod %s", d->path);
		if (fchownat(dir, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
			die_errno("chown %s", d->path);
	}
	close(dir);
}

static void make_symlink(int rootfd, const struct plan_pair *s)
{
	char name[4096];
	int dir = parent_in_root(rootfd, s->a, name, sizeof(name));

	if (dir < 0)
		die_errno("symlink %s: parent directory", s->a);
	if (remove_existing(dir, name) < 0)
		die_errno("symlink %s: remove what is there", s->a);
	if (symlinkat(s->b, dir, name) < 0)
		die_errno("symlink %s -> %s", s->a, s->b);
	close(dir);
}

void rootfs_devices(const struct plan *p, struct rootfs_ctx *rc)
{
	mode_t old = umask(0);
	for (size_t i = 0; i < p->n_devices; i++)
		make_device(p, rc->rootfd, &p->devices[i]);
	for (size_t i = 0; i < p->n_symlinks; i++)
		make_symlink(rc->rootfd, &p->symlinks[i]);
	umask(old);
}

/* As runc: a missing cwd is created (0755, inside the rootfs, after the mounts it may lie
 * in). If that fails the chdir later says why. */
void rootfs_make_cwd(const struct plan *p, struct rootfs_ctx *rc)
{
	int fd;
	if (!p->cwd || !*p->cwd)
		return;
	mode_t old = umask(022);
	fd = mkdir_in_root(rc->rootfd, p->cwd, false);
	umask(old);
	if (fd >= 0)
		close(fd);
}

static void write_sysctl(int rootfd, const struct plan_pair *s)
{
	char path[4200];
	struct statfs sfs;
	int fd;
	size_t len = strlen(s->b);

	/* Dots become slashes, so no ".." survives; the path stays under /proc/sys. */
	snprintf(path, sizeof(path), "/proc/sys/%s", s->a);
	for (char *c = path + 10; *c; c++)
		if (*c == '.')
			*c = '/';
	fd = open_in_root(rootfd, path, O_WRONLY | O_NOCTTY, RESOLVE_NO_SYMLINKS);
	if (fd < 0)
		die_errno("sysctl %s: open %s", s->a, path);
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)
		die("sysctl %s: %s is not on procfs", s->a, path);
	ssize_t n;
	do
		n = write(fd, s->b, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die_errno("sysctl %s: write %s", s->a, path);
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
		die_errno("readonly path %s", path);
	}
	if (fstat(fd, &st) < 0)
		die_errno("readonly path %s: stat", path);
	if (S_ISLNK(st.st_mode)) {
		warnx_line("readonly path %s is a symlink, not followed, skipped", path);
		close(fd);
		return;
	}
	PROCFD(target, fd);
	if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) < 0)
		die_errno("readonly path %s: bind mount", path);
	close(fd);
	fd = open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		die_errno("readonly path %s: reopen", path);
	PROCFD(target, fd);
	if (statvfs(target, &sv) < 0)
		die_errno("readonly path %s: statvfs", path);
	keep = statvfs_to_ms(sv.f_flag) & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
	if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | keep, NULL) < 0)
		die_errno("readonly path %s: remount read-only", path);
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
		die_errno("masked paths: open /dev/null in the container");
	if (fstat(fd, &st) < 0)
		die_errno("masked paths: stat /dev/null in the container");
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
		die("masked paths: /dev/null in the container is not the null device (character device 1:3)");
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
		die_errno("mask %s", path);
	}
	if (fstat(fd, &st) < 0)
		die_errno("mask %s: stat", path);
	PROCFD(target, fd);
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", target, "tmpfs", MS_RDONLY, NULL) < 0)
			die_errno("mask %s: mount read-only tmpfs", path);
	} else if (S_ISLNK(st.st_mode)) {
		warnx_line("masked path %s is a symlink, not followed, skipped", path);
	} else {
		PROCFD(source, nullfd);
		if (mount(source, target, NULL, MS_BIND, NULL) < 0)
			die_errno("mask %s: bind mount /dev/null", path);
	}
	close(fd);
}

/* MOUNT_READONLY_LATE: the mount (a read-only /dev or tmpfs, mounted writable) becomes read-only
 * now that it is filled, keeping its other per-mount flags (as runc's remountReadonly). */
static void readonly_late(int rootfd, const struct plan_mount *m)
{
	const unsigned long keep = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
	unsigned long flags = ((m->flags & MS_BIND) ? m->remount_flags : m->flags) & keep;
	char target[64];
	int fd = open_in_root(rootfd, m->destination, O_PATH, 0);

	if (fd < 0)
		die_errno("remount %s read-only: open it", m->destination);
	PROCFD(target, fd);
	if (remount_bind(target, flags | MS_RDONLY) < 0)
		die_errno("remount %s read-only", m->destination);
	close(fd);
}

/* Before pivot_root, with the host's /proc for the magic links: sysctls (the container's
 * /proc/sys, which shows our namespaces), read-only paths, masked paths, late read-only mounts. */
void rootfs_finish_paths(const struct plan *p, struct rootfs_ctx *rc)
{
	for (size_t i = 0; i < p->n_sysctls; i++)
		write_sysctl(rc->rootfd, &p->sysctls[i]);
	for (size_t i = 0; i < p->n_readonly; i++)
		readonly_path(rc->rootfd, p->readonly[i]);
	if (p->n_masked > 0) {
		int nullfd = open_dev_null(rc->rootfd);
		for (size_t i = 0; i < p->n_masked; i++)
			mask_path(rc->rootfd, nullfd, p->masked[i]);
		close(nullfd);
	}
	for (size_t i = p->n_mounts; i-- > 0;)
		if (p->mounts[i].dest_kind & MOUNT_READONLY_LATE)
			readonly_late(rc->rootfd, &p->mounts[i]);
}

void rootfs_pivot(const struct plan *p, struct rootfs_ctx *rc)
{
	bool mntns = plan_has_ns(p, CLONE_NEWNS);

	if (fchdir(rc->rootfd) < 0)
		die_errno("chdir to the rootfs");
	if (!mntns) {
		/* the caller's mount namespace: pivot_root or a move would change its root */
		if (chroot(".") < 0)
			die_errno("chroot to the rootfs");
	} else if (p->flags & GENERAL_NO_PIVOT) {
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
			die_errno("move the rootfs to / (no pivot)");
		if (chroot(".") < 0)
			die_errno("chroot to the rootfs");
	} else {
		/* The old root ends up stacked on the new one. It is reached through an fd taken
		 * before the pivot: a path such as "." names the new root for mount(2), and a
		 * recursive change there would undo the propagation of the container's own mounts
		 * (an "rshared" bind would lose its peer group). The old root becomes a slave so
		 * that detaching it does not propagate to the host. */
		int oldroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (oldroot < 0)
			die_errno("open the old root");
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			die_errno("pivot_root");
		if (fchdir(oldroot) < 0)
			die_errno("chdir to the old root");
		if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			die_errno("make the old root a slave");
		if (umount2(".", MNT_DETACH) < 0)
			die_errno("unmount the old root");
		close(oldroot);
	}
	if (chdir("/") < 0)
		die_errno("chdir to the new root");
	close(rc->rootfd);
	rc->rootfd = -1;
	/* The root mount itself only: the recursive part was applied to the host's / before the
	 * container's mounts were made, and a mount's own propagation option must win over it. */
	if (mntns && p->rootfs_propagation && mount(NULL, "/", NULL, p->rootfs_propagation & ~(unsigned long)MS_REC, NULL) < 0)
		die_errno("set propagation of the container's /");
}

void rootfs_after_pivot(const struct plan *p)
{
	if (p->flags & GENERAL_READONLY_ROOT) {
		if (!plan_has_ns(p, CLONE_NEWNS))
			die("a read-only root needs a mount namespace (it would be the host's mount)");
		if (remount_bind("/", MS_RDONLY) < 0)
			die_errno("remount / read-only");
	}
}
