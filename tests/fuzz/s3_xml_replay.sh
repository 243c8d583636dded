#!/bin/sh
# Replay the S3 XML fuzz corpus (tests/fuzz/corpus/s3_xml) through the
# fuzz target under the normal build: TAP, one line per input.
exec "${TOP_BUILDDIR:-.}/tests/fuzz/s3_xml_replay" "${TOP_SRCDIR:-.}/tests/fuzz/corpus/s3_xml"
