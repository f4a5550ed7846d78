/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NumPy .npy files of float32, the only kind vgpu-run reads and writes: format version 1 or 2, dtype
 * '<f4', C order, rank 0 … 4. A file is untrusted input: anything else is refused with a sentence. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define NPY_RANK_MAX        4u
#define NPY_HEADER_LEN_MAX  (64u * 1024u)           /* v2 allows 4 GiB of header; no honest file needs 64 KiB */
#define NPY_DATA_SIZE_MAX   (UINT64_C(1) << 36)     /* 64 GiB of floats: past that it is not a file for us */

typedef struct NpyArray {
        uint32_t rank;
        uint64_t shape[NPY_RANK_MAX];
        uint64_t count; /* product of shape; 1 for rank 0 */
        float *data;    /* count floats, malloc'd */
} NpyArray;

/* Parses a header: buf holds at least the whole preamble and header (the caller reads more when -EAGAIN
 * says how much: *ret_data_offset is then the bytes needed). Fills rank, shape, count (no data) and
 * *ret_data_offset. -EBADMSG with a sentence in err for anything that is not a '<f4' C-order .npy. */
int npy_parse_header(const uint8_t *buf, size_t len, NpyArray *ret, uint64_t *ret_data_offset, char *err,
                     size_t err_size);

/* A whole file in memory: header, then exactly count floats (truncated or trailing bytes are refused). */
int npy_parse(const uint8_t *buf, size_t len, NpyArray *ret, char *err, size_t err_size);

int npy_read(const char *path, NpyArray *ret, char *err, size_t err_size);
/* Writes version 1 (the header padded to 64 bytes, as numpy does); through a temporary file and a rename,
 * so a failure leaves no half-written file behind. */
int npy_write(const char *path, const NpyArray *a, char *err, size_t err_size);

void npy_array_done(NpyArray *a);
/* "[2, 3, 4]" into buf. */
const char *npy_shape_to_string(const NpyArray *a, char *buf, size_t size);
