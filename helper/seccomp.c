/*
 * seccomp. libseccomp compiles the rules before "ready" (so a bad rule is an error TypeScript
 * reports); the program it generates is exported, the ENOSYS stub (below) put in front of it, and
 * the result loaded later with one seccomp(2) call: right before execve when the process has
 * no_new_privs, otherwise (loading then needs CAP_SYS_ADMIN) at the end of the process set-up,
 * after everything that can fail or needs syscalls a profile may forbid, with only the final
 * capset left between the two (process.c, main.c). With a NOTIFY action the listener fd is sent
 * over the listener socket (connected by the parent, on the host, before the clone) with the
 * pre-rendered state payload.
 */
#include "helper.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
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

static int listener_fd = -1;
static bool has_notify;
static bool prepared;
static uint32_t load_flags;   /* SECCOMP_FILTER_FLAG_* for seccomp(2) */
static struct sock_fprog prog; /* the stub and libseccomp's program, ready to load */

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

static void add_rule(scmp_filter_ctx ctx, const char *name, const Tsrun__SeccompRule *r)
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

/*
 * The ENOSYS stub (runc's patchbpf rule, measured against runc 1.1.5 here). libseccomp gives
 * every syscall without a rule the default action, also the ones newer than the profile: with
 * SCMP_ACT_ERRNO(EPERM) a program cannot tell "forbidden" from "this kernel does not have it",
 * and glibc falls back to the older call (clone3 -> clone, faccessat2 -> faccessat,
 * close_range -> close) only on ENOSYS. So, per architecture, a syscall whose number is above
 * the largest one the profile names (in any rule, with any action) gets ENOSYS:
 *   - only when the default action denies: not for ALLOW, LOG or TRACE (a tracer handles new
 *     syscalls itself), and not for ERRNO(ENOSYS), which already says it;
 *   - for every architecture the profile lists, and for the native one, which libseccomp
 *     always filters (runc 1.1.5 forgets it when the profile does not list it; later runc adds
 *     it, as here); x32 calls (bit 30 set on x86_64) are compared with x32's own largest;
 *     s390(x)'s syscall 0 is where the kernel leaves a number it does not know: also ENOSYS;
 *   - clone3 is no special case, as in runc: a profile that names a newer syscall (the
 *     runtime-tools profile names landlock_*, 444-446) but not clone3 (435) keeps its
 *     default action for clone3. Profiles that care name it (Docker's: ERRNO(ENOSYS)).
 * Prepending a stub to libseccomp's program is exact for every number with a few instructions;
 * explicit ENOSYS rules for each unknown number (computed in TypeScript) would need one rule
 * per number up to an arbitrary bound, for every architecture, and would still miss the rest.
 */
#define X32_SYSCALL_BIT 0x40000000u
#define STUB_MAX 512
#define STUB_ARCHES 32 /* distinct AUDIT_ARCH_* values; libseccomp knows fewer */
#define RET_ENOSYS (SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA))

struct stub_arch {
	uint32_t audit;         /* AUDIT_ARCH_* as seccomp_data.arch has it */
	int64_t max[2];         /* largest named syscall: [0] native mode, [1] x32 (x86_64 only); -1 none */
};

static bool stub_wanted(const Tsrun__Seccomp *s)
{
	uint32_t a = s->default_action;
	if (a == SCMP_ACT_ALLOW || a == SCMP_ACT_LOG || a == SCMP_ACT_ERRNO(ENOSYS))
		return false;
	return (a & 0xffff0000u) != SCMP_ACT_TRACE(0);
}

