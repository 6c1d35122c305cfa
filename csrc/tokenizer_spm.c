/* tokenizer_spm.c: SentencePiece .model files as an llmc_tokenizer: the pieces and their types (normal, unknown,
 * control, user-defined, unused, byte), Unigram or BPE, and SentencePiece's own normalizer.
 *
 * Normalizer (sentencepiece's Normalizer::Normalize): leading spaces dropped (remove_extra_whitespaces), a U+2581
 * in front (add_dummy_prefix), then prefix by prefix: the longest user-defined piece there is kept as is, else the
 * longest charsmap rule is applied, else one character is copied (a byte of invalid UTF-8 becomes U+FFFD); spaces
 * become U+2581 (escape_whitespaces), runs of them one (remove_extra_whitespaces), trailing ones are dropped.
 * Unigram: unigram.c with SentencePiece's float arithmetic. BPE: the merge loop of tokenizer.c with each pair of
 * pieces ranked by the score of the piece they make (higher first; equal scores share a rank, so the leftmost pair
 * wins, as in sentencepiece's agenda); user-defined pieces are cut out first and never merged. */
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "spm_proto.h"
#include "tok_internal.h"
#include "unicode.h"

static const uint8_t META[3] = {0xE2, 0x96, 0x81};

// s: (n,) -> the length of the longest user-defined piece that prefixes s (0: none)
size_t llmc_spm_user_match(const llmc_tokenizer *t, const uint8_t *s, size_t n) {
    if (!t->uni_dat.units || !t->uni_flags || !t->user_max_len) return 0;
    const llmc_dat *d = &t->uni_dat;
    size_t best = 0;
    uint32_t node = 0;
    if (n > t->user_max_len) n = t->user_max_len; /* no user piece is longer */
    for (size_t k = 0; k < n; k++) {
        if (!(node = llmc_dat_child(d, node, s[k]))) break;
        int32_t v = llmc_dat_value(d, node);
        if (v >= 0 && (t->uni_flags[v] & LLMC_UNI_USER)) best = k + 1;
    }
    return best;
}

static inline llmc_status put(uint8_t **o, size_t *len, size_t *cap, const uint8_t *b, size_t n) {
    size_t need;
    if (!llmc_add_ok(*len, n, &need) || llmc_grow((void **)o, cap, need + 1, 1, "normalised text")) return LLMC_ERR_NOMEM;
    if (n) memcpy(*o + *len, b, n);
    *len = need;
    return LLMC_OK;
}

/* sentencepiece's NormalizePrefix: the normalized text of the prefix of s[0..n) it consumes (*used bytes). */
static void normalize_prefix(const llmc_tokenizer *t, const uint8_t *s, size_t n, const uint8_t **out, size_t *out_n,
                             size_t *used) {
    static const uint8_t fffd[3] = {0xEF, 0xBF, 0xBD};
    size_t u = llmc_spm_user_match(t, s, n);
    if (u) { /* user-defined pieces are not normalized */
        *out = s;
        *out_n = *used = u;
        return;
    }
    if (t->spm_cm) {
        size_t m = llmc_charsmap_match(t->spm_cm, s, n, 1, out, out_n);
        if (m) {
            *used = m;
            return;
        }
    }
    size_t l = llmc_utf8_seq(s, n);
    if (!l) { /* invalid UTF-8: U+FFFD for one byte */
        *out = fffd;
        *out_n = 3;
        *used = 1;
        return;
    }
    *out = s;
    *out_n = *used = l;
}

