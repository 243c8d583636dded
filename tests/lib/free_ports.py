#!/usr/bin/env python3
"""free_ports.py [N]: N free TCP ports on 127.0.0.1, one per line.

Below the kernel's ephemeral range (ip_local_port_range), so no outgoing
connection takes one as its source port before the server that was given
it binds it; and registered for an hour in a shared file, so tests running
in parallel are not handed the same port.  Used by swift.sh, pg.sh and
tap.sh alike.
"""
import fcntl, os, random, socket, sys, time
n = int(sys.argv[1])
lo, hi = 20000, 32000
try:
    with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
        hi = min(hi, int(f.read().split()[0]))
except (OSError, ValueError, IndexError):
    pass
# Tests run in parallel: a port one test picked but has not bound yet looks
# free to the next.  Ports handed out in the last hour are kept in a shared
# file (under flock) and not handed out again.
reg = os.path.join(os.environ.get('TMPDIR') or '/tmp', 'walship-test-ports')
taken, now = {}, time.time()
try:
    fd = os.open(reg, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    with os.fdopen(os.dup(fd)) as f:
        for line in f.read().split('\n'):
            try:
                port, when = line.split()
                if now - float(when) < 3600:
                    taken[int(port)] = float(when)
            except ValueError:
                pass
except OSError:
    fd = -1
out, tries = [], 0
while len(out) < n and tries < 5000:
    tries += 1
    p = random.randrange(lo, hi) if hi - lo >= 1000 else 0
    if p in taken:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', p))
        p = s.getsockname()[1]
    except OSError:
        continue
    finally:
        s.close()
    if p not in out:
        out.append(p)
if fd >= 0:
    for p in out:
        taken[p] = now
    data = ''.join('%d %.0f\n' % kv for kv in taken.items()).encode()
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, data)
    os.close(fd)
if len(out) < n:
    sys.exit('free_ports: no free port found')
print('\n'.join(map(str, out)))
