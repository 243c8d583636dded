#!/bin/sh
# Build the object-format fuzzer (libFuzzer + ASan + UBSan) with clang, apart
# from the autotools build, into tests/fuzz/build/ (or $FUZZ_BUILD).
#
#   tests/fuzz/build-fuzzer.sh            build obj_fuzz and obj_fuzz_noauth
#   tests/fuzz/build-fuzzer.sh --corpus   also regenerate tests/fuzz/corpus/obj
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

lib="src/common/err.c src/common/util.c src/common/log.c src/io/fault.c src/io/stream.c src/io/sha256tee.c
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
echo "built $out/obj_fuzz $out/obj_fuzz_noauth"

if [ "${1:-}" = "--corpus" ]; then
    # shellcheck disable=SC2086
    $CC $cflags -o "$out/gen_corpus" "$here/gen_corpus.c" $srcs $libs
    mkdir -p "$here/corpus/obj"
    "$out/gen_corpus" "$here/corpus/obj"
    echo "wrote $(find "$here/corpus/obj" -type f | wc -l) seeds to $here/corpus/obj"
fi
