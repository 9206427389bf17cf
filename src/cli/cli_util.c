/*
 * cli_util.c - option reading and data-directory helpers for the CLI.
 */
#include "cli/cli.h"
#include "base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return false;
	if (a[n] == '=') {
		*value = a + n + 1;
		(*i)++;
		return true;
	}
	if (a[n] != '\0')
		return false;
	if (*i + 1 >= argc) {
		fprintf(stderr, "tandem: option %s needs a value\n", name);
		exit(2);
	}
	*value = argv[*i + 1];
	*i += 2;
	return true;
}

int cli_parse(int argc, char **argv, const char *cmd, const char *usage,
	      const struct cli_option *opts, const char **pos, size_t npos)
{
	size_t npos_seen = 0;
	for (int i = 1; i < argc;) {
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 0;
		}
		const struct cli_option *o = opts;
		for (; o->name; o++) {
			if (o->flag && !strcmp(argv[i], o->name)) {
				*o->flag = true;
				i++;
				break;
			}
			if (o->value && cli_opt(argc, argv, &i, o->name, o->value))
				break;
		}
		if (o->name)
			continue;
		if (argv[i][0] == '-' || npos_seen == npos)
			return cli_bad_option(cmd, argv[i]);
		pos[npos_seen++] = argv[i++];
	}
	return -1;
}

int cli_format_json(const char *cmd, const char *format, bool *json)
{
	*json = !strcmp(format, "json");
	if (*json || !strcmp(format, "text"))
		return 0;
	fprintf(stderr, "tandem %s: --format is text or json, not '%s'\n", cmd, format);
	return 2;
}

bool cli_is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "help");
}

int cli_bad_option(const char *cmd, const char *arg)
{
	fprintf(stderr,
		"tandem %s: unknown option or extra argument '%s' (see 'tandem %s --help')\n", cmd,
		arg, cmd);
	return 2;
}

static unsigned long long parse_scaled(const char *opt, const char *value, unsigned long long k,
				       const char *kind)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(value, &end, 10);
	if (end == value || errno || value[0] == '-')
		goto bad;
	switch (*end) {
	case '\0':
		return v;
	case 'k':
	case 'K':
		v *= k;
		break;
	case 'm':
	case 'M':
		v *= k * k;
		break;
	case 'g':
	case 'G':
		v *= k * k * k;
		break;
	default:
		goto bad;
	}
	if (end[1] == '\0' || (k == 1024 && (end[1] == 'b' || end[1] == 'B') && end[2] == '\0'))
		return v;
bad:
	fprintf(stderr, "tandem: %s takes a non-negative %s (suffix k, m or g allowed), not '%s'\n",
		opt, kind, value);
	exit(2);
}

unsigned long long cli_size(const char *opt, const char *value)
{
	return parse_scaled(opt, value, 1024, "size");
}

unsigned long long cli_count(const char *opt, const char *value)
{
	return parse_scaled(opt, value, 1000, "number");
}

int cli_data_dir(const char *dir)
{
	if (mkdir(dir, 0700) == 0 || errno == EEXIST) {
		struct stat st;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		fprintf(stderr, "tandem: %s exists and is not a directory\n", dir);
		return 1;
	}
	fprintf(stderr, "tandem: cannot create data directory %s: %s\n", dir, strerror(errno));
	return 1;
}

int cli_lock_data(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "tandem: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		if (n > 0) {
			pid[n] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
		}
		fprintf(stderr,
			"tandem: data directory %s is in use by another tandem process (pid %s, "
			"probably 'tandem serve'); stop it first, or send the data over HTTP to "
			"that server\n",
			dir, pid[0] ? pid : "unknown");
		close(fd);
		return 2;
	}
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)len, 0) != len)
		fprintf(stderr, "tandem: warning: could not record pid in %s\n", path);
	/* fd stays open (and locked) until the process exits */
	return 0;
}

int cli_read_all(const char *cmd, const char *what, const char *path, struct td_buf *b)
{
	bool is_stdin = !strcmp(path, "-");
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "tandem %s: cannot read %s: %s\n", cmd, path, strerror(errno));
		return 1;
	}
	char chunk[65536];
	size_t got;
	int rc = 0;
	while (!rc && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (td_buf_append(b, chunk, got)) {
			fprintf(stderr, "tandem %s: %s%s%s is larger than %zu bytes\n", cmd, what,
				*what ? " " : "", is_stdin ? "stdin" : path, b->max);
			rc = 1;
		}
	if (!rc && ferror(f)) {
		fprintf(stderr, "tandem %s: cannot read %s: %s\n", cmd, path, strerror(errno));
		rc = 1;
	}
	if (!is_stdin)
		fclose(f);
	return rc;
}
