/* wal: WAL file names and segment arithmetic. */
#include "tap.h"
#include "wal.h"

int main(void)
{
    struct err e = ERR_INIT;
    struct wal_name w;
    char out[WAL_NAME_LEN + 1];
    uint64_t lsn;
    char buf[24];

    ok(wal_parse("000000010000000A000000FE", &w, &e) == 0 && w.kind == WAL_SEGMENT, "segment parses");
    ok(w.tli == 1 && w.log == 10 && w.seg == 0xFE, "fields");
    ok(wal_parse("00000002.history", &w, &e) == 0 && w.kind == WAL_HISTORY && w.tli == 2, "history parses");
    ok(wal_parse("000000010000000A000000FE.partial", &w, &e) == 0 && w.kind == WAL_PARTIAL, "partial parses");
    ok(wal_parse("000000010000000A000000FE.00000028.backup", &w, &e) == 0 && w.kind == WAL_BACKUP_LABEL,
       "backup history file parses");
    ok(wal_parse("000000010000000a000000fe", &w, &e) < 0, "lower case refused");
    ok(wal_parse("00000000000000000000000A", &w, &e) < 0, "timeline 0 refused");
    ok(wal_parse("0000000100000000000000", &w, &e) < 0, "short name refused");
    ok(wal_parse("000000010000000A000000FE.bogus", &w, &e) < 0, "unknown suffix refused");
    ok(wal_parse("../etc/passwd", &w, &e) < 0, "path refused");
    like(e.msg, "not a WAL file name", "error says what is wrong");

    ok(wal_next_segment("000000010000000A000000FE", 16u << 20, out, &e) == 0, "next segment");
    is_str(out, "000000010000000A000000FF", "FE -> FF");
    wal_next_segment("000000010000000A000000FF", 16u << 20, out, &e);
    is_str(out, "000000010000000B00000000", "16 MB: FF wraps into the next log");
    wal_next_segment("000000010000000A0000003F", 64u << 20, out, &e);
    is_str(out, "000000010000000B00000000", "64 MB: 3F wraps into the next log");
    wal_next_segment("000000030000000000000001", 1u << 30, out, &e);
    is_str(out, "000000030000000000000002", "1 GB segments");
    ok(wal_next_segment("00000002.history", 16u << 20, out, &e) < 0, "history has no next segment");

    /* the last 8 digits count segments within one log, by segment size */
    wal_parse("0000000100000000000000FF", &w, &e);
    ok(wal_name_fits(&w, 16u << 20), "16 MB: ...FF is a segment name");
    ok(!wal_name_fits(&w, 64u << 20), "64 MB: ...FF is not (up to 3F)");
    wal_parse("000000010000000000000100", &w, &e);
    ok(!wal_name_fits(&w, 16u << 20), "16 MB: ...100 is not (it would alias 000000010000000100000000)");
    ok(wal_name_fits(&w, 1u << 20), "1 MB: ...100 is");
    wal_parse("000000010000000000000100.partial", &w, &e);
    ok(!wal_name_fits(&w, 16u << 20), "16 MB: nor as a .partial");
    wal_parse("0000001F.history", &w, &e);
    ok(wal_name_fits(&w, 64u << 20), "a history file always fits");

    ok(wal_parse_lsn("16/B374D848", &lsn, &e) == 0 && lsn == 0x16B374D848ULL, "parse LSN");
    wal_format_lsn(lsn, buf);
    is_str(buf, "16/B374D848", "format LSN");
    ok(wal_parse_lsn("16-B3", &lsn, &e) < 0, "bad LSN refused");
    /* as PostgreSQL's pg_lsn reads it: what it refuses, walship refuses
     * before a restore is fetched (sscanf's %X took all of these) */
    ok(wal_parse_lsn("0x0/0x7000000", &lsn, &e) < 0, "0x refused");
    ok(wal_parse_lsn(" 0/7000000", &lsn, &e) < 0, "leading space refused");
    ok(wal_parse_lsn("-0/7000000", &lsn, &e) < 0, "sign refused");
    ok(wal_parse_lsn("0/+7000000", &lsn, &e) < 0, "sign after the slash refused");
    ok(wal_parse_lsn("1FFFFFFFF/0", &lsn, &e) < 0, "nine digits refused");
    ok(wal_parse_lsn("0/", &lsn, &e) < 0 && wal_parse_lsn("/1", &lsn, &e) < 0, "an empty half refused");
    ok(wal_parse_lsn("FFFFFFFF/ffffffff", &lsn, &e) == 0 && lsn == UINT64_MAX, "eight digits, either case");
    wal_segment_of_lsn(1, 0x16B374D848ULL, 16u << 20, out);
    is_str(out, "0000000100000016000000B3", "segment of an LSN");

    ok(wal_seg_size_valid(16u << 20) && wal_seg_size_valid(1u << 20) && wal_seg_size_valid(1u << 30),
       "valid segment sizes");
    ok(!wal_seg_size_valid(3u << 20) && !wal_seg_size_valid(2u << 30), "invalid segment sizes");
    return done_testing();
}
