/*
 * timeline — the one model of WAL continuity across timelines: what the
 * archive (wal/) holds and which WAL recovery reads on its way from a
 * backup to a target timeline.  verify, PITR's check, restore's end of the
 * archive (restore/rcv_end.c) and retention all ask it.
 *
 * The model holds the archived segments (timeline, segment number) and
 * the timelines: those with segments, and those with a TLI.history file,
 * whose ancestry is parsed from it.  Building it:
 *
 *   tl_model_init(&m, seg_size);
 *   tl_model_add(&m, name) for every bare name under wal/ (others ignored),
 *   tl_model_read_histories(&m, rp, e)   (decodes every history file), or
 *   tl_model_set_history(&m, tli, text, len, e) from memory (tests),
 *   tl_model_finish(&m)                  (sorts; call before asking);
 *
 * or tl_model_load(rp, seg_size, &m, e), which lists the region and does
 * all of it.  A history file that does not decode or parse leaves its
 * timeline with has_history and a hist_error: asking for a path through
 * it fails with that error, anything else still works.
 *
 * A path (struct tl_step[]) is the target timeline's ancestry, oldest
 * first, then the target: each step a timeline and the LSNs where it
 * begins and ends on that path (the target ends at UINT64_MAX).  The
 * segment that holds a switch point belongs to the child on the path (its
 * `owner`): PostgreSQL writes a full copy of it there, the parent's copy
 * is only a .partial.  Two readings of "is this segment there":
 *
 *   - TL_STRICT (verify): on its owner timeline;
 *   - TL_AS_POSTGRES (restore): where PostgreSQL would read it from, the
 *     newest timeline of the path that began at or before the segment and
 *     has it archived (XLogFileReadAnyTLI) — the owner, else an ancestor;
 *     reading a path in order (tl_first_gap, tl_reach) never goes back to
 *     a timeline older than the previous segment's, as PostgreSQL does not.
 *
 * Two readings of "latest" too: tl_latest_probe() is PostgreSQL's (probe
 * TLI.history upward from a timeline: what restore gets),
 * tl_latest_descendant() the highest timeline whose path passes through a
 * timeline after a point (what verify checks, docs/VERIFY.md).
 *
 * Retention's question, "which WAL does no retained backup need", is
 * struct tl_need: the lowest timeline and the lowest start segment over
 * the retained backups (docs/RETENTION.md).
 *
 * Library code: never prints.  A model is not shared between threads while
 * being built; once finished, queries only read it.
 */
#ifndef WALSHIP_TIMELINE_H
#define WALSHIP_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "repo.h"
#include "wal.h"

/* One line of a TLI.history file: timeline `tli` ended at `end_lsn` (the
 * next line's timeline, or the file's own, starts there). */
struct tl_hist_entry {
    uint32_t tli;
    uint64_t end_lsn;
};

/* Parse a history file's text ("parentTLI<TAB>LSN<TAB>reason" lines, '#'
 * comments).  *out is malloc'd (NULL when empty). */
int tl_parse_history(const char *text, size_t len, struct tl_hist_entry **out, size_t *n, struct err *e);
/* The largest history file read (from the archive, and by wal-push). */
#define TL_HISTORY_MAX ((size_t)1 << 20)

/* Does the text read as PostgreSQL writes TLI.history: at least one
 * parent line, parents below `tli` and rising, switch points not going
 * back, no NUL byte?  ERR_CORRUPT says why not. */
int tl_history_valid(const char *text, size_t len, uint32_t tli, struct err *e);
/* May a segment at [seg_start, seg_start + seg_size) of the timeline whose
 * history file is `text` begin with a page of timeline page_tli (an older
 * one)?  Only the segment where that timeline begins does (PostgreSQL
 * copies the parent's segment up to the switch point): 1 when a switch
 * point lies inside it and page_tli is the timeline in effect at its start,
 * 0 when not, -1 when the text cannot be read (e). */
int tl_history_begins_in(const char *text, size_t len, uint64_t seg_start, uint64_t seg_size, uint32_t page_tli,
                         struct err *e);

struct tl_timeline {
    uint32_t tli;
    int has_history;                /* TLI.history is archived */
    char *hist_error;               /* ... but could not be read or parsed: why (NULL: fine) */
    struct tl_hist_entry *hist;     /* its ancestry, oldest first */
    size_t nhist;
    uint64_t nsegs;                 /* archived segments */
    uint64_t oldest, newest;        /* their segment numbers, when nsegs */
    int64_t newest_time;            /* the latest a segment was stored (Unix s), when
                                     * tl_model_load_stored() recorded it; else 0 */
};

struct tl_seg {
    uint32_t tli;
    uint64_t segno;
    int64_t stored;                 /* when it was stored (Unix s, the earliest of the regions'),
                                     * when added by tl_model_add_stored(); else 0 */
};

struct tl_model {
    uint64_t seg_size;
    struct tl_seg *segs;            /* sorted by (timeline, segment) after finish */
    size_t nsegs, segs_cap;
    struct tl_timeline *tls;        /* sorted by timeline after finish */
    size_t ntls, tls_cap;
};

