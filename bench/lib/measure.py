#!/usr/bin/env python3
"""bench/lib/measure.py — wall time, CPU and peak RSS of a command *and of
every process it leaves behind* (daemons that double-fork and setsid, like
pgBackRest's async archive-push or walship's prefetcher).

    measure.py OUT -- CMD [ARGS...]

This process becomes a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so
orphaned descendants are re-parented to it instead of to init; it reaps all
of them, and getrusage(RUSAGE_CHILDREN) then covers the whole tree.

OUT gets one line:
    rc wall_cmd wall_all user sys maxrss_kb
wall_cmd: until CMD itself exits (what its caller waits for);
wall_all: until the last descendant exited (or MEASURE_TAIL_MAX seconds,
default 300, after CMD exited; stragglers are then reported, not killed);
user/sys: CPU seconds of every reaped descendant; maxrss_kb: the largest
peak RSS of any single descendant.
"""
import ctypes
import os
import resource
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: measure.py OUT -- CMD [ARGS...]")
    out, cmd = sys.argv[1], sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("measure.py: prctl(PR_SET_CHILD_SUBREAPER) failed")
    tail_max = float(os.environ.get("MEASURE_TAIL_MAX", "300"))
    t0 = time.monotonic()
    p = subprocess.Popen(cmd)
    rc = None
    t_cmd = None
    t_all = None
    deadline = None
    while True:
        try:
            if deadline is None:
                pid, status = os.waitpid(-1, 0)
            else:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    if time.monotonic() > deadline:
                        sys.stderr.write("measure.py: descendants still running after %.0fs\n" % tail_max)
                        break
                    time.sleep(0.02)
                    continue
        except ChildProcessError:
            t_all = time.monotonic()
            break
        if pid == p.pid:
            t_cmd = time.monotonic()
            rc = os.waitstatus_to_exitcode(status)
            p.returncode = rc
            deadline = t_cmd + tail_max
    if t_all is None:
        t_all = time.monotonic()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        f.write("%d %.3f %.3f %.2f %.2f %d\n" % (rc if rc is not None else 255, t_cmd - t0, t_all - t0,
                                                 ru.ru_utime, ru.ru_stime, ru.ru_maxrss))
    sys.exit(rc if rc is not None and rc >= 0 else 255)


if __name__ == "__main__":
    main()
