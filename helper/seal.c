/* CVE-2019-5736: a container process must not be able to overwrite the helper binary
 * through /proc/PID/exe while the helper runs inside the container's namespaces. The helper
 * re-executes itself from a sealed, unlinked memfd copy before it reads the plan; what the
 * container can reach through /proc/PID/exe is then that copy, which cannot be written. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEALED_ENV "_TSRUN_HELPER_SEALED"
#define WANT_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

static bool exe_is_sealed(void)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int seals;
	if (fd < 0)
		return false;
	seals = fcntl(fd, F_GET_SEALS);
	close(fd);
	return seals >= 0 && (seals & WANT_SEALS) == WANT_SEALS;
}

void ensure_sealed_exe(char **argv)
{
	const char *marker = getenv(SEALED_ENV);
	char t0[32];
	struct stat st;
	int src, mfd;
	off_t off = 0;

	if (marker) {
		/* Second run: the start time of the first run is carried over for debug timings. */
		g_t0_ns = strtoull(marker, NULL, 10);
		unsetenv(SEALED_ENV);
		if (!exe_is_sealed())
			die(ERR(SEAL_NOT_SEALED), 0, "/proc/self/exe", 0);
		return;
	}
	if (exe_is_sealed())
		return;

	src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (src < 0)
		die(ERR(SEAL), errno, "open /proc/self/exe", 0);
	if (fstat(src, &st) < 0)
		die(ERR(SEAL), errno, "stat /proc/self/exe", 0);
	mfd = memfd_create("tsrun-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		die(ERR(SEAL), errno, "memfd_create", 0);
	while (off < st.st_size) {
		ssize_t n = sendfile(mfd, src, &off, (size_t)(st.st_size - off));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die(ERR(SEAL), errno, "copy the helper into a memfd", 0);
		}
		if (n == 0)
			die(ERR(SEAL), EIO, "copy the helper into a memfd", 0);
	}
	close(src);
	if (fcntl(mfd, F_ADD_SEALS, WANT_SEALS) < 0)
		die(ERR(SEAL), errno, "seal the helper memfd", 0);
	snprintf(t0, sizeof(t0), "%llu", (unsigned long long)g_t0_ns);
	if (setenv(SEALED_ENV, t0, 1) < 0)
		die(ERR(SEAL), errno, "setenv", 0);
	/* The sync socket must survive this exec. */
	set_cloexec(g_report_fd, false);
	fexecve(mfd, argv, environ);
	die(ERR(SEAL), errno, "re-execute the helper from a sealed memfd", 0);
}
