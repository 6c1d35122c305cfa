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

/* The next field: its number, wire type, and value (a varint / fixed in *v, a length-delimited span in sub). */
static llmc_status field(reader *r, uint32_t *num, int *wt, uint64_t *v, reader *sub) {
    uint64_t key;
    size_t at = (size_t)(r->p - r->base);
    llmc_status st = varint(r, &key);
    if (st) return st;
    *num = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    if (key >> 3 == 0 || key >> 3 > 536870911u)
        return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: invalid field number at byte %zu", at);
    switch (*wt) {
    case 0: return varint(r, v);
    case 1:
    case 5: {
        size_t w = *wt == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < w)
            return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: truncated fixed-size field at byte %zu", at);
        uint64_t x = 0;
        for (size_t k = 0; k < w; k++) x |= (uint64_t)r->p[k] << (8 * k); /* little endian */
        r->p += w;
        *v = x;
        return LLMC_OK;
    }
    case 2: {
        uint64_t len;
        if ((st = varint(r, &len))) return st;
        if (len > (uint64_t)(r->end - r->p))
            return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: field %u at byte %zu claims %llu bytes, %zu are left",
                             *num, at, (unsigned long long)len, (size_t)(r->end - r->p));
        *sub = (reader){r->p, r->p + len, r->base};
        r->p += len;
        return LLMC_OK;
    }
    default:
        return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: unsupported wire type %d (field %u) at byte %zu", *wt,
                         *num, at);
    }
}

static float as_float(uint64_t v) {
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* SentencePiece { piece = 1; score = 2 (float); type = 3 } */
static llmc_status read_piece(reader *r, llmc_spm_piece *pc) {
    *pc = (llmc_spm_piece){NULL, 0, 0.0f, LLMC_SPM_NORMAL};
    while (r->p < r->end) {
        uint32_t num;
        int wt;
        uint64_t v = 0;
        reader sub = {0};
        llmc_status st = field(r, &num, &wt, &v, &sub);
        if (st) return st;
        if (num == 1 && wt == 2) {
            pc->piece = sub.p;
            pc->len = (size_t)(sub.end - sub.p);
        } else if (num == 2 && wt == 5) {
            pc->score = as_float(v);
        } else if (num == 3 && wt == 0) {
            if (v < 1 || v > 6)
                return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: piece type %llu is not 1..6",
                                 (unsigned long long)v);
            pc->type = (int)v;
        } else if (num <= 3) {
            return llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: piece field %u has wire type %d", num, wt);
        }
    }
    return LLMC_OK;
}

static llmc_status read_trainer(reader *r, llmc_spm_model *m) {
    while (r->p < r->end) {
        uint32_t num;
        int wt;
        uint64_t v = 0;
        reader sub = {0};
        llmc_status st = field(r, &num, &wt, &v, &sub);
        if (st) return st;
        if (wt == 0) {
            switch (num) {
            case 3: m->model_type = (int)(v > 100 ? 100 : v); break;
            case 24: m->treat_ws_as_suffix = v != 0; break;
            case 35: m->byte_fallback = v != 0; break;
            case 40: m->unk_id = (int32_t)v; break;
            case 41: m->bos_id = (int32_t)v; break;
            case 42: m->eos_id = (int32_t)v; break;
            case 43: m->pad_id = (int32_t)v; break;
            default: break;
            }
        } else if (wt == 2 && num == 44) {
            m->unk_surface = sub.p;
            m->unk_surface_len = (size_t)(sub.end - sub.p);
            m->has_unk_surface = 1;
        }
    }
    return LLMC_OK;
}

static llmc_status read_normalizer(reader *r, llmc_spm_normalizer *n) {
    while (r->p < r->end) {
        uint32_t num;
        int wt;
        uint64_t v = 0;
        reader sub = {0};
        llmc_status st = field(r, &num, &wt, &v, &sub);
        if (st) return st;
        if (wt == 2 && num == 1) {
            n->name = sub.p;
            n->name_len = (size_t)(sub.end - sub.p);
        } else if (wt == 2 && num == 2) {
            n->charsmap = sub.p;
            n->charsmap_len = (size_t)(sub.end - sub.p);
        } else if (wt == 0 && num == 3) {
            n->add_dummy_prefix = v != 0;
        } else if (wt == 0 && num == 4) {
            n->remove_extra_ws = v != 0;
        } else if (wt == 0 && num == 5) {
            n->escape_ws = v != 0;
        }
    }
    return LLMC_OK;
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
    size_t cap = 0;
    llmc_status st = LLMC_OK;
    while (!st && r.p < r.end) {
        uint32_t num;
        int wt;
        uint64_t v = 0;
        reader sub = {0};
        if ((st = field(&r, &num, &wt, &v, &sub))) break;
        if (num >= 1 && num <= 5 && wt != 2) {
            st = llmc_fail(LLMC_ERR_FORMAT, "SentencePiece model: top-level field %u has wire type %d, not a message", num,
                           wt);
            break;
        }
        if (num == 1) {
            if (llmc_grow((void **)&m->pieces, &cap, m->n_pieces + 1, sizeof(llmc_spm_piece), "SentencePiece pieces")) {
                st = LLMC_ERR_NOMEM;
                break;
            }
            st = read_piece(&sub, &m->pieces[m->n_pieces]);
            if (!st) m->n_pieces++;
        } else if (num == 2) {
            st = read_trainer(&sub, m);
        } else if (num == 3) {
            st = read_normalizer(&sub, &m->normalizer);
        } else if (num == 5) {
            m->has_denormalizer = 1;
            st = read_normalizer(&sub, &m->denormalizer);
        }
    }
    if (st) llmc_spm_model_free(m);
    return st;
}
