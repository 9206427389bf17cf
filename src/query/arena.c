/*
 * arena.c - the per-query arena (h2o's mem pool habit): small allocations
 * are carved from 64 KB slabs, big ones get a block of their own so that
 * growable arrays can be resized and freed early. qa_release() frees all.
 *
 * Blocks of 4 MB and more outlive their query: freed ones are kept (up to
 * QA_KEEP bytes in all, for the whole process) and handed to the next big
 * allocation they fit. A fresh one costs a page fault per 2 MB page, each
 * zeroing its page (and compacting memory first when it is fragmented):
 * for a query that fills a few hundred MB once, that was a fifth of its
 * time. Kept blocks are given back lazily (MADV_FREE): the kernel reclaims
 * them under memory pressure, and reuses without a fault what it did not.
 */
#include "query/query_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define QA_SLAB	     (64 * 1024)
#define QA_SMALL     (8 * 1024) /* larger requests get their own block */
#define QA_ALIGN     16
#define QA_HUGE	     (4u << 20) /* blocks this big ask for 2 MB pages, and are kept */
#define QA_HUGE_PAGE (2u << 20)
#define QA_KEEP	     ((size_t)1 << 30) /* most bytes of freed blocks kept */

struct qa_block {
	struct qa_block *next, *prev;
	size_t size, used;
	size_t cap; /* bytes of data the block has room for (>= size) */
	_Alignas(QA_ALIGN) unsigned char data[];
};

/* Freed big blocks, for any query of the process. */
static pthread_mutex_t qa_keep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct qa_block *qa_kept; /* linked by next */
static size_t qa_kept_bytes;

static bool is_huge(const struct qa_block *b)
{
	return sizeof(*b) + b->cap >= QA_HUGE;
}

/* The smallest kept block with room for n bytes of data, if it is not more
 * than four times too big (then a fresh one serves better). */
static struct qa_block *keep_take(size_t n)
{
	pthread_mutex_lock(&qa_keep_lock);
	struct qa_block **best = NULL;
	for (struct qa_block **p = &qa_kept; *p; p = &(*p)->next)
		if ((*p)->cap >= n && (!best || (*p)->cap < (*best)->cap))
			best = p;
	struct qa_block *b = NULL;
	if (best && (*best)->cap / 4 <= n) {
		b = *best;
		*best = b->next;
		qa_kept_bytes -= sizeof(*b) + b->cap;
	}
	pthread_mutex_unlock(&qa_keep_lock);
	return b;
}

/* Keeps a freed huge block if there is room; false when the caller must
 * free it. */
static bool keep_put(struct qa_block *b)
{
	size_t total = sizeof(*b) + b->cap;
	pthread_mutex_lock(&qa_keep_lock);
	bool room = qa_kept_bytes + total <= QA_KEEP;
	if (room) {
#ifdef MADV_FREE
		/* the header's page stays: it is written just below */
		size_t skip = QA_HUGE_PAGE;
		madvise((unsigned char *)b + skip, total - skip, MADV_FREE);
#endif
		b->next = qa_kept;
		qa_kept = b;
		qa_kept_bytes += total;
	}
	pthread_mutex_unlock(&qa_keep_lock);
	return room;
}

static void block_free(struct qa_block *b)
{
	if (!is_huge(b) || !keep_put(b))
		free(b);
}

void qa_init(struct qarena *a, jmp_buf *oom)
{
	a->small = NULL;
	a->big = NULL;
	a->slabs = NULL;
	a->oom = oom;
	a->used = 0;
	a->limit = 0;
	pthread_mutex_init(&a->lock, NULL);
}

static void free_list(struct qa_block *b)
{
	while (b) {
		struct qa_block *next = b->next;
		block_free(b);
		b = next;
	}
}

void qa_release(struct qarena *a)
{
	free_list(a->small);
	free_list(a->big);
	free_list(a->slabs);
	a->small = a->big = a->slabs = NULL;
	pthread_mutex_destroy(&a->lock);
}

static void *oom(struct qarena *a)
{
	if (a->oom)
		longjmp(*a->oom, 1);
	abort();
}

/* A big block with room for n bytes of data (NULL when out of memory).
 * Huge ones are kept ones, or ask for transparent huge pages: a query fills
 * its big arrays once, and with 4 KB pages the page faults (one per 4 KB,
 * each zeroing its page) cost more than the work on them. */
static struct qa_block *block_alloc(size_t n)
{
	struct qa_block *b;
	if (sizeof(*b) + n < QA_HUGE) {
		b = td_try_malloc(sizeof(*b) + n);
		if (b)
			b->cap = n;
		return b;
	}
	if ((b = keep_take(n)))
		return b;
	size_t r = (sizeof(*b) + n + QA_HUGE_PAGE - 1) & ~(size_t)(QA_HUGE_PAGE - 1);
	b = aligned_alloc(QA_HUGE_PAGE, r);
	if (!b)
		return NULL;
	madvise(b, r, MADV_HUGEPAGE); /* advice only: failure is harmless */
	b->cap = r - sizeof(*b);
	return b;
}

/* Accounts for n more bytes; false when past the limit. Caller holds lock. */
static bool charge_locked(struct qarena *a, size_t n)
{
	if (a->limit && (n > a->limit || a->used > a->limit - n))
		return false;
	a->used += n;
	return true;
}

static void charge(struct qarena *a, size_t n)
{
	pthread_mutex_lock(&a->lock);
	bool ok = charge_locked(a, n);
	pthread_mutex_unlock(&a->lock);
	if (!ok)
		oom(a);
}

