/*
 * archd_client — wal-push's side of the archiver process (archd.h), and
 * the small files both sides share (archd_int.h).
 *
 * wal-push trusts nothing the process says but the pushed marker: the
 * identity of the very file (device, inode, size, mtime and ctime to the
 * nanosecond) and the tag of the binary and configuration that pushed it.
 * Anything else (no process, one serving another directory or with another
 * tag, a failure, the time running out) makes wal-push push the file
 * itself, as without the process.
 */
#include "archd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archd_int.h"
#include "creds.h"
#include "util.h"
#include "wal.h"

/* A process that has not claimed the file by then (not started, busy with
 * others, stuck) is not working on it: wal-push pushes it itself. */
#define ARCHD_CLAIM_MS 1500

void archd_release_claim(struct spool *sp, const char *name, int lockfd)
{
    char path[PATH_MAX];

    if (lockfd < 0)
        return;
    if (snprintf(path, sizeof path, "%s/claims/%s", spool_dir(sp), name) < (int)sizeof path)
        unlink(path);
    spool_unlock(lockfd);
}

static int fail_path(struct spool *sp, const char *name, char *buf, size_t len)
{
    return snprintf(buf, len, "%s/pushed/%s.fail", spool_dir(sp), name) < (int)len ? 0 : -1;
}

void archd_mark_failed(struct spool *sp, const char *name, const char *why)
{
    char path[PATH_MAX];
    int fd;

    if (fail_path(sp, name, path, sizeof path) < 0)
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (write_all(fd, why, strlen(why)) < 0) {
            /* the file's existence is the message */
        }
        close(fd);
    }
}

void archd_unmark_failed(struct spool *sp, const char *name)
{
    char path[PATH_MAX];

    if (fail_path(sp, name, path, sizeof path) == 0)
        unlink(path);
}

int archd_failed(struct spool *sp, const char *name)
{
    char path[PATH_MAX];

    return fail_path(sp, name, path, sizeof path) == 0 && access(path, F_OK) == 0;
}

/* The marker of an acknowledged segment is kept as pushed/NAME.acked until
 * PostgreSQL marks the segment done, so that the process does not push it
 * again meanwhile (and the marker is consumed, as push-ahead's is). */
static int acked_name(const char *name, char *buf, size_t len)
{
    return snprintf(buf, len, "%s.acked", name) < (int)len ? 0 : -1;
}

void archd_ack(struct spool *sp, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX];

    if (snprintf(from, sizeof from, "%s/pushed/%s", spool_dir(sp), name) < (int)sizeof from &&
        snprintf(to, sizeof to, "%s/pushed/%s.acked", spool_dir(sp), name) < (int)sizeof to &&
        rename(from, to) < 0) {
        /* the marker stays: the next call finds it again */
    }
}

void archd_ack_own(struct spool *sp, const struct stat *before, const char *path, const char *name,
                   const char *sha256_hex, const char *tag)
{
    char an[WAL_NAME_MAX + 8];
    struct stat st;

    if (acked_name(name, an, sizeof an) == 0 && stat(path, &st) == 0 && spool_same_file(before, &st) &&
        spool_mark_pushed_tag(sp, an, sha256_hex, &st, tag, &(struct err)ERR_INIT) < 0) {
        /* the process may push it once more: harmless, the region has it */
    }
}

int archd_acked(struct spool *sp, const char *name, const struct stat *st, const char *tag)
{
    char an[WAL_NAME_MAX + 8];

    if (acked_name(name, an, sizeof an) < 0 || !spool_has_marker(sp, an))
        return -1;
    return st != NULL && spool_pushed_matches_tag(sp, an, st, tag);
}

static int write_small(struct spool *sp, const char *file, const char *body, struct err *e)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    int fd;

    if (snprintf(path, sizeof path, "%s/%s", spool_dir(sp), file) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/tmp/%s.%ld", spool_dir(sp), file, (long)getpid()) >= (int)sizeof tmp)
        return err_setf(e, ERR_IO, "spool path too long");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not create \"%s\"", tmp);
    if (write_all(fd, body, strlen(body)) < 0 || close(fd) < 0) {
        unlink(tmp);
        return err_errno(e, ERR_IO, errno, "could not write \"%s\"", tmp);
    }
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        return err_errno(e, ERR_IO, errno, "could not rename \"%s\"", tmp);
    }
    return 0;
}

