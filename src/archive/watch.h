/*
 * watch — what a long-running process (the archiver process, the shipper)
 * was started with and must notice when it changes: its binary, its
 * configuration file, the key file, and the shared AWS credentials and
 * config files (a profile's keys are read once, at start: keys rotated in
 * ~/.aws/credentials are not seen by a process that keeps running).
 */
#ifndef WALSHIP_WATCH_H
#define WALSHIP_WATCH_H

#include <sys/stat.h>

#include "config.h"
#include "keys.h"

struct proc_watch {
    char exe[4096];
    struct stat exe_st, conf_st, key_st;
    int have_exe, have_conf, have_key;
    const char *conf_path, *key_path;
    char files[512];        /* creds_profile_files_id at start */
};

void proc_watch_init(struct proc_watch *w, const struct config *c, const struct keyring *kr);
/* 1 when one of them changed since proc_watch_init (the binary replaced,
 * a file's device, inode, size or mtime other, one gone or made). */
int proc_watch_changed(const struct proc_watch *w);

#endif