/* Caller holds lock. */
static void link_big(struct qarena *a, struct qa_block *b)
{
	b->prev = NULL;
	b->next = a->big;
	if (a->big)
		a->big->prev = b;
	a->big = b;
}

static struct qa_block *try_big_block(struct qarena *a, size_t n)
{
	if (n > SIZE_MAX - sizeof(struct qa_block))
		return NULL;
	pthread_mutex_lock(&a->lock);
	bool ok = charge_locked(a, n);
	pthread_mutex_unlock(&a->lock);
	if (!ok)
		return NULL;
	struct qa_block *b = n > SIZE_MAX - sizeof(*b) - QA_HUGE_PAGE ? NULL : block_alloc(n);
	pthread_mutex_lock(&a->lock);
	if (!b) {
		a->used -= n;
	} else {
		b->size = n;
		b->used = n;
		link_big(a, b);
	}
	pthread_mutex_unlock(&a->lock);
	return b;
}

static struct qa_block *big_block(struct qarena *a, size_t n)
{
	struct qa_block *b = try_big_block(a, n);
	return b ? b : oom(a);
}

void *qa_alloc(struct qarena *a, size_t n)
{
	if (n == 0)
		n = 1;
	if (n > QA_SMALL)
		return big_block(a, n)->data;
	n = (n + QA_ALIGN - 1) & ~(size_t)(QA_ALIGN - 1);
	struct qa_block *s = a->small;
	if (!s || s->size - s->used < n) {
		charge(a, QA_SLAB);
		struct qa_block *fresh = td_try_malloc(sizeof(*fresh) + QA_SLAB);
		if (!fresh)
			return oom(a);
		fresh->size = QA_SLAB;
		fresh->cap = QA_SLAB;
		fresh->used = 0;
		fresh->prev = NULL;
		fresh->next = NULL;
		if (s) {
			s->next = a->slabs;
			a->slabs = s;
		}
		a->small = s = fresh;
	}
	void *p = s->data + s->used;
	s->used += n;
	return p;
}

void *qa_calloc(struct qarena *a, size_t count, size_t n)
{
	if (n && count > SIZE_MAX / n)
		return oom(a);
	size_t size = count * n;
	void *p = qa_alloc(a, size);
	memset(p, 0, size ? size : 1);
	return p;
}

char *qa_strndup(struct qarena *a, const char *s, size_t n)
{
	char *p = qa_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *qa_strdup(struct qarena *a, const char *s)
{
	return qa_strndup(a, s, strlen(s));
}

char *qa_printf(struct qarena *a, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(small))
		return qa_strndup(a, small, (size_t)n);
	char *p = qa_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static struct qa_block *block_of(void *p)
{
	return (struct qa_block *)((unsigned char *)p - offsetof(struct qa_block, data));
}

/* Caller holds lock. */
static void unlink_big(struct qarena *a, struct qa_block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		a->big = b->next;
	if (b->next)
		b->next->prev = b->prev;
}

void *qa_try_big_realloc(struct qarena *a, void *p, size_t n)
{
	if (!p) {
		struct qa_block *b = try_big_block(a, n ? n : 1);
		return b ? b->data : NULL;
	}
	if (n > SIZE_MAX - sizeof(struct qa_block))
		return NULL;
	struct qa_block *b = block_of(p);
	pthread_mutex_lock(&a->lock);
	if (n > b->size && !charge_locked(a, n - b->size)) {
		pthread_mutex_unlock(&a->lock);
		return NULL;
	}
	if (n <= b->size)
		a->used -= b->size - n;
	unlink_big(a, b);
	pthread_mutex_unlock(&a->lock);
	struct qa_block *nb;
	if (n <= b->cap) {
		nb = b;
	} else if (sizeof(*b) + n < QA_HUGE) {
		if ((nb = td_try_realloc(b, sizeof(*b) + n)))
			nb->cap = n;
	} else if ((nb = block_alloc(n))) {
		memcpy(nb->data, b->data, b->size);
		block_free(b);
	}
	pthread_mutex_lock(&a->lock);
	if (!nb) {
		/* still ours, at its old size: put it back so qa_release() frees it */
		a->used -= n > b->size ? n - b->size : 0;
		a->used += n < b->size ? b->size - n : 0;
		link_big(a, b);
		pthread_mutex_unlock(&a->lock);
		return NULL;
	}
	nb->size = nb->used = n;
	link_big(a, nb);
	pthread_mutex_unlock(&a->lock);
	return nb->data;
}

void *qa_big_realloc(struct qarena *a, void *p, size_t n)
{
	void *r = qa_try_big_realloc(a, p, n);
	return r ? r : oom(a);
}

void qa_big_free(struct qarena *a, void *p)
{
	if (!p)
		return;
	struct qa_block *b = block_of(p);
	pthread_mutex_lock(&a->lock);
	a->used -= b->size;
	unlink_big(a, b);
	pthread_mutex_unlock(&a->lock);
	block_free(b);
}

void qvec_init(struct qvec *v, size_t item_size)
{
	v->p = NULL;
	v->n = 0;
	v->cap = 0;
	v->size = item_size;
}

void qvec_reserve(struct qarena *a, struct qvec *v, size_t n)
{
	if (n <= v->cap)
		return;
	size_t cap = v->cap ? v->cap : 64;
	while (cap < n) {
		if (cap > SIZE_MAX / 2 / v->size)
			oom(a);
		cap *= 2;
	}
	v->p = qa_big_realloc(a, v->p, cap * v->size);
	v->cap = cap;
}

void *qvec_push(struct qarena *a, struct qvec *v)
{
	if (v->n == v->cap)
		qvec_reserve(a, v, v->n + 1);
	return (unsigned char *)v->p + v->n++ * v->size;
}
