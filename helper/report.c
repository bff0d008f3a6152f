/* Events to TypeScript and fatal errors (docs/boundary.md, FromHelper).
 *
 * Every event is one frame written with one write(2). In the parent they go to the sync socket;
 * in the container process before it is ready they go to the parent over an internal socket,
 * and the parent passes them on, so that exactly one side decides how the helper ends. The
 * helper words nothing: a Failure carries a code, an errno, the stage, a path and a number, and
 * TypeScript (src/boundary/wording.ts) makes the sentence. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int g_report_fd = -1;
bool g_debug;
pid_t g_kill_on_die;
void (*g_die_hook)(void);
const char *g_unlink_on_die[2];
uint64_t g_t0_ns;
static Tsrun__Stage g_stage = STAGE(PLAN);
/* What each of those files was when made: a failed create must not remove a file of the same
 * name that a later create made there (its state dir removed and the id taken again). */
static struct statx g_unlink_on_die_st[2];

/* The inode number alone does not tell: ext4 gives a new file the inode just freed. */
static bool same_file(const struct statx *a, const struct statx *b)
{
	return a->stx_dev_major == b->stx_dev_major && a->stx_dev_minor == b->stx_dev_minor && a->stx_ino == b->stx_ino &&
	       a->stx_btime.tv_sec == b->stx_btime.tv_sec && a->stx_btime.tv_nsec == b->stx_btime.tv_nsec;
}

void unlink_on_die_keep(size_t i, const char *path, int fd)
{
	if (statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &g_unlink_on_die_st[i]) < 0)
		die(ERR(STATX), errno, path, 0);
	g_unlink_on_die[i] = path;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void set_stage(Tsrun__Stage stage)
{
	g_stage = stage;
}

/* After Ready (create: the sync socket is closed, `tsrun start` has come and gone) nobody reads
 * frames: a failure then (a failed execve, a filter the kernel refused) goes to the container's
 * stderr as the names of its code and errno, the one place the helper writes for people. */
static void write_orphan_failure(const Tsrun__Failure *f)
{
	const ProtobufCEnumValue *code = protobuf_c_enum_descriptor_get_value(&tsrun__error_code__descriptor, f->code);
	const char *en = f->errnum ? strerrorname_np(f->errnum) : NULL;
	dprintf(2, "tsrun-helper: the container process could not start: %s%s%s%s%s\n", code ? code->name : "ERROR",
		f->path[0] ? " " : "", f->path, en ? ": " : "", en ? en : "");
}

void send_event(const Tsrun__FromHelper *ev)
{
	if (g_report_fd < 0) {
		if (ev->event_case == TSRUN__FROM_HELPER__EVENT_FAILURE)
			write_orphan_failure(ev->failure);
		return;
	}
	frame_write(g_report_fd, ev); /* nothing to do if it fails: TypeScript is gone */
}

void progress(const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	Tsrun__Progress p = TSRUN__PROGRESS__INIT;
	Tsrun__FromHelper ev = TSRUN__FROM_HELPER__INIT;

	if (!g_debug)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	p.ms = (double)(now_ns() - g_t0_ns) / 1e6;
	p.text = text;
	ev.event_case = TSRUN__FROM_HELPER__EVENT_PROGRESS;
	ev.progress = &p;
	send_event(&ev);
}

void warn_event(Tsrun__WarningCode code, const char *subject, int64_t value)
{
	Tsrun__Warning w = TSRUN__WARNING__INIT;
	Tsrun__FromHelper ev = TSRUN__FROM_HELPER__INIT;

	w.code = code;
	w.subject = (char *)(subject ? subject : "");
	w.value = value;
	ev.event_case = TSRUN__FROM_HELPER__EVENT_WARNING;
	ev.warning = &w;
	send_event(&ev);
}

void unlink_on_die_files(void)
{
	for (size_t i = 0; i < sizeof(g_unlink_on_die) / sizeof(g_unlink_on_die[0]); i++) {
		struct statx st;
		if (g_unlink_on_die[i] &&
		    statx(AT_FDCWD, g_unlink_on_die[i], AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_BTIME, &st) == 0 &&
		    same_file(&st, &g_unlink_on_die_st[i]))
			unlink(g_unlink_on_die[i]);
		g_unlink_on_die[i] = NULL;
	}
}

static _Noreturn void finish_fatal(void)
{
	if (g_kill_on_die > 0) {
		kill(g_kill_on_die, SIGKILL);
		while (waitpid(g_kill_on_die, NULL, 0) < 0 && errno == EINTR)
			;
		g_kill_on_die = 0;
	}
	unlink_on_die_files();
	if (g_die_hook)
		g_die_hook();
	_exit(1);
}

void send_failure(Tsrun__ErrorCode code, int errnum, const char *path, int64_t value, const char *detail)
{
	Tsrun__Failure f = TSRUN__FAILURE__INIT;
	Tsrun__FromHelper ev = TSRUN__FROM_HELPER__INIT;

	f.code = code;
	f.errnum = errnum;
	f.stage = g_stage;
	f.path = (char *)(path ? path : "");
	f.value = value;
	f.detail = (char *)(detail ? detail : "");
	ev.event_case = TSRUN__FROM_HELPER__EVENT_FAILURE;
	ev.failure = &f;
	send_event(&ev);
}

void die_detail(Tsrun__ErrorCode code, int errnum, const char *path, int64_t value, const char *detail)
{
	send_failure(code, errnum, path, value, detail);
	finish_fatal();
}

void die(Tsrun__ErrorCode code, int errnum, const char *path, int64_t value)
{
	die_detail(code, errnum, path, value, NULL);
}
