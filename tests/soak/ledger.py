#!/usr/bin/python3
"""tests/soak/ledger.py: compare a restored (or the live) database with the
clients' ledger (tests/soak/client.py).  Standard library only.

    ledger.py summary LEDGER_DIR
        print "ACKED DOUBT FIRST_SEND LAST_ACK"
    ledger.py pick LEDGER_DIR BACKUP_LIST_JSON SEED N
        print N target times (epoch seconds, 6 decimals) drawn with SEED
        from [oldest complete backup's stop time + 2 s, last
        acknowledgement - 1 s] (BACKUP_LIST_JSON: `walship backup-list
        --json` of the one region), each just after an acknowledgement and
        before the next transaction was sent, so that recovery finds a
        commit after the target
    ledger.py check LEDGER_DIR ROWS BALANCE (latest | time EPOCH) [LOST_OUT]
        ROWS: the restored ledger table, lines "id client seq delta";
        BALANCE: sum(acct.bal) of the restored database.  Exit 0 when the
        restored set is exactly what the ledger allows, 1 otherwise; one
        line "ok ..." or "BAD ..." on stdout; the ids of acknowledged
        transactions that should be there and are not go to LOST_OUT.

The rules, for the commit time C of a transaction (T_SEND < C <= T_ACK):
  latest: every acknowledged id is present;
  time T: every acknowledged id with T_ACK <= T is present, no id with
          T_SEND > T is present (in-doubt ones included);
  both:   every present id is acknowledged or in doubt (nothing invented),
          per client the present ids form a prefix of its acknowledged
          sequence (in-doubt ids aside), and sum(acct.bal) equals the sum
          of the present rows' deltas (the UPDATE and the INSERT of one
          transaction are restored together).
"""
import glob
import json
import os
import random
import sys


def load(d):
    txs = {}
    for kind in ('acked', 'doubt'):
        for path in glob.glob(os.path.join(d, kind + '.c*')):
            with open(path) as f:
                for line in f:
                    p = line.split()
                    if len(p) != 6:
                        continue   # a line cut by a kill: the client never got that far
                    txs[p[0]] = {
                        'client': int(p[1]), 'seq': int(p[2]), 'send': float(p[3]),
                        'ack': None if p[4] == '-' else float(p[4]), 'delta': int(p[5]),
                    }
    return txs


def summary(d):
    txs = load(d)
    acked = [t for t in txs.values() if t['ack'] is not None]
    first = min((t['send'] for t in txs.values()), default=0)
    last = max((t['ack'] for t in acked), default=0)
    print('%d %d %.6f %.6f' % (len(acked), len(txs) - len(acked), first, last))


def stop_times(x):
    if isinstance(x, dict):
        if x.get('complete') and 'stop_time_unix' in x:
            yield x['stop_time_unix']
        for v in x.values():
            yield from stop_times(v)
    elif isinstance(x, list):
        for v in x:
            yield from stop_times(v)


def pick(d, backup_list, seed, n):
    txs = load(d).values()
    acked = sorted(t['ack'] for t in txs if t['ack'] is not None)
    sends = sorted(t['send'] for t in txs if t['ack'] is not None)
    with open(backup_list) as f:
        stops = list(stop_times(json.load(f)))
    if not stops or not acked:
        sys.exit('ledger.py pick: no complete backup or no acknowledged transaction')
    lo, hi = min(stops) + 2, acked[-1] - 1
    rng = random.Random(seed)
    cand = [a for a in acked if lo <= a <= hi]
    out = []
    for a in rng.sample(cand, min(n, len(cand))):   # distinct moments
        nxt = min((x for x in sends if x > a), default=a + 0.001)
        out.append(a + min(0.0005, (nxt - a) / 2))
    for t in sorted(out):
        print('%.6f' % t)


def check(d, rows_path, balance, mode, target, lost_out):
    txs = load(d)
    present = {}
    with open(rows_path) as f:
        for line in f:
            p = line.split()
            if len(p) == 4:
                present[p[0]] = int(p[3])
    invented = [i for i in present if i not in txs]
    if mode == 'latest':
        must = [i for i, t in txs.items() if t['ack'] is not None]
        must_not = []
    else:
        must = [i for i, t in txs.items() if t['ack'] is not None and t['ack'] <= target]
        must_not = [i for i, t in txs.items() if t['send'] > target and i in present]
    lost = sorted(i for i in must if i not in present)
    # per client, present ids are a prefix of the acknowledged sequence
    gaps = 0
    byc = {}
    for i, t in txs.items():
        if t['ack'] is not None:
            byc.setdefault(t['client'], []).append((t['seq'], i))
    for seqs in byc.values():
        seqs.sort()
        seen_missing = False
        for _, i in seqs:
            if i not in present:
                seen_missing = True
            elif seen_missing:
                gaps += 1
    want_bal = sum(present.values())
    bad = lost or must_not or invented or gaps or want_bal != balance
    doubt_in = sum(1 for i in present if i in txs and txs[i]['ack'] is None)
    print('%s rows=%d must=%d lost=%d after_target=%d invented=%d gaps=%d doubt_present=%d balance=%s' % (
        'BAD' if bad else 'ok', len(present), len(must), len(lost), len(must_not), len(invented), gaps,
        doubt_in, 'ok' if want_bal == balance else '%d!=%d' % (balance, want_bal)))
    if lost_out:
        with open(lost_out, 'a') as f:
            for i in lost:
                f.write(i + '\n')
    return 1 if bad else 0


def main(a):
    if len(a) >= 2 and a[0] == 'summary':
        return summary(a[1])
    if len(a) == 5 and a[0] == 'pick':
        return pick(a[1], a[2], int(a[3]), int(a[4]))
    if len(a) >= 5 and a[0] == 'check':
        mode = a[4]
        target = float(a[5]) if mode == 'time' else None
        lost_out = a[6] if mode == 'time' and len(a) > 6 else (a[5] if mode == 'latest' and len(a) > 5 else None)
        return check(a[1], a[2], int(a[3]), mode, target, lost_out)
    sys.exit(__doc__)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]) or 0)
