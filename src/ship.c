#include "ship.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archiver.h"
#include "log.h"
#include "obj.h"
#include "sha256tee.h"
#include "stor.h"
#include "util.h"

#define SHIP_MAX_REGIONS 16
#define SHIP_BACKOFF_MAX_MS 15000

struct ship_region {
    char *name;
    struct stor *st;
    uint64_t next_try_ms;
    unsigned backoff_ms;
};

/* Ship one queued file to one region.  1 = shipped, 0 = region had it. */
static int ship_one(struct ship_region *r, struct spool *sp, const struct keyring *kr, const char *name,
                    struct err *e)
{
    char path[PATH_MAX], key[128];
    struct stor_stat ss;
    struct sink *up = NULL;
    int fd, rc = -1;

    snprintf(key, sizeof key, "wal/%s", name);
    if (spool_entry_path(sp, r->name, name, path, sizeof path) < 0)
        return err_setf(e, ERR_IO, "spool path too long");
    if (stor_head(r->st, key, &ss, e) == 0) {
        char here[65], there[65];

        if (archive_hash_file(path, kr, here, NULL, e) < 0 || archive_hash_remote(r->st, key, kr, there, e) < 0)
            return err_prefix(e, "could not compare spooled \"%s\" with region %s's copy", name, r->name);
        if (strcmp(here, there) != 0)
            return err_setf(e, ERR_EXISTS,
                            "region %s already has \"%s\" with different content: keeping the spooled copy "
                            "(are two primaries archiving to one prefix?)",
                            r->name, key);
        if (spool_done(sp, r->name, name, e) < 0)
            return -1;
        return 0;
    }
    if (e->code != ERR_NOTFOUND)
        return -1;
    err_clear(e);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;   /* another shipper took it */
        return err_errno(e, ERR_IO, errno, "could not open \"%s\"", path);
    }
    if (stor_put(r->st, key, &up, e) < 0)
        goto out;
    if (sink_pump_fd(up, fd, path, 0, e) < 0 || sink_close(up, e) < 0)
        goto out;
    if (spool_done(sp, r->name, name, e) < 0)
        goto out;
    rc = 1;
out:
    sink_free(up);
    close(fd);
    return rc;
}

int ship_run(const struct config *conf, const struct keyring *kr, struct spool *sp, const struct ship_opts *o,
             struct ship_stats *stats, struct err *e)
{
    struct ship_region regs[SHIP_MAX_REGIONS];
    char **rnames = NULL;
    size_t nr = 0, i, nreg = 0;
    uint64_t last_progress = now_ms();
    unsigned max_idle_ms = (o->max_idle_s ? o->max_idle_s : 600) * 1000u;
    int lockfd = -1, rc = -1, got;

    memset(stats, 0, sizeof *stats);
    memset(regs, 0, sizeof regs);
    /* In the foreground (--once), wait for a background shipper to finish
     * rather than report success while it still works. */
    got = spool_lock(sp, "ship.lock", o->once ? 120000 : 0, &lockfd, e);
    if (got < 0)
        return -1;
    if (got == 0)
        return 0;   /* another shipper is at work */
    stats->ran = 1;

