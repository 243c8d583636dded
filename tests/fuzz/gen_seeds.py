#!/usr/bin/env python3
"""Write the seed corpora of the manifest, history and tar fuzz targets:
tests/fuzz/corpus/{manifest,history,tar}.  The tar seeds match the fixed
manifest of tar_fuzz.c (same paths and bytes); the forged ones have their
headers written by hand (GNU and PAX sparse, base-256 sizes).

    tests/fuzz/gen_seeds.py [OUTDIR]      (default: tests/fuzz/corpus)
"""
import hashlib
import io
import json
import os
import sys
import tarfile

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
TIB8 = 8 << 40

FILES = [
    ("PG_VERSION", b"15\n"),
    ("base/1/1259", bytes((i * 31) & 0xff for i in range(8192))),
    ("global/pg_control", b"C" * 512),
    ("pg_tblspc/16400/PG_15_202209061/5/16386", b"T" * 1000),
]


def put(kind, name, data):
    d = os.path.join(out, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- tar: well-formed ----

def tar_of(entries, fmt=tarfile.PAX_FORMAT):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o700
                t.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o600
                t.addfile(ti, io.BytesIO(data))
    return b.getvalue()


dirs = [("base", None), ("base/1", None), ("global", None), ("pg_tblspc/16400/PG_15_202209061/5", None)]
put("tar", "valid-pax", tar_of(dirs + FILES))
put("tar", "valid-gnu", tar_of(dirs + FILES, tarfile.GNU_FORMAT))
put("tar", "valid-ustar-files-only", tar_of(FILES, tarfile.USTAR_FORMAT))
put("tar", "missing-file", tar_of(FILES[:2]))
put("tar", "twice", tar_of(FILES + FILES[:1]))
put("tar", "not-in-manifest", tar_of(FILES + [("base/1/99999", b"x" * 10)]))
put("tar", "escape", tar_of([("../escape", b"x")]))
put("tar", "absolute", tar_of([("/tmp/abs", b"x")]))
put("tar", "damaged", tar_of([("base/1/1259", b"\0" * 8192)]))
put("tar", "truncated", tar_of(FILES)[:4096])

b = io.BytesIO()
with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
    for kind, target in ((tarfile.SYMTYPE, "/etc"), (tarfile.LNKTYPE, "PG_VERSION")):
        ti = tarfile.TarInfo("base/link%s" % kind.decode())
        ti.type = kind
        ti.linkname = target
        t.addfile(ti)
put("tar", "links", b.getvalue())


# ---- tar: forged by hand ----

def num(n, v):
    if v < 8 ** (n - 1):
        return b"%0*o\0" % (n - 1, v)
    return b"\x80" + v.to_bytes(n - 1, "big")


def header(name, typ, size, gnu=False, sparse=(), realsize=None):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = num(8, 0o644)
    h[108:116] = num(8, 0)
    h[116:124] = num(8, 0)
    h[124:136] = num(12, size)
    h[136:148] = num(12, 1700000000)
    h[156] = ord(typ)
    h[257:265] = b"ustar  \0" if gnu else b"ustar\x0000"
    for i, (off, n) in enumerate(sparse):
        h[386 + 24 * i:398 + 24 * i] = num(12, off)
        h[398 + 24 * i:410 + 24 * i] = num(12, n)
    if realsize is not None:
        h[483:495] = num(12, realsize)
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def pad(b):
    return b + b"\0" * (-len(b) % 512)


def pax(recs):
    body = b""
    for r in recs:
        r = r.encode()
        n = len(r) + 3
        while len(str(n).encode()) + len(r) + 2 != n:
            n += 1
        body += b"%d %s\n" % (n, r)
    return header("PaxHeaders/x", "x", len(body)) + pad(body)


END = b"\0" * 1024
put("tar", "gnu-sparse-8tib",
    header("base/1/1259", "S", 1024, gnu=True, sparse=[(0, 512), (TIB8 - 512, 512)], realsize=TIB8)
    + b"A" * 1024 + END)
put("tar", "pax-sparse-01-8tib",
    pax(["GNU.sparse.major=0", "GNU.sparse.minor=1", "GNU.sparse.name=base/1/1259",
         "GNU.sparse.size=%d" % TIB8, "GNU.sparse.numblocks=2", "GNU.sparse.map=0,512,%d,512" % (TIB8 - 512)])
    + header("GNUSparseFile.0/1259", "0", 1024) + b"A" * 1024 + END)
put("tar", "pax-sparse-10-8tib",
    pax(["GNU.sparse.major=1", "GNU.sparse.minor=0", "GNU.sparse.name=base/1/1259",
         "GNU.sparse.realsize=%d" % TIB8])
    + header("GNUSparseFile.0/1259", "0", 1536) + pad(b"2\n0\n512\n%d\n512\n" % (TIB8 - 512)) + b"A" * 1024 + END)
put("tar", "size-8tib", header("base/1/1259", "0", TIB8) + b"A" * 8192 + END)
put("tar", "pax-size-override", pax(["size=99999999999"]) + header("PG_VERSION", "0", 3) + pad(b"15\n") + END)

# ---- manifest ----

def sha(b):
    return hashlib.sha256(b).hexdigest()


man = {
    "format": 1, "name": "20261202T000000Z", "walship_version": "0.2.0",
    "start_lsn": "1/28", "stop_lsn": "1/1000138", "timeline": 1, "stop_timeline": 1,
    "start_wal": "000000010000000100000000", "stop_wal": "000000010000000100000001",
    "start_time": 1700000000, "stop_time": 1700000040,
    "start_time_text": "2023-11-14T22:13:20Z", "stop_time_text": "2023-11-14T22:14:00Z",
    "pg_version": 150004, "system_identifier": "7311234567890123456", "wal_segment_size": 16777216,
    "compression": "zstd:3", "key_id": "0011223344556677", "original_size": 9707, "stored_size": 4000,
    "tablespace_map": True,
    "parts": [{"number": 1, "raw_size": 20480, "stored_size": 4000, "files": 4}],
    "tablespaces": [{"oid": 16400, "path": "/srv/ts"}],
    "files": [{"path": p, "part": 1, "size": len(d), "mode": 384, "mtime": 1700000000, "sha256": sha(d)}
              for p, d in FILES],
}
put("manifest", "valid", json.dumps(man, separators=(",", ":")))
put("manifest", "valid-pretty", json.dumps(man, indent=2))
m2 = json.loads(json.dumps(man))
m2["key_id"] = None
m2["tablespaces"] = []
m2["tablespace_map"] = False
put("manifest", "unencrypted", json.dumps(m2))
for field, value, tag in (("format", 2, "format-2"), ("start_lsn", "zz/1", "bad-lsn"), ("timeline", -1, "negative"),
                          ("start_wal", "0" * 40, "long-wal"), ("stored_size", 2 ** 63 - 1, "huge"),
                          ("start_time", 2 ** 62, "far-future"), ("name", 7, "wrong-type")):
    m3 = json.loads(json.dumps(man))
    m3[field] = value
    put("manifest", tag, json.dumps(m3))
m3 = json.loads(json.dumps(man))
m3["files"][0]["path"] = "../../etc/passwd"
put("manifest", "unsafe-path", json.dumps(m3))
m3 = json.loads(json.dumps(man))
m3["files"][0]["part"] = 9
put("manifest", "part-out-of-range", json.dumps(m3))
m3 = json.loads(json.dumps(man))
m3["parts"][0]["number"] = 2
put("manifest", "parts-misnumbered", json.dumps(m3))
# format 3: a file stored as two pieces in two parts (docs/BACKUP.md)
big = bytes((i * 7) & 0xff for i in range(65536 + 100))
pieces = [{"part": 1, "offset": 0, "size": 32768, "sha256": sha(big[:32768])},
          {"part": 2, "offset": 32768, "size": len(big) - 32768, "sha256": sha(big[32768:])}]
m3 = json.loads(json.dumps(man))
m3["format"] = 3
m3["block_size"] = 32768
m3["blockhash_size"] = 100
m3["blockhash_sha256"] = sha(b"")
m3["parts"].append({"number": 2, "raw_size": 40960, "stored_size": 4000, "files": 1})
m3["parts"][0]["raw_size"] = 65536
m3["files"].append({"path": "base/1/16384", "part": 0, "size": len(big), "mode": 384, "mtime": 1700000000,
                    "sha256": hashlib.sha256(b"".join(bytes.fromhex(p["sha256"]) for p in pieces)).hexdigest(),
                    "pieces": pieces})
put("manifest", "pieces", json.dumps(m3))
m4 = json.loads(json.dumps(m3))
m4["files"][-1]["pieces"][1]["offset"] += 32768
put("manifest", "pieces-gap", json.dumps(m4))
m4 = json.loads(json.dumps(m3))
m4["format"] = 1
put("manifest", "pieces-format-1", json.dumps(m4))
m4 = json.loads(json.dumps(m3))
m4["files"][-1]["pieces"][1]["part"] = 1
put("manifest", "pieces-same-part", json.dumps(m4))
put("manifest", "duplicate-key", '{"format":1,"format":1}')
put("manifest", "not-object", "[1,2,3]")
put("manifest", "empty", "")

# ---- history ----

put("history", "tli2", "1\t0/3000000\tno recovery target specified\n")
put("history", "tli4", "1\t0/3000000\tno recovery target specified\n\n"
    "2\t0/5000158\tbefore 2026-12-01 10:00:00+00\n\n3\t1/2A000000\tat restore point \"x\"\n")
put("history", "comments", "# a comment\n   \n1\t0/3000000\treason\r\n")
put("history", "bad-tli", "0\t0/3000000\tzero\n")
put("history", "bad-lsn", "1\tnot-an-lsn\tx\n")
put("history", "long-line", "1\t0/3000000\t" + "x" * 2000 + "\n2\t0/4000000\ty\n")
put("history", "empty", "")
print("wrote seeds under", out)
