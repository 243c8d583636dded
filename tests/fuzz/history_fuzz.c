/*
 * history_fuzz — libFuzzer target for the parser of a timeline's
 * TLI.history file (tl_parse_history, src/repo/timeline.c), which reads what a
 * region holds under wal/.
 *
 * Whatever the input, nothing may crash or leak; a parse that succeeds
 * gives timelines >= 1 and no more entries than the input has lines; a
 * failure gives no entries and says why.  The check wal-push makes before
 * archiving a history file (tl_history_valid) accepts only what parses,
 * names a parent, and lists timelines below the file's own in order.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined by build-fuzzer.sh;
 * replayed over tests/fuzz/corpus/history under gcc in `make check`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "timeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tl_hist_entry *v = NULL;
    struct err e = ERR_INIT;
    size_t n = 0, i, lines = 1;

    for (i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (tl_parse_history((const char *)data, size, &v, &n, &e) < 0) {
        if (v != NULL || n != 0 || e.msg[0] == '\0')
            abort();
        err_clear(&e);
        if (tl_history_valid((const char *)data, size, (uint32_t)(size % 7) + 1, &e) == 0 || e.msg[0] == '\0')
            abort();
        return 0;
    }
    if (n > lines || (n > 0) != (v != NULL))
        abort();
    for (i = 0; i < n; i++)
        if (v[i].tli < 1)
            abort();
    /* valid for a timeline above every listed one, in order, and only then */
    {
        uint32_t tli = (uint32_t)(size % 7) + 1;
        int ordered = n > 0;

        for (i = 0; i < n; i++)
            if (v[i].tli >= tli || (i > 0 && (v[i].tli <= v[i - 1].tli || v[i].end_lsn < v[i - 1].end_lsn)))
                ordered = 0;
        err_clear(&e);
        if ((tl_history_valid((const char *)data, size, tli, &e) == 0) != (ordered && memchr(data, 0, size) == NULL))
            abort();
    }
    free(v);
    return 0;
}