// s: (n,) -> *buf: (*out_n,) as sentencepiece's normalizer writes it (*buf reused across calls)
llmc_status llmc_spm_normalize_into(const llmc_tokenizer *t, const uint8_t *s, size_t n, uint8_t **buf, size_t *cap,
                                    size_t *out_n) {
    size_t len = 0;
    const uint8_t *p;
    size_t pl, used;
    size_t i = 0;
    *out_n = 0;
    /* room for the common case: every byte kept, spaces tripled (U+2581), the dummy prefix */
    if (llmc_grow((void **)buf, cap, 3 * n + 8, 1, "normalised text")) return LLMC_ERR_NOMEM;
    if (t->spm_remove_ws) { /* leading spaces (after normalization) */
        while (i < n) {
            normalize_prefix(t, s + i, n - i, &p, &pl, &used);
            if (pl != 1 || p[0] != ' ') break;
            i += used;
        }
    }
    if (i == n) return LLMC_OK;
    const uint8_t *ws = t->spm_escape_ws ? META : (const uint8_t *)" ";
    size_t wl = t->spm_escape_ws ? 3 : 1;
    llmc_status st = LLMC_OK;
    if (t->spm_dummy_prefix) st = put(buf, &len, cap, ws, wl);
    int prev_space = t->spm_remove_ws;
    const uint8_t *kind = t->spm_ascii_kind;
/* ASCII that no rule and no user piece can start at s[k]: the byte stays as it is (a letter that starts only rules
 * like "A" + U+0301, when the next byte is ASCII too) */
#define PLAIN(k) (s[k] < 0x80 && (kind[s[k]] == LLMC_CM_NONE || (kind[s[k]] == LLMC_CM_NON_ASCII_NEXT && \
                                                              ((k) + 1 == n || s[(k) + 1] < 0x80))))
    while (!st && i < n) {
        if (s[i] == ' ' && PLAIN(i)) { /* U+2581, once per run when removing extras */
            if (!prev_space && (st = put(buf, &len, cap, ws, wl))) break;
            prev_space = t->spm_remove_ws;
            i++;
            continue;
        }
        size_t r = i;
        while (r < n && s[r] != ' ' && PLAIN(r)) r++;
        if (r > i) { /* a run of plain bytes, copied at once */
            if ((st = put(buf, &len, cap, s + i, r - i))) break;
            prev_space = 0;
            i = r;
            continue;
        }
        normalize_prefix(t, s + i, n - i, &p, &pl, &used);
        while (prev_space && pl && p[0] == ' ') p++, pl--; /* a run of spaces keeps its first */
        if (pl) {
            for (size_t k = 0; !st && k < pl; k++)
                st = p[k] == ' ' && t->spm_escape_ws ? put(buf, &len, cap, META, 3) : put(buf, &len, cap, p + k, 1);
            prev_space = p[pl - 1] == ' ';
        }
        i += used;
        if (!t->spm_remove_ws) prev_space = 0;
    }
#undef PLAIN
    if (st) return st;
    if (t->spm_remove_ws)
        while (len >= wl && !memcmp(*buf + len - wl, ws, wl)) len -= wl; /* trailing spaces */
    *out_n = len;
    return LLMC_OK;
}

// s: (n,) -> *out: (*out_n,) (a new buffer)
llmc_status llmc_spm_normalize(const llmc_tokenizer *t, const uint8_t *s, size_t n, uint8_t **out, size_t *out_n) {
    uint8_t *b = NULL;
    size_t cap = 0;
    llmc_status st = llmc_spm_normalize_into(t, s, n, &b, &cap, out_n);
    if (st) {
        llmc_free(b);
        return st;
    }
    *out = b;
    return LLMC_OK;
}

/* BPE pairs: for every piece that can take part in merges, every split into two such pieces is a merge whose rank
 * orders the made piece's score, highest first (equal scores, equal ranks). */
