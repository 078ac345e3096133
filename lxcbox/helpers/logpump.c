/* lxcbox-logpump: the steady state of a container's monitor, in a few pages of memory.
 *
 * The Python monitor (lxcbox/containers/monitor.py) starts lxc-execute, writes the state and
 * does the setup that needs the started container; then, for a container that runs on, it
 * execs this program in the same process (same pid, lxc-execute stays its child), which only
 * copies the container's stdout and stderr into the json-file log (and to an attached client),
 * exactly as the Python LogWriter does (lxcbox/containers/logs.py), and watches the memory
 * cgroup's OOM events.  When both pipes are closed it execs the monitor's Python finisher
 * again (the given argv, plus two arguments: OOM-KILLED and LOST-COPIES), which reaps
 * lxc-execute and does the end of the container's life (state, restart policy, --rm).
 *
 * A Python monitor keeps about 2 MiB of private memory for its interpreter; this keeps a few
 * dozen KiB (docs/ARCHITECTURE.md, "Density").  It allocates nothing: static buffers only.
 *
 * Usage (every fd is inherited from the monitor; nothing else is open):
 *   lxcbox-logpump --stdout FD --stderr FD [--copy-stdout FD] [--copy-stderr FD]
 *                  [--log PATH --max-size BYTES --max-file N] [--drop-prefix TEXT]
 *                  [--partial-stdout HEX] [--partial-stderr HEX] [--oom EVENTFD,FILEFD]
 *                  (-- FINISHER [ARG...] | --replay FILE)
 * --replay FILE (tests): the chunks come from FILE, framed as "o|e LEN\n" + LEN bytes, instead of
 * the pipes; at its end the partial lines are flushed and the program exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE 65536  /* as the Python monitor's reads: a line's pieces depend on them */
#define CHUNK 16384      /* a line without a newline is logged in pieces of this size */

struct stream {
	const char *name;
	int fd;          /* the read end of the container's pipe, or -1 once closed */
	int copy;        /* the attached client's fd, or -1 */
	int lost;        /* the copy failed: the client went away */
	char partial[CHUNK];
	size_t plen;
};

static struct stream streams[2] = {{"stdout", -1, -1, 0, {0}, 0}, {"stderr", -1, -1, 0, {0}, 0}};
static const char *log_path;
static int log_fd = -1;
static long long log_size, max_size;
static int max_file = 1;
static const char *drop_prefix;
static size_t drop_len;
static int oom_efd = -1, oom_ofd = -1, oom_killed;

static char rbuf[READ_SIZE];
static char obuf[CHUNK];
static size_t olen;
static char stamp[96];

static void die(const char *what)
{
	char msg[256];
	int n = snprintf(msg, sizeof msg, "lxcbox-logpump: %s: %s\n", what, strerror(errno));
	if (write(2, msg, n) < 0) {
	}
	_exit(125);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* -- the json-file log, as logs.LogWriter writes it ------------------------------------------ */

static void open_log(void)
{
	struct stat st;

	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (log_fd < 0)
		die("cannot open the log");
	log_size = fstat(log_fd, &st) == 0 ? st.st_size : 0;
}

static void flush_out(void)
{
	if (olen && log_fd >= 0 && write_all(log_fd, obuf, olen) < 0) {
		/* a full disk: the bytes are lost, as the Python writer would lose them */
	}
	olen = 0;
}

static void put(const char *p, size_t n)
{
	while (n) {
		size_t room = sizeof obuf - olen, k = n < room ? n : room;
		memcpy(obuf + olen, p, k);
		olen += k;
		p += k;
		n -= k;
		if (olen == sizeof obuf)
			flush_out();
	}
}

static void rotate(void)
{
	char src[4096], dst[4096];

	close(log_fd);
	if (max_file <= 1) {
		if (truncate(log_path, 0) < 0) {
		}
	} else {
		for (int i = max_file - 1; i > 0; i--) {
			if (i == 1)
				snprintf(src, sizeof src, "%s", log_path);
			else
				snprintf(src, sizeof src, "%s.%d", log_path, i - 1);
			snprintf(dst, sizeof dst, "%s.%d", log_path, i);
			rename(src, dst); /* a missing one is skipped, as FileNotFoundError is */
		}
	}
	open_log();
}

static void take_stamp(void)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

/* The length of the valid UTF-8 sequence at p (n bytes left), or the negated length of the
 * maximal invalid subpart (Python's "replace" puts one U+FFFD for it). */
static int utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xBF;
	int need;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		need = 1;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
	} else
		return -1;
	for (int i = 1; i <= need; i++) {
		if ((size_t)i >= n)
			return -i;
		if (p[i] < lo || p[i] > hi)
			return -i;
		lo = 0x80;
		hi = 0xBF;
	}
	return need + 1;
}

