// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for anscache_cut, the I/O loops' frame cutter (every
 * byte a client sends passes through it).  The input describes a stream
 * of frames and the pieces it arrives in; tests/cutcheck.h builds it and
 * checks, abort() on violation:
 *   - what is forwarded is exactly the stream less the frames answered,
 *     in order, whatever the pieces;
 *   - answer is asked for exactly the whole GET request frames it may
 *     answer (no body, END, at most ANSCACHE_MAX_REQUEST bytes), in
 *     order, each with its own header and fields, and none after garbage;
 *   - it never holds more than ANSCACHE_MAX_REQUEST bytes, and holds
 *     nothing once the stream ends on a frame boundary.
 */
#include <stddef.h>
#include <stdint.h>

#include "cutcheck.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cut_check(data, size);
	return 0;
}