static void stub_note_arch(struct stub_arch *a, size_t *n, uint32_t token, const Tsrun__Seccomp *s)
{
	/* SCMP_ARCH_X32 is libseccomp's own token; the kernel reports x32 calls as x86_64 ones
	 * with bit 30 of the number set (libseccomp's x32 numbers include the bit). */
	uint32_t audit = token == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : token;
	int mode = token == SCMP_ARCH_X32 ? 1 : 0;
	size_t i;
	int64_t max = -1;

	for (size_t r = 0; r < s->n_rules; r++)
		for (size_t j = 0; j < s->rules[r]->n_names; j++) {
			int nr = seccomp_syscall_resolve_name_arch(token, s->rules[r]->names[j]);
			if (nr >= 0 && nr > max) /* negative: unknown, or a pseudo number on this arch */
				max = nr;
		}
	for (i = 0; i < *n && a[i].audit != audit; i++)
		;
	if (i == STUB_ARCHES)
		die(ERR(SECCOMP_STUB_TOO_BIG), 0, NULL, STUB_ARCHES);
	if (i == *n) {
		a[i].audit = audit;
		a[i].max[0] = a[i].max[1] = -1;
		(*n)++;
	}
	if (max > a[i].max[mode])
		a[i].max[mode] = max;
}

struct stub {
	struct sock_filter insn[STUB_MAX];
	size_t n;
	size_t to_filter[STUB_MAX]; /* JA instructions whose target is the start of the filter */
	size_t n_to_filter;
};

static void emit(struct stub *s, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	if (s->n == STUB_MAX)
		die(ERR(SECCOMP_STUB_TOO_BIG), 0, NULL, STUB_MAX);
	s->insn[s->n++] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
}

static void emit_ja_filter(struct stub *s)
{
	s->to_filter[s->n_to_filter++] = s->n;
	emit(s, BPF_JMP | BPF_JA, 0, 0, 0);
}

/* Three instructions: above max -> ENOSYS, else on to libseccomp's program; one when the mode
 * has no named syscall. */
static void emit_mode(struct stub *s, int64_t max)
{
	if (max >= 0) {
		emit(s, BPF_JMP | BPF_JGT | BPF_K, (uint32_t)max, 0, 1);
		emit(s, BPF_RET | BPF_K, RET_ENOSYS, 0, 0);
	}
	emit_ja_filter(s);
}

/* size of emit_mode(max) */
static uint8_t mode_len(int64_t max)
{
	return max >= 0 ? 3 : 1;
}

