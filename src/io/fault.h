/*
 * fault — named fault-injection points, for tests of failure propagation.
 *
 * A stage can be placed at a named point of a chain (the encoder's zstd or
 * AES output, a region's upload, the spool).  It passes everything through
 * unless the environment variable WALSHIP_FAULT_INJECT names that point:
 *
 *   WALSHIP_FAULT_INJECT="obj.encode:close,upload.us-east-1:write"
 *
 * then the point's first write (":write", the default) or its close
 * (":close") fails with ERR_INTERNAL "injected fault at POINT".  Tests use
 * it to check that a failure anywhere in a chain fails the operation and
 * acknowledges nothing; without the variable it costs one getenv per
 * chain.  Thread-safe.
 */
#ifndef WALSHIP_FAULT_H
#define WALSHIP_FAULT_H

#include "stream.h"

/* `next` itself when the point is not armed (or on out of memory: a fault
 * stage is a test aid, never a reason to fail), else a failing stage that
 * owns `next`. */
struct sink *fault_wrap(struct sink *next, const char *point);

#endif
