/* spm_proto.h: the fields of a SentencePiece ModelProto that llmc reads (spm_proto.c). */
#ifndef LLMC_SPM_PROTO_H
#define LLMC_SPM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* ModelProto.SentencePiece.Type */
enum { LLMC_SPM_NORMAL = 1, LLMC_SPM_UNKNOWN = 2, LLMC_SPM_CONTROL = 3, LLMC_SPM_USER = 4, LLMC_SPM_UNUSED = 5,
       LLMC_SPM_BYTE = 6 };
/* TrainerSpec.ModelType */
enum { LLMC_SPM_UNIGRAM = 1, LLMC_SPM_BPE = 2, LLMC_SPM_WORD = 3, LLMC_SPM_CHAR = 4 };

typedef struct {
    const uint8_t *piece; /* into the file's bytes */
    size_t len;
    float score;
    int type;
} llmc_spm_piece;

typedef struct {
    const uint8_t *name, *charsmap;
    size_t name_len, charsmap_len;
    int add_dummy_prefix, remove_extra_ws, escape_ws; /* proto defaults: all true */
} llmc_spm_normalizer;

typedef struct {
    llmc_spm_piece *pieces; /* (n_pieces,) llmc_malloc'ed */
    size_t n_pieces;
    int model_type, byte_fallback, treat_ws_as_suffix;
    int32_t unk_id, bos_id, eos_id, pad_id;
    const uint8_t *unk_surface;
    size_t unk_surface_len;
    int has_unk_surface;
    llmc_spm_normalizer normalizer, denormalizer;
    int has_denormalizer;
} llmc_spm_model;

/* Parse data[0..len); strings point into data. Corrupt input: LLMC_ERR_FORMAT naming the byte offset. */
llmc_status llmc_spm_parse(const uint8_t *data, size_t len, llmc_spm_model *m);
void llmc_spm_model_free(llmc_spm_model *m);

#endif
