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

/* Parent, before the clone: the listener path is a host path. */
void filter_connect_listener(const Tsrun__Seccomp *s)
{
	bool notify;
	if (!s)
		return;
	notify = s->default_action == SCMP_ACT_NOTIFY;
	for (size_t i = 0; i < s->n_rules && !notify; i++)
		notify = s->rules[i]->action == SCMP_ACT_NOTIFY && s->rules[i]->n_names > 0;
	if (!notify)
		return;
	if (!s->listener_path[0])
		die(ERR(SECCOMP_NO_LISTENER), 0, NULL, 0);
	listener_fd = console_connect(s->listener_path);
	if (listener_fd < 0)
		die(ERR(SECCOMP_LISTENER_CONNECT), errno, s->listener_path, 0);
}

static void add_rule(const char *name, const Tsrun__SeccompRule *r)
{
	struct scmp_arg_cmp args[6];
	int nr = seccomp_syscall_resolve_name(name);
	bool same_index = false;
	int rc;

	if (nr == __NR_SCMP_ERROR) {
		warn_event(WARN(SECCOMP_UNKNOWN_SYSCALL), name, 0);
		return;
	}
	if (r->n_args > 6)
		die(ERR(SECCOMP_TOO_MANY_ARGS), 0, name, (int64_t)r->n_args);
	for (size_t i = 0; i < r->n_args; i++) {
		args[i].arg = r->args[i]->index;
		args[i].op = (enum scmp_compare)r->args[i]->op;
		args[i].datum_a = r->args[i]->value;
		args[i].datum_b = r->args[i]->value_two;
		for (size_t j = 0; j < i; j++)
			if (r->args[j]->index == r->args[i]->index)
				same_index = true;
	}
	if (same_index) {
		/* libseccomp cannot AND two conditions on one argument: one rule each (runc). */
		for (size_t i = 0; i < r->n_args; i++) {
			rc = seccomp_rule_add_array(ctx, r->action, nr, 1, &args[i]);
			if (rc < 0)
				die(ERR(SECCOMP_ADD_RULE), -rc, name, 0);
		}
		return;
	}
	rc = seccomp_rule_add_array(ctx, r->action, nr, (unsigned)r->n_args, args);
	if (rc < 0)
		die(ERR(SECCOMP_ADD_RULE), -rc, name, 0);
}

/* Compiles the filter; reports any problem while the sync socket is still there. */
void filter_prepare(const Tsrun__Seccomp *s)
{
	uint32_t def, unsupported;
	int rc;

	if (!s)
		return;
	set_stage(STAGE(SECCOMP_FILTER));
	def = s->default_action;
	ctx = seccomp_init(def);
	if (!ctx)
		die(ERR(SECCOMP_INIT), 0, NULL, def);
	/* no_new_privs is the plan's business (process.noNewPrivileges), not libseccomp's. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (rc < 0)
		die(ERR(SECCOMP_ATTRIBUTE), -rc, "no_new_privs", 0);
	for (size_t i = 0; i < s->n_architectures; i++) {
		rc = seccomp_arch_add(ctx, s->architectures[i]);
		if (rc < 0 && rc != -EEXIST)
			die(ERR(SECCOMP_ADD_ARCH), -rc, NULL, s->architectures[i]);
	}
	unsupported = s->flags & ~(FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV);
	if (unsupported)
		die(ERR(SECCOMP_FLAGS_UNSUPPORTED), 0, NULL, unsupported);
	if ((s->flags & FLAG_TSYNC) && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
		die(ERR(SECCOMP_ATTRIBUTE), -rc, "SECCOMP_FILTER_FLAG_TSYNC", 0);
	if ((s->flags & FLAG_LOG) && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1)) < 0)
		die(ERR(SECCOMP_ATTRIBUTE), -rc, "SECCOMP_FILTER_FLAG_LOG", 0);
	if ((s->flags & FLAG_SPEC_ALLOW) && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1)) < 0)
		die(ERR(SECCOMP_ATTRIBUTE), -rc, "SECCOMP_FILTER_FLAG_SPEC_ALLOW", 0);

	has_notify = def == SCMP_ACT_NOTIFY;
	for (size_t i = 0; i < s->n_rules; i++) {
		const Tsrun__SeccompRule *r = s->rules[i];
		/* libseccomp refuses a rule whose action is the default one; it changes nothing. */
		if (r->action == def)
			continue;
		if (r->action == SCMP_ACT_NOTIFY && r->n_names > 0)
			has_notify = true;
		for (size_t j = 0; j < r->n_names; j++)
			add_rule(r->names[j], r);
	}
	if (has_notify && listener_fd < 0)
		die(ERR(SECCOMP_NO_LISTENER), 0, NULL, 0);
	/* libseccomp 2.5 cannot set WAIT_KILLABLE_RECV: such a filter is exported as BPF and
	 * loaded with seccomp(2) directly. As libseccomp 2.6 does, the flag only goes with a
	 * listener (the kernel refuses it without NEW_LISTENER). */
	if ((s->flags & FLAG_WAIT_KILLABLE_RECV) && has_notify) {
		raw_flags = s->flags & (FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_WAIT_KILLABLE_RECV);
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
		die(ERR(SECCOMP_EXPORT), errno, NULL, 0);
	rc = seccomp_export_bpf(ctx, mfd);
	if (rc < 0)
		die(ERR(SECCOMP_EXPORT), -rc, NULL, 0);
	if (fstat(mfd, &st) < 0)
		die(ERR(SECCOMP_EXPORT), errno, NULL, 0);
	if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
	    st.st_size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
		die(ERR(SECCOMP_EXPORT), 0, NULL, (int64_t)st.st_size);
	buf = malloc((size_t)st.st_size);
	if (!buf)
		abort();
	if (pread(mfd, buf, (size_t)st.st_size, 0) != st.st_size)
		die(ERR(SECCOMP_EXPORT), errno, NULL, 0);
	close(mfd);
	prog.len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
	prog.filter = (struct sock_filter *)buf;
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, raw_flags, &prog);
	if (fd < 0)
		die(ERR(SECCOMP_LOAD), errno, NULL, raw_flags);
	free(buf);
	return (int)fd;
}

void filter_load(const Tsrun__Seccomp *s, pid_t host_pid)
{
	int rc, raw_fd = -1;

	if (!ctx)
		return;
	set_stage(STAGE(SECCOMP_FILTER));
	if (raw_flags) {
		raw_fd = raw_load();
	} else {
		rc = seccomp_load(ctx);
		if (rc < 0)
			die(ERR(SECCOMP_LOAD), -rc, NULL, 0);
	}
	if (has_notify) {
		int fd = raw_fd >= 0 ? raw_fd : seccomp_notify_fd(ctx);
		char *state;
		if (fd < 0)
			die(ERR(SECCOMP_LISTENER_FD), -fd, NULL, 0);
		state = render_pid_token(s->listener_state, host_pid);
		if (send_fd(listener_fd, fd, state) < 0)
			die(ERR(SECCOMP_LISTENER_SEND), errno, s->listener_path, 0);
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
