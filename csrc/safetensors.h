/* safetensors.h: memory-mapped, fully validated reading of Hugging Face .safetensors files (internal).
 *
 * A file is: 8 bytes little-endian u64 N, then N bytes of JSON header {name: {"dtype", "shape", "data_offsets"}},
 * then the byte buffer the offsets point into. Every entry is checked on open (dtype, shape x itemsize ==
 * end - start, offsets inside the file, no two tensors overlapping), so later reads cannot go out of bounds.
 * A checkpoint may be one file or several shards listed by model.safetensors.index.json; both open into one
 * llmc_st set whose tensors are looked up by name. */
#ifndef LLMC_SAFETENSORS_H
#define LLMC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "llmc.h"

#define LLMC_ST_MAX_DIMS 8

/* OTHER: a dtype the format defines that llmc does not convert (I64, F64, U8, ...): the file opens (checkpoints
 * carry integer buffers such as position_ids), reading such a tensor is LLMC_ERR_UNSUPPORTED. */
typedef enum { LLMC_DT_F32 = 0, LLMC_DT_F16 = 1, LLMC_DT_BF16 = 2, LLMC_DT_OTHER = 3 } llmc_st_dtype;

typedef struct {
    const char *name;           /* NUL-terminated */
    int dtype;                  /* llmc_st_dtype */
    const char *dtype_name;     /* as written in the header */
    int ndim;
    size_t shape[LLMC_ST_MAX_DIMS];
    size_t numel;               /* product of shape (1 for a scalar) */
    const unsigned char *data;  /* into the mapped file; nbytes long */
    size_t nbytes;
    const char *file;           /* the file it lives in, for messages */
} llmc_st_tensor;

typedef struct llmc_st llmc_st;

/* Open one .safetensors file. Errors: LLMC_ERR_NOT_FOUND, LLMC_ERR_IO, LLMC_ERR_FORMAT (corrupt, naming file and
 * tensor), LLMC_ERR_UNSUPPORTED (a sub-byte dtype such as F4, naming dtype and tensor). */
llmc_status llmc_st_open(const char *path, llmc_st **out);
/* Open a checkpoint folder: dir/model.safetensors.index.json (sharded) if present, else dir/model.safetensors. */
llmc_status llmc_st_open_dir(const char *dir, llmc_st **out);
void llmc_st_close(llmc_st *st);

size_t llmc_st_count(const llmc_st *st);
/* i-th tensor in name order */
const llmc_st_tensor *llmc_st_at(const llmc_st *st, size_t i);
/* NULL when absent */
const llmc_st_tensor *llmc_st_find(const llmc_st *st, const char *name);
/* Convert the tensor to float32. out: (numel,). LLMC_ERR_UNSUPPORTED naming dtype and tensor unless F32/F16/BF16. */
llmc_status llmc_st_to_f32(const llmc_st_tensor *t, float *out);
/* Tell the kernel the mapped pages of t are no longer needed (they drop out of the resident set). */
void llmc_st_release(const llmc_st_tensor *t);
const char *llmc_st_dtype_name(int dtype);

/* IEEE half / bfloat16 bits -> float32 (exact, incl. subnormals, inf, NaN) */
float llmc_f16_to_f32(uint16_t h);
float llmc_bf16_to_f32(uint16_t h);

#endif