void tl_model_init(struct tl_model *m, uint64_t seg_size);
void tl_model_free(struct tl_model *m);
/* Add a bare name from the wal/ listing: 1 taken (a segment or a history
 * file), 0 ignored (anything else), -1 out of memory. */
int tl_model_add(struct tl_model *m, const char *name);
/* Attach a history file's text to timeline `tli` (which then has a
 * history).  A text that does not parse is recorded (hist_error) and
 * returned as an error; ERR_NOMEM leaves nothing recorded. */
int tl_model_set_history(struct tl_model *m, uint32_t tli, const char *text, size_t len, struct err *e);
/* Record that timeline `tli`'s history file is unusable, and why. */
int tl_model_history_failed(struct tl_model *m, uint32_t tli, const char *why);
/* Read every history file the model lists from the region.  Each failure
 * is recorded on its timeline; `bad` (may be NULL) is called for each with
 * the file's key and the reason.  Fails only when out of memory, or when
 * `bad` returns non-zero. */
int tl_model_read_histories(struct tl_model *m, struct repo *rp,
                            int (*bad)(void *arg, const char *key, const char *why), void *arg, struct err *e);
void tl_model_finish(struct tl_model *m);
/* Add what `src` holds to `dst` (both of one cluster's regions): its
 * segments, and each history file it read where `dst` has none it could
 * read.  Call tl_model_finish(dst) after the last one: it counts a segment
 * both hold once. */
int tl_model_merge(struct tl_model *dst, const struct tl_model *src, struct err *e);

/* List wal/ of a region, read the history files, finish. */
int tl_model_load(struct repo *rp, uint64_t seg_size, struct tl_model *m, struct err *e);
/* ... and with `times`, each segment's object time (tl_model_add_stored). */
int tl_model_load_times(struct repo *rp, uint64_t seg_size, int times, struct tl_model *m, struct err *e);

const struct tl_timeline *tl_find(const struct tl_model *m, uint32_t tli);
/* Is timeline tli's history file archived (timeline 1 has none)? */
int tl_has_history(const struct tl_model *m, uint32_t tli);
int tl_has_seg(const struct tl_model *m, uint32_t tli, uint64_t segno);

/* ---- choosing the target timeline ---- */

/* PostgreSQL's 'latest': from `tli` up while TLI+1.history is archived. */
uint32_t tl_latest_probe(const struct tl_model *m, uint32_t tli);
/* The highest timeline whose ancestry passes through `tli` at or after
 * `lsn` (or `tli` itself); 0 when `tli` is not in the model at all. */
uint32_t tl_latest_descendant(const struct tl_model *m, uint32_t tli, uint64_t lsn);
/* recovery_target_timeline as written ("latest", "current", "" or a
 * number) for a backup on `tli`: the timeline restore recovers to, or 0
 * with e set (a bad number). */
uint32_t tl_target(const struct tl_model *m, uint32_t tli, const char *timeline, struct err *e);

/* ---- paths ---- */

struct tl_step {
    uint32_t tli;
    uint64_t begin, end;            /* LSNs; end UINT64_MAX for the target */
};

/* The path to `target`: its ancestry from its history file, then itself.
 * Fails (ERR_NOTFOUND) when target > 1 has no archived history file, and
 * with the history's own error when it was unusable.  *out is malloc'd. */
int tl_path(const struct tl_model *m, uint32_t target, struct tl_step **out, size_t *n, struct err *e);
/* tl_path, except that `target` reached from its own timeline `tli`
 * without a history file is that timeline alone (PostgreSQL reads it so:
 * a timeline promoted while archiving was off). */
int tl_path_from(const struct tl_model *m, uint32_t tli, uint32_t target, struct tl_step **out, size_t *n,
                 struct err *e);
/* The step of timeline `tli` that ends after `lsn` (pass 0 for any), or -1:
 * is the backup's start on this path? */
int tl_path_index(const struct tl_step *p, size_t n, uint32_t tli, uint64_t lsn);
/* The last LSN recovery must replay on a backup's own timeline: the end
 * of its end-of-backup record (stop_lsn) less one.  A path (a timeline)
 * that leaves the backup's timeline at or before it cannot be taken from
 * the backup, though it starts on it: PostgreSQL stops with "online
 * backup was canceled, recovery cannot continue".  Pass it to
 * tl_path_index and tl_latest_descendant; start_lsn when stop_lsn is not
 * past it. */
uint64_t tl_backup_end(uint64_t start_lsn, uint64_t stop_lsn);
/* The step a segment belongs to: the last one that began at or before it. */
size_t tl_path_owner(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t segno);

enum tl_mode { TL_STRICT, TL_AS_POSTGRES };

/* The timeline segment `segno` is read from on the path, 0 when none (on
 * its own, without the order of a walk). */
uint32_t tl_read_from(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t segno,
                      enum tl_mode mode);
/* The newest archived segment on the path (a step's segments count from
 * the one holding its begin through the one holding its end): 1 and
 * *segno, or 0 when the path has none. */
int tl_path_newest(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t *segno);