/* the JSON string body of raw bytes: decoded as UTF-8 with replacement, then escaped as
 * fsutil.encode_json does (", \, \n, \t, \r, other controls as \u00XX; the rest as UTF-8) */
static size_t put_escaped(const char *data, size_t n)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t i = 0, start = 0, len = 0;
	char esc[8];

	while (i < n) {
		unsigned char c = p[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0x80) {
			int k = utf8_seq(p + i, n - i);
			if (k > 0) {
				i += (size_t)k;
				continue;
			}
			put(data + start, i - start);
			len += i - start;
			put("\xEF\xBF\xBD", 3);
			len += 3;
			i += (size_t)(-k);
			start = i;
			continue;
		}
		put(data + start, i - start);
		len += i - start;
		const char *e = esc;
		size_t el = 2;
		if (c == '"')
			e = "\\\"";
		else if (c == '\\')
			e = "\\\\";
		else if (c == '\n')
			e = "\\n";
		else if (c == '\t')
			e = "\\t";
		else if (c == '\r')
			e = "\\r";
		else
			el = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
		put(e, el);
		len += el;
		i++;
		start = i;
	}
	put(data + start, i - start);
	return len + i - start;
}

/* one record: the bytes a then b (a line may start in the partial buffer) */
static void record(struct stream *s, const char *a, size_t an, const char *b, size_t bn)
{
	static const char head[] = "{\"log\":\"", mid[] = "\",\"stream\":\"", tail1[] = "\",\"time\":\"",
			  tail2[] = "\"}\n";
	size_t n = sizeof head - 1 + sizeof mid - 1 + sizeof tail1 - 1 + sizeof tail2 - 1;

	if (!log_path)
		return;
	if (log_fd < 0)
		open_log(); /* at the first record, as the Python writer: a silent container has no log */
	put(head, sizeof head - 1);
	/* a piece is escaped on its own: a character split between the partial buffer and the new
	 * data would be two replacement characters, where Python decodes the joined bytes */
	if (an && bn && (unsigned char)a[an - 1] >= 0x80) {
		/* rare: re-join in obuf's stead through a bounded local copy */
		static char joined[CHUNK + READ_SIZE];
		memcpy(joined, a, an);
		memcpy(joined + an, b, bn);
		n += put_escaped(joined, an + bn);
	} else {
		n += put_escaped(a, an);
		n += put_escaped(b, bn);
	}
	put(mid, sizeof mid - 1);
	put(s->name, strlen(s->name));
	put(tail1, sizeof tail1 - 1);
	put(stamp, strlen(stamp));
	put(tail2, sizeof tail2 - 1);
	n += strlen(s->name) + strlen(stamp);
	log_size += (long long)n;
	if (max_size && log_size >= max_size) {
		flush_out();
		rotate();
	}
}

/* the bytes after the last newline (or all of them): pieces of CHUNK from the partial line on,
 * and what is left kept */
static void keep_rest(struct stream *s, const char *p, size_t n)
{
	while (s->plen + n >= CHUNK) {
		size_t k = CHUNK - s->plen;
		record(s, s->partial, s->plen, p, k);
		s->plen = 0;
		p += k;
		n -= k;
	}
	memcpy(s->partial + s->plen, p, n);
	s->plen += n;
}