int archd_write_id(struct spool *sp, const char *waldir, const char *tag, struct err *e)
{
    char statusdir[PATH_MAX], body[256];
    struct stat st;

    if (snprintf(statusdir, sizeof statusdir, "%s/archive_status", waldir) >= (int)sizeof statusdir)
        return err_setf(e, ERR_IO, "WAL directory path too long");
    if (stat(statusdir, &st) < 0)
        return err_errno(e, ERR_IO, errno, "could not stat \"%s\"", statusdir);
    snprintf(body, sizeof body, "%ld\n%llu %llu\n%s\n", (long)getpid(), (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, tag);
    return write_small(sp, "archd.id", body, e);
}

/* ---- the process's view of itself ---- */

static long read_pid(struct spool *sp, const char *file)
{
    char path[PATH_MAX];
    unsigned char *buf;
    size_t len;
    long pid = 0;

    if (snprintf(path, sizeof path, "%s/%s", spool_dir(sp), file) >= (int)sizeof path ||
        read_file_all(path, 400, &buf, &len, &(struct err)ERR_INIT) < 0)
        return 0;
    if (len > 0 && len < 400) {
        buf[len - 1 < 399 ? len : 399] = '\0';
        pid = strtol((char *)buf, NULL, 10);
    }
    free(buf);
    return pid;
}

void archd_watch_init(struct archd_watch *w, const struct config *c, const struct keyring *kr)
{
    proc_watch_init(&w->pw, c, kr);
    w->last = now_ms();
}

int archd_watch_changed(struct archd_watch *w, struct spool *sp)
{
    if (now_ms() - w->last < 1000)
        return 0;
    w->last = now_ms();
    return read_pid(sp, "archd.stop") == (long)getpid() || proc_watch_changed(&w->pw);
}

/* ---- the tag ---- */

struct tag_walk {
    EVP_MD_CTX *md;
    int bad;
};

static int tag_item(void *arg, const struct config_item *it)
{
    struct tag_walk *t = arg;
    const char *parts[3] = { it->section, it->key, it->value ? it->value : "" };
    int i;

    for (i = 0; i < 3; i++)
        if (EVP_DigestUpdate(t->md, parts[i], strlen(parts[i]) + 1) != 1)
            t->bad = 1;
    return 0;
}

/* The environment that chooses the S3 credentials (docs/S3.md,
 * "Credentials"): the process signs with the environment it was started
 * with, so a wal-push whose AWS_* variables differ (another profile,
 * rotated keys, another role) is another configuration, not served by it. */
static int tag_env(EVP_MD_CTX *md)
{
    static const char *const vars[] = {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL_STS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "HOME",
    };
    size_t i;

    for (i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);

        if (EVP_DigestUpdate(md, vars[i], strlen(vars[i]) + 1) != 1 ||
            EVP_DigestUpdate(md, v != NULL ? "=" : "-", 1) != 1 ||
            (v != NULL && EVP_DigestUpdate(md, v, strlen(v) + 1) != 1))
            return -1;
    }
    return 0;
}

