/* spm_proto.c: a minimal protobuf reader for SentencePiece .model files (sentencepiece_model.proto's ModelProto),
 * reading only the fields llmc uses and skipping every other one by its wire type.
 *
 * Wire format: each field is a varint key (field number << 3 | wire type) then its value: 0 varint, 1 eight bytes,
 * 2 a varint length then that many bytes (strings, bytes, nested messages), 5 four bytes. Groups (3, 4) are
 * obsolete and refused. Every length is checked against the bytes left, every nested message is read within its
 * own bounds, varints are at most 10 bytes: a corrupt file is LLMC_ERR_FORMAT naming the offset, never a read
 * outside the buffer. Strings point into the caller's buffer (which must outlive the parsed model). */
#include <string.h>

#include "spm_proto.h"

typedef struct {
    const uint8_t *p, *end, *base; /* base: the start of the file, for offsets in messages */
} reader;

static llmc_status varint(reader *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: truncated varint at byte %zu", (size_t)(r->p - r->base));
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: varint overflows 64 bits at byte %zu",
                             (size_t)(r->p - r->base));
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return LLMC_OK;
        }
    }
    return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: varint longer than 10 bytes at byte %zu",
                     (size_t)(r->p - r->base));
}

/* One field: its number, wire type and value (a varint / fixed in v, a length-delimited span in sub). */
typedef struct {
    uint32_t num;
    int wt;
    uint64_t v;
    reader sub;
    size_t at; /* the field's byte offset in the file, for messages */
} pb_field;

/* Read the next field of r into *f. */
static llmc_status next_field(reader *r, pb_field *f) {
    uint64_t key;
    *f = (pb_field){0};
    f->at = (size_t)(r->p - r->base);
    llmc_status st = varint(r, &key);
    if (st) return st;
    f->num = (uint32_t)(key >> 3);
    f->wt = (int)(key & 7);
    if (key >> 3 == 0 || key >> 3 > 536870911u)
        return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: invalid field number at byte %zu", f->at);
    switch (f->wt) {
    case 0: return varint(r, &f->v);
    case 1:
    case 5: {
        size_t w = f->wt == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < w)
            return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: truncated fixed-size field at byte %zu", f->at);
        for (size_t k = 0; k < w; k++) f->v |= (uint64_t)r->p[k] << (8 * k); /* little endian */
        r->p += w;
        return LLMC_OK;
    }
    case 2: {
        uint64_t len;
        if ((st = varint(r, &len))) return st;
        if (len > (uint64_t)(r->end - r->p))
            return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: field %u at byte %zu claims %llu bytes, %zu are left",
                             f->num, f->at, (unsigned long long)len, (size_t)(r->end - r->p));
        f->sub = (reader){r->p, r->p + len, r->base};
        r->p += len;
        return LLMC_OK;
    }
    default:
        return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: unsupported wire type %d (field %u) at byte %zu", f->wt,
                         f->num, f->at);
    }
}

/* What a message does with one of its fields (dst: the struct it fills). */
typedef llmc_status (*field_fn)(void *dst, pb_field *f);

/* Read every field of the message r[p..end) and hand each to fn: the one loop of every message type. */
static llmc_status read_message(reader *r, field_fn fn, void *dst) {
    while (r->p < r->end) {
        pb_field f;
        llmc_status st = next_field(r, &f);
        if (!st) st = fn(dst, &f);
        if (st) return st;
    }
    return LLMC_OK;
}

static float as_float(uint64_t v) {
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static size_t span_len(const reader *s) { return (size_t)(s->end - s->p); }

/* SentencePiece { piece = 1; score = 2 (float); type = 3 } */
static llmc_status piece_field(void *dst, pb_field *f) {
    llmc_spm_piece *pc = dst;
    if (f->num == 1 && f->wt == 2) {
        pc->piece = f->sub.p;
        pc->len = span_len(&f->sub);
    } else if (f->num == 2 && f->wt == 5) {
        pc->score = as_float(f->v);
    } else if (f->num == 3 && f->wt == 0) {
        if (f->v < 1 || f->v > 6)
            return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: piece type %llu at byte %zu is not 1..6",
                             (unsigned long long)f->v, f->at);
        pc->type = (int)f->v;
    } else if (f->num <= 3) {
        return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: piece field %u at byte %zu has wire type %d", f->num,
                         f->at, f->wt);
    }
    return LLMC_OK;
}

