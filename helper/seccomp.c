/*
 * seccomp through libseccomp. The rules are added before "ready" (so a bad rule is an
 * error TypeScript reports) and the filter is loaded as late as possible: right before execve when the
 * process has no_new_privs, otherwise before capabilities are dropped (loading then needs
 * CAP_SYS_ADMIN), as runc does. With a NOTIFY action the listener fd is sent over the
 * listener socket (connected by the parent, on the host, before the clone) with the
 * pre-rendered state payload.
 */
#include "helper.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLAG_TSYNC 1u
#define FLAG_LOG 2u
#define FLAG_SPEC_ALLOW 4u
#define FLAG_NEW_LISTENER 8u
#define FLAG_TSYNC_ESRCH 16u
#define FLAG_WAIT_KILLABLE_RECV 32u

static scmp_filter_ctx ctx;
static int listener_fd = -1;
static bool has_notify;
static uint32_t raw_flags; /* nonzero: load the exported BPF with seccomp(2) and these flags */

bool filter_wanted(const struct plan *p)
{
	return p->have_seccomp;
}

static uint32_t action_of(uint32_t code, uint32_t errno_ret)
{
	switch (code) {
	case SA_KILL:
	case SA_KILL_THREAD:
		return SCMP_ACT_KILL_THREAD;
	case SA_KILL_PROCESS:
		return SCMP_ACT_KILL_PROCESS;
	case SA_TRAP:
		return SCMP_ACT_TRAP;
	case SA_ERRNO:
		return SCMP_ACT_ERRNO(errno_ret);
	case SA_TRACE:
		return SCMP_ACT_TRACE(errno_ret);
	case SA_ALLOW:
		return SCMP_ACT_ALLOW;
	case SA_LOG:
		return SCMP_ACT_LOG;
	default:
		return SCMP_ACT_NOTIFY;
	}
}

static const enum scmp_compare OPS[] = {
	SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ,
};

/* Parent, before the clone: the listener path is a host path. */
void filter_connect_listener(const struct plan *p)
{
	bool notify = p->have_seccomp && p->scmp_default_action == SA_NOTIFY;
	if (!p->have_seccomp)
		return;
	for (size_t i = 0; i < p->n_scmp_rules && !notify; i++)
		notify = p->scmp_rules[i].action == SA_NOTIFY && p->scmp_rules[i].nnames > 0;
	if (!notify)
		return;
	if (!p->scmp_listener_path || !*p->scmp_listener_path)
		die("seccomp: a NOTIFY action needs a listener path");
	listener_fd = console_connect(p->scmp_listener_path);
	if (listener_fd < 0)
		die_errno("seccomp: connect to the listener %s", p->scmp_listener_path);
}

static void add_rule(uint32_t action, const char *name, const struct plan_scmp_rule *r)
{
	struct scmp_arg_cmp args[6];
	int nr = seccomp_syscall_resolve_name(name);
	bool same_index = false;
	int rc;

	if (nr == __NR_SCMP_ERROR) {
		warnx_line("seccomp: unknown syscall %s, skipped", name);
		return;
	}
	if (r->nargs > 6)
		die("seccomp: syscall %s: more than 6 argument conditions", name);
	for (uint32_t i = 0; i < r->nargs; i++) {
		args[i].arg = r->args[i].index;
		args[i].op = OPS[r->args[i].op];
		args[i].datum_a = r->args[i].value;
		args[i].datum_b = r->args[i].value_two;
		for (uint32_t j = 0; j < i; j++)
			if (r->args[j].index == r->args[i].index)
				same_index = true;
	}
	if (same_index) {
		/* libseccomp cannot AND two conditions on one argument: one rule each (runc). */
		for (uint32_t i = 0; i < r->nargs; i++) {
			rc = seccomp_rule_add_array(ctx, action, nr, 1, &args[i]);
			if (rc < 0)
				die_errnum(-rc, "seccomp: add rule for %s", name);
		}
		return;
	}
	rc = seccomp_rule_add_array(ctx, action, nr, r->nargs, args);
	if (rc < 0)
		die_errnum(-rc, "seccomp: add rule for %s", name);
}

