#!/usr/bin/env python3
"""Write a synthetic WAL segment for tests: a real long page header for the
segment its name says (magic, timeline, page address, system identifier,
segment size), then seeded random bytes.  walship checks that header before
archiving a segment and before handing a fetched one to PostgreSQL.

  walseg.py OUT NAME SYSID [--seed N] [--magic 0xD110] [--seg-size BYTES]
  walseg.py --batch FILE     one segment per line: OUT NAME SYSID SEED SIZE
"""
import argparse
import random
import struct



def segment(out, name, sysid, seed, seg_size, magic=0xD110):
    tli = int(name[0:8], 16)
    log = int(name[8:16], 16)
    seg = int(name[16:24], 16)
    segs_per_log = 0x100000000 // seg_size
    pageaddr = (log * segs_per_log + seg) * seg_size
    # XLogLongPageHeaderData: magic, info (XLP_LONG_HEADER), tli, pageaddr,
    # rem_len, padding, sysid, seg_size, xlog_blcksz (native byte order)
    hdr = struct.pack("=HHIQI4xQII", magic, 0x0002, tli, pageaddr, 0, sysid, seg_size, 8192)
    rnd = random.Random(seed)
    with open(out, "wb") as f:
        f.write(hdr)
        left = seg_size - len(hdr)
        while left > 0:
            n = min(left, 1 << 20)
            f.write(rnd.randbytes(n))
            left -= n


p = argparse.ArgumentParser()
p.add_argument("out", nargs="?")
p.add_argument("name", nargs="?")
p.add_argument("sysid", type=int, nargs="?")
p.add_argument("--seed", type=int, default=1)
p.add_argument("--magic", type=lambda s: int(s, 0), default=0xD110)
p.add_argument("--seg-size", type=int, default=16 << 20)
p.add_argument("--batch")
a = p.parse_args()
if a.batch:
    for line in open(a.batch):
        out, name, sysid, seed, size = line.split()
        segment(out, name, int(sysid), int(seed), int(size), a.magic)
else:
    segment(a.out, a.name, a.sysid, a.seed, a.seg_size, a.magic)
