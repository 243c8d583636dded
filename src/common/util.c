#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

char *xstrdup(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

int strlcopy(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);

    if (n == 0)
        return -1;
    if (len >= n) {
        memcpy(dst, src, n - 1);
        dst[n - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

int str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int str_has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int array_reserve(void *items_ptr, size_t *cap, size_t need, size_t size)
{
    void *items, *nv;
    size_t ncap;

    if (need <= *cap)
        return 0;
    ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    if (size != 0 && ncap > SIZE_MAX / size)
        return -1;
    memcpy(&items, items_ptr, sizeof items);
    if ((nv = realloc(items, ncap * size)) == NULL)
        return -1;
    memcpy(items_ptr, &nv, sizeof nv);
    *cap = ncap;
    return 0;
}

int strvec_push(struct strvec *sv, const char *s)
{
    char *d;

    if (array_reserve(&sv->v, &sv->cap, sv->n + 1, sizeof *sv->v) < 0 || (d = strdup(s)) == NULL)
        return -1;
    sv->v[sv->n++] = d;
    return 0;
}

static int strvec_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void strvec_sort(struct strvec *sv)
{
    if (sv->n > 1)
        qsort(sv->v, sv->n, sizeof *sv->v, strvec_cmp);
}

void strvec_free(struct strvec *sv)
{
    size_t i;

    for (i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = sv->cap = 0;
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

int read_fd_all(int fd, const char *path, size_t max, unsigned char **out, size_t *len, struct err *e)
{
    unsigned char *buf = NULL;
    size_t used = 0, cap = 0;

    for (;;) {
        ssize_t n;

        if (used == cap) {
            unsigned char *nb;
            if (cap >= max + 1) {
                free(buf);
                return err_setf(e, ERR_IO, "\"%s\" is larger than %zu bytes", path, max);
            }
            cap = cap ? cap * 2 : 4096;
            if (cap > max + 1)
                cap = max + 1;
            nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                free(buf);
                return err_setf(e, ERR_NOMEM, "out of memory reading \"%s\"", path);
            }
            buf = nb;
        }
        n = read(fd, buf + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err_errno(e, ERR_IO, errno, "could not read \"%s\"", path);
            free(buf);
            return -1;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (used > max) {
        free(buf);
        return err_setf(e, ERR_IO, "\"%s\" is larger than %zu bytes", path, max);
    }
    if (buf == NULL && (buf = malloc(1)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    buf[used] = '\0';
    *out = buf;
    *len = used;
    return 0;
}

int read_file_all(const char *path, size_t max, unsigned char **out, size_t *len, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return err_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "could not open \"%s\"", path);
    rc = read_fd_all(fd, path, max, out, len, e);
    close(fd);
    return rc;
}

int dest_replaceable(const char *path, int *is_special, struct err *e)
{
    struct stat st;

    if (is_special != NULL)
        *is_special = 0;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : err_errno(e, ERR_IO, errno, "could not stat \"%s\"", path);
    if (S_ISREG(st.st_mode))
        return 0;
    if (S_ISDIR(st.st_mode))
        return err_setf(e, ERR_USAGE, "\"%s\" is a directory; name the file to write", path);
    if (is_special != NULL)
        *is_special = 1;
    if (S_ISLNK(st.st_mode))
        return err_setf(e, ERR_USAGE, "\"%s\" is a symbolic link; walship will not replace it", path);
    return err_setf(e, ERR_USAGE, "\"%s\" is not a regular file (a device, FIFO or socket); walship will not replace it",
                    path);
}

int open_tmp_beside(const char *dest, char *tmp, size_t n, struct err *e)
{
    int fd, k, len;

    for (k = 0; k < 100; k++) {
        len = k == 0 ? snprintf(tmp, n, "%s.walship-tmp.%d", dest, (int)getpid())
                     : snprintf(tmp, n, "%s.walship-tmp.%d.%d", dest, (int)getpid(), k);
        if (len < 0 || (size_t)len >= n)
            return err_setf(e, ERR_USAGE, "path too long: \"%s\"", dest);
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return err_errno(e, ERR_IO, errno, "could not create \"%s\"", tmp);
    }
    return err_setf(e, ERR_IO, "could not create a temp file beside \"%s\": 100 names taken", dest);
}

int sweep_dead_tmps(const char *dest)
{
    char dir[PATH_MAX], prefix[NAME_MAX + 32];
    const char *slash = strrchr(dest, '/'), *base = slash != NULL ? slash + 1 : dest;
    struct dirent *de;
    size_t plen;
    DIR *d;
    int removed = 0;

    if (slash == NULL)
        strlcopy(dir, ".", sizeof dir);
    else if ((size_t)(slash - dest) >= sizeof dir)
        return 0;
    else
        snprintf(dir, sizeof dir, "%.*s", slash == dest ? 1 : (int)(slash - dest), dest);
    if (snprintf(prefix, sizeof prefix, "%s.walship-tmp.", base) >= (int)sizeof prefix || (d = opendir(dir)) == NULL)
        return 0;
    plen = strlen(prefix);
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        char *end;
        long pid;

        if (strncmp(de->d_name, prefix, plen) != 0)
            continue;
        errno = 0;
        pid = strtol(de->d_name + plen, &end, 10);
        if (errno != 0 || pid <= 0 || pid > INT_MAX || (*end != '\0' && *end != '.') || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            st.st_uid != geteuid())
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int fsync_dir(const char *dir, struct err *e)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not open directory \"%s\"", dir);
    if (fsync(fd) < 0 && errno != EINVAL) {
        int saved = errno;
        close(fd);
        return err_errno(e, ERR_IO, saved, "could not fsync directory \"%s\"", dir);
    }
    close(fd);
    return 0;
}

/* Create one directory of mkdir_p; a new one's entry is made durable in
 * its parent, or a crash could lose the directory and every file synced
 * into it (the file driver's wal/, the spool's queues). */
static int mkdir_one(char *buf, unsigned mode, struct err *e)
{
    const char *parent;
    char *slash;
    int fd, rc = 0;

    if (mkdir(buf, mode) < 0)
        return errno == EEXIST ? 0 : err_errno(e, ERR_IO, errno, "could not create directory \"%s\"", buf);
    slash = strrchr(buf, '/');
    if (slash != NULL && slash != buf)
        *slash = '\0';
    parent = slash == NULL ? "." : slash == buf ? "/" : buf;
    /* a parent we may search but not read (mode 0711) cannot be opened:
     * nothing to be done there, the directory was made all the same */
    fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) < 0 && errno != EINVAL)
            rc = err_errno(e, ERR_IO, errno, "could not fsync directory \"%s\"", parent);
        close(fd);
    } else if (errno != EACCES && errno != EPERM) {
        rc = err_errno(e, ERR_IO, errno, "could not open directory \"%s\"", parent);
    }
    if (slash != NULL && slash != buf)
        *slash = '/';
    return rc;
}

int mkdir_p(const char *path, unsigned mode, struct err *e)
{
    char buf[PATH_MAX];
    char *p;

    if (strlcopy(buf, path, sizeof buf) < 0)
        return err_setf(e, ERR_IO, "path too long: \"%s\"", path);
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir_one(buf, mode, e) < 0)
            return -1;
        *p = '/';
    }
    return mkdir_one(buf, mode, e);
}

static int dir_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dir_list_sorted(const char *path, unsigned flags, char ***names, size_t *n, struct err *e)
{
    DIR *d = opendir(path);
    struct dirent *de;
    char **v = NULL;
    size_t cnt = 0, cap = 0;

    *names = NULL;
    *n = 0;
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        return err_errno(e, ERR_IO, errno, "could not open directory \"%s\"", path);
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if ((flags & DIR_NO_HIDDEN) && de->d_name[0] == '.')
            continue;
        if (flags & (DIR_ONLY_DIRS | DIR_ONLY_FILES)) {
            struct stat st;

            /* gone meanwhile (or a link to nothing): left out; any other
             * failure (EIO, ESTALE) is the directory's, never "no entry" */
            if (fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
                if (errno == ENOENT)
                    continue;
                err_errno(e, ERR_IO, errno, "could not stat \"%s/%s\"", path, de->d_name);
                closedir(d);
                dir_list_free(v, cnt);
                return -1;
            }
            if ((flags & DIR_ONLY_DIRS) ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
                continue;
        }
        if (array_reserve(&v, &cap, cnt + 1, sizeof *v) < 0 || (v[cnt] = strdup(de->d_name)) == NULL)
            goto nomem;
        cnt++;
    }
    if (errno != 0) {
        int saved = errno;

        closedir(d);
        dir_list_free(v, cnt);
        return err_errno(e, ERR_IO, saved, "could not read directory \"%s\"", path);
    }
    closedir(d);
    if (cnt > 1)
        qsort(v, cnt, sizeof *v, dir_name_cmp);
    *names = v;
    *n = cnt;
    return 0;
nomem:
    closedir(d);
    dir_list_free(v, cnt);
    return err_setf(e, ERR_NOMEM, "out of memory listing \"%s\"", path);
}

void dir_list_free(char **names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The holder writes its PID (decimal and a newline) into the lock file
 * once it holds the flock, and empties the file before letting go, so an
 * operator (or a test) can see which process holds it; a process killed
 * with the lock leaves its PID behind, which the next holder overwrites.
 * Best effort: the flock, not the content, is the lock. */
void lock_note_holder(int fd)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());

    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) != n) {
        /* nothing to do: the lock holds without its note */
    }
}

