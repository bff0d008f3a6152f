/* HOME for a process whose environment has none (PROCESS_HOME_FROM_PASSWD): the home directory
 * of its uid in the container's /etc/passwd, "/" when there is no entry, as runc sets it. Read
 * in the container (after pivot_root, or after joining its mount namespace), before the user
 * switch, so a passwd file only root may read still counts. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PASSWD_MAX (16u << 20) /* a larger /etc/passwd is read no further */

/* The home field of the first line whose uid field is exactly `uid`; NULL if none. The file is
 * the container's: only a regular file is read (a fifo or a device would block or never end). */
static char *home_of(uid_t uid)
{
	struct stat st;
	char *home = NULL, line[8192];
	size_t total = 0;
	FILE *f;
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "r"))) {
		close(fd);
		return NULL;
	}
	while (!home && total < PASSWD_MAX && fgets(line, sizeof(line), f)) {
		char *field[7], *s = line, *end;
		size_t n = 0, len = strlen(line);
		unsigned long v;

		total += len;
		if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
			/* an overlong line: skip the rest of it */
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				total++;
			continue;
		}
		line[strcspn(line, "\n")] = '\0';
		while (n < 7) {
			field[n++] = s;
			s = strchr(s, ':');
			if (!s)
				break;
			*s++ = '\0';
		}
		if (n < 6 || !*field[2] || strspn(field[2], "0123456789") != strlen(field[2]))
			continue;
		errno = 0;
		v = strtoul(field[2], &end, 10);
		if (errno || v != (unsigned long)uid)
			continue;
		home = strdup(field[5]);
		if (!home)
			abort();
	}
	fclose(f);
	return home;
}

void process_home(struct plan *p)
{
	size_t at = p->n_env;
	char *home, *kv;

	if (!(p->proc_flags & PROCESS_HOME_FROM_PASSWD))
		return;
	for (size_t i = 0; i < p->n_env; i++) {
		if (strncmp(p->env[i], "HOME=", 5) != 0)
			continue;
		if (p->env[i][5] != '\0')
			return; /* TypeScript asks only when there is none; a non-empty one is kept */
		at = i;
		break;
	}
	home = home_of((uid_t)p->uid);
	if (asprintf(&kv, "HOME=%s", home ? home : "/") < 0)
		abort();
	free(home);
	if (at == p->n_env) {
		const char **env = realloc(p->env, (p->n_env + 2) * sizeof(*env));
		if (!env)
			abort();
		env[p->n_env++] = kv;
		env[p->n_env] = NULL;
		p->env = env;
	} else {
		p->env[at] = kv;
	}
}
