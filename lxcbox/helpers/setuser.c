/* lxcbox-setuser UID GID CMD [ARG...]
 *
 * Drops to UID:GID (no supplementary groups) and execs CMD, searching $PATH.  Bind-mounted
 * read-only into a container for `run -u`: LXC's own lxc.init.uid switches user before its
 * init starts, and that init then fails, so lxcbox switches right before the command instead.
 * Static, so it needs nothing from the image.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s UID GID CMD [ARG...]\n", argv[0]);
		return 125;
	}
	uid_t uid = (uid_t)strtoul(argv[1], NULL, 10);
	gid_t gid = (gid_t)strtoul(argv[2], NULL, 10);
	if (setgroups(0, NULL) || setgid(gid) || setuid(uid)) {
		fprintf(stderr, "lxcbox: cannot switch to %u:%u: %s\n", uid, gid, strerror(errno));
		return 125;
	}
	execvp(argv[3], argv + 3);
	fprintf(stderr, "lxcbox: exec %s: %s\n", argv[3], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