/* The first gap on the path in [from, to], read in order from `from`: 1
 * with the first missing segment, the timeline it belongs to (its owner) and the last segment of
 * the run missing from that same timeline; 0 when there is none. */
struct tl_gap {
    uint32_t tli;
    uint64_t first, last;
};
int tl_first_gap(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t from, uint64_t to,
                 enum tl_mode mode, struct tl_gap *gap);

/* ---- from a backup to the end of the archive ---- */

/* What restore can reach from a backup that starts at `start_lsn` on
 * `tli`, to `target`: the path, the newest segment on it, and the first
 * gap from the backup's start segment to that newest one (as PostgreSQL
 * reads). */
enum tl_reach_status {
    TL_REACH_OK,
    TL_REACH_NOT_DESCENDANT,        /* target's path does not pass through tli at start_lsn */
    TL_REACH_NO_START,              /* nothing archived on the path from the start on */
    TL_REACH_GAP,                   /* gap set */
};

struct tl_reach {
    enum tl_reach_status status;
    struct tl_step *path;           /* malloc'd; tl_reach_free */
    size_t npath;
    uint64_t first, last;           /* segments: the backup's start, the newest on the path */
    uint32_t last_tli;              /* the timeline `last` is read from */
    uint64_t limit;                 /* records on `last` count only below this LSN (the
                                     * switch point when last_tli is a parent), else UINT64_MAX */
    unsigned long nsegments;        /* first..last, when no gap */
    struct tl_gap gap;
};

/* ---- a branch left behind (timeline_branch.c) ---- */

/* tl_model_add() that also records when the segment was stored (the
 * listing's mtime), for tl_path_left_branch(). */
int tl_model_add_stored(struct tl_model *m, const char *name, int64_t stored);
/* tl_model_load() with tl_model_add_stored(), and each timeline's
 * newest_time. */
int tl_model_load_stored(struct repo *rp, uint64_t seg_size, struct tl_model *m, struct err *e);

/* A timeline of the model other than path p's target whose WAL goes on
 * past the point where p leaves its history (an ancestor on p after its
 * switch point, a sibling forked off p, a child p's target does not
 * follow), beyond the segment holding that point and beyond the one where
 * recovery starts (`from_lsn`, the backup's start) -- or, when the model
 * has the times, with a segment past that point stored after the one
 * where recovery starts (it went on after the backup began, however far
 * behind in position).  1 (b set: `parent` the timeline that went on,
 * `child` the one p goes on with) or 0. */
struct tl_branch {
    uint32_t parent, child;
    uint64_t fork_lsn;
    uint64_t parent_newest;         /* segment number */
};
int tl_path_left_branch(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t from_lsn,
                        struct tl_branch *b);
/* The error for it (ERR_USAGE: the operator must name the timeline);
 * `where` names the regions; `target` is the timeline 'latest' chose. */
int tl_branch_refuse(const struct tl_model *m, const struct tl_branch *b, uint32_t target, const char *where,
                     struct err *e);

/* A timeline above `target` (the one 'latest' chose) that holds WAL at or
 * past segment `from_seg` (the backup's start) but has no usable history
 * file: PostgreSQL's 'latest' probes history files, so it cannot see that
 * timeline and recovery would end before its WAL, silently.  The lowest
 * such timeline, or NULL. */
const struct tl_timeline *tl_orphan_above(const struct tl_model *m, uint32_t target, uint64_t from_seg);
/* The error for it (ERR_NOTFOUND: restore fails, exit 3, as for a gap);
 * `where` names the regions. */
int tl_orphan_refuse(const struct tl_model *m, const struct tl_timeline *t, uint32_t target, const char *where,
                     struct err *e);

/* The error for TL_REACH_NOT_DESCENDANT (ERR_NOTFOUND): `target` does not
 * descend from timeline `tli` of backup `backup`; `where` names the regions. */
int tl_not_child_refuse(uint32_t target, uint32_t tli, const char *backup, const char *where, struct err *e);

/* -1 only with e set (no history for the target, out of memory). */
int tl_reach(const struct tl_model *m, uint32_t tli, uint64_t start_lsn, uint32_t target, struct tl_reach *r,
             struct err *e);
void tl_reach_free(struct tl_reach *r);

/* ---- retention: what no retained backup needs ---- */

struct tl_need {
    int have;                       /* at least one backup placed */
    int unplaceable;                /* a backup could not be placed: nothing may go */
    uint32_t tli;                   /* lowest timeline ... */
    uint64_t segno;                 /* ... and lowest start segment, taken separately */
    uint64_t seg_size;
    char start_wal[WAL_NAME_LEN + 1];   /* the start_wal that gave segno */
};

/* Add a retained backup by its start_wal and wal_segment_size.  A name that
 * does not parse, an invalid size or a size that differs from an earlier
 * backup's makes the need unplaceable. */
void tl_need_add(struct tl_need *n, const char *start_wal, uint64_t seg_size);
/* 1 when WAL file `name` (bare) is older than every retained backup's need:
 * a segment, .partial or .backup on a timeline <= the lowest and before the
 * lowest start segment.  History files and unknown names never are. */
int tl_need_expired(const struct tl_need *n, const char *name);

#endif
