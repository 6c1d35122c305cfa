/* gguf.h: memory-mapped, fully validated reading and atomic writing of GGUF files (llama.cpp's model format).
 *
 * A GGUF v2/v3 file is, all little-endian:
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x     (string key | u32 value type | value)
 *   n_tensors x (string name | u32 n_dims | n_dims x u64 ne | u32 ggml type | u64 offset)
 *   padding to `alignment` (the u32 key general.alignment, default 32)
 *   the data section: tensor i's bytes start at data + offset_i (a multiple of alignment).
 * A string is u64 length + bytes (no NUL); an array is u32 element type + u64 count + elements.
 * ne[0] is the fastest-varying dimension: a (rows, cols) NumPy matrix is ne = {cols, rows}.
 * Every count, length, offset and dimension is checked against the file on open, so later reads cannot go out of
 * bounds, and nothing is allocated in proportion to a number the file states without the file holding that
 * many bytes. */
#ifndef LLMC_GGUF_H
#define LLMC_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "llmc.h"

#define LLMC_GGUF_MAX_DIMS 4
#define LLMC_GGUF_DEFAULT_ALIGNMENT 32

/* value types of the metadata (the file's ids) */
typedef enum {
    LLMC_GGUF_UINT8 = 0, LLMC_GGUF_INT8 = 1, LLMC_GGUF_UINT16 = 2, LLMC_GGUF_INT16 = 3, LLMC_GGUF_UINT32 = 4,
    LLMC_GGUF_INT32 = 5, LLMC_GGUF_FLOAT32 = 6, LLMC_GGUF_BOOL = 7, LLMC_GGUF_STRING = 8, LLMC_GGUF_ARRAY = 9,
    LLMC_GGUF_UINT64 = 10, LLMC_GGUF_INT64 = 11, LLMC_GGUF_FLOAT64 = 12, LLMC_GGUF_N_VALUE_TYPES = 13
} llmc_gguf_value_type;

typedef struct {
    const char *key;            /* NUL-terminated copy */
    int type;                   /* llmc_gguf_value_type */
    int elem_type;              /* ARRAY: the element type (never ARRAY: nested arrays are refused) */
    uint64_t count;             /* ARRAY: elements; else 1 */
    const unsigned char *data;  /* into the map: the scalar value, STRING bytes, or the first array element */
    uint64_t len;               /* STRING: byte length */
    const uint64_t *str_off;    /* ARRAY of STRING: (count + 1,) byte offsets from data of each element's u64 length
                                 * prefix (the last is the end) */
} llmc_gguf_kv;

typedef struct {
    const char *name;           /* NUL-terminated copy */
    int type;                   /* ggml type id (llmc_type for the ones llmc computes with) */
    int n_dims;
    uint64_t ne[LLMC_GGUF_MAX_DIMS]; /* ne[0] fastest; 1 beyond n_dims */
    uint64_t offset;            /* from the start of the data section */
    const unsigned char *data;  /* into the map */
    size_t nbytes;
} llmc_gguf_tensor;

typedef struct llmc_gguf llmc_gguf;

/* Open and validate. Errors: LLMC_ERR_NOT_FOUND, LLMC_ERR_IO, LLMC_ERR_FORMAT (corrupt: the message names the
 * file and the key or tensor), LLMC_ERR_UNSUPPORTED (GGUF v1, a big-endian file, nested arrays). */
llmc_status llmc_gguf_open(const char *path, llmc_gguf **out);
void llmc_gguf_close(llmc_gguf *g);

uint32_t llmc_gguf_version(const llmc_gguf *g);
size_t llmc_gguf_alignment(const llmc_gguf *g);
uint64_t llmc_gguf_data_offset(const llmc_gguf *g); /* where the data section starts in the file */
size_t llmc_gguf_file_size(const llmc_gguf *g);
const char *llmc_gguf_path(const llmc_gguf *g);

size_t llmc_gguf_n_kv(const llmc_gguf *g);
const llmc_gguf_kv *llmc_gguf_kv_at(const llmc_gguf *g, size_t i); /* file order */
const llmc_gguf_kv *llmc_gguf_find_kv(const llmc_gguf *g, const char *key); /* NULL when absent */
/* Element i of an ARRAY of STRING: bytes and length (i < count). */
void llmc_gguf_arr_str(const llmc_gguf_kv *kv, uint64_t i, const char **s, uint64_t *len);

