/*
 * bkf_small — the small objects of a backup that restore reads whole:
 * backup_label (checked against the manifest: a label copied from another
 * backup is refused) and tablespace_map.
 */
#include "bkf_small.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"
#include "wal.h"

int bkf_fetch_small(struct repo *r, const char *name, const char *what, struct sink **out, struct err *e)
{
    char key[300];
    struct sink *mem = mem_sink_new(LABEL_MAX), *b;

    *out = NULL;
    if (mem == NULL || (b = borrow_sink_new(mem)) == NULL) {
        sink_free(mem);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    if (repo_key_backup(key, sizeof key, name, what) < 0 || repo_get(r, key, b, e) < 0) {
        if (e->code == ERR_NOTFOUND)
            e->code = ERR_CORRUPT;
        sink_free(mem);
        return err_prefix(e, "backup %s: could not read its %s", name, what);
    }
    *out = mem;
    return 0;
}

int bkf_check_label(const struct manifest *m, struct sink *label, struct err *e)
{
    const unsigned char *buf;
    char want[128], lsn[24], *text;
    size_t len;
    int ok;

    buf = mem_sink_data(label, &len);
    text = malloc(len + 1);
    if (text == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    memcpy(text, buf, len);
    text[len] = '\0';
    wal_format_lsn(m->start_lsn, lsn);
    snprintf(want, sizeof want, "START WAL LOCATION: %s (file %s)\n", lsn, m->start_wal);
    ok = strncmp(text, want, strlen(want)) == 0;
    snprintf(want, sizeof want, "\nLABEL: walship %s\n", m->name);
    ok = ok && strstr(text, want) != NULL;
    free(text);
    if (!ok)
        return err_setf(e, ERR_FOREIGN, "backup %s: its backup_label does not describe it (start %s in %s, label "
                        "\"walship %s\"): refusing it", m->name, lsn, m->start_wal, m->name);
    return 0;
}
