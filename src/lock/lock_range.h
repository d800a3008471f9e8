/* An owner's locked ranges on one file, kept as the kernel keeps one open file
 * description's POSIX locks: sorted, non-overlapping, adjacent same-type ranges merged. */
#ifndef PEERNFS_LOCK_RANGE_H
#define PEERNFS_LOCK_RANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lock_rng {
    off_t start, end; /* inclusive; end == OFF_MAX: to end of file */
    short type;       /* F_RDLCK or F_WRLCK */
};

struct lock_rngset {
    struct lock_rng *v;
    size_t n, cap;
};

#ifndef OFF_MAX
#define OFF_MAX ((off_t)INT64_MAX)
#endif

/* Make room so that the next lock_rngset_apply cannot fail: 0 or -ENOMEM. */
int lock_rngset_reserve(struct lock_rngset *rs);
/* Set [start, end] to `type` (F_UNLCK removes). Needs a prior successful reserve. */
void lock_rngset_apply(struct lock_rngset *rs, off_t start, off_t end, short type);
void lock_rngset_free(struct lock_rngset *rs);

/* Wire (start, len) -> clamped inclusive range (see lock.h). */
void lock_range_clamp(uint64_t start, uint64_t len, off_t *s, off_t *e);

#endif
