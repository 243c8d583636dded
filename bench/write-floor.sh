#!/bin/bash
# bench/write-floor.sh — how fast this machine's disk takes N MiB durably,
# written four ways, so that a restore's time can be set against the disk's
# own floor (docs/BACKUP.md, "The disk is not the floor").
#
#   bench/write-floor.sh [--mb N] [--rounds R] [--dir DIR]
#
#   --mb N      size of the file written (default 1672: the PGDATA of
#               backup-bench.sh --scale 10 --big-mb 1500)
#   --rounds R  rounds; the four ways alternate within a round (default 5)
#   --dir DIR   where to write (default: a temp dir under $TMPDIR or /tmp;
#               put it on the disk the restores write to)
#
# The ways, each 1 MiB writes of random bytes held in memory (so only the
# writing is timed), then fdatasync:
#   buffered      write(2), nothing else: the kernel starts writeback late,
#                 the final fdatasync waits for almost all of it (what
#                 `dd bs=1M conv=fsync` measures)
#   behind        sync_file_range(WRITE) of every 8 MiB once written (what
#                 walship's backup-fetch does)
#   behind+wait   the same, and wait for the 8 MiB before it (at most two
#                 steps dirty)
#   direct        O_DIRECT, 4 MiB writes from an aligned buffer
# Before each timed write the previous file is removed, `sync` run and the
# page cache dropped (as root), after a pause for the file system's discard.
# Prints each way's wall times in ms and their median.  Needs cc.
# One thread writes: the three buffered ways include its kernel copy into the
# page cache (on 2026-12-05 about 1.7 s of sys CPU per 1672 MiB here), so
# only `direct` gives the disk's own speed; the others show what buffered
# writing costs one thread.
set -euo pipefail

mb=1672 rounds=5 dir=""
while [ $# -gt 0 ]; do
    case $1 in
        --mb) mb=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        *) echo "write-floor: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v cc >/dev/null || { echo "write-floor: cc is needed" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/walship-wfloor.XXXXXX")
trap 'rm -rf "$work"' EXIT
[ -n "$dir" ] || dir=$work
out="$dir/write-floor.$$"
trap 'rm -rf "$work" "$out"' EXIT

cat > "$work/wf.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STEP (8L << 20)

int main(int argc, char **argv)
{
    const char *way = argv[1], *path = argv[2];
    long total = atol(argv[3]) << 20, chunk = 1L << 20, off = 0, started = 0, waited = 0;
    int direct = strcmp(way, "direct") == 0, fd;
    struct timespec a, b;
    unsigned char *buf;
    FILE *r;

    if (direct)
        chunk = 4L << 20;
    if (posix_memalign((void **)&buf, 4096, (size_t)chunk) != 0)
        return 1;
    r = fopen("/dev/urandom", "rb");
    if (r == NULL || fread(buf, 1, (size_t)chunk, r) != (size_t)chunk)
        return 1;
    fclose(r);
    clock_gettime(CLOCK_MONOTONIC, &a);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (direct ? O_DIRECT : 0), 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    while (off < total) {
        buf[0]++;   /* not the same block twice */
        if (write(fd, buf, (size_t)chunk) != chunk) {
            perror("write");
            return 1;
        }
        off += chunk;
        if (strncmp(way, "behind", 6) == 0 && off - started >= STEP) {
            sync_file_range(fd, started, off - started, SYNC_FILE_RANGE_WRITE);
            if (strcmp(way, "behind+wait") == 0 && started > waited)
                sync_file_range(fd, waited, started - waited,
                                SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
            waited = started;
            started = off;
        }
    }
    if (fdatasync(fd) < 0 || close(fd) < 0) {
        perror("fdatasync");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%ld\n", (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));
    return 0;
}
EOF
cc -O2 -o "$work/wf" "$work/wf.c"

echo "write-floor: $mb MiB into $dir, $rounds rounds, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A times
ways=(buffered behind behind+wait direct)
for r in $(seq "$rounds"); do
    for w in "${ways[@]}"; do
        rm -f "$out"
        sync
        sleep 3
        [ "$(id -u)" = 0 ] && echo 3 > /proc/sys/vm/drop_caches
        times[$w]="${times[$w]:-} $("$work/wf" "$w" "$out" "$mb")"
    done
done
for w in "${ways[@]}"; do
    # shellcheck disable=SC2086
    med=$(printf '%s\n' ${times[$w]} | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
    printf '%-12s median %5d ms  (%s ms)  %4d MB/s\n' "$w" "$med" "${times[$w]# }" $((mb * 1048576 / 1000 / med))
done
