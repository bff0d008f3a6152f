/* Test program: makes each system call whose number is given (decimal or 0x..., all arguments
 * -1) and prints "NUMBER=RESULT" for each, RESULT being "ok" or the errno's name (ENOSYS,
 * EPERM, ...). "i386:NUMBER" makes the call through the 32-bit entry (int $0x80), which seccomp
 * sees as architecture x86. Built static by tests/helper/seccomp.test.ts. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long call32(long nr)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(-1L), "c"(-1L), "d"(-1L), "S"(-1L), "D"(-1L) : "memory");
	return ret;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool i386 = strncmp(a, "i386:", 5) == 0;
		long nr = strtol(i386 ? a + 5 : a, NULL, 0);
		long ret;
		int err = 0;
		if (i386) {
			ret = call32(nr);
			if (ret < 0 && ret > -4096)
				err = (int)-ret;
		} else {
			errno = 0;
			ret = syscall(nr, -1L, -1L, -1L, -1L, -1L, -1L);
			if (ret < 0)
				err = errno;
		}
		const char *name = err ? strerrorname_np(err) : "ok";
		printf("%s%s=%s", i > 1 ? " " : "", a, name ? name : "?");
	}
	printf("\n");
	return 0;
}
