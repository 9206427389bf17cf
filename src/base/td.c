#include "base/td.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

const char *td_strerror(int err)
{
	switch (err) {
	case TD_OK:
		return "success";
	case TD_ENOMEM:
		return "out of memory";
	case TD_EINVAL:
		return "invalid argument";
	case TD_EIO:
		return "input/output error";
	case TD_ENOSPC:
		return "no space left on device";
	case TD_EROFS:
		return "read-only file system";
	case TD_EFULL:
		return "queue full";
	case TD_ETOOLARGE:
		return "too large";
	case TD_ECORRUPT:
		return "corrupt data";
	case TD_ENOTFOUND:
		return "not found";
	case TD_EEXIST:
		return "already exists";
	case TD_EBUSY:
		return "in use by another process";
	case TD_EAUTH:
		return "authentication failed";
	case TD_EPARSE:
		return "parse error";
	case TD_ECLOSED:
		return "shutting down";
	case TD_EDB:
		return "database error";
	}
	return "unknown error";
}

int td_from_errno(int errnum)
{
	switch (errnum) {
	case ENOSPC:
	case EDQUOT:
		return TD_ENOSPC;
	case EROFS:
		return TD_EROFS;
	case ENOMEM:
		return TD_ENOMEM;
	case ENOENT:
		return TD_ENOTFOUND;
	case EEXIST:
		return TD_EEXIST;
	case EINVAL:
		return TD_EINVAL;
	default:
		return TD_EIO;
	}
}

static void oom(size_t n)
{
	fprintf(stderr, "tandem: out of memory allocating %zu bytes\n", n);
	abort();
}

void *td_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *td_calloc(size_t count, size_t n)
{
	void *p = calloc(count ? count : 1, n ? n : 1);
	if (!p)
		oom(count * n);
	return p;
}

void *td_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *td_strdup(const char *s)
{
	return td_strndup(s, strlen(s));
}

char *td_strndup(const char *s, size_t n)
{
	char *p = td_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void *td_try_malloc(size_t n)
{
	return malloc(n ? n : 1);
}

void *td_try_realloc(void *p, size_t n)
{
	return realloc(p, n ? n : 1);
}

int td_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return TD_EIO;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

int td_random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];
	size_t done = 0;
	while (done < n) {
		size_t k = TD_MIN(sizeof(raw), n - done);
		int rc = td_random(raw, k);
		if (rc)
			return rc;
		for (size_t i = 0; i < k; i++) {
			out[2 * (done + i)] = hex[raw[i] >> 4];
			out[2 * (done + i) + 1] = hex[raw[i] & 15];
		}
		done += k;
	}
	out[2 * n] = '\0';
	return 0;
}

int td_write_all(int fd, const void *p, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = write(fd, (const char *)p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return td_from_errno(w < 0 ? errno : EIO);
		done += (size_t)w;
	}
	return 0;
}

int td_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return td_from_errno(errno);
	int rc = fsync(fd) ? td_from_errno(errno) : 0;
	close(fd);
	return rc;
}