void lock_clear_holder(int fd)
{
    if (ftruncate(fd, 0) != 0) {
        /* the stale PID names a process that no longer holds the lock */
    }
}

int lock_fd_wait(int fd, unsigned wait_ms)
{
    uint64_t deadline = now_ms() + wait_ms;

    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK)
            return -1;
        if (now_ms() >= deadline)
            return 0;
        usleep(20000);
    }
    return 1;
}

int lock_file_wait(const char *path, unsigned wait_ms, int *fd, struct err *e)
{
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600), got;

    if (f < 0)
        return err_errno(e, ERR_IO, errno, "could not open lock file \"%s\"", path);
    if ((got = lock_fd_wait(f, wait_ms)) <= 0) {
        int saved = errno;

        close(f);
        return got == 0 ? 0 : err_errno(e, ERR_IO, saved, "could not lock \"%s\"", path);
    }
    lock_note_holder(f);
    *fd = f;
    return 1;
}

void lock_file_release(int fd)
{
    if (fd >= 0) {
        lock_clear_holder(fd);
        close(fd);
    }
}

size_t name_index(const void *base, size_t n, size_t size, size_t off, const char *name)
{
    const char *b = base;
    size_t lo = 0, hi = n, i;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(b + mid * size + off, name);

        if (d == 0)
            return mid;
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (i = 0; i < n && strcmp(b + i * size + off, name) != 0; i++)
        ;
    return i;
}