size_t llmc_gguf_n_tensors(const llmc_gguf *g);
const llmc_gguf_tensor *llmc_gguf_tensor_at(const llmc_gguf *g, size_t i); /* file order */
const llmc_gguf_tensor *llmc_gguf_find_tensor(const llmc_gguf *g, const char *name);

/* Typed getters for one key; LLMC_ERR_NOT_FOUND-free: a missing key is LLMC_ERR_FORMAT naming it (unless the
 * caller checks llmc_gguf_find_kv first); a key of another type is LLMC_ERR_FORMAT naming key and both types.
 * get_uint accepts any integer type holding a value >= 0; get_float any float or integer type. */
llmc_status llmc_gguf_get_uint(const llmc_gguf *g, const char *key, uint64_t *out);
llmc_status llmc_gguf_get_float(const llmc_gguf *g, const char *key, double *out);
llmc_status llmc_gguf_get_str(const llmc_gguf *g, const char *key, const char **s, uint64_t *len);
llmc_status llmc_gguf_get_bool(const llmc_gguf *g, const char *key, int *out);

/* The value of a scalar numeric/bool kv (type checked by the caller) as int64 / uint64 / double. */
int64_t llmc_gguf_scalar_i64(int type, const unsigned char *p);
uint64_t llmc_gguf_scalar_u64(int type, const unsigned char *p);
double llmc_gguf_scalar_f64(int type, const unsigned char *p);
/* Bytes of one scalar of a numeric/bool type (0 for STRING/ARRAY/unknown). */
size_t llmc_gguf_value_size(int type);
const char *llmc_gguf_value_type_name(int type);

/* ggml's types as files may hold them (incl. the ones llmc does not compute with): name ("q4_k"), values per
 * block and bytes per block; 0 / NULL for an id ggml does not define. */
const char *llmc_ggml_type_name(int type);
size_t llmc_ggml_type_block_size(int type);
size_t llmc_ggml_type_block_bytes(int type);
int llmc_ggml_type_from_name(const char *name); /* -1 when unknown (case-insensitive) */
/* Bytes of a tensor of `type` with the given ne; LLMC_ERR_INVALID when ne[0] is not a multiple of the block size or
 * the size overflows, naming `what`. */
llmc_status llmc_ggml_nbytes(int type, int n_dims, const uint64_t *ne, const char *what, size_t *out);

/* ---------------------------------------------------------------- writing */
typedef struct {
    const char *key;
    int type;                  /* llmc_gguf_value_type */
    int elem_type;             /* ARRAY: element type (not ARRAY) */
    uint64_t count;            /* ARRAY: elements */
    const void *data;          /* scalar: the value in its type; STRING: the bytes; ARRAY of numbers: count packed
                                * values; ARRAY of STRING: const char *const * (count pointers) */
    uint64_t len;              /* STRING: byte length */
    const uint64_t *lens;      /* ARRAY of STRING: (count,) lengths */
} llmc_gguf_kv_in;

typedef struct {
    const char *name;          /* at most 63 bytes (llama.cpp's GGML_MAX_NAME - 1) */
    int type;                  /* ggml type id */
    int n_dims;                /* 1..4 */
    uint64_t ne[LLMC_GGUF_MAX_DIMS];
    const void *data;          /* nbytes = llmc_ggml_nbytes(type, ne) */
    size_t nbytes;
} llmc_gguf_tensor_in;

/* Write a GGUF v3 file: to a temporary file beside `path`, fsync, rename over path (so a reader never sees half a
 * file, and a failure leaves any old file in place). alignment: 0 = the value of a general.alignment kv if given,
 * else 32; a general.alignment kv must be UINT32 and agree. Keys and tensor names must be unique. */
llmc_status llmc_gguf_write(const char *path, const llmc_gguf_kv_in *kv, size_t n_kv, const llmc_gguf_tensor_in *t,
                            size_t n_tensors, size_t alignment);

#endif
