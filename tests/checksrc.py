#!/usr/bin/env python3
"""checksrc: the source rules CI enforces (docs/STYLE in ../shared/STYLE.md,
issue 12), in the spirit of curl's checksrc.

  checksrc.py TOPDIR [--sizes]

Always: no banned function (strcpy strcat sprintf vsprintf atoi atol atoll
strtok gets tmpnam mktemp) anywhere in the C sources, outside comments and
string literals; no storage driver (storage/) includes config.h (drivers are
opened from struct stor_opts, built at the edge).  With --sizes also: no file over 600 lines and no function
over 100 lines, unless the line before the function's opening says why with
a comment holding "long:" (a function) or the file's first comment holds
"long file:" (a file).  Prints one line per finding, TAP-style, and exits 1
if anything was found.
"""
import os
import re
import sys

BANNED = ("strcpy", "strcat", "sprintf", "vsprintf", "atoi", "atol", "atoll", "strtok", "gets", "tmpnam",
          "mktemp")
BANNED_RE = re.compile(r"(?<![\w.>])(%s)\s*\(" % "|".join(BANNED))
CONFIG_INCLUDE_RE = re.compile(r'^\s*#\s*include\s*[<"](?:[\w./]*/)?config(?:_int)?\.h[>"]', re.M)
DIRS = ("src", "storage", "restore", "tests", "bench")
MAX_FILE = 600
MAX_FUNC = 100


def strip(text):
    """The C text with comments and string/char literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j]) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(code):
    """(name, first line, line count) of each top-level function body."""
    depth, start, name = 0, None, None
    lines = code.split("\n")
    for no, line in enumerate(lines, 1):
        for k, ch in enumerate(line):
            if ch == "{":
                if depth == 0:
                    head = " ".join(lines[max(0, no - 4):no - 1]) + " " + line[:k]
                    m = re.search(r"(\w+)\s*\([^;{}]*\)\s*$", head)
                    start, name = (no, m.group(1)) if m else (None, None)
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0 and start is not None:
                    yield name, start, no - start + 1
                    start = None


def main():
    top = sys.argv[1]
    sizes = "--sizes" in sys.argv
    bad = 0
    n = 0
    for d in DIRS:
        for root, _, files in os.walk(os.path.join(top, d)):
            if "/corpus" in root:
                continue
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(root, f)
                rel = os.path.relpath(path, top)
                text = open(path, encoding="utf-8", errors="replace").read()
                code = strip(text)
                n += 1
                for no, line in enumerate(code.split("\n"), 1):
                    m = BANNED_RE.search(line)
                    if m:
                        bad += 1
                        print("not ok - %s:%d: banned function %s()" % (rel, no, m.group(1)))
                if rel.startswith("storage/") and CONFIG_INCLUDE_RE.search(text):
                    bad += 1
                    print("not ok - %s: includes config.h (drivers never see the configuration)" % rel)
                if not sizes or rel.startswith(("tests/", "bench/")):
                    continue
                nlines = text.count("\n")
                head = text[:2000]
                if nlines > MAX_FILE and "long file:" not in head:
                    bad += 1
                    print("not ok - %s: %d lines (over %d, and no \"long file:\" reason)" % (rel, nlines, MAX_FILE))
                src_lines = text.split("\n")
                for name, first, count in functions(code):
                    before = " ".join(src_lines[max(0, first - 6):first])
                    if count > MAX_FUNC and "long:" not in before:
                        bad += 1
                        print("not ok - %s:%d: %s() is %d lines (over %d, and no \"long:\" reason)" %
                              (rel, first, name, count, MAX_FUNC))
    print("# %d files checked, %d findings" % (n, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
