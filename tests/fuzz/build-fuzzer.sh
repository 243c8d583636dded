#!/bin/sh
# Build the fuzz targets (libFuzzer + ASan + UBSan) with clang, apart from
# the autotools build, into tests/fuzz/build/ (or $FUZZ_BUILD):
# obj_fuzz, obj_fuzz_noauth, s3_xml_fuzz, manifest_fuzz, history_fuzz,
# tar_fuzz.  docs/FUZZING.md says how to run them and how long they ran.
#
#   tests/fuzz/build-fuzzer.sh            build every target
#   tests/fuzz/build-fuzzer.sh --corpus   also regenerate the seed corpora
#   tests/fuzz/build/obj_fuzz -jobs=1 -workers=1 -max_total_time=600 \
#       -max_len=65536 tests/fuzz/build/corpus tests/fuzz/corpus/obj
#
# Needs clang with the libFuzzer runtime (Debian: clang, libclang-rt-dev on
# newer releases) and the -dev packages of libssl and libzstd.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${FUZZ_BUILD:-$here/build}
CC=${CC:-clang}
mkdir -p "$out"

lib="src/common/err.c src/common/util.c src/common/parse.c src/common/log.c src/io/fault.c src/io/stream.c src/io/sha256tee.c
     src/codec/keys.c src/codec/zst.c src/codec/aead.c src/codec/obj.c"
cflags="-std=gnu11 -g -O1 -D_GNU_SOURCE -I$top/src/common -I$top/src/io -I$top/src/codec -Wall -Wextra -Werror -Wno-unused-parameter"
libs="$(pkg-config --libs libcrypto libzstd) -lpthread"
srcs=""
for f in $lib; do srcs="$srcs $top/$f"; done

fz="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
# shellcheck disable=SC2086
$CC $cflags $fz -o "$out/obj_fuzz" "$here/obj_fuzz.c" $srcs $libs
# The same decoder with SHA-256 chunk tags and the header checksum unchecked
# (WALSHIP_FUZZ_NO_AUTH), so that mutations of unencrypted objects get past
# authentication into the chunk framing and zstd.  Never ship this.
# shellcheck disable=SC2086
$CC $cflags $fz -DWALSHIP_FUZZ_NO_AUTH -o "$out/obj_fuzz_noauth" "$here/obj_fuzz.c" $srcs $libs

# The other parsers of untrusted input: S3 answers, manifest.json,
# TLI.history, and the tar path of backup-fetch.
inc="$(for d in src/common src/pg src/io src/codec src/repo src/archive src/backup src/maint src/cmd storage \
    storage/fs storage/s3 restore; do printf ' -I%s/%s' "$top" "$d"; done) $(pkg-config --cflags libxml-2.0 jansson libarchive)"
common="src/common/err.c src/common/util.c src/common/parse.c src/common/log.c src/common/wal.c"
objs() { for f in "$@"; do printf ' %s/%s' "$top" "$f"; done; }
# shellcheck disable=SC2046,SC2086
$CC $cflags $inc $fz -o "$out/s3_xml_fuzz" "$here/s3_xml_fuzz.c" $(objs $common storage/s3/s3_xml.c \
    storage/s3/s3_dl.c src/common/dynlib.c) $(pkg-config --libs libxml-2.0) -ldl
# shellcheck disable=SC2046,SC2086
$CC $cflags $inc $fz -o "$out/manifest_fuzz" "$here/manifest_fuzz.c" $(objs $common src/common/utf8.c src/repo/manifest.c src/repo/manifest_read.c src/repo/manifest_skim.c src/repo/blockmap.c) \
    $(pkg-config --libs jansson libcrypto)
# tl_parse_history lives in timeline.c, which pulls in the repository layer: link
# the autotools-built libwalship.a (built with clang and ASan here).
lib_a=${WALSHIP_LIB:-$out/libwalship/libwalship.a}
if [ ! -f "$lib_a" ]; then
    mkdir -p "$out/libwalship"
    (cd "$out/libwalship" && CC=$CC CFLAGS="-g -O1 -fsanitize=fuzzer-no-link,address,undefined" \
        "$top/configure" -q && make -j2 libwalship.a >/dev/null)
fi
all_libs="$lib_a $(pkg-config --libs libcurl libcrypto libzstd libarchive libxml-2.0 jansson inih libpq) -lpthread -lm"
# shellcheck disable=SC2086
$CC $cflags $inc $fz -o "$out/history_fuzz" "$here/history_fuzz.c" $all_libs
# bkf_tar.c reaches the chain restore of incremental backups (bkf_chain.c)
# and through it the repository layer: linked against libwalship.a too.
# shellcheck disable=SC2086
$CC $cflags $inc $fz -o "$out/tar_fuzz" "$here/tar_fuzz.c" $all_libs
echo "built obj_fuzz obj_fuzz_noauth s3_xml_fuzz manifest_fuzz history_fuzz tar_fuzz in $out"

if [ "${1:-}" = "--corpus" ]; then
    # shellcheck disable=SC2086
    $CC $cflags -o "$out/gen_corpus" "$here/gen_corpus.c" $srcs $libs
    mkdir -p "$here/corpus/obj"
    "$out/gen_corpus" "$here/corpus/obj"
    echo "wrote $(find "$here/corpus/obj" -type f | wc -l) seeds to $here/corpus/obj"
    python3 "$here/gen_seeds.py" "$here/corpus"
fi