int archd_tag(const struct config *c, const struct keyring *kr, char tag[ARCHD_TAG_LEN + 1], struct err *e)
{
    struct tag_walk t = { EVP_MD_CTX_new(), 0 };
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char exe[4096], id[4096 + 256], files[512];
    struct stat st;
    ssize_t n;
    int rc = -1;

    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    if (n <= 0 || stat(exe, &st) < 0)
        memset(&st, 0, sizeof st);
    snprintf(id, sizeof id, "%s %llu %llu %lld %lld.%09ld", exe, (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec);
    /* the key file's identity too: a key rotated in place (same path, new
     * key) is another configuration, whose process must not push with the
     * old key; as it was when the key was read, not now (keys.h) */
    if (c->key_file == NULL || (keys_current_file(kr, &st) < 0 && stat(c->key_file, &st) < 0))
        memset(&st, 0, sizeof st);
    n = (ssize_t)strlen(id);
    snprintf(id + n, sizeof id - (size_t)n, " key %llu %llu %lld %lld.%09ld", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec);
    /* and the shared credentials files': keys rotated in ~/.aws/credentials
     * are not seen by a process that read its profile at its start */
    creds_profile_files_id(files, sizeof files);
    if (t.md == NULL || EVP_DigestInit_ex(t.md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(t.md, id, strlen(id) + 1) != 1 || tag_env(t.md) < 0 ||
        EVP_DigestUpdate(t.md, files, strlen(files) + 1) != 1) {
        err_setf(e, ERR_NOMEM, "SHA-256 failed");
        goto out;
    }
    if (config_walk(c, tag_item, &t, e) != 0)
        goto out;
    if (t.bad || EVP_DigestFinal_ex(t.md, md, &mdlen) != 1 || mdlen * 2 != ARCHD_TAG_LEN) {
        err_setf(e, ERR_NOMEM, "SHA-256 failed");
        goto out;
    }
    hex_encode(md, mdlen, tag);
    rc = 0;
out:
    EVP_MD_CTX_free(t.md);
    return rc;
}

/* ---- wal-push waiting for the process ---- */

enum archd_state { ARCHD_NONE, ARCHD_STARTING, ARCHD_OURS, ARCHD_ALIEN, ARCHD_ELSEWHERE };

/* Is a process running, and is it one whose markers count for us? */
static enum archd_state archd_state(struct spool *sp, const struct stat *statusdir, const char *tag, long *pid)
{
    char path[PATH_MAX], want[ARCHD_TAG_LEN + 1];
    unsigned char *buf;
    unsigned long long dev = 0, ino = 0;
    size_t len;
    long holder;
    int fd, n;

    *pid = 0;
    if (snprintf(path, sizeof path, "%s/%s", spool_dir(sp), ARCHD_LOCK) >= (int)sizeof path ||
        (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return ARCHD_NONE;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        close(fd);  /* unlocks */
        return ARCHD_NONE;
    }
    close(fd);
    holder = read_pid(sp, ARCHD_LOCK);
    if (snprintf(path, sizeof path, "%s/archd.id", spool_dir(sp)) >= (int)sizeof path ||
        read_file_all(path, 400, &buf, &len, &(struct err)ERR_INIT) < 0)
        return ARCHD_STARTING;
    buf[len < 399 ? len : 399] = '\0';
    n = sscanf((char *)buf, "%ld %llu %llu %64s", pid, &dev, &ino, want);
    free(buf);
    if (n != 4 || holder == 0 || *pid != holder)
        return ARCHD_STARTING;     /* the id is an older process's */
    if (dev != (unsigned long long)statusdir->st_dev || ino != (unsigned long long)statusdir->st_ino)
        return ARCHD_ELSEWHERE;
    return strcmp(want, tag) == 0 ? ARCHD_OURS : ARCHD_ALIEN;
}

struct handoff {
    int spawned, claimed, ifd;
    long pid;               /* the process of ours seen running, 0 none yet */
    uint64_t t0;
    const char *why;        /* why wal-push pushes the file itself */
};

/* Has process PID claimed NAME (the claim lock's holder note is its PID)?
 * A claim left by a process killed with -9 names a PID that no longer
 * holds archd.lock: the caller checks that first. */
static int claimed_by(struct spool *sp, const char *name, long pid)
{
    char claim[WAL_NAME_MAX + 8];

    snprintf(claim, sizeof claim, "claims/%s", name);
    return pid > 0 && read_pid(sp, claim) == pid;
}

/* One look: 1 archived, 0 fall back, -1 wait on.  wal-push waits only on
 * a process of ours that is working on its very file: one that has not
 * claimed it within ARCHD_CLAIM_MS, that released it without the marker
 * (a failure it could not even record: a full disk), or that died, is
 * not working on it, and the file is pushed here at once. */
static int handoff_step(const struct config *c, const struct keyring *kr, struct spool *sp,
                        const struct repo_ident *want, const char *waldir, const struct stat *sdir, const char *path,
                        const char *name, const char *tag, const struct archd_spawn *spawn, struct handoff *h,
                        const struct note_sink *notes)
{
    enum archd_state state;
    struct stat st;
    long pid;

    if (stat(path, &st) < 0) {
        h->why = "it cannot be read";   /* pushing it here says why */
        return 0;
    }
    if (spool_pushed_matches_tag(sp, name, &st, tag)) {
        archd_ack(sp, name);
        return 1;
    }
    if (archd_acked(sp, name, &st, tag) == 1)
        return 1;   /* asked again (PostgreSQL restarted before it marked it done) */
    state = archd_state(sp, sdir, tag, &pid);
    if (state == ARCHD_ALIEN) {
        char body[32];

        /* another binary or configuration: it must not acknowledge for us */
        note(notes, LOG_INFO, "asking archiver process %ld (another binary or configuration) to stop", pid);
        snprintf(body, sizeof body, "%ld\n", pid);
        write_small(sp, "archd.stop", body, &(struct err)ERR_INIT);
        h->why = "the archiver process is another binary's or configuration's";
        return 0;
    }
    if (spool_has_marker(sp, name)) {
        /* the process may have written it since the first look above */
        if (spool_pushed_matches_tag(sp, name, &st, tag)) {
            archd_ack(sp, name);
            return 1;
        }
        h->why = "its marker is not this very file's (or not this configuration's)";
        return 0;
    }
    if (archd_acked(sp, name, &st, tag) == 0) {
        h->why = "its marker is not this very file's (or not this configuration's)";
        return 0;
    }
    if (archd_failed(sp, name)) {
        h->why = "the archiver process failed to archive it";
        return 0;
    }
    if (state == ARCHD_ELSEWHERE) {
        h->why = "the archiver process serves another data directory";
        return 0;
    }
    if (h->pid != 0 && (state != ARCHD_OURS || pid != h->pid)) {
        h->why = "the archiver process is gone";
        return 0;
    }
    if (state == ARCHD_NONE && !h->spawned) {
        h->spawned = 1;
        spawn->start(spawn->arg, c, kr, sp, want, waldir, tag);
    }
    if (state == ARCHD_OURS) {
        h->pid = pid;
        if (claimed_by(sp, name, pid)) {
            h->claimed = 1;
            return -1;
        }
        if (h->claimed) {
            /* released: the marker is written before the claim is
             * released, so none means a failure it could not record */
            if (spool_pushed_matches_tag(sp, name, &st, tag)) {
                archd_ack(sp, name);
                return 1;
            }
            h->why = "the archiver process gave it up without a marker";
            return 0;
        }
    }
    if (now_ms() - h->t0 < ARCHD_CLAIM_MS)
        return -1;
    h->why = "the archiver process has not claimed it in time";
    return 0;
}

int archd_handoff(const struct config *c, const struct keyring *kr, struct spool *sp, const struct repo_ident *want,
                  const char *waldir, const char *path, const char *name, const char *tag,
                  const struct archd_spawn *spawn, const struct note_sink *notes)
{
    char statusdir[PATH_MAX], pushed[PATH_MAX];
    uint64_t deadline = now_ms() + (c->retry_deadline > 0 ? c->retry_deadline * 1000 : 1000);
    struct handoff h = { 0, 0, -1, 0, now_ms(), NULL };
    struct stat sdir;
    int got;

    if (snprintf(statusdir, sizeof statusdir, "%s/archive_status", waldir) >= (int)sizeof statusdir ||
        snprintf(pushed, sizeof pushed, "%s/pushed", spool_dir(sp)) >= (int)sizeof pushed ||
        stat(statusdir, &sdir) < 0)
        return 0;
    while ((got = handoff_step(c, kr, sp, want, waldir, &sdir, path, name, tag, spawn, &h, notes)) < 0) {
        struct pollfd pfd;

        if (now_ms() >= deadline) {
            h.why = "the archiver process did not archive it within retry_deadline";
            got = 0;
            break;
        }
        /* after the spawn: the started process must not inherit it */
        if (h.ifd == -1 && (h.ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) >= 0 &&
            inotify_add_watch(h.ifd, pushed, IN_MOVED_TO | IN_CREATE) < 0) {
            close(h.ifd);
            h.ifd = -2;
        }
        pfd.fd = h.ifd;
        pfd.events = POLLIN;
        if (h.ifd >= 0 && poll(&pfd, 1, 20) > 0) {
            char buf[4096];

            while (read(h.ifd, buf, sizeof buf) > 0)
                ;
        } else if (h.ifd < 0) {
            usleep(5000);
        }
    }
    if (h.ifd >= 0)
        close(h.ifd);
    if (got == 0 && h.why != NULL)
        note(notes, LOG_INFO, "pushing %s here: %s", name, h.why);
    return got;
}