static llmc_status spm_bpe_pairs(llmc_tokenizer *t, const llmc_spm_model *m) {
    size_t n = m->n_pieces;
    float *scores = llmc_malloc((n + 1) * sizeof(float), "BPE ranks");
    if (!scores) return LLMC_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (m->pieces[i].type == LLMC_SPM_NORMAL || m->pieces[i].type == LLMC_SPM_USER ||
            m->pieces[i].type == LLMC_SPM_UNUSED)
            scores[k++] = m->pieces[i].score;
    /* dense rank of a score: how many distinct scores are higher (sort descending, then binary search) */
    size_t gap = 1; /* shell sort, descending */
    while (gap < k / 3) gap = 3 * gap + 1;
    for (; gap > 0; gap /= 3)
        for (size_t i = gap; i < k; i++) {
            float v = scores[i];
            size_t j = i;
            while (j >= gap && scores[j - gap] < v) {
                scores[j] = scores[j - gap];
                j -= gap;
            }
            scores[j] = v;
        }
    size_t d = 0; /* dedupe */
    for (size_t i = 0; i < k; i++)
        if (!d || scores[d - 1] != scores[i]) scores[d++] = scores[i];
    llmc_status st = LLMC_OK;
    int joins_meta = 0; /* does a merge put a U+2581 after something? */
    for (size_t id = 0; !st && id < n; id++) {
        const llmc_spm_piece *pc = &m->pieces[id];
        if (pc->type != LLMC_SPM_NORMAL && pc->type != LLMC_SPM_USER && pc->type != LLMC_SPM_UNUSED) continue;
        if (pc->type == LLMC_SPM_USER) continue; /* user pieces are cut out before BPE: never made by merges */
        size_t lo = 0, hi = d;
        while (lo < hi) { /* first index whose score is <= pc->score (scores descend) */
            size_t mid = (lo + hi) / 2;
            if (scores[mid] > pc->score) lo = mid + 1;
            else hi = mid;
        }
        for (size_t c = 1; !st && c < pc->len; c++) {
            int32_t l = llmc_tok_lookup(t, pc->piece, c), r = l >= 0 ? llmc_tok_lookup(t, pc->piece + c, pc->len - c) : -1;
            if (r < 0) continue;
            int tl = m->pieces[l].type, tr = m->pieces[r].type;
            if ((tl != LLMC_SPM_NORMAL && tl != LLMC_SPM_UNUSED) || (tr != LLMC_SPM_NORMAL && tr != LLMC_SPM_UNUSED))
                continue;
            st = llmc_tok_add_pair(t, (uint32_t)l, (uint32_t)r, (uint32_t)lo, (uint32_t)id);
            if (pc->len - c >= 3 && !memcmp(pc->piece + c, META, 3)) joins_meta = 1;
        }
    }
    llmc_free(scores);
    /* Then no symbol ever holds a U+2581 after its first character, so no merge crosses the start of a word (a
     * U+2581): words merge independently, exactly as in one pass over the text, and can be cached. Unknown runs
     * must not span words either: U+2581 must be a piece. */
    t->spm_word_split = !joins_meta && m->normalizer.escape_ws && llmc_tok_lookup(t, META, 3) >= 0;
    return st;
}

