/*
 * retention_clock — the clock side of retention: how far a backup's times
 * are ahead of this host's clock, and the refusal of age-based retention
 * while any backup is (docs/RETENTION.md "Clocks").  Also read by
 * `walship status` for its clock alarm.
 */
#include "retention.h"

#include <stdio.h>

int64_t ret_backup_ahead(const struct manifest *m, time_t now)
{
    int64_t t;

    if (m == NULL)
        return 0;
    t = m->start_time > m->stop_time ? m->start_time : m->stop_time;
    return t > (int64_t)now ? t - (int64_t)now : 0;
}

/* Ages computed from a clock that disagrees with the backups' are wrong in
 * an unknown direction: a backup stamped in the future was taken on a host
 * whose clock ran ahead, or this host's clock is now behind (and may have
 * been ahead when it judged the others).  Either way no age is trusted. */
int ret_clock_check(const struct catalog *cat, time_t now, struct err *e)
{
    const struct cat_entry *worst = NULL;
    int64_t ahead = 0;
    char t[32], n[32];
    size_t i;

    for (i = 0; i < cat->n; i++) {
        int64_t a = cat->v[i].complete ? ret_backup_ahead(cat->v[i].man, now) : 0;

        if (a > ahead) {
            ahead = a;
            worst = &cat->v[i];
        }
    }
    if (worst == NULL || ahead <= RET_CLOCK_SKEW_MAX)
        return 0;
    man_format_time((int64_t)now + ahead, t);
    man_format_time((int64_t)now, n);
    return err_setf(e, ERR_INTERNAL,
                    "backup %s carries the time %s, %lld s ahead of this host's clock (%s; more than %d s of "
                    "skew): retain_days cannot judge ages while the clocks disagree, so nothing is deleted in "
                    "this region; correct the clock (of the host that took it, or of this one)",
                    worst->name, t, (long long)ahead, n, RET_CLOCK_SKEW_MAX);
}
