/*
 * tsrun-helper --device-filter CGROUP_DIR
 * tsrun-helper --device-filter-count CGROUP_DIR
 *
 * The cgroup v2 device controller: TypeScript builds the BPF_PROG_TYPE_CGROUP_DEVICE program
 * (src/linux/cgroups/device-program.ts) and sends its instructions on stdin; this loads it and
 * attaches it to CGROUP_DIR, then detaches the device programs that were attached to that
 * cgroup before. The new program is attached first (BPF_F_ALLOW_MULTI: both run for a moment,
 * and a device needs both to allow it), so a running container never goes without a filter.
 * A cgroup whose program was attached without BPF_F_ALLOW_MULTI gets it replaced in place.
 *
 * --device-filter-count prints how many device programs are attached to CGROUP_DIR itself.
 *
 * Exit 0 on success; otherwise one line on stderr, errno text lowercase, and exit 1.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_PROGRAM_BYTES (1000000u * sizeof(struct bpf_insn))
#define LOG_SIZE (1u << 20)

static _Noreturn void fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static _Noreturn void fail(int err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err) {
		char e[128];
		snprintf(e, sizeof(e), "%s", strerror(err));
		if (e[0] >= 'A' && e[0] <= 'Z')
			e[0] = (char)(e[0] - 'A' + 'a');
		fprintf(stderr, "%s: %s\n", msg, e);
	} else {
		fprintf(stderr, "%s\n", msg);
	}
	exit(1);
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static unsigned char *read_stdin(size_t *len)
{
	size_t cap = 4096, n = 0;
	unsigned char *buf = malloc(cap);

	if (!buf)
		fail(ENOMEM, "device filter: read program");
	for (;;) {
		ssize_t r;
		if (n == cap) {
			if (cap >= MAX_PROGRAM_BYTES)
				fail(0, "device filter: program larger than %zu bytes", (size_t)MAX_PROGRAM_BYTES);
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				fail(ENOMEM, "device filter: read program");
		}
		r = read(0, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail(errno, "device filter: read program from stdin");
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return buf;
}

/* The ids of the device programs attached to the cgroup itself (not inherited ones). */
static __u32 *query(int cgfd, const char *dir, __u32 *count, __u32 *flags)
{
	__u32 cap = 64;

	for (;;) {
		union bpf_attr attr;
		__u32 *ids = calloc(cap, sizeof(*ids));
		if (!ids)
			fail(ENOMEM, "device filter: query %s", dir);
		memset(&attr, 0, sizeof(attr));
		attr.query.target_fd = (__u32)cgfd;
		attr.query.attach_type = BPF_CGROUP_DEVICE;
		attr.query.prog_ids = (__u64)(uintptr_t)ids;
		attr.query.prog_cnt = cap;
		if (sys_bpf(BPF_PROG_QUERY, &attr) == 0) {
			*count = attr.query.prog_cnt;
			*flags = attr.query.attach_flags;
			return ids;
		}
		free(ids);
		if (errno != ENOSPC || cap >= 65536)
			fail(errno, "device filter: query the device programs of %s", dir);
		cap *= 4;
	}
}

static int load(const unsigned char *insns, size_t len)
{
	static const char license[] = "Apache-2.0"; /* no GPL-only helper is called */
	union bpf_attr attr;
	char *log;
	int fd, err;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (__u64)(uintptr_t)insns;
	attr.insn_cnt = (__u32)(len / sizeof(struct bpf_insn));
	attr.license = (__u64)(uintptr_t)license;
	memcpy(attr.prog_name, "tsrun_devices", sizeof("tsrun_devices"));
	fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd >= 0)
		return fd;
	err = errno;
	/* Load once more with the verifier's log, for the error message. */
	log = calloc(1, LOG_SIZE);
	if (!log)
		fail(err, "device filter: load the device program");
	attr.log_level = 1;
	attr.log_buf = (__u64)(uintptr_t)log;
	attr.log_size = LOG_SIZE;
	fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd >= 0) {
		free(log);
		return fd;
	}
	for (char *p = log; *p; p++)
		if (*p == '\n')
			*p = ' ';
	{
		size_t l = strlen(log);
		while (l > 0 && log[l - 1] == ' ')
			log[--l] = 0;
		/* The end of the log says why. */
		fail(err, "device filter: load the device program (%u instructions)%s%s%s", attr.insn_cnt,
		     l ? ": verifier: " : "", l > 600 ? "..." : "", l > 600 ? log + l - 600 : log);
	}
}

static int open_cgroup(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fail(errno, "device filter: open %s", dir);
	return fd;
}

_Noreturn void device_filter_main(int argc, char **argv)
{
	const char *dir;
	unsigned char *prog;
	size_t len;
	__u32 *old, n_old, old_flags;
	union bpf_attr attr;
	int cgfd, progfd;
	bool multi;

	if (argc != 3) {
		fprintf(stderr, "usage: tsrun-helper --device-filter CGROUP_DIR < PROGRAM\n"
				"       tsrun-helper --device-filter-count CGROUP_DIR\n");
		exit(2);
	}
	dir = argv[2];
	cgfd = open_cgroup(dir);
	if (strcmp(argv[1], "--device-filter-count") == 0) {
		old = query(cgfd, dir, &n_old, &old_flags);
		printf("%u\n", n_old);
		exit(0);
	}

	prog = read_stdin(&len);
	if (len == 0 || len % sizeof(struct bpf_insn) != 0)
		fail(0, "device filter: the program is %zu bytes, not a whole number of instructions", len);
	progfd = load(prog, len);
	old = query(cgfd, dir, &n_old, &old_flags);

	/* Attached without BPF_F_ALLOW_MULTI (by another tool): attaching the same way replaces it. */
	multi = n_old == 0 || (old_flags & BPF_F_ALLOW_MULTI);
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (__u32)cgfd;
	attr.attach_bpf_fd = (__u32)progfd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = multi ? BPF_F_ALLOW_MULTI : 0;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
		fail(errno, "device filter: attach the device program to %s", dir);
	if (!multi)
		exit(0);

	for (__u32 i = 0; i < n_old; i++) {
		int fd;
		memset(&attr, 0, sizeof(attr));
		attr.prog_id = old[i];
		fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* detached meanwhile */
			fail(errno, "device filter: get the old device program %u of %s", old[i], dir);
		}
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = (__u32)cgfd;
		attr.attach_bpf_fd = (__u32)fd;
		attr.attach_type = BPF_CGROUP_DEVICE;
		if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
			fail(errno, "device filter: detach the old device program %u from %s", old[i], dir);
		close(fd);
	}
	exit(0);
}
