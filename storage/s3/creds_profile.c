/* creds_profile — the shared files ~/.aws/credentials and ~/.aws/config
 * (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, AWS_PROFILE), read with
 * libinih: static keys, role_arn + web_identity_token_file, and
 * credential_process (run without a shell, Version 1 JSON on stdout). */
#include "autoconf.h"
#include "creds.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wordexp.h>

#include "util.h"

#define PROCESS_TIMEOUT_MS 60000
#define PROCESS_OUT_MAX 65536

extern char **environ;

/* sso_*: IAM Identity Center, which the SDKs use and walship does not: a
 * source configured, so `auto` must not go past it to the instance role */
enum { K_AK, K_SK, K_TOK, K_PROCESS, K_ROLE, K_WEBTOK, K_SESSION, K_SOURCE, K_CREDSRC, K_SSO, K_SSO_URL, NKEYS };
static const char *const keynames[NKEYS] = {
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "credential_process", "role_arn",
    "web_identity_token_file", "role_session_name", "source_profile", "credential_source", "sso_session",
    "sso_start_url",
};

struct prof {
    const char *name;
    int config;             /* reading the config file: "[profile NAME]" */
    int seen;               /* 1: in the config file, 2: in the credentials file */
    int oom;
    char *v[NKEYS];
    /* the file, read line by line for inih: the section is tracked here,
     * since inih cuts its name at 49 bytes ([profile NAME...] of another
     * profile, cut, read as NAME: its keys signed for NAME) */
    FILE *f;
    int mid_line;           /* the last piece handed over did not end a line */
    int lineno;
    char *section;          /* the current section's whole name */
    /* given twice in one file (botocore refuses such a file; first-wins
     * would sign with the keys an appended section meant to replace) */
    char *hdr;              /* this file's first header of the profile */
    int key_line[NKEYS];    /* where this file set each key, 0: not */
    int dup_line;
    const char *dup_what;
};

static int section_matches(const struct prof *p, const char *section)
{
    if (p->config && strncmp(section, "profile ", 8) == 0) {
        const char *s = section + 8;

        while (*s == ' ')
            s++;
        return strcmp(s, p->name) == 0;
    }
    return strcmp(section, p->name) == 0 && (!p->config || strcmp(p->name, "default") == 0);
}

static void on_header(struct prof *p)
{
    if (p->section == NULL || !section_matches(p, p->section))
        return;
    memset(p->key_line, 0, sizeof p->key_line);     /* [default] then [profile default]: two sections */
    if (p->hdr == NULL) {
        if ((p->hdr = strdup(p->section)) == NULL)
            p->oom = 1;
    } else if (strcmp(p->hdr, p->section) == 0 && p->dup_line == 0) {
        p->dup_line = p->lineno;
        p->dup_what = "the section";
    }
}

static char *reader(char *str, int num, void *stream)
{
    struct prof *p = stream;
    const char *s = str, *end;

    if (fgets(str, num, p->f) == NULL)
        return NULL;
    if (!p->mid_line) {
        p->lineno++;
        if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
            s += 3;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '[') {
            free(p->section);
            /* a header longer than inih's first buffer: no section (an error
             * in on_kv) rather than a guess */
            p->section = (end = strchr(s, ']')) != NULL ? strndup(s + 1, (size_t)(end - s - 1)) : strdup("");
            if (p->section == NULL)
                p->oom = 1;
            on_header(p);
        }
    }
    p->mid_line = strchr(str, '\n') == NULL;
    return str;
}

static int on_kv(void *arg, const char *inih_section, const char *name, const char *value)
{
    struct prof *p = arg;
    size_t i;

    (void)inih_section;     /* cut at 49 bytes */
    if (p->section == NULL || !section_matches(p, p->section))
        return 1;
    p->seen |= p->config ? 1 : 2;
    for (i = 0; i < NKEYS; i++) {
        if (strcmp(name, keynames[i]) != 0)
            continue;
        if (p->key_line[i] != 0 && p->dup_line == 0) {
            p->dup_line = p->lineno;
            p->dup_what = keynames[i];
        }
        p->key_line[i] = p->lineno;
        if (p->v[i] == NULL && value[0] != '\0' && (p->v[i] = strdup(value)) == NULL)
            p->oom = 1;
    }
    return 1;
}