/* logs.LogWriter.write: every complete line (the first one starting with the partial line kept
 * from before), then the rest */
static void log_chunk(struct stream *s, const char *data, size_t n)
{
	const char *last = memrchr(data, '\n', n);

	take_stamp();
	if (last) {
		const char *nl = memchr(data, '\n', n), *p = nl + 1;
		record(s, s->partial, s->plen, data, (size_t)(p - data));
		s->plen = 0;
		while (p <= last) {
			const char *e = memchr(p, '\n', (size_t)(last - p) + 1);
			record(s, p, (size_t)(e + 1 - p), "", 0);
			p = e + 1;
		}
		keep_rest(s, p, (size_t)(data + n - p));
	} else {
		keep_rest(s, data, n);
	}
	flush_out();
}

static void flush_partial(void)
{
	take_stamp();
	for (int i = 0; i < 2; i++) {
		if (streams[i].plen) {
			record(&streams[i], streams[i].partial, streams[i].plen, "", 0);
			streams[i].plen = 0;
		}
	}
	flush_out();
}

/* -- lxc-execute's own lines on stderr, dropped as Monitor._drop_lxc_lines does -------------- */

static size_t drop_lxc_lines(char *data, size_t n)
{
	size_t out = 0, i = 0;
	int first = 1;

	if (!drop_len || !memmem(data, n, drop_prefix, drop_len))
		return n;
	while (1) {
		char *e = memchr(data + i, '\n', n - i);
		size_t end = e ? (size_t)(e - data) : n, len = end - i;
		if (!(len >= drop_len && memcmp(data + i, drop_prefix, drop_len) == 0)) {
			if (!first)
				data[out++] = '\n';
			memmove(data + out, data + i, len);
			out += len;
			first = 0;
		}
		if (!e)
			break;
		i = end + 1;
	}
	return out;
}

/* -- the memory cgroup's OOM events, as Monitor._check_oom reads them ------------------------- */

static void check_oom(void)
{
	uint64_t events = 0;
	char buf[4096];
	ssize_t n;

	if (oom_ofd < 0)
		return;
	if (oom_efd != oom_ofd && read(oom_efd, &events, sizeof events) != (ssize_t)sizeof events)
		events = 0;
	n = pread(oom_ofd, buf, sizeof buf - 1, 0);
	if (n >= 0) {
		buf[n] = 0;
		long count = 0;
		for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
			if (strncmp(line, "oom_kill ", 9) == 0) {
				count = strtol(line + 9, NULL, 10);
				break;
			}
		}
		if (count > 0 || events > 0)
			oom_killed = 1;
	} else {
		/* the cgroup is gone, and its removal signals the eventfd too: two or more events
		 * mean an OOM came first */
		if (events >= 2)
			oom_killed = 1;
		oom_ofd = -1;
	}
}

/* -- the loop ------------------------------------------------------------------------------- */

static void handle(struct stream *s, char *data, size_t n)
{
	if (s == &streams[1])
		n = drop_lxc_lines(data, n);
	if (!n)
		return;
	log_chunk(s, data, n);
	if (s->copy >= 0 && write_all(s->copy, data, n) < 0) {
		s->lost = 1; /* the attached client went away: keep logging, stop copying */
		s->copy = -1;
	}
}

