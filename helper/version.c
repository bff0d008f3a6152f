/* `tsrun-helper --libseccomp-version`: the libseccomp this helper applies filters with, one
 * line "MAJOR.MINOR.MICRO", for `tsrun --version` (runc prints the same line). */
#include "helper.h"

#include <seccomp.h>
#include <stdio.h>

int print_libseccomp_version(void)
{
	const struct scmp_version *v = seccomp_version();
	if (!v || printf("%u.%u.%u\n", v->major, v->minor, v->micro) < 0 || fflush(stdout) != 0)
		return 1;
	return 0;
}
