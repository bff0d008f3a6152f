/* Small I/O helpers: full reads and writes, file writes, fd passing over unix sockets. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return -2;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes data to an existing file (procfs and cgroupfs files), one write(2). */
int write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	ssize_t n;
	do
		n = write(fd, data, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != len) {
		int e = n < 0 ? errno : EIO;
		close(fd);
		errno = e;
		return -1;
	}
	if (close(fd) < 0 && errno != EINTR)
		return -1;
	return 0;
}

void set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return;
	fcntl(fd, F_SETFD, on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC));
}

/* Sends one fd with a text payload (SCM_RIGHTS), as runc sends the console master. */
int send_fd(int sock, int fd, const char *payload)
{
	struct msghdr msg = {0};
	struct iovec iov;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct cmsghdr *cm;
	const char *data = payload && *payload ? payload : "\0";
	size_t dlen = payload && *payload ? strlen(payload) : 1;

	iov.iov_base = (void *)data;
	iov.iov_len = dlen;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	memset(&u, 0, sizeof(u));
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Receives one fd sent by send_fd; returns it (CLOEXEC) or -1. */
int recv_fd(int sock, char *payload, size_t plen)
{
	struct msghdr msg = {0};
	struct iovec iov;
	char dummy[256];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct cmsghdr *cm;
	ssize_t n;
	int fd = -1;

	iov.iov_base = payload ? payload : dummy;
	iov.iov_len = payload ? plen - 1 : sizeof(dummy);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (payload)
		payload[n] = '\0';
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	if (fd < 0)
		errno = n == 0 ? EPIPE : EBADMSG;
	return fd;
}

/* A NULL-terminated copy of a string list (argv and envp for execve); aborts on out of memory. */
char **null_terminated(char **items, size_t n)
{
	char **out = calloc(n + 1, sizeof(*out));
	if (!out)
		abort();
	if (n > 0)
		memcpy(out, items, n * sizeof(*out));
	return out;
}
