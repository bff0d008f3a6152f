/* Test program: mkdir(argv[1]) through the 32-bit system call entry (int $0x80) of an x86_64
 * process, which seccomp sees as architecture x86. Prints the raw result (0 or -errno).
 * Built static and non-PIE by tests/helper/seccomp.test.ts so that its buffer lies below 4 GiB. */
#include <stdio.h>
#include <string.h>

static char path[256];

int main(int argc, char **argv)
{
	long ret;
	strncpy(path, argc > 1 ? argv[1] : "/tmp/int80", sizeof(path) - 1);
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(39L /* i386 mkdir */), "b"(path), "c"(0755L) : "memory");
	printf("%ld\n", ret);
	return 0;
}