/* TrainerSpec: model_type = 3, treat_whitespace_as_suffix = 24, byte_fallback = 35, unk/bos/eos/pad ids = 40..43,
 * unk_surface = 44 */
static llmc_status trainer_field(void *dst, pb_field *f) {
    llmc_spm_model *m = dst;
    uint64_t v = f->v;
    if (f->wt == 0) {
        switch (f->num) {
        case 3: m->model_type = (int)(v > 100 ? 100 : v); break;
        case 24: m->treat_ws_as_suffix = v != 0; break;
        case 35: m->byte_fallback = v != 0; break;
        case 40: m->unk_id = (int32_t)v; break;
        case 41: m->bos_id = (int32_t)v; break;
        case 42: m->eos_id = (int32_t)v; break;
        case 43: m->pad_id = (int32_t)v; break;
        default: break;
        }
    } else if (f->wt == 2 && f->num == 44) {
        m->unk_surface = f->sub.p;
        m->unk_surface_len = span_len(&f->sub);
        m->has_unk_surface = 1;
    }
    return LLMC_OK;
}

/* NormalizerSpec { name = 1; precompiled_charsmap = 2; add_dummy_prefix = 3; remove_extra_whitespaces = 4;
 * escape_whitespaces = 5 } */
static llmc_status normalizer_field(void *dst, pb_field *f) {
    llmc_spm_normalizer *n = dst;
    if (f->wt == 2 && f->num == 1) {
        n->name = f->sub.p;
        n->name_len = span_len(&f->sub);
    } else if (f->wt == 2 && f->num == 2) {
        n->charsmap = f->sub.p;
        n->charsmap_len = span_len(&f->sub);
    } else if (f->wt == 0 && f->num >= 3 && f->num <= 5) {
        int on = f->v != 0;
        if (f->num == 3) n->add_dummy_prefix = on;
        else if (f->num == 4) n->remove_extra_ws = on;
        else n->escape_ws = on;
    }
    return LLMC_OK;
}

typedef struct {
    llmc_spm_model *m;
    size_t cap; /* of m->pieces */
} model_reader;

/* ModelProto { repeated pieces = 1; trainer_spec = 2; normalizer_spec = 3; denormalizer_spec = 5 } */
static llmc_status model_field(void *dst, pb_field *f) {
    model_reader *mr = dst;
    llmc_spm_model *m = mr->m;
    if (f->num >= 1 && f->num <= 5 && f->wt != 2)
        return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: top-level field %u at byte %zu has wire type %d, not a "
                                          "message", f->num, f->at, f->wt);
    switch (f->num) {
    case 1: {
        if (llmc_grow((void **)&m->pieces, &mr->cap, m->n_pieces + 1, sizeof(llmc_spm_piece), "SentencePiece pieces"))
            return LLMC_ERR_NOMEM;
        llmc_spm_piece *pc = &m->pieces[m->n_pieces];
        *pc = (llmc_spm_piece){NULL, 0, 0.0f, LLMC_SPM_NORMAL};
        llmc_status st = read_message(&f->sub, piece_field, pc);
        if (!st) m->n_pieces++;
        return st;
    }
    case 2: return read_message(&f->sub, trainer_field, m);
    case 3: return read_message(&f->sub, normalizer_field, &m->normalizer);
    case 5:
        m->has_denormalizer = 1;
        return read_message(&f->sub, normalizer_field, &m->denormalizer);
    default: return LLMC_OK;
    }
}

void llmc_spm_model_free(llmc_spm_model *m) {
    llmc_free(m->pieces);
    memset(m, 0, sizeof *m);
}

// data: (len,) bytes of a .model file -> *m (pieces and strings point into data)
llmc_status llmc_spm_parse(const uint8_t *data, size_t len, llmc_spm_model *m) {
    memset(m, 0, sizeof *m);
    /* proto defaults */
    m->model_type = LLMC_SPM_UNIGRAM;
    m->unk_id = 0;
    m->bos_id = 1;
    m->eos_id = 2;
    m->pad_id = -1;
    m->normalizer = (llmc_spm_normalizer){.add_dummy_prefix = 1, .remove_extra_ws = 1, .escape_ws = 1};
    m->denormalizer = m->normalizer;
    reader r = {data, data + len, data};
    model_reader mr = {m, 0};
    llmc_status st = read_message(&r, model_field, &mr);
    if (st) llmc_spm_model_free(m);
    return st;
}