static pthread_mutex_t ini_lock = PTHREAD_MUTEX_INITIALIZER;

/* 0 read (or absent), -1 a line inih could not read, or a file that is
 * there and cannot be opened: as absent, `auto` would go on to the next
 * source (a container's or instance's role) and sign with other
 * credentials than the ones the operator wrote down. */
static int read_ini(const char *path, struct prof *p, struct err *e)
{
    int rc;

    pthread_mutex_lock(&ini_lock);
#ifdef HAVE_INI_RUNTIME_OPTIONS
    /* the same options as the config reader: long lines (session tokens) */
    ini_allow_multiline = 0;
    ini_use_stack = 0;
    ini_allow_realloc = 1;
    ini_initial_alloc = 4096;
    ini_max_line = (1 << 20) + 3;
#endif
    if ((p->f = fopen(path, "re")) == NULL) {
        int err = errno;

        pthread_mutex_unlock(&ini_lock);
        if (err == ENOENT || err == ENOTDIR)
            return 0;   /* absent */
        return err_errno(e, ERR_CONFIG, err, "%s is there but cannot be read", path);
    }
    p->mid_line = 0;
    p->lineno = 0;
    p->dup_line = 0;
    memset(p->key_line, 0, sizeof p->key_line);
    rc = ini_parse_stream(reader, p, on_kv, p);
    if (ferror(p->f) && rc == 0)
        rc = -1;
    fclose(p->f);
    p->f = NULL;
    free(p->section);
    free(p->hdr);
    p->section = p->hdr = NULL;
    pthread_mutex_unlock(&ini_lock);
    if (p->dup_line != 0)
        return err_setf(e, ERR_CONFIG, "%s:%d: profile \"%s\": %s is given twice in the file (the AWS CLI refuses "
                        "it too): keep one", path, p->dup_line, p->name, p->dup_what);
    if (rc == -1 || rc == -2)
        return err_setf(e, rc == -2 ? ERR_NOMEM : ERR_CONFIG, "%s could not be read", path);
    if (rc != 0)
        return err_setf(e, ERR_CONFIG, "%s: line %d cannot be read", path, rc);
    if (p->oom)
        return err_setf(e, ERR_NOMEM, "out of memory");
    return 0;
}

/* ~/.aws/REL.  Without $HOME (env -i, some supervisors), the home directory
 * is the password database's, as the SDKs' expanduser("~") has it: with
 * "" the files were looked for in /.aws, found absent, and `auto` went on
 * to the container's or instance's role instead of the profile written
 * down in ~/.aws. */
static char *file_path(const char *env, const char *rel)
{
    const char *v = getenv(env), *home = getenv("HOME");
    struct passwd pw, *res = NULL;
    char buf[4096];

    if (v != NULL && v[0] != '\0')
        return strdup(v);
    if ((home == NULL || home[0] == '\0') && getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 &&
        res != NULL)
        home = pw.pw_dir;
    return xasprintf("%s/.aws/%s", home ? home : "", rel);
}