/* Compiles the filter; reports any problem while the sync socket is still there. */
void filter_prepare(const struct plan *p)
{
	uint32_t def;
	int rc;

	if (!p->have_seccomp)
		return;
	def = action_of(p->scmp_default_action, p->scmp_default_errno);
	ctx = seccomp_init(def);
	if (!ctx)
		die("seccomp: cannot initialize the filter");
	/* no_new_privs is the plan's business (process.noNewPrivileges), not libseccomp's. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (rc < 0)
		die_errnum(-rc, "seccomp: clear the no_new_privs attribute");
	for (size_t i = 0; i < p->n_scmp_arches; i++) {
		uint32_t arch = seccomp_arch_resolve_name(p->scmp_arches[i]);
		if (arch == 0)
			die("seccomp: unknown architecture %s", p->scmp_arches[i]);
		rc = seccomp_arch_add(ctx, arch);
		if (rc < 0 && rc != -EEXIST)
			die_errnum(-rc, "seccomp: add architecture %s", p->scmp_arches[i]);
	}
	if (p->scmp_flags & ~(FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV))
		die("seccomp: filter flags 0x%x are not supported (libseccomp %u.%u.%u)",
		    p->scmp_flags & ~(FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV),
		    seccomp_version()->major, seccomp_version()->minor, seccomp_version()->micro);
	if ((p->scmp_flags & FLAG_TSYNC) && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
		die_errnum(-rc, "seccomp: flag SECCOMP_FILTER_FLAG_TSYNC");
	if ((p->scmp_flags & FLAG_LOG) && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1)) < 0)
		die_errnum(-rc, "seccomp: flag SECCOMP_FILTER_FLAG_LOG");
	if ((p->scmp_flags & FLAG_SPEC_ALLOW) && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1)) < 0)
		die_errnum(-rc, "seccomp: flag SECCOMP_FILTER_FLAG_SPEC_ALLOW");

	has_notify = p->scmp_default_action == SA_NOTIFY;
	for (size_t i = 0; i < p->n_scmp_rules; i++) {
		const struct plan_scmp_rule *r = &p->scmp_rules[i];
		uint32_t act = action_of(r->action, r->errno_ret);
		/* libseccomp refuses a rule whose action is the default one; it changes nothing. */
		if (act == def)
			continue;
		if (r->action == SA_NOTIFY && r->nnames > 0)
			has_notify = true;
		for (uint32_t j = 0; j < r->nnames; j++)
			add_rule(act, r->names[j], r);
	}
	if (has_notify && listener_fd < 0)
		die("seccomp: a NOTIFY action needs a listener path");
	/* libseccomp 2.5 cannot set WAIT_KILLABLE_RECV: such a filter is exported as BPF and
	 * loaded with seccomp(2) directly. As libseccomp 2.6 does, the flag only goes with a
	 * listener (the kernel refuses it without NEW_LISTENER). */
	if ((p->scmp_flags & FLAG_WAIT_KILLABLE_RECV) && has_notify) {
		raw_flags = p->scmp_flags & (FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_WAIT_KILLABLE_RECV);
		raw_flags |= FLAG_NEW_LISTENER;
		if (raw_flags & FLAG_TSYNC)
			raw_flags |= FLAG_TSYNC_ESRCH; /* the kernel's rule for TSYNC with a listener */
	}
	/* libseccomp 2.5 has no seccomp_precompute(): the BPF is generated by seccomp_load(). */
}

/* The compiled filter, exported through a memfd and loaded with seccomp(2); returns the
 * listener fd (raw_flags always has NEW_LISTENER). */
static int raw_load(void)
{
	struct sock_fprog prog;
	struct stat st;
	char *buf;
	int mfd, rc;
	long fd;

	mfd = memfd_create("tsrun-seccomp", MFD_CLOEXEC);
	if (mfd < 0)
		die_errno("seccomp: memfd_create");
	rc = seccomp_export_bpf(ctx, mfd);
	if (rc < 0)
		die_errnum(-rc, "seccomp: export the filter");
	if (fstat(mfd, &st) < 0)
		die_errno("seccomp: fstat the exported filter");
	if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
	    st.st_size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
		die("seccomp: exported filter has a bad size (%lld bytes)", (long long)st.st_size);
	buf = malloc((size_t)st.st_size);
	if (!buf)
		abort();
	if (pread(mfd, buf, (size_t)st.st_size, 0) != st.st_size)
		die_errno("seccomp: read the exported filter");
	close(mfd);
	prog.len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
	prog.filter = (struct sock_filter *)buf;
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, raw_flags, &prog);
	if (fd < 0)
		die_errno("seccomp: load the filter (flags 0x%x)", raw_flags);
	free(buf);
	return (int)fd;
}

void filter_load(const struct plan *p, pid_t host_pid)
{
	int rc, raw_fd = -1;

	if (!ctx)
		return;
	if (raw_flags) {
		raw_fd = raw_load();
	} else {
		rc = seccomp_load(ctx);
		if (rc < 0)
			die_errnum(-rc, "seccomp: load the filter");
	}
	if (has_notify) {
		int fd = raw_fd >= 0 ? raw_fd : seccomp_notify_fd(ctx);
		char *state;
		if (fd < 0)
			die_errnum(-fd, "seccomp: get the listener fd");
		state = render_pid_token(p->scmp_listener_state ? p->scmp_listener_state : "", host_pid);
		if (send_fd(listener_fd, fd, state) < 0)
			die_errno("seccomp: send the listener fd to %s", p->scmp_listener_path);
		free(state);
		close(fd);
		close(listener_fd);
		listener_fd = -1;
	}
	seccomp_release(ctx);
	ctx = NULL;
}

/* `tsrun-helper --libseccomp-version`: the libseccomp the helper runs with, for `tsrun features`. */
_Noreturn void libseccomp_version_main(void)
{
	const struct scmp_version *v = seccomp_version();
	if (!v || printf("%u.%u.%u\n", v->major, v->minor, v->micro) < 0 || fflush(stdout) != 0)
		exit(1);
	exit(0);
}
