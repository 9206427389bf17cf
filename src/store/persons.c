/*
 * persons.c - the person key map and its append-only file (format in persons.h).
 */
#include "store/persons.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "base/td.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PERSONS_MAGIC  "TDPERS\r\n"
#define PERSONS_HEADER 16

static uint32_t rec_crc(uint16_t len, const char *key)
{
	return td_crc32c(td_crc32c(0, &len, 2), key, len);
}

static int read_all(const char *path, unsigned char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? TD_ENOTFOUND : TD_EIO;
	struct stat st;
	if (fstat(fileno(f), &st)) {
		fclose(f);
		return TD_EIO;
	}
	unsigned char *buf = td_malloc((size_t)st.st_size + 1);
	size_t got = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	*out = buf;
	*len = got;
	return 0;
}

/* Reads the first `count` records into p->keys; *end: the byte after them,
 * *len: the file's length (0 if there is none). */
static int load(struct persons *p, uint32_t count, size_t *end, size_t *len)
{
	unsigned char *buf = NULL;
	*len = 0;
	int rc = read_all(p->path, &buf, len);
	if (rc == TD_ENOTFOUND && count == 0) {
		*len = 0;
	} else if (rc) {
		return rc == TD_ENOTFOUND ? TD_ECORRUPT : rc;
	} else if (*len < PERSONS_HEADER || memcmp(buf, PERSONS_MAGIC, 8) != 0) {
		free(buf);
		return TD_ECORRUPT;
	}
	size_t pos = PERSONS_HEADER;
	while (p->keys.n < count && pos + 6 <= *len) {
		uint32_t crc;
		uint16_t kl;
		memcpy(&crc, buf + pos, 4);
		memcpy(&kl, buf + pos + 4, 2);
		if (pos + 6 + kl > *len || crc != rec_crc(kl, (const char *)buf + pos + 6))
			break;
		intern_id(&p->keys, (const char *)buf + pos + 6, kl);
		pos += 6 + (size_t)kl;
	}
	free(buf);
	*end = pos;
	return p->keys.n < count ? TD_ECORRUPT : 0;
}

int persons_load(struct persons *p)
{
	if (!p->lazy)
		return 0;
	p->lazy = false;
	size_t end, len;
	int rc = load(p, p->synced, &end, &len);
	if (rc) {
		/* keep the ids stable: new keys must not take the ids of the
		 * persons that could not be read */
		intern_clear(&p->keys);
		for (uint32_t i = 0; i < p->synced; i++) {
			char k[16];
			int n = snprintf(k, sizeof(k), "%c%u", 0, i);
			intern_id(&p->keys, k, (size_t)n);
		}
	}
	return rc;
}

int persons_open(struct persons *p, const char *dir, uint32_t count, bool read_only)
{
	memset(p, 0, sizeof(*p));
	intern_init(&p->keys);
	p->fd = -1;
	size_t pl = strlen(dir) + 16;
	p->path = td_malloc(pl);
	snprintf(p->path, pl, "%s/PERSONS", dir);
	if (read_only) { /* loaded when a key is first looked up */
		p->synced = count;
		p->lazy = true;
		return 0;
	}
	size_t pos, len;
	int rc = load(p, count, &pos, &len);
	if (rc) {
		persons_close(p);
		return rc;
	}
	p->synced = count;
	p->fd = open(p->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (p->fd < 0) {
		rc = td_from_errno(errno);
		persons_close(p);
		return rc;
	}
	if (len == 0) {
		unsigned char h[PERSONS_HEADER] = {0};
		uint32_t ver = 1;
		memcpy(h, PERSONS_MAGIC, 8);
		memcpy(h + 8, &ver, 4);
		if (pwrite(p->fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) || fsync(p->fd)) {
			persons_close(p);
			return TD_EIO;
		}
		pos = PERSONS_HEADER;
	}
	if (ftruncate(p->fd, (off_t)pos) || lseek(p->fd, (off_t)pos, SEEK_SET) < 0) {
		persons_close(p);
		return TD_EIO;
	}
	return 0;
}

void persons_close(struct persons *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	intern_release(&p->keys);
	free(p->path);
	p->path = NULL;
}

uint32_t persons_resolve(void *ctx, const char *user_id, const char *anonymous_id)
{
	struct persons *p = ctx;
	if (p->lazy && persons_load(p))
		td_log_error("store: %s is damaged; events read from the WAL may count as new "
			     "persons (run 'tandem check')",
			     p->path);
	char key[260];
	const char *id = user_id ? user_id : anonymous_id ? anonymous_id : "";
	size_t n = strlen(id);
	if (n > sizeof(key) - 2)
		n = sizeof(key) - 2;
	key[0] = user_id ? 'u' : 'a';
	memcpy(key + 1, id, n);
	return intern_id(&p->keys, key, n + 1);
}

int persons_sync(struct persons *p)
{
	if (p->fd < 0 || p->synced == p->keys.n)
		return 0;
	size_t cap = 1 << 16, len = 0;
	unsigned char *buf = td_malloc(cap);
	int rc = 0;
	off_t start = lseek(p->fd, 0, SEEK_CUR);
	for (uint32_t id = p->synced; id < p->keys.n && !rc; id++) {
		uint16_t kl = (uint16_t)intern_len(&p->keys, id);
		const char *k = intern_str(&p->keys, id);
		if (len + 6 + kl > cap) {
			if (write(p->fd, buf, len) != (ssize_t)len)
				rc = td_from_errno(errno ? errno : EIO);
			len = 0;
		}
		uint32_t crc = rec_crc(kl, k);
		memcpy(buf + len, &crc, 4);
		memcpy(buf + len + 4, &kl, 2);
		memcpy(buf + len + 6, k, kl);
		len += 6 + (size_t)kl;
	}
	if (!rc && len && write(p->fd, buf, len) != (ssize_t)len)
		rc = td_from_errno(errno ? errno : EIO);
	if (!rc && fdatasync(p->fd))
		rc = td_from_errno(errno);
	free(buf);
	if (rc) { /* cut back what may have reached the file; retried next time */
		if (start >= 0 && (ftruncate(p->fd, start) || lseek(p->fd, start, SEEK_SET) < 0))
			rc = TD_EIO;
		return rc;
	}
	p->synced = p->keys.n;
	return 0;
}
