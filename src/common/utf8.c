/*
 * utf8 — see utf8.h.  Valid means well-formed per the Unicode standard
 * (table 3-7): no overlong forms, no surrogates, nothing above U+10FFFF.
 */
#include "utf8.h"

#include <stdio.h>
#include <string.h>

static int cont(unsigned char c, unsigned char lo, unsigned char hi)
{
    return c >= lo && c <= hi;
}

size_t utf8_seq_len(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n, i;

    if (u[0] == 0)
        return 0;
    if (u[0] < 0x80)
        return 1;
    if (u[0] >= 0xC2 && u[0] <= 0xDF)
        n = 2;
    else if (u[0] >= 0xE0 && u[0] <= 0xEF)
        n = 3;
    else if (u[0] >= 0xF0 && u[0] <= 0xF4)
        n = 4;
    else
        return 0;
    if (u[0] == 0xE0)
        lo = 0xA0;
    else if (u[0] == 0xED)
        hi = 0x9F;
    else if (u[0] == 0xF0)
        lo = 0x90;
    else if (u[0] == 0xF4)
        hi = 0x8F;
    if (!cont(u[1], lo, hi))
        return 0;
    for (i = 2; i < n; i++)
        if (!cont(u[i], 0x80, 0xBF))
            return 0;
    return n;
}

void utf8_scrub(char *s)
{
    while (*s != '\0') {
        size_t n = utf8_seq_len(s);

        if (n == 0)
            *s++ = '?';
        else
            s += n;
    }
}

void text_one_line(const char *in, char *out, size_t cap)
{
    size_t len = strlen(in), o = 0, i;

    if (cap == 0)
        return;
    while (len > 0 && (in[len - 1] == '\n' || in[len - 1] == '\r' || in[len - 1] == ' ' || in[len - 1] == '\t'))
        len--;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        char esc[5];
        size_t el;

        if (c >= 0x20 && c != 0x7f) {
            esc[0] = (char)c;
            el = 1;
        } else if (c == '\t') {
            esc[0] = '\t';
            el = 1;
        } else if (c == '\n' || c == '\r') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : 'r';
            el = 2;
        } else {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            el = 4;
        }
        if (o + el >= cap)
            break;
        memcpy(out + o, esc, el);
        o += el;
    }
    out[o] = '\0';
}
