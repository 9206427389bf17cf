/*
 * persons.c - the store's identity graph: DIR/IDENTITY (identity/log.c),
 * opened as of the manifest's flushed LSN, and the one-time migration of
 * the person map that came before identity resolution.
 *
 * DIR/PERSONS (format 1, written by earlier versions; read here once):
 *   header, 16 bytes: magic "TDPERS\r\n", u32 version (1), u32 reserved (0)
 *   records, one per person in id order: u32 CRC-32C of (length, key),
 *   u16 key length, key bytes; key = "u" + userId or "a" + anonymousId.
 * Its first `persons` records (the manifest's count) become persons 0..n-1
 * of the graph, in order, each with its one identifier; the graph is then
 * written and PERSONS removed. Events keep their person ids.
 */
#include "base/crc32c.h"
#include "base/log.h"
#include "base/td.h"
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PERSONS_MAGIC  "TDPERS\r\n"
#define PERSONS_HEADER 16

/* Feeds the first `count` keys of PERSONS to the graph as one-identifier
 * messages of LSN 0: each is new, so each becomes the next person id. */
static int migrate(struct identity *g, const char *path, uint32_t count)
{
	unsigned char *buf;
	size_t len, pos = PERSONS_HEADER;
	int rc = store_read_file(path, &buf, &len);
	if (rc)
		return rc;
	if (len < PERSONS_HEADER || memcmp(buf, PERSONS_MAGIC, 8) != 0) {
		free(buf);
		return TD_ECORRUPT;
	}
	struct identity_msg *m = td_malloc(sizeof(*m));
	for (uint32_t i = 0; i < count; i++) {
		uint32_t crc;
		uint16_t kl;
		if (pos + 6 > len)
			break;
		memcpy(&crc, buf + pos, 4);
		memcpy(&kl, buf + pos + 4, 2);
		if (kl == 0 || pos + 6 + kl > len ||
		    td_crc32c(td_crc32c(0, &kl, 2), buf + pos + 6, kl) != crc)
			break;
		const char *key = (const char *)buf + pos + 6;
		identity_msg_reset(m);
		identity_msg_add(m, key[0] == 'u' ? IDENTITY_F_USER_ID : IDENTITY_F_ANON_ID, NULL,
				 0, key + 1, kl - 1u);
		uint32_t pid = identity_resolve(g, m);
		if (pid != i) { /* a key seen twice: the file is not what version 1 wrote */
			rc = TD_ECORRUPT;
			break;
		}
		pos += 6u + kl;
	}
	free(m);
	free(buf);
	if (!rc && identity_npids(g) < count)
		rc = TD_ECORRUPT;
	return rc;
}

int store_identity_open(struct identity **out, const char *dir, const struct identity_config *cfg,
			uint64_t flushed_lsn, uint32_t persons, bool read_only)
{
	char path[4096], old[4096], err[512];
	snprintf(path, sizeof(path), "%s/IDENTITY", dir);
	snprintf(old, sizeof(old), "%s/PERSONS", dir);
	bool have_log = access(path, F_OK) == 0;
	bool have_old = access(old, F_OK) == 0;
	/* a store from before identity resolution: start the graph empty */
	uint32_t need = have_log || !have_old ? persons : 0;
	int rc = identity_open(out, path, cfg, flushed_lsn, need, read_only, err, sizeof(err));
	if (rc) {
		td_log_error("store: %s", err);
		return rc;
	}
	if (have_old && identity_npids(*out) == 0 && persons > 0) {
		rc = migrate(*out, old, persons);
		if (!rc && !read_only)
			rc = identity_sync(*out);
		if (rc) {
			td_log_error("store: %s: cannot migrate the person map: %s", old,
				     td_strerror(rc));
			identity_close(*out);
			*out = NULL;
			return rc;
		}
		td_log_info("store: %u persons of %s moved into %s", persons, old, path);
	}
	if (have_old && !read_only && unlink(old) == 0)
		td_log_info("store: removed %s (now in IDENTITY)", old);
	return 0;
}
