/* The helper -> TypeScript line protocol (docs/architecture.md) and fatal error handling.
 *
 * Every line is written with one write(2). In the parent the lines go to the sync socket; in
 * the container process before it is ready they go to the parent over an internal socket,
 * and the parent relays them, so that exactly one side decides how the helper ends. */
#include "helper.h"

#include <ctype.h>
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
		die_errno("statx %s", path);
	g_unlink_on_die[i] = path;
}
uint64_t g_t0_ns;

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* strerror text as Go prints it: the same words, first letter lowercase. */
const char *errtext(int err)
{
	static char buf[128];
	const char *d = strerrordesc_np(err);
	if (!d) {
		snprintf(buf, sizeof(buf), "errno %d", err);
		return buf;
	}
	snprintf(buf, sizeof(buf), "%s", d);
	if (buf[0] && isupper((unsigned char)buf[0]) && !(buf[1] && isupper((unsigned char)buf[1])))
		buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

void report_raw(const char *line, size_t len)
{
	int fd = g_report_fd;
	if (fd < 0) {
		/* After "ready" (create: the sync socket is closed) errors can only go to stderr,
		 * without the protocol word. */
		const char *sp = memchr(line, ' ', len);
		if (!sp || (len >= 6 && memcmp(line, "debug ", 6) == 0))
			return;
		len -= (size_t)(sp + 1 - line);
		line = sp + 1;
		fd = 2;
	}
	while (len > 0) {
		ssize_t n = write(fd, line, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		line += n;
		len -= (size_t)n;
	}
}

static void vreport(const char *word, const char *suffix, const char *fmt, va_list ap)
{
	char buf[8192];
	int n = snprintf(buf, sizeof(buf), "%s ", word);
	if (n < 0)
		return;
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	size_t len = m < 0 ? (size_t)n : (size_t)n + (size_t)m;
	if (len > sizeof(buf) - 200)
		len = sizeof(buf) - 200;
	buf[len] = '\0';
	if (suffix) {
		int k = snprintf(buf + len, sizeof(buf) - len, ": %s", suffix);
		if (k > 0)
			len += (size_t)k;
	}
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[len++] = '\n';
	report_raw(buf, len);
}

void report_line(const char *word, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(word, NULL, fmt, ap);
	va_end(ap);
}

void warnx_line(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("warn", NULL, fmt, ap);
	va_end(ap);
}

void debug_stage(const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	if (!g_debug)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	report_line("debug", "%.3f %s", (double)(now_ns() - g_t0_ns) / 1e6, text);
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

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("error", NULL, fmt, ap);
	va_end(ap);
	finish_fatal();
}

void die_errnum(int err, const char *fmt, ...)
{
	va_list ap;
	char e[128];
	snprintf(e, sizeof(e), "%s", errtext(err));
	va_start(ap, fmt);
	vreport("error", e, fmt, ap);
	va_end(ap);
	finish_fatal();
}

void die_errno(const char *fmt, ...)
{
	va_list ap;
	char e[128];
	snprintf(e, sizeof(e), "%s", errtext(errno));
	va_start(ap, fmt);
	vreport("error", e, fmt, ap);
	va_end(ap);
	finish_fatal();
}
