/*
 * td.h - the conventions every tandem module shares: error codes, allocation
 * wrappers and a few small helpers.
 *
 * Errors: functions return int, 0 on success and a negative TD_E* code on
 * failure; td_strerror() names the code. Predicates (is_, has_) return bool.
 *
 * Allocation: td_malloc() and friends abort on out-of-memory (most of the
 * code cannot do anything better); td_try_malloc() may return NULL and is used
 * where a caller can turn the failure into an error for the client (request
 * bodies, batches).
 */
#ifndef TD_BASE_TD_H
#define TD_BASE_TD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum td_err {
	TD_OK = 0,
	TD_ENOMEM = -1,	   /* allocation failed */
	TD_EINVAL = -2,	   /* invalid argument or input */
	TD_EIO = -3,	   /* I/O error from the operating system */
	TD_ENOSPC = -4,	   /* disk full */
	TD_EROFS = -5,	   /* file system is read-only */
	TD_EFULL = -6,	   /* queue full: try again later */
	TD_ETOOLARGE = -7, /* input exceeds a configured limit */
	TD_ECORRUPT = -8,  /* checksum or format error in stored data */
	TD_ENOTFOUND = -9, /* no such object */
	TD_EEXIST = -10,   /* object already exists */
	TD_EBUSY = -11,	   /* resource held by another process */
	TD_EAUTH = -12,	   /* missing or wrong credentials */
	TD_EPARSE = -13,   /* malformed text (JSON, config, timestamps) */
	TD_ECLOSED = -14,  /* the object is shutting down */
	TD_EDB = -15,	   /* SQLite error */
};

const char *td_strerror(int err);

/* Maps an errno value to a TD_E* code (ENOSPC -> TD_ENOSPC, ...). */
int td_from_errno(int errnum);

void *td_malloc(size_t n);
void *td_calloc(size_t count, size_t n);
void *td_realloc(void *p, size_t n);
char *td_strdup(const char *s);
char *td_strndup(const char *s, size_t n);
void *td_try_malloc(size_t n);
void *td_try_realloc(void *p, size_t n);

#define TD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TD_MIN(a, b)	((a) < (b) ? (a) : (b))
#define TD_MAX(a, b)	((a) > (b) ? (a) : (b))

/* fsync of a directory: makes a rename, creation or removal in it durable. */
int td_fsync_dir(const char *dir);

/* Writes all n bytes (retrying short writes and EINTR); 0 or TD_E*. */
int td_write_all(int fd, const void *p, size_t n);

/* Fills buf with n cryptographically random bytes (getrandom). */
int td_random(void *buf, size_t n);

/* Writes n random bytes as 2n lowercase hex characters plus NUL into out. */
int td_random_hex(char *out, size_t n);

#endif
