/*
 * store_int.h - the store's internals shared by store.c (life cycle, applier
 * path), snap.c (snapshots), compact.c (background merge) and scan.c (export).
 */
#ifndef TD_STORE_STORE_INT_H
#define TD_STORE_STORE_INT_H

#include "store/manifest.h"
#include "identity/identity.h"
#include "store/seg.h"
#include "store/sessions.h"
#include "store/store.h"

#include <pthread.h>

struct store {
	struct store_options o;
	char *dir;
	pthread_mutex_t lock;  /* the lists below, snap, dirty, counters */
	pthread_mutex_t wlock; /* file set changes and manifest writes */
	struct seg **disk;     /* segment files listed in the manifest */
	size_t ndisk;
	struct seg **mem; /* sealed, in memory, not yet in a file; LSN order */
	size_t nmem;
	uint64_t mem_rows;
	int64_t mem_since_ms; /* when the oldest of mem was applied */
	struct store_snap *snap;
	bool dirty;		    /* snap is out of date */
	uint32_t npersons;	    /* view->n */
	struct identity_view *view; /* canonical persons as of the last seal */
	uint32_t flushed_persons;   /* person ids as of flushed_lsn (the manifest's count) */

	/* applier only */
	struct seg_builder *memtable; /* rows since the last flush (all of mem's, if
					 mem_in_memtable == nmem) */
	size_t mem_in_memtable;	      /* images of mem made from the memtable's rows */
	int64_t memtable_since_ms, last_seal_ms;
	uint64_t applied_lsn;
	struct identity *ident;		  /* its lookups may run on any thread; see store_graph */
	pthread_mutex_t ident_lock;	  /* opening ident lazily */
	uint64_t ident_lsn;		  /* what to open it with */
	struct identity_config ident_cfg; /* the caller's, copied (strings in ident_strs) */
	struct sessions *sess;		  /* session stamping (a reader's: opened on first apply) */
	bool sess_failed;		  /* a reader could not read the session log */
	char *ident_strs;

	uint64_t flushed_lsn, next_id; /* next_id under wlock */
	uint64_t flushes, merges, flush_errors, bad_records;
	uint64_t flush_ms_total;

	/* background flush (flush.c); under lock */
	pthread_t flusher;
	pthread_cond_t fcond;	   /* a job posted, or one finished */
	struct flush_job *job;	   /* posted, not yet taken */
	struct seg_builder *spare; /* a flushed memtable, emptied, for the next */
	bool flushing;		   /* a job is posted or running */
	bool flusher_running, fstop;
	int64_t flush_retry_ms; /* after a failed flush, none before this */

	/* background merge */
	pthread_t merger;
	pthread_cond_t cond;
	bool merger_running, stop;
};

int64_t store_now_ms(void);
/* The whole file at path into *out (malloc'd, the caller frees it; *len
 * bytes): 0, TD_ENOTFOUND when it does not exist, or TD_E* of the I/O. */
int store_read_file(const char *path, unsigned char **out, size_t *len);
/* Writes img as segment file <id> (tmp, fdatasync, rename) and maps it. */
int store_write_segment(struct store *s, const unsigned char *img, size_t len, uint64_t id,
			struct seg **out);
/* Replaces the manifest: the disk list plus add, minus drop. Caller holds wlock. */
int store_commit_manifest(struct store *s, struct seg *add, struct seg *const *drop, size_t ndrop,
			  uint64_t flushed_lsn);
/* Opens the identity graph of a store in dir as of flushed_lsn (migrating
 * a PERSONS file of format 1); see persons.c. */
int store_identity_open(struct identity **out, const char *dir, const struct identity_config *cfg,
			uint64_t flushed_lsn, uint32_t persons, bool read_only);

/* DIR/CANONICAL (canon.c): written with each flush; read returns a view
 * when the file belongs to exactly this LSN and person count, else NULL. */
int canon_write(const char *dir, const struct identity_view *v, uint64_t lsn);
struct identity_view *canon_read(const char *dir, uint64_t lsn, uint32_t n);
/* The identity graph, opened on first use by a read-only store that took its
 * canonical persons from DIR/CANONICAL (store.c); NULL on failure (logged). */
struct identity *store_graph(struct store *s);

/* person.<trait> columns of a snapshot (ptraits.c); thread-safe. */
struct ptraits;
struct ptraits *ptraits_new(void);
void ptraits_free(struct ptraits *p);
int ptraits_column(struct ptraits *p, const struct query_source *src, const struct query_chunk *c,
		   const char *name, struct query_column *col);
int ptraits_values(struct ptraits *p, const struct query_source *src, const char *name,
		   struct store_person_trait *out);

/* The segments of a snapshot (for scans). */
size_t store_snap_segments(const struct store_snap *sn, struct seg *const **out);

/* The flusher (flush.c): writes sealed segments to files when flush_rows /
 * flush_interval_ms say so, in the background unless forced (then inline,
 * after waiting for a running one). flush_tick runs on the applier thread. */
void flush_start(struct store *s);
void flush_stop(struct store *s);
int flush_tick(struct store *s, int64_t now, bool force);

/* Merges small segment files now; returns how many merges were done. */
int compact_run(struct store *s);
void compact_start(struct store *s);
void compact_stop(struct store *s);
void compact_poke(struct store *s);

#endif