static void pump(void)
{
	struct pollfd pfd[3];

	while (streams[0].fd >= 0 || streams[1].fd >= 0) {
		int n = 0, oom_slot = -1;
		for (int i = 0; i < 2; i++) {
			pfd[n].fd = streams[i].fd;
			pfd[n].events = POLLIN;
			n++;
		}
		if (oom_ofd >= 0) {
			oom_slot = n;
			pfd[n].fd = oom_efd != oom_ofd ? oom_efd : oom_ofd;
			pfd[n].events = oom_efd != oom_ofd ? POLLIN : POLLPRI;
			n++;
		}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (oom_slot >= 0 && pfd[oom_slot].revents)
			check_oom();
		for (int i = 0; i < 2; i++) {
			struct stream *s = &streams[i];
			if (s->fd < 0 || !pfd[i].revents)
				continue;
			ssize_t r = read(s->fd, rbuf, sizeof rbuf);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				close(s->fd);
				s->fd = -1;
				continue;
			}
			handle(s, rbuf, (size_t)r);
			if (r > CHUNK)
				madvise(rbuf, sizeof rbuf, MADV_DONTNEED); /* a burst's pages go back */
		}
	}
	if (oom_ofd >= 0)
		check_oom(); /* an event that came with the end of the output */
}

static void replay(const char *path)
{
	FILE *f = fopen(path, "rb");
	char kind;
	size_t len;

	if (!f)
		die("cannot open the replay file");
	while (fscanf(f, "%c %zu", &kind, &len) == 2 && getc(f) == '\n') {
		if (len > sizeof rbuf || fread(rbuf, 1, len, f) != len)
			die("bad replay file");
		handle(&streams[kind == 'e'], rbuf, len);
	}
	fclose(f);
}

static int unhex(const char *hex, char *out, size_t room)
{
	size_t n = strlen(hex) / 2;
	if (n > room)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (char)v;
	}
	return (int)n;
}

int main(int argc, char **argv)
{
	const char *replay_path = NULL;
	char **finisher = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--")) {
			finisher = argv + i + 1;
			break;
		}
		if (!v)
			goto usage;
		i++;
		if (!strcmp(a, "--stdout"))
			streams[0].fd = atoi(v);
		else if (!strcmp(a, "--stderr"))
			streams[1].fd = atoi(v);
		else if (!strcmp(a, "--copy-stdout"))
			streams[0].copy = atoi(v);
		else if (!strcmp(a, "--copy-stderr"))
			streams[1].copy = atoi(v);
		else if (!strcmp(a, "--log"))
			log_path = v;
		else if (!strcmp(a, "--max-size"))
			max_size = atoll(v);
		else if (!strcmp(a, "--max-file"))
			max_file = atoi(v);
		else if (!strcmp(a, "--drop-prefix")) {
			drop_prefix = v;
			drop_len = strlen(v);
		} else if (!strcmp(a, "--partial-stdout") || !strcmp(a, "--partial-stderr")) {
			struct stream *s = &streams[!strcmp(a, "--partial-stderr")];
			int n = unhex(v, s->partial, CHUNK - 1);
			if (n < 0)
				goto usage;
			s->plen = (size_t)n;
		} else if (!strcmp(a, "--oom")) {
			if (sscanf(v, "%d,%d", &oom_efd, &oom_ofd) != 2)
				goto usage;
		} else if (!strcmp(a, "--replay"))
			replay_path = v;
		else
			goto usage;
	}
	if (!replay_path && (!finisher || !finisher[0]))
		goto usage;
	signal(SIGPIPE, SIG_IGN); /* a client gone is a failed write (EPIPE), never the pump's end */
	if (replay_path)
		replay(replay_path);
	else
		pump();
	flush_partial();
	if (log_fd >= 0)
		close(log_fd);
	if (replay_path)
		return 0;

	/* the finisher: its own argv, then OOM-KILLED and LOST-COPIES */
	static char *args[256];
	int n = 0;
	while (finisher[n] && n < 250) {
		args[n] = finisher[n];
		n++;
	}
	args[n++] = oom_killed ? "1" : "0";
	args[n++] = streams[0].lost && streams[1].lost ? "stdout,stderr"
		    : streams[0].lost                  ? "stdout"
		    : streams[1].lost                  ? "stderr"
							: "-";
	args[n] = NULL;
	execv(args[0], args);
	die("cannot exec the monitor's finisher");
usage:
	fprintf(stderr, "usage: lxcbox-logpump --stdout FD --stderr FD [options] (-- FINISHER... | --replay FILE)\n");
	return 125;
}
