#!/bin/bash
# The source rules (tests/checksrc.py): banned functions everywhere; file and
# function sizes in the library and the program.
out=$(python3 "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/checksrc.py" "${TOP_SRCDIR:-$(dirname "$0")/..}" "$@")
rc=$?
echo "1..1"
printf '%s\n' "$out" | sed 's/^/# /'
if [ "$rc" = 0 ]; then echo "ok 1 - checksrc: the source rules hold"; else echo "not ok 1 - checksrc: see the findings above"; fi