static int hexval(uint8_t c) { /* sentencepiece writes <0xNN> with upper-case digits */
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// data: (len,) bytes of a SentencePiece .model -> *out
llmc_status llmc_tokenizer_from_sentencepiece(const char *data, size_t len, const char *what, llmc_tokenizer **out) {
    *out = NULL;
    llmc_spm_model m;
    llmc_status st = llmc_spm_parse((const uint8_t *)data, len, &m);
    if (st) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", llmc_last_error());
        return llmc_fail(st, "%s: %s", what, msg);
    }
    llmc_tokenizer *t = llmc_tok_new();
    if (!t) {
        llmc_spm_model_free(&m);
        return LLMC_ERR_NOMEM;
    }
    size_t n = m.n_pieces;
    int32_t unk = -1;
    float min_s = FLT_MAX, max_s = FLT_MIN;
    if (!n) {
        st = llmc_fail(LLMC_ERR_FORMAT, "%s: the model has no pieces", what);
        goto fail;
    }
    if (m.model_type != LLMC_SPM_UNIGRAM && m.model_type != LLMC_SPM_BPE) {
        st = llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: SentencePiece model_type %d is not supported by llmc (UNIGRAM = 1 and "
                                             "BPE = 2 are)", what, m.model_type);
        goto fail;
    }
    if (m.treat_ws_as_suffix) {
        st = llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: treat_whitespace_as_suffix is not supported by llmc", what);
        goto fail;
    }
    if (m.has_denormalizer && m.denormalizer.charsmap_len) {
        st = llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: a denormalizer is not supported by llmc", what);
        goto fail;
    }
    t->id_limit = n + 1;
    if (!(t->uni_score = llmc_malloc(n * sizeof(double), "piece scores")) ||
        !(t->uni_flags = llmc_calloc(n, 1, "piece types"))) {
        st = LLMC_ERR_NOMEM;
        goto fail;
    }
    int byte_seen[256] = {0};
    for (size_t i = 0; i < n; i++) {
        const llmc_spm_piece *pc = &m.pieces[i];
        if (!pc->len) {
            st = llmc_fail(LLMC_ERR_FORMAT, "%s: piece %zu is empty", what, i);
            goto fail;
        }
        if ((st = llmc_tok_set(t, (int64_t)i, pc->piece, pc->len))) goto fail;
        t->uni_score[i] = pc->score;
        uint8_t f = 0;
        switch (pc->type) {
        case LLMC_SPM_NORMAL:
            if (pc->score < min_s) min_s = pc->score;
            if (pc->score > max_s) max_s = pc->score;
            break;
        case LLMC_SPM_UNKNOWN:
            if (unk >= 0) {
                st = llmc_fail(LLMC_ERR_FORMAT, "%s: pieces %d and %zu are both the unknown piece", what, unk, i);
                goto fail;
            }
            unk = (int32_t)i;
            f = LLMC_UNI_NOT_IN_TRIE;
            break;
        case LLMC_SPM_CONTROL: f = LLMC_UNI_NOT_IN_TRIE | LLMC_UNI_CONTROL; break;
        case LLMC_SPM_USER:
            f = LLMC_UNI_USER;
            if (pc->len > t->user_max_len) t->user_max_len = pc->len;
            break;
        case LLMC_SPM_UNUSED: f = LLMC_UNI_UNUSED; break;
        case LLMC_SPM_BYTE: {
            int b = -1;
            if (!m.byte_fallback) {
                st = llmc_fail(LLMC_ERR_FORMAT, "%s: byte piece %zu although byte_fallback is false", what, i);
                goto fail;
            }
            if (pc->len == 6 && !memcmp(pc->piece, "<0x", 3) && pc->piece[5] == '>') {
                int hi = hexval(pc->piece[3]), lo = hexval(pc->piece[4]);
                if (hi >= 0 && lo >= 0) b = hi * 16 + lo;
            }
            if (b < 0) {
                st = llmc_fail(LLMC_ERR_FORMAT, "%s: byte piece %zu '%.*s' is not <0xNN>", what, i,
                               (int)(pc->len < 20 ? pc->len : 20), (const char *)pc->piece);
                goto fail;
            }
            t->byte_id[b] = (int32_t)i;
            byte_seen[b] = 1;
            f = LLMC_UNI_NOT_IN_TRIE;
            break;
        }
        default: break;
        }
        t->uni_flags[i] = f;
    }
    if (unk < 0) {
        st = llmc_fail(LLMC_ERR_FORMAT, "%s: the model has no unknown piece", what);
        goto fail;
    }
    if (m.byte_fallback)
        for (int b = 0; b < 256; b++)
            if (!byte_seen[b]) {
                st = llmc_fail(LLMC_ERR_FORMAT, "%s: byte_fallback is on but there is no piece <0x%02X>", what, b);
                goto fail;
            }
    t->unk_id = unk;
    t->byte_fallback = m.byte_fallback;
    t->fuse_unk = 1;
    t->uni_min_score = min_s == FLT_MAX ? 0.0 : min_s;
    t->spm_max_score = max_s;
    t->uni_spm = 1;
    t->spm_decode = 1;
    if ((st = llmc_tok_build_map(t, n)) || (st = llmc_unigram_build(t, n))) goto fail;
    if (m.model_type == LLMC_SPM_UNIGRAM) {
        t->model = LLMC_MODEL_UNIGRAM;
        t->no_piece_cache = 1; /* the whole normalized text is one lattice: caching it only costs */
    } else {
        t->model = LLMC_MODEL_CHAR_BPE;
        if ((st = spm_bpe_pairs(t, &m))) goto fail;
    }
    /* normalizer */
    t->normalizer = LLMC_NORM_SPM;
    t->spm_dummy_prefix = m.normalizer.add_dummy_prefix;
    t->spm_remove_ws = m.normalizer.remove_extra_ws;
    t->spm_escape_ws = m.normalizer.escape_ws;
    if (m.normalizer.charsmap_len && (st = llmc_charsmap_parse(m.normalizer.charsmap, m.normalizer.charsmap_len, &t->spm_cm))) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", llmc_last_error());
        st = llmc_fail(st, "%s: %s", what, msg);
        goto fail;
    }
    for (int c = 0; c < 128; c++) { /* which charsmap rules and user pieces an ASCII byte can start */
        int user = 0;
        for (size_t i = 0; i < n && !user; i++)
            user = m.pieces[i].type == LLMC_SPM_USER && m.pieces[i].piece[0] == c;
        t->spm_ascii_kind[c] = user ? LLMC_CM_ANY : t->spm_cm ? (uint8_t)llmc_charsmap_first(t->spm_cm, (uint8_t)c)
                                                            : LLMC_CM_NONE;
    }
    /* decoding: control pieces vanish, unk is its surface, bytes are bytes, U+2581 is ' ' */
    uint8_t buf[1024];
    for (size_t i = 0; i < n; i++) {
        const llmc_spm_piece *pc = &m.pieces[i];
        size_t o = 0;
        if (pc->type == LLMC_SPM_CONTROL) {
            o = 0;
        } else if (pc->type == LLMC_SPM_UNKNOWN) {
            const uint8_t *us = m.has_unk_surface ? m.unk_surface : (const uint8_t *)" \xE2\x81\x87 ";
            size_t ul = m.has_unk_surface ? m.unk_surface_len : 5;
            if ((st = llmc_tok_set_decode(t, (int64_t)i, us, ul))) goto fail;
            continue;
        } else if (pc->type == LLMC_SPM_BYTE) {
            for (int b = 0; b < 256; b++)
                if (t->byte_id[b] == (int32_t)i) buf[o++] = (uint8_t)b;
        } else {
            uint8_t *big = pc->len > sizeof buf ? llmc_malloc(pc->len, "decode buffer") : buf;
            if (!big) {
                st = LLMC_ERR_NOMEM;
                goto fail;
            }
            for (size_t j = 0; j < pc->len; j++) {
                if (j + 3 <= pc->len && !memcmp(pc->piece + j, META, 3)) {
                    big[o++] = ' ';
                    j += 2;
                } else {
                    big[o++] = pc->piece[j];
                }
            }
            st = llmc_tok_set_decode(t, (int64_t)i, big, o);
            if (big != buf) llmc_free(big);
            if (st) goto fail;
            continue;
        }
        if ((st = llmc_tok_set_decode(t, (int64_t)i, buf, o))) goto fail;
    }
    if (m.bos_id >= 0 && (size_t)m.bos_id < n) { /* add_special_tokens: <s> in front, like sp.encode(add_bos=True) */
        if (!(t->prefix_ids = llmc_malloc(sizeof(int32_t), "template ids"))) {
            st = LLMC_ERR_NOMEM;
            goto fail;
        }
        t->prefix_ids[0] = m.bos_id;
        t->n_prefix = 1;
    }
    if ((st = llmc_tok_finish(t))) goto fail;
    llmc_spm_model_free(&m);
    *out = t;
    return LLMC_OK;
fail:
    llmc_spm_model_free(&m);
    llmc_tokenizer_free(t);
    return st;
}