static void build_stub(const Tsrun__Seccomp *sc, struct stub *s)
{
	struct stub_arch arch[STUB_ARCHES];
	size_t n = 0, section[STUB_ARCHES];

	s->n = s->n_to_filter = 0;
	stub_note_arch(arch, &n, seccomp_arch_native(), sc);
	for (size_t i = 0; i < sc->n_architectures; i++)
		stub_note_arch(arch, &n, sc->architectures[i], sc);

	/* dispatch on the architecture: JEQ arch, JA its section */
	emit(s, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
	for (size_t i = 0; i < n; i++) {
		emit(s, BPF_JMP | BPF_JEQ | BPF_K, arch[i].audit, 0, 1);
		emit(s, BPF_JMP | BPF_JA, 0, 0, 0); /* target set below */
	}
	emit_ja_filter(s); /* an architecture the stub does not know: libseccomp's program decides */
	for (size_t i = 0; i < n; i++) {
		section[i] = s->n;
		emit(s, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
		if (arch[i].audit == SCMP_ARCH_S390 || arch[i].audit == SCMP_ARCH_S390X) {
			emit(s, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
			emit(s, BPF_RET | BPF_K, RET_ENOSYS, 0, 0);
		}
		if (arch[i].audit == SCMP_ARCH_X86_64) {
			emit(s, BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT, mode_len(arch[i].max[0]), 0);
			emit_mode(s, arch[i].max[0]);
			emit_mode(s, arch[i].max[1]);
		} else {
			emit_mode(s, arch[i].max[0]);
		}
	}
	for (size_t i = 0; i < n; i++)
		s->insn[2 + 2 * i].k = (uint32_t)(section[i] - (2 + 2 * i) - 1);
	for (size_t i = 0; i < s->n_to_filter; i++)
		s->insn[s->to_filter[i]].k = (uint32_t)(s->n - s->to_filter[i] - 1);
}

/* libseccomp's program, exported through a memfd (it writes the BPF to a file descriptor). */
static struct sock_filter *export_program(scmp_filter_ctx ctx, size_t *len)
{
	struct stat st;
	struct sock_filter *buf;
	int mfd, rc;

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
		die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, (int64_t)st.st_size);
	if (pread(mfd, buf, (size_t)st.st_size, 0) != st.st_size)
		die(ERR(SECCOMP_EXPORT), errno, NULL, 0);
	close(mfd);
	*len = (size_t)st.st_size / sizeof(struct sock_filter);
	return buf;
}

/* Compiles the filter to the program filter_load() loads; reports any problem while the sync
 * socket is still there. */
void filter_prepare(const Tsrun__Seccomp *s)
{
	scmp_filter_ctx ctx;
	struct stub stub;
	struct sock_filter *body;
	size_t body_len;
	uint32_t def, unsupported;
	int rc;

	if (!s)
		return;
	set_stage(STAGE(SECCOMP_FILTER));
	def = s->default_action;
	ctx = seccomp_init(def);
	if (!ctx)
		die(ERR(SECCOMP_INIT), 0, NULL, def);
	for (size_t i = 0; i < s->n_architectures; i++) {
		rc = seccomp_arch_add(ctx, s->architectures[i]);
		if (rc < 0 && rc != -EEXIST)
			die(ERR(SECCOMP_ADD_ARCH), -rc, NULL, s->architectures[i]);
	}
	unsupported = s->flags & ~(FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV);
	if (unsupported)
		die(ERR(SECCOMP_FLAGS_UNSUPPORTED), 0, NULL, unsupported);
	/* The program is loaded with seccomp(2) below, not by libseccomp: these attributes only
	 * make libseccomp check, now, that the kernel knows the flags. */
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
			add_rule(ctx, r->names[j], r);
	}
	if (has_notify && listener_fd < 0)
		die(ERR(SECCOMP_NO_LISTENER), 0, NULL, 0);

	load_flags = s->flags & (FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW);
	if (has_notify) {
		load_flags |= FLAG_NEW_LISTENER;
		/* As libseccomp 2.6 does, WAIT_KILLABLE_RECV only goes with a listener (the kernel
		 * refuses it without NEW_LISTENER); TSYNC with a listener needs TSYNC_ESRCH. */
		load_flags |= s->flags & FLAG_WAIT_KILLABLE_RECV;
		if (load_flags & FLAG_TSYNC)
			load_flags |= FLAG_TSYNC_ESRCH;
	}

	body = export_program(ctx, &body_len);
	seccomp_release(ctx);
	stub.n = 0;
	if (stub_wanted(s))
		build_stub(s, &stub);
	if (stub.n + body_len > BPF_MAXINSNS)
		die(ERR(SECCOMP_TOO_LONG), 0, NULL, (int64_t)(stub.n + body_len));
	prog.len = (unsigned short)(stub.n + body_len);
	prog.filter = malloc(prog.len * sizeof(struct sock_filter));
	if (!prog.filter)
		die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, 0);
	memcpy(prog.filter, stub.insn, stub.n * sizeof(struct sock_filter));
	memcpy(prog.filter + stub.n, body, body_len * sizeof(struct sock_filter));
	free(body);
	prepared = true;
}

/* One seccomp(2) call, then (NOTIFY) the listener fd to the listener socket: nothing of this
 * allocates memory or needs another syscall (the state payload is rendered first). */
void filter_load(const Tsrun__Seccomp *s, pid_t host_pid)
{
	char *state = NULL;
	long fd;

	if (!prepared)
		return;
	prepared = false;
	set_stage(STAGE(SECCOMP_FILTER));
	if (has_notify)
		state = render_pid_token(s->listener_state, host_pid);
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, load_flags, &prog);
	if (fd < 0)
		die(ERR(SECCOMP_LOAD), errno, NULL, load_flags);
	if (has_notify) {
		if (send_fd(listener_fd, (int)fd, state) < 0)
			die(ERR(SECCOMP_LISTENER_SEND), errno, s->listener_path, 0);
		close((int)fd);
		close(listener_fd);
		listener_fd = -1;
	}
}

/* `tsrun-helper --libseccomp-version`: the libseccomp the helper runs with, for `tsrun features`. */
_Noreturn void libseccomp_version_main(void)
{
	const struct scmp_version *v = seccomp_version();
	if (!v || printf("%u.%u.%u\n", v->major, v->minor, v->micro) < 0 || fflush(stdout) != 0)
		exit(1);
	exit(0);
}