    for (;;) {
        uint64_t now = now_ms(), wake = now + SHIP_BACKOFF_MAX_MS;
        unsigned long left = 0;
        int progress = 0;

        spool_names_free(rnames, nr);
        rnames = NULL;
        if (spool_regions(sp, &rnames, &nr, e) < 0)
            goto out;
        for (i = 0; i < nr; i++) {
            const struct region_conf *rc_ = config_region(conf, rnames[i]);
            struct ship_region *r = NULL;
            char **names = NULL;
            size_t n = 0, k;

            if (spool_list(sp, rnames[i], &names, &n, e) < 0)
                goto out;
            if (n == 0) {
                spool_names_free(names, n);
                continue;
            }
            if (rc_ == NULL) {
                log_warning("the spool holds %zu files for region %s, which is no longer configured: left in %s",
                            n, rnames[i], spool_dir(sp));
                spool_names_free(names, n);
                continue;
            }
            for (k = 0; k < nreg; k++)
                if (strcmp(regs[k].name, rnames[i]) == 0)
                    r = &regs[k];
            if (r == NULL && nreg < SHIP_MAX_REGIONS) {
                struct err oe = ERR_INIT;

                r = &regs[nreg];
                r->name = strdup(rnames[i]);
                if (r->name == NULL || stor_open(rc_, conf, &r->st, &oe) < 0) {
                    free(r->name);
                    r->name = NULL;
                    spool_names_free(names, n);
                    *e = oe;
                    goto out;
                }
                nreg++;
            }
            if (r == NULL || r->next_try_ms > now) {
                left += n;
                if (r != NULL && r->next_try_ms < wake)
                    wake = r->next_try_ms;
                spool_names_free(names, n);
                continue;
            }
            for (k = 0; k < n; k++) {
                struct err se = ERR_INIT;
                int res = ship_one(r, sp, kr, names[k], &se);

                if (res < 0 && se.code == ERR_EXISTS) {
                    /* the region holds another file of this name: keep ours
                     * for the operator, out of the way of the queue */
                    struct err me = ERR_INIT;

                    log_error("%s", se.msg);
                    if (spool_set_aside(sp, r->name, names[k], &me) < 0)
                        log_error("%s", me.msg);
                    else
                        log_error("kept the spooled copy in %s/conflicts/%s/%s", spool_dir(sp), r->name,
                                  names[k]);
                    progress = 1;
                    continue;
                }
                if (res < 0) {
                    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : 500;
                    if (r->backoff_ms > SHIP_BACKOFF_MAX_MS)
                        r->backoff_ms = SHIP_BACKOFF_MAX_MS;
                    r->next_try_ms = now_ms() + r->backoff_ms;
                    if (r->next_try_ms < wake)
                        wake = r->next_try_ms;
                    log_warning("could not ship %s to region %s (retrying in %u ms): %s", names[k], r->name,
                                r->backoff_ms, se.msg);
                    left += n - k;
                    break;
                }
                r->backoff_ms = 0;
                r->next_try_ms = 0;
                progress = 1;
                if (res == 1)
                    stats->shipped++;
                else
                    stats->already++;
                log_debug("shipped %s to region %s", names[k], r->name);
            }
            spool_names_free(names, n);
        }
        stats->left = left;
        if (progress)
            last_progress = now_ms();
        if (left == 0) {
            rc = 0;
            goto out;
        }
        if (progress)
            continue;   /* new files may have arrived meanwhile */
        if (o->once) {
            err_setf(e, ERR_NET, "%lu files are still waiting in the spool for their async regions", left);
            goto out;
        }
        if (now_ms() - last_progress > max_idle_ms) {
            err_setf(e, ERR_NET, "no progress for %u s; %lu files left in the spool (the next wal-push restarts "
                     "the shipper)", max_idle_ms / 1000, left);
            goto out;
        }
        now = now_ms();
        if (wake > now)
            usleep((useconds_t)((wake - now) * 1000));
    }
out:
    for (i = 0; i < nreg; i++) {
        stor_free(regs[i].st);
        free(regs[i].name);
    }
    spool_names_free(rnames, nr);
    spool_unlock(lockfd);
    return rc;
}

void ship_spawn(const struct config *conf, struct spool *sp)
{
    char exe[PATH_MAX], logpath[PATH_MAX];
    struct err e = ERR_INIT;
    ssize_t n;
    pid_t pid;
    int fd, got;

    got = spool_lock(sp, "ship.lock", 0, &fd, &e);
    if (got <= 0)
        return;     /* a shipper runs (or the lock is unusable: ship later) */
    spool_unlock(fd);
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    snprintf(logpath, sizeof logpath, "%s/ship.log", spool_dir(sp));
    pid = fork();
    if (pid < 0) {
        log_warning("could not start the background shipper: %s", strerror(errno));
        return;
    }
    if (pid > 0) {
        /* The intermediate child exits at once; reap it. */
        waitpid(pid, NULL, 0);
        return;
    }
    /* intermediate child: detach, double-fork so PostgreSQL never waits */
    setsid();
    pid = fork();
    if (pid != 0)
        _exit(0);
    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }
    fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    if (conf->path != NULL)
        execl(exe, exe, "--config", conf->path, "ship", (char *)NULL);
    else
        execl(exe, exe, "ship", (char *)NULL);
    _exit(127);
}
