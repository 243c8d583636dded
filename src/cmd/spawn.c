/*
 * spawn — the program's one way to leave work running in the background.
 * Library code never forks (docs/ARCHITECTURE.md); the commands that hand
 * work to a detached process (wal-push starting the shipper and the
 * archiver process, wal-fetch and restore starting a prefetch) do it
 * through daemonize().
 */
#include "cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archd.h"
#include "log.h"
#include "note.h"
#include "ship.h"
#include "spool.h"
#include "util.h"
#include "wal.h"
#include "walfetch.h"

/* The caller's descriptors, by number and file: PostgreSQL 15 opens its
 * files without O_CLOEXEC, so the startup process running restore_command
 * hands down its relation files (a detached prefetcher kept a dropped
 * table's space allocated), and a shell reading a pipe to its end would
 * wait for a detached process holding a copy of it.  Only a descriptor
 * that still names the same file is closed: one walship closed and reused
 * is walship's own. */
#define INHERITED_MAX 256
static struct { int fd; dev_t dev; ino_t ino; } inherited[INHERITED_MAX];
static int n_inherited;

static void note_fd(int fd)
{
    struct stat st;

    if (fd > STDERR_FILENO && n_inherited < INHERITED_MAX && fstat(fd, &st) == 0) {
        inherited[n_inherited].fd = fd;
        inherited[n_inherited].dev = st.st_dev;
        inherited[n_inherited].ino = st.st_ino;
        n_inherited++;
    }
}

void spawn_note_inherited(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    struct err e = ERR_INIT;
    uint64_t v;
    int fd;

    if (d == NULL) {
        for (fd = STDERR_FILENO + 1; fd < 1024; fd++)
            if (fcntl(fd, F_GETFD) >= 0)
                note_fd(fd);
        return;
    }
    while ((de = readdir(d)) != NULL)
        if (parse_u64(de->d_name, 0, INT_MAX, &v, &e) == 0 && (int)v != dirfd(d))
            note_fd((int)v);
    closedir(d);
}

static void close_inherited(void)
{
    struct stat st;
    int i;

    for (i = 0; i < n_inherited; i++)
        if (fstat(inherited[i].fd, &st) == 0 && st.st_dev == inherited[i].dev && st.st_ino == inherited[i].ino)
            close(inherited[i].fd);
    n_inherited = 0;
}

int daemonize(const char *log_path)
{
    pid_t pid = fork();
    int fd;

    if (pid < 0)
        return -1;
    if (pid > 0) {
        /* The intermediate child exits at once; reap it so that PostgreSQL,
         * which waits for its archive/restore command, never waits for us. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return 1;
    }
    setsid();
    if (fork() != 0)
        _exit(0);
    close_inherited();
    /* /dev/null first: a log that cannot be opened (a full disk) must not
     * leave the caller's stdout and stderr (PostgreSQL's log pipe) held */
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    if (log_path != NULL) {
        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    return 0;
}

void ship_spawn(const struct config *conf, struct spool *sp)
{
    char exe[PATH_MAX], logpath[PATH_MAX], sysid[24];
    struct err e = ERR_INIT;
    ssize_t n;
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
    snprintf(sysid, sizeof sysid, "%llu", (unsigned long long)spool_sysid(sp));
    switch (daemonize(logpath)) {
    case -1:
        log_warning("could not start the background shipper: %s", strerror(errno));
        return;
    case 1:
        return;
    default:
        break;
    }
    /* what wal-push read from its flags too, not only the file: with
     * 'walship --key-file K wal-push %p' the shipper had no key, could not
     * check a spooled object, and the async region never got any WAL
     * (the environment, WALSHIP_KEY_FILE, is inherited); --log-level likewise */
    {
        const char *o = config_origin(conf, "key_file"), *lo, *argv[12];
        int a = 0;

        argv[a++] = exe;
        if (conf->path != NULL) {
            argv[a++] = "--config";
            argv[a++] = conf->path;
        }
        if (o != NULL && strcmp(o, "--key-file") == 0 && conf->key_file != NULL) {
            argv[a++] = "--key-file";
            argv[a++] = conf->key_file;
        }
        lo = config_origin(conf, "log_level");
        if (lo != NULL && strcmp(lo, "--log-level") == 0) {
            argv[a++] = "--log-level";
            argv[a++] = log_level_name(conf->log_level);
        }
        argv[a++] = "ship";
        argv[a++] = "--system-identifier";
        argv[a++] = sysid;
        argv[a] = NULL;
        execv(exe, (char *const *)argv);
    }
    _exit(127);
}

/* The archiver process runs in the forked child with wal-push's own
 * configuration and keys: nothing is read again, so its tag is the one
 * wal-push computed.  Called before wal-push starts any thread. */
static void archd_start(void *arg, const struct config *c, const struct keyring *kr, struct spool *sp,
                        const struct repo_ident *want, const char *waldir, const char *tag)
{
    char logpath[PATH_MAX];
    struct err e = ERR_INIT;
    int rc;

    (void)arg;
    snprintf(logpath, sizeof logpath, "%s/archd.log", spool_dir(sp));
    switch (daemonize(logpath)) {
    case -1:
        log_warning("could not start the archiver process: %s", strerror(errno));
        return;
    case 1:
        return;
    default:
        break;
    }
    rc = archd_run(c, kr, sp, want, waldir, tag, &note_log_sink, &e);
    if (rc < 0)
        log_error("archiver process: %s", e.msg);
    _exit(rc < 0 ? 3 : 0);
}

const struct archd_spawn archd_spawner = { archd_start, NULL };
void prefetch_spawn(const struct config *c, const struct keyring *kr, const int *order, int n,
                    const struct cluster_info *ci, const char *name, const char *dest, uint64_t seg_size)
{
    if (!wal_seg_size_valid(seg_size) || daemonize(NULL) != 0)
        return;
    walfetch_prefetch(c, kr, &note_log_sink, order, n, ci, name, dest, seg_size, c->parallel * 4, c->parallel > 1 ? c->parallel : 1);
    _exit(0);
}
