/*
 * The cgroup v2 device controller (a DeviceFilterPlan): TypeScript builds the
 * BPF_PROG_TYPE_CGROUP_DEVICE program (src/linux/cgroups/device-program.ts); this loads it and
 * attaches it to the cgroup directory, then detaches the device programs that were attached to
 * that cgroup before. The new program is attached first (BPF_F_ALLOW_MULTI: both run for a
 * moment, and a device needs both to allow it), so a running container never goes without a
 * filter. A cgroup whose program was attached without BPF_F_ALLOW_MULTI gets it replaced in place.
 *
 * `tsrun-helper --device-filter-count CGROUP_DIR` (tests) prints how many device programs are
 * attached to CGROUP_DIR itself.
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

#define LOG_SIZE (1u << 20)

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

/* The ids of the device programs attached to the cgroup itself (not inherited ones). */
static __u32 *query(int cgfd, const char *dir, __u32 *count, __u32 *flags)
{
	__u32 cap = 64;

	for (;;) {
		union bpf_attr attr;
		__u32 *ids = calloc(cap, sizeof(*ids));
		if (!ids)
			die(ERR(OUT_OF_MEMORY), ENOMEM, dir, 0);
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
			die(ERR(DEVICE_FILTER_QUERY), errno, dir, 0);
		cap *= 4;
	}
}

static int load(const uint8_t *insns, size_t len, const char *license)
{
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
		die(ERR(DEVICE_FILTER_LOAD), err, NULL, attr.insn_cnt);
	attr.log_level = 1;
	attr.log_buf = (__u64)(uintptr_t)log;
	attr.log_size = LOG_SIZE;
	fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd >= 0) {
		free(log);
		return fd;
	}
	/* The end of the log says why. */
	{
		size_t l = strlen(log);
		die_detail(ERR(DEVICE_FILTER_LOAD), err, NULL, attr.insn_cnt, l > 600 ? log + l - 600 : log);
	}
}

static int open_cgroup(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die(ERR(DEVICE_FILTER_OPEN), errno, dir, 0);
	return fd;
}

/* Tests: how many device programs are attached to CGROUP_DIR itself. */
_Noreturn void device_filter_count_main(int argc, char **argv)
{
	__u32 *ids, n, flags;

	if (argc != 3) {
		fprintf(stderr, "usage: tsrun-helper --device-filter-count CGROUP_DIR\n");
		exit(2);
	}
	ids = query(open_cgroup(argv[2]), argv[2], &n, &flags);
	free(ids);
	printf("%u\n", n);
	exit(0);
}

_Noreturn void device_filter_main(const Tsrun__DeviceFilterPlan *d)
{
	const char *dir = d->cgroup_dir;
	__u32 *old, n_old, old_flags;
	union bpf_attr attr;
	int cgfd, progfd;
	bool multi;

	set_stage(STAGE(CGROUPS));
	cgfd = open_cgroup(dir);
	if (d->instructions.len == 0 || d->instructions.len % sizeof(struct bpf_insn) != 0)
		die(ERR(DEVICE_FILTER_BAD_PROGRAM), 0, NULL, (int64_t)d->instructions.len);
	progfd = load(d->instructions.data, d->instructions.len, d->license);
	old = query(cgfd, dir, &n_old, &old_flags);

	/* Attached without BPF_F_ALLOW_MULTI (by another tool): attaching the same way replaces it. */
	multi = n_old == 0 || (old_flags & BPF_F_ALLOW_MULTI);
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (__u32)cgfd;
	attr.attach_bpf_fd = (__u32)progfd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = multi ? BPF_F_ALLOW_MULTI : 0;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
		die(ERR(DEVICE_FILTER_ATTACH), errno, dir, 0);
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
			die(ERR(DEVICE_FILTER_GET_OLD), errno, dir, old[i]);
		}
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = (__u32)cgfd;
		attr.attach_bpf_fd = (__u32)fd;
		attr.attach_type = BPF_CGROUP_DEVICE;
		if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
			die(ERR(DEVICE_FILTER_DETACH_OLD), errno, dir, old[i]);
		close(fd);
	}
	exit(0);
}
