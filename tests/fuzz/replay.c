/*
 * replay — run LLVMFuzzerTestOneInput over every file in the given
 * directories (default: $TOP_SRCDIR/tests/fuzz/corpus/obj), printing TAP.
 * Lets `make check` replay the fuzz corpus and any saved crashes under the
 * normal gcc build (and under ASan/UBSan with --enable-sanitizers).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/tap.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;

    if (d == NULL) {
        ok(0, "open corpus directory %s", dir);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
            if (names == NULL)
                abort();
        }
        names[n++] = xasprintf("%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof *names, cmp);
    ok(n > 0, "%s holds %zu inputs", dir, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char *buf = NULL;
        size_t len = 0;
        struct err e = ERR_INIT;

        if (read_file_all(names[i], (size_t)64 << 20, &buf, &len, &e) < 0) {
            ok(0, "%s: %s", names[i], e.msg);
        } else {
            /* The target aborts on a finding; reaching here is the pass. */
            LLVMFuzzerTestOneInput(buf, len);
            ok(1, "%s (%zu bytes)", strrchr(names[i], '/') + 1, len);
        }
        free(buf);
        free(names[i]);
    }
    free(names);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            replay_dir(argv[i]);
    } else {
        const char *top = getenv("TOP_SRCDIR");
        char *dir = xasprintf("%s/tests/fuzz/corpus/obj", top != NULL ? top : ".");
        replay_dir(dir);
        free(dir);
    }
    return done_testing();
}
