#!/usr/bin/python3
"""tests/soak/client.py: pgbench-style clients that keep a ledger of what
PostgreSQL acknowledged (standard library only; one psql per transaction).

    client.py --port P --clients N --dir LEDGER_DIR [--psql PSQL] [--pad N]
              [--seed S]

Each client c runs, until SIGTERM/SIGINT, transactions numbered 1, 2, ...
with the id "c<c>-<seq>" (never reused):

    BEGIN;
    UPDATE acct SET bal = bal + DELTA WHERE aid = AID;
    INSERT INTO ledger VALUES (ID, c, seq, DELTA, <PAD random bytes>) RETURNING id;
    COMMIT;

through `psql --single-transaction -v ON_ERROR_STOP=1`: psql exits 0 only
when COMMIT returned success.  Before sending, t_send is read from the
clock; after psql exited 0 and printed the id, t_ack; only then the line

    ID CLIENT SEQ T_SEND T_ACK DELTA

is appended to LEDGER_DIR/acked.c<c>.  Any other outcome (error, lost
connection, timeout, the server stopped) is "in doubt": the transaction may
or may not have committed, and its line, with "-" for T_ACK, goes to
LEDGER_DIR/doubt.c<c>.  Times are CLOCK_REALTIME seconds, the clock
PostgreSQL stamps commit records with (same host), so for a commit record
time C of an acknowledged transaction, T_SEND < C <= T_ACK.
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time

STOP = threading.Event()


def client(args, c, rng):
    acked = open(os.path.join(args.dir, 'acked.c%d' % c), 'a', buffering=1)
    doubt = open(os.path.join(args.dir, 'doubt.c%d' % c), 'a', buffering=1)
    env = dict(os.environ, PGCONNECT_TIMEOUT='5', PGAPPNAME='soak-c%d' % c)
    seq = 0
    while not STOP.is_set():
        seq += 1
        tid = 'c%d-%d' % (c, seq)
        delta = rng.randint(-5000, 5000)
        aid = rng.randint(1, args.accounts)
        pad = max(1, args.pad // 32)
        cmd = [args.psql, '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', args.host,
               '-p', str(args.port), '-U', 'postgres', '-d', 'postgres', '--single-transaction',
               '-c', 'UPDATE acct SET bal = bal + %d WHERE aid = %d' % (delta, aid),
               '-c', "INSERT INTO ledger VALUES ('%s', %d, %d, %d, (SELECT string_agg(md5(random()::text), '') "
                     "FROM generate_series(1, %d))) RETURNING id" % (tid, c, seq, delta, pad)]
        t_send = time.time()
        try:
            p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            good = p.returncode == 0 and p.stdout.decode().strip() == tid
        except subprocess.TimeoutExpired:
            good = False
        if good:
            t_ack = time.time()
            acked.write('%s %d %d %.6f %.6f %d\n' % (tid, c, seq, t_send, t_ack, delta))
        else:
            doubt.write('%s %d %d %.6f - %d\n' % (tid, c, seq, t_send, delta))
            STOP.wait(0.3 + rng.random() * 0.4)   # the server may be restarting
        if args.think_ms:
            STOP.wait(rng.random() * args.think_ms / 1000.0)
    acked.close()
    doubt.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--clients', type=int, default=3)
    ap.add_argument('--dir', required=True)
    ap.add_argument('--psql', default='/usr/lib/postgresql/15/bin/psql')
    ap.add_argument('--pad', type=int, default=512, help='random bytes per row (WAL volume)')
    ap.add_argument('--accounts', type=int, default=100)
    ap.add_argument('--think-ms', type=int, default=0)
    ap.add_argument('--seed', type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    threads = [threading.Thread(target=client, args=(args, c, random.Random(args.seed * 1000 + c)))
               for c in range(1, args.clients + 1)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
