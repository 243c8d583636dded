/*
 * watch — a long-running process's view of what it was started with
 * (contract in watch.h).
 */
#include "watch.h"

#include <string.h>
#include <unistd.h>

#include "creds.h"

static int same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* 1 when `path`'s identity is not what `have`/`was` recorded. */
static int file_changed(const char *path, int have, const struct stat *was)
{
    struct stat st;
    int now = path != NULL && stat(path, &st) == 0;

    return now != have || (now && !same_stat(&st, was));
}

void proc_watch_init(struct proc_watch *w, const struct config *c, const struct keyring *kr)
{
    ssize_t n;

    memset(w, 0, sizeof *w);
    n = readlink("/proc/self/exe", w->exe, sizeof w->exe - 1);
    if (n > 0) {
        w->exe[n] = '\0';
        w->have_exe = stat(w->exe, &w->exe_st) == 0;
    }
    w->conf_path = c->path;
    w->have_conf = c->path != NULL && stat(c->path, &w->conf_st) == 0;
    w->key_path = c->key_file;
    /* the key as it was read, not as it is now (keys.h) */
    w->have_key = c->key_file != NULL &&
                  (keys_current_file(kr, &w->key_st) == 0 || stat(c->key_file, &w->key_st) == 0);
    creds_profile_files_id(w->files, sizeof w->files);
}

int proc_watch_changed(const struct proc_watch *w)
{
    char exe[4096], files[sizeof w->files];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

    if (n > 0) {
        exe[n] = '\0';
        if (strcmp(exe, w->exe) != 0)   /* " (deleted)": replaced */
            return 1;
    }
    if ((w->have_exe && file_changed(w->exe, 1, &w->exe_st)) || file_changed(w->conf_path, w->have_conf, &w->conf_st) ||
        file_changed(w->key_path, w->have_key, &w->key_st))
        return 1;
    creds_profile_files_id(files, sizeof files);
    return strcmp(files, w->files) != 0;
}