void creds_profile_files_id(char *out, size_t len)
{
    static const char *const files[2][2] = { { "AWS_SHARED_CREDENTIALS_FILE", "credentials" },
                                             { "AWS_CONFIG_FILE", "config" } };
    size_t i, used = 0;

    if (len == 0)
        return;
    out[0] = '\0';
    for (i = 0; i < 2; i++) {
        char *path = file_path(files[i][0], files[i][1]);
        struct stat st;
        int n;

        if (path != NULL && stat(path, &st) == 0)
            n = snprintf(out + used, len - used, "%s %llu %llu %lld %lld.%09ld;", files[i][1],
                         (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, (long long)st.st_size,
                         (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        else
            n = snprintf(out + used, len - used, "%s %s;", files[i][1], path != NULL ? "-" : "?");
        free(path);
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

int creds_src_profile(const struct creds_opts *o, int explicit_, struct creds *c, char *detail, size_t n,
                      struct err *e)
{
    const char *envp = getenv("AWS_PROFILE");
    struct prof p;
    char *cf = file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    char *kf = file_path("AWS_CONFIG_FILE", "config");
    char what[300];
    size_t i;
    int rc = -1, named;

    memset(&p, 0, sizeof p);
    named = o->profile != NULL || (envp != NULL && envp[0] != '\0');
    p.name = o->profile ? o->profile : named ? envp : "default";
    if (cf == NULL || kf == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (read_ini(cf, &p, e) < 0)
        goto out;
    p.config = 1;
    if (read_ini(kf, &p, e) < 0)
        goto out;
    for (i = 0; i < NKEYS && p.v[i] == NULL; i++)
        ;
    /* auto, unnamed: a [default] of region and output only (what `aws
     * configure set region` writes on an instance) holds no credentials,
     * and the SDKs go on to the container and the instance role; but a
     * section of the credentials file is there for credentials (a typo in
     * its key names is an error, not the instance's role) */
    if ((!p.seen || (i == NKEYS && !(p.seen & 2))) && !named && !explicit_) {
        rc = 1;
        goto out;
    }
    if (!p.seen) {
        err_setf(e, ERR_CONFIG, "profile \"%s\" is in neither %s nor %s", p.name, cf, kf);
        goto out;
    }
    snprintf(what, sizeof what, "profile %s", p.name);
    if (p.v[K_ROLE] != NULL && p.v[K_WEBTOK] != NULL && p.v[K_WEBTOK][0] != '/') {
        /* as AWS_WEB_IDENTITY_TOKEN_FILE (docs/CONFIG.md): PostgreSQL runs
         * archive_command in the data directory, where a relative path
         * names another file than where it was tried */
        err_setf(e, ERR_CONFIG, "profile \"%s\": web_identity_token_file \"%s\" is a relative path; walship "
                 "runs in the data directory under PostgreSQL: write the absolute path", p.name, p.v[K_WEBTOK]);
    } else if (p.v[K_ROLE] != NULL && p.v[K_WEBTOK] != NULL) {
        char d[200];

        rc = creds_src_web_identity(o, p.v[K_WEBTOK], p.v[K_ROLE], p.v[K_SESSION], c, d, sizeof d, e);
        if (rc == 0)
            snprintf(detail, n, "%s, web identity %s", p.name, d);
    } else if (p.v[K_ROLE] != NULL) {
        err_setf(e, ERR_CONFIG, "profile \"%s\": role_arn with %s is not supported; use "
                 "web_identity_token_file, credential_process or static keys", p.name,
                 p.v[K_SOURCE] ? "source_profile" : p.v[K_CREDSRC] ? "credential_source" : "no token file");
    } else if (p.v[K_AK] != NULL || p.v[K_SK] != NULL) {
        if (p.v[K_AK] == NULL || p.v[K_SK] == NULL) {
            err_setf(e, ERR_CONFIG, "profile \"%s\": aws_access_key_id and aws_secret_access_key must be set "
                     "together", p.name);
        } else {
            snprintf(detail, n, "%s, access key %s", p.name, p.v[K_AK]);
            rc = creds_set(c, p.v[K_AK], p.v[K_SK], p.v[K_TOK], 0, e);
        }
    } else if (p.v[K_PROCESS] != NULL) {
        snprintf(what, sizeof what, "profile %s: credential_process", p.name);
        rc = creds_run_process(p.v[K_PROCESS], what, c, e);
        if (rc == 0)
            snprintf(detail, n, "%s, credential_process", p.name);
    } else if (p.v[K_SSO] != NULL || p.v[K_SSO_URL] != NULL) {
        err_setf(e, ERR_CONFIG, "profile \"%s\" uses IAM Identity Center (sso_session, sso_start_url), which "
                 "walship does not implement; use credential_process = aws configure export-credentials "
                 "--profile %s", p.name, p.name);
    } else {
        err_setf(e, ERR_CONFIG, "profile \"%s\" has no credentials (aws_access_key_id, credential_process, "
                 "or role_arn with web_identity_token_file)", p.name);
    }
out:
    for (i = 0; i < NKEYS; i++)
        free(p.v[i]);
    free(cf);
    free(kf);
    return rc;
}

/* ---- credential_process ---- */

static int collect(int fd, pid_t pid, const char *what, char *out, size_t *len, struct err *e)
{
    uint64_t deadline = now_ms() + PROCESS_TIMEOUT_MS;

    *len = 0;
    for (;;) {
        struct pollfd pf = { fd, POLLIN, 0 };
        uint64_t now = now_ms();
        ssize_t r;
        int pr;

        if (now >= deadline) {
            kill(pid, SIGKILL);
            return err_setf(e, ERR_AUTH, "%s: no answer within %d s", what, PROCESS_TIMEOUT_MS / 1000);
        }
        pr = poll(&pf, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return err_errno(e, ERR_IO, errno, "%s: poll", what);
        if (pr == 0)
            continue;
        r = read(fd, out + *len, PROCESS_OUT_MAX - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return err_errno(e, ERR_IO, errno, "%s: read", what);
        if (r == 0)
            return 0;
        *len += (size_t)r;
        if (*len >= PROCESS_OUT_MAX) {
            kill(pid, SIGKILL);
            return err_setf(e, ERR_AUTH, "%s: more than %d bytes of output", what, PROCESS_OUT_MAX);
        }
    }
}

static int check_version(const char *buf, size_t len, const char *what, struct err *e)
{
    json_t *root = json_loadb(buf, len, 0, NULL);
    json_t *v = root ? json_object_get(root, "Version") : NULL;
    int ok = v != NULL && json_is_integer(v) && json_integer_value(v) == 1;

    json_decref(root);
    if (root == NULL)
        return err_setf(e, ERR_AUTH, "%s: the output is not JSON", what);
    return ok ? 0 : err_setf(e, ERR_AUTH, "%s: the output has no \"Version\": 1", what);
}

int creds_run_process(const char *cmd, const char *what, struct creds *c, struct err *e)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t sa;
    sigset_t dfl;
    wordexp_t we;
    int pfd[2] = { -1, -1 }, status = 0, rc = -1, wrc;
    char *out = NULL;
    size_t len = 0;
    pid_t pid = -1;

    if ((wrc = wordexp(cmd, &we, WRDE_NOCMD)) != 0)
        return err_setf(e, ERR_CONFIG, "%s: cannot split the command (%s)", what,
                        wrc == WRDE_CMDSUB ? "command substitution is not allowed" : "bad syntax");
    if (we.we_wordc == 0) {
        wordfree(&we);
        return err_setf(e, ERR_CONFIG, "%s: empty command", what);
    }
    out = malloc(PROCESS_OUT_MAX + 1);
    if (out == NULL || pipe2(pfd, O_CLOEXEC) < 0) {
        err_setf(e, out ? ERR_IO : ERR_NOMEM, "%s: cannot make a pipe", what);
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    /* SIGPIPE as any program expects it (walship ignores it: src/cmd/main.c) */
    posix_spawnattr_init(&sa);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_setsigdefault(&sa, &dfl);
    posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF);
    wrc = posix_spawnp(&pid, we.we_wordv[0], &fa, &sa, we.we_wordv, environ);
    posix_spawnattr_destroy(&sa);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    pfd[1] = -1;
    if (wrc != 0) {
        pid = -1;
        err_errno(e, ERR_CONFIG, wrc, "%s: cannot run \"%s\"", what, we.we_wordv[0]);
        goto out;
    }
    if (collect(pfd[0], pid, what, out, &len, e) < 0)
        goto out;
    out[len] = '\0';
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        err_setf(e, ERR_AUTH, "%s: \"%s\" failed (%s %d)", what, we.we_wordv[0],
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        goto out;
    }
    if (check_version(out, len, what, e) < 0 || creds_parse_json(out, len, what, c, e) < 0)
        goto out;
    rc = 0;
out:
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    free(out);
    wordfree(&we);
    return rc;
}
