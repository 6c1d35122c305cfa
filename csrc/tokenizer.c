/* tokenizer.c: the BPE core shared by every loader: token tables, the bytes->id and pair->merge hash maps, the
 * .tiktoken loader, encoding (special tokens, normalisation, pre-tokenization, BPE merge with a cache) and decoding.
 *
 * BPE merge: a piece starts as symbols (its bytes, or for SentencePiece-style models its characters with byte
 * fallback); repeatedly the adjacent pair with the lowest merge rank (the leftmost among equals) is replaced by its
 * merged token. For tiktoken files a pair's rank is the rank of the concatenated token, which is exactly what
 * tiktoken's byte_pair_merge computes; for HF files it is the index in the `merges` list. Short pieces use a flat
 * array scan (O(n^2) but tiny n); long pieces use a linked list plus a binary heap with lazy deletion, O(n log n). */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <omp.h>

#include "regex.h"
#include "tok_internal.h"
#include "unicode.h"

#define NO_TOKEN UINT32_MAX
#define SHORT_PIECE 64   /* pieces with at most this many symbols use the array scan */
#define CACHE_MIN_SLOTS 256    /* per-call piece cache: starts small (cheap for short texts), doubles when half */
#define CACHE_MAX_SLOTS 65536  /* full, and is cleared when half of CACHE_MAX_SLOTS is used */
#define CACHE_MAX_PIECE 255

/* ---------------------------------------------------------------- hashing */
/* 64-bit hash of a byte string: 8 bytes at a time, multiply-xorshift mixing. */
static inline uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n); /* the 0..7 trailing bytes, zero padded */
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

/* Key of a vocabulary-map entry: the first 16 bytes (zero padded) and a hash of all of them. */
static inline uint64_t key_hash(const uint8_t *b, size_t n, uint64_t *k0, uint64_t *k1) {
    uint8_t buf[16] = {0};
    memcpy(buf, b, n < 16 ? n : 16);
    memcpy(k0, buf, 8);
    memcpy(k1, buf + 8, 8);
    if (n > 16) return hash_bytes(b, n);
    uint64_t h = (*k0 ^ (n * 0x9E3779B97F4A7C15ull)) * 0xbf58476d1ce4e5b9ull; /* short keys: mix the two words */
    h = (h ^ (h >> 31) ^ *k1) * 0x94d049bb133111ebull;
    return h ^ (h >> 29);
}

/* Hash of a (left << 32 | right) merge key. */
static inline uint64_t hash_pair(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ull;
    return key ^ (key >> 29);
}


/* ---------------------------------------------------------------- building */
llmc_tokenizer *llmc_tok_new(void) {
    llmc_tokenizer *t = llmc_calloc(1, sizeof *t, "tokenizer");
    if (!t) return NULL;
    t->unk_id = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    return t;
}

void llmc_tokenizer_free(llmc_tokenizer *t) {
    if (!t) return;
    llmc_free(t->blob);
    llmc_free(t->tok_off);
    llmc_free(t->tok_len);
    llmc_free(t->dec_off);
    llmc_free(t->dec_len);
    llmc_free(t->map);
    llmc_free(t->pairs);
    llmc_free(t->pair_filter);
    llmc_bpe_trie_free(t);
    llmc_free(t->added);
    llmc_free(t->prefix_ids);
    llmc_free(t->suffix_ids);
    llmc_pretok_steps_free(t->steps, t->n_steps);
    llmc_norm_steps_free(t->norm_steps, t->n_norm_steps);
    llmc_dat_free(&t->uni_dat);
    llmc_free(t->uni_score);
    llmc_free(t->uni_flags);
    llmc_charsmap_free(t->spm_cm);
    llmc_free(t);
}

/* Make ids [0, id] addressable. */
static llmc_status ensure_id(llmc_tokenizer *t, int64_t id) {
    if (id < 0 || id >= INT32_MAX) return llmc_fail(LLMC_ERR_FORMAT, "token id %lld is out of range", (long long)id);
    /* the tables are indexed by id, so one huge id in a small file would allocate gigabytes of holes */
    if (t->id_limit && (size_t)id >= t->id_limit)
        return llmc_fail(LLMC_ERR_FORMAT,
                         "token id %lld is absurd for a file of this size (ids above %zu would leave the token table "
                         "mostly empty); refusing to allocate it", (long long)id, t->id_limit - 1);
    size_t need = (size_t)id + 1;
    if (need <= t->n_vocab) return LLMC_OK;
    size_t cap = t->n_vocab, cap2 = t->n_vocab, cap3 = t->n_vocab, cap4 = t->n_vocab;
    if (llmc_grow((void **)&t->tok_off, &cap, need, sizeof(uint64_t), "token table") ||
        llmc_grow((void **)&t->tok_len, &cap2, need, sizeof(uint32_t), "token table"))
        return LLMC_ERR_NOMEM;
    if (t->dec_off && (llmc_grow((void **)&t->dec_off, &cap3, need, sizeof(uint64_t), "token table") ||
                       llmc_grow((void **)&t->dec_len, &cap4, need, sizeof(uint32_t), "token table")))
        return LLMC_ERR_NOMEM;
    /* llmc_grow() doubles, so the tables are cap long: mark the new ids as holes; keep n_vocab == allocated length */
    size_t full = cap < cap2 ? cap : cap2;
    for (size_t i = t->n_vocab; i < full; i++) {
        t->tok_len[i] = NO_TOKEN;
        if (t->dec_off) t->dec_len[i] = NO_TOKEN;
    }
    t->n_vocab = full;
    return LLMC_OK;
}

/* Append b[0..n) to the token-bytes blob; *off = where it starts. */
static llmc_status blob_put(llmc_tokenizer *t, const uint8_t *b, size_t n, uint64_t *off) {
    size_t need;
    if (!llmc_add_ok(t->blob_len, n, &need) || n >= NO_TOKEN) return llmc_fail(LLMC_ERR_NOMEM, "token too long");
    if (llmc_grow((void **)&t->blob, &t->blob_cap, need + 1, 1, "token bytes")) return LLMC_ERR_NOMEM;
    if (n) memcpy(t->blob + t->blob_len, b, n);
    *off = t->blob_len;
    t->blob_len = need;
    return LLMC_OK;
}

llmc_status llmc_tok_set(llmc_tokenizer *t, int64_t id, const uint8_t *b, size_t n) {
    llmc_status st = ensure_id(t, id);
    if (st) return st;
    if (t->tok_len[id] != NO_TOKEN) return llmc_fail(LLMC_ERR_FORMAT, "token id %lld appears twice", (long long)id);
    if ((st = blob_put(t, b, n, &t->tok_off[id]))) return st;
    t->tok_len[id] = (uint32_t)n;
    return LLMC_OK;
}

llmc_status llmc_tok_set_decode(llmc_tokenizer *t, int64_t id, const uint8_t *b, size_t n) {
    llmc_status st = ensure_id(t, id);
    if (st) return st;
    if (!t->dec_off) { /* first use: allocate alongside the token table */
        t->dec_off = llmc_calloc(t->n_vocab, sizeof(uint64_t), "decode table");
        t->dec_len = llmc_malloc(t->n_vocab * sizeof(uint32_t), "decode table");
        if (!t->dec_off || !t->dec_len) return LLMC_ERR_NOMEM;
        for (size_t i = 0; i < t->n_vocab; i++) t->dec_len[i] = NO_TOKEN;
    }
    if ((st = blob_put(t, b, n, &t->dec_off[id]))) return st;
    t->dec_len[id] = (uint32_t)n;
    return LLMC_OK;
}

llmc_status llmc_tok_add_added(llmc_tokenizer *t, const uint8_t *b, size_t n, int64_t id, int special) {
    if (n == 0) return llmc_fail(LLMC_ERR_FORMAT, "special token %lld is empty", (long long)id);
    size_t cap = t->n_added;
    if (llmc_grow((void **)&t->added, &cap, t->n_added + 1, sizeof(llmc_added_tok), "added tokens")) return LLMC_ERR_NOMEM;
    llmc_status st = ensure_id(t, id);
    if (st) return st;
    uint64_t off = 0;
    if ((st = blob_put(t, b, n, &off))) return st;
    if (t->tok_len[id] == NO_TOKEN) { /* an id of its own: its bytes are the content */
        t->tok_off[id] = off;
        t->tok_len[id] = (uint32_t)n;
    }
    t->added[t->n_added++] = (llmc_added_tok){(uint32_t)off, (uint32_t)n, (int32_t)id, (uint8_t)special, 0, 0, 0, 0,
                                              (uint32_t)off, (uint32_t)n};
    t->first_byte[b[0]] = 1;
    return LLMC_OK;
}

llmc_status llmc_tok_set_match(llmc_tokenizer *t, size_t k, const uint8_t *b, size_t n) {
    if (!n) return llmc_fail(LLMC_ERR_FORMAT, "added token %zu is empty once normalized", k);
    uint64_t off = 0;
    llmc_status st = blob_put(t, b, n, &off);
    if (st) return st;
    t->added[k].moff = (uint32_t)off;
    t->added[k].mlen = (uint32_t)n;
    t->first_byte[b[0]] = 1;
    return LLMC_OK;
}

static inline const uint8_t *tok_bytes(const llmc_tokenizer *t, uint32_t id, size_t *n) {
    *n = t->tok_len[id];
    return t->blob + t->tok_off[id];
}

llmc_status llmc_tok_build_map(llmc_tokenizer *t, size_t n_model) {
    size_t present = 0; /* sized by the tokens there are, not by the largest id */
    for (size_t id = 0; id < n_model && id < t->n_vocab; id++) present += t->tok_len[id] != NO_TOKEN;
    size_t cap = 16;
    while (cap < 2 * present + 16) cap *= 2; /* load factor <= 1/2 */
    llmc_free(t->map);
    t->map = llmc_malloc(cap * sizeof(llmc_bmap_slot), "vocabulary map");
    if (!t->map) return LLMC_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++) t->map[i].id = -1;
    t->map_mask = cap - 1;
    for (size_t id = 0; id < n_model && id < t->n_vocab; id++) {
        if (t->tok_len[id] == NO_TOKEN) continue;
        size_t n;
        const uint8_t *b = tok_bytes(t, (uint32_t)id, &n);
        int32_t dup = llmc_tok_lookup(t, b, n);
        if (dup >= 0) return llmc_fail(LLMC_ERR_FORMAT, "tokens %d and %zu have the same bytes", dup, id);
        uint64_t k0, k1, h = key_hash(b, n, &k0, &k1);
        size_t s = h & t->map_mask;
        while (t->map[s].id >= 0) s = (s + 1) & t->map_mask;
        t->map[s] = (llmc_bmap_slot){k0, k1, (uint32_t)(h >> 32), (uint32_t)n, (int32_t)id, 0};
    }
    return LLMC_OK;
}

/* Lookup with the key already hashed by key_hash. */
static inline int32_t lookup_hashed(const llmc_tokenizer *t, const uint8_t *b, size_t n, uint64_t h, uint64_t k0,
                                    uint64_t k1) {
    uint32_t hh = (uint32_t)(h >> 32);
    for (size_t s = h & t->map_mask;; s = (s + 1) & t->map_mask) {
        const llmc_bmap_slot *e = &t->map[s];
        if (e->id < 0) return -1;
        /* one cache line per probe: hash, length and the first 16 bytes are in the slot */
        if (e->hash == hh && e->len == n && e->k0 == k0 && e->k1 == k1 &&
            (n <= 16 || !memcmp(t->blob + t->tok_off[e->id] + 16, b + 16, n - 16)))
            return e->id;
    }
}

int32_t llmc_tok_lookup(const llmc_tokenizer *t, const uint8_t *b, size_t n) {
    uint64_t k0, k1, h = key_hash(b, n, &k0, &k1);
    return lookup_hashed(t, b, n, h, k0, k1);
}

static llmc_status pairs_reserve(llmc_tokenizer *t, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 16) cap *= 2;
    if (t->pairs && cap <= t->pair_mask + 1) return LLMC_OK;
    llmc_pair_slot *old = t->pairs;
    size_t old_cap = old ? t->pair_mask + 1 : 0;
    t->pairs = llmc_malloc(cap * sizeof(llmc_pair_slot), "merge map");
    if (!t->pairs) return LLMC_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++) t->pairs[i].key = UINT64_MAX;
    t->pair_mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++) { /* rehash */
        if (old[i].key == UINT64_MAX) continue;
        size_t s = hash_pair(old[i].key) & t->pair_mask;
        while (t->pairs[s].key != UINT64_MAX) s = (s + 1) & t->pair_mask;
        t->pairs[s] = old[i];
    }
    llmc_free(old);
    return LLMC_OK;
}

llmc_status llmc_tok_add_pair(llmc_tokenizer *t, uint32_t left, uint32_t right, uint32_t rank, uint32_t id) {
    if (!t->pairs || 2 * (t->n_pairs + 1) > t->pair_mask + 1) {
        llmc_status st = pairs_reserve(t, 2 * t->n_pairs + 1024);
        if (st) return st;
    }
    uint64_t key = (uint64_t)left << 32 | right;
    size_t s = hash_pair(key) & t->pair_mask;
    while (t->pairs[s].key != UINT64_MAX) {
        if (t->pairs[s].key == key) return LLMC_OK; /* the first (lowest-rank) merge of a pair wins */
        s = (s + 1) & t->pair_mask;
    }
    t->pairs[s] = (llmc_pair_slot){key, rank, id};
    t->n_pairs++;
    return LLMC_OK;
}

/* Rank and merged id of the pair (a, b); rank NO_TOKEN if they do not merge. */
static inline uint32_t pair_rank(const llmc_tokenizer *t, uint32_t a, uint32_t b, uint32_t *id) {
    if (!t->pairs) return NO_TOKEN;
    uint64_t key = (uint64_t)a << 32 | b, h = hash_pair(key);
    if (t->pair_filter) { /* no bit: certainly no merge */
        uint64_t bit = h >> t->pair_filter_shift;
        if (!(t->pair_filter[bit >> 6] >> (bit & 63) & 1)) return NO_TOKEN;
    }
    for (size_t s = h & t->pair_mask;; s = (s + 1) & t->pair_mask) {
        uint64_t k = t->pairs[s].key;
        if (k == key) {
            *id = t->pairs[s].id;
            return t->pairs[s].rank;
        }
        if (k == UINT64_MAX) return NO_TOKEN;
    }
}

llmc_status llmc_tok_pairs_from_ranks(llmc_tokenizer *t) {
    llmc_status st;
    for (size_t id = 0; id < t->n_vocab; id++) {
        if (t->tok_len[id] == NO_TOKEN || t->tok_len[id] < 2) continue;
        size_t n;
        const uint8_t *b = tok_bytes(t, (uint32_t)id, &n);
        for (size_t k = 1; k < n; k++) { /* every split into two tokens */
            int32_t l = llmc_tok_lookup(t, b, k), r = l >= 0 ? llmc_tok_lookup(t, b + k, n - k) : -1;
            if (r >= 0 && (st = llmc_tok_add_pair(t, (uint32_t)l, (uint32_t)r, (uint32_t)id, (uint32_t)id))) return st;
        }
    }
    return LLMC_OK;
}

/* The merges' filter: a bit per merge, indexed by the top bits of its hash (the table uses the low ones). */
static llmc_status pair_filter_build(llmc_tokenizer *t) {
    llmc_free(t->pair_filter);
    t->pair_filter = NULL;
    if (!t->pairs || !t->n_pairs) return LLMC_OK;
    unsigned bits = 12;
    while (bits < 40 && ((size_t)1 << bits) < 8 * t->n_pairs) bits++;
    if (!(t->pair_filter = llmc_calloc(((size_t)1 << bits) / 64, sizeof(uint64_t), "merge filter"))) return LLMC_ERR_NOMEM;
    t->pair_filter_shift = 64 - bits;
    for (size_t s = 0; s <= t->pair_mask; s++) {
        if (t->pairs[s].key == UINT64_MAX) continue;
        uint64_t bit = hash_pair(t->pairs[s].key) >> t->pair_filter_shift;
        t->pair_filter[bit >> 6] |= 1ull << (bit & 63);
    }
    return LLMC_OK;
}

llmc_status llmc_tok_finish(llmc_tokenizer *t) {
    if (!t->map) return llmc_fail(LLMC_ERR_INTERNAL, "tokenizer map not built");
    /* trim n_vocab to max id + 1 (the tables may be longer after doubling) */
    while (t->n_vocab && t->tok_len[t->n_vocab - 1] == NO_TOKEN) t->n_vocab--;
    /* 16 zero bytes after the last token: decoding copies short tokens 16 bytes at a time */
    if (llmc_grow((void **)&t->blob, &t->blob_cap, t->blob_len + 16, 1, "token bytes")) return LLMC_ERR_NOMEM;
    memset(t->blob + t->blob_len, 0, t->blob_cap - t->blob_len);
    llmc_status st = pair_filter_build(t);
    return st ? st : llmc_bpe_trie_build(t); /* byte-level BPE: the vocabulary trie of the search encoder */
}

void llmc_tokenizer_free_buffer(void *p) { llmc_free(p); }
size_t llmc_tokenizer_n_vocab(const llmc_tokenizer *t) { return t->n_vocab; }
size_t llmc_tokenizer_n_added(const llmc_tokenizer *t) { return t->n_added; }
void llmc_tokenizer_added(const llmc_tokenizer *t, size_t k, const char **bytes, size_t *len, int32_t *id,
                          int *special) {
    const llmc_added_tok *a = &t->added[k];
    *bytes = (const char *)t->blob + a->off;
    *len = a->len;
    *id = a->id;
    *special = a->special;
}

/* ---------------------------------------------------------------- .tiktoken */
static int b64val(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decode standard base64 s[0..n) (with '=' padding) into out (room for n*3/4); returns the length or -1. */
static long b64decode(const uint8_t *s, size_t n, uint8_t *out) {
    if (n == 0 || n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) { /* padding only at the very end */
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64val(s[i + k])) < 0) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2) out[o++] = (uint8_t)(w >> 8);
        if (pad < 1) out[o++] = (uint8_t)w;
    }
    return (long)o;
}

// data: (len,) bytes of "base64 rank\n" lines -> a byte-level BPE tokenizer (ranks are ids and merge priorities)
llmc_status llmc_tokenizer_from_tiktoken(const char *data, size_t len, const char *pattern,
                                         const char *const *special, const size_t *special_len,
                                         const int64_t *special_id, size_t n_special, llmc_tokenizer **out) {
    *out = NULL;
    int kind = llmc_pretok_from_name(pattern);
    if (kind < 0) kind = llmc_pretok_from_regex(pattern, strlen(pattern));
    llmc_pretok_step step = {0};
    if (kind < 0) { /* any other regex runs on the general engine: its matches are the pieces (tiktoken's find_iter) */
        llmc_status rc = llmc_regex_compile(pattern, strlen(pattern), LLMC_REGEX_RUST, &step.re);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", llmc_last_error());
            return llmc_fail(rc, "pre-tokenizer pattern '%.200s': %s (the built-in names are gpt2, cl100k, o200k, "
                                 "llama3, qwen2)", pattern, msg);
        }
        step.kind = LLMC_STEP_REGEX;
        step.behavior = LLMC_SPLIT_REMOVED; /* text between matches is dropped, as tiktoken drops it */
        step.invert = 1;
        kind = LLMC_PRE_NONE;
    }
    llmc_tokenizer *t = llmc_tok_new();
    if (!t) {
        llmc_regex_free(step.re);
        return LLMC_ERR_NOMEM;
    }
    if (step.re) {
        if (!(t->steps = llmc_malloc(sizeof *t->steps, "pre-tokenizer steps"))) {
            llmc_regex_free(step.re);
            llmc_tokenizer_free(t);
            return LLMC_ERR_NOMEM;
        }
        t->steps[0] = step;
        t->n_steps = 1;
    }
    t->pretok = kind;
    t->whole_piece_first = 1; /* tiktoken looks the whole piece up first */
    t->id_limit = len + n_special + ((size_t)1 << 20); /* a line holds at least one token: ranks beyond are absurd */
    llmc_status st = LLMC_OK;
    const uint8_t *s = (const uint8_t *)data;
    uint8_t buf[768];
    size_t line = 0, max_rank = 0, count = 0;
    for (size_t i = 0; i < len;) {
        line++;
        size_t e = i;
        while (e < len && s[e] != '\n') e++;
        size_t sp = i;
        while (sp < e && s[sp] != ' ') sp++;
        if (e == i) { /* an empty line: allowed only as the last one */
            i = e + 1;
            continue;
        }
        if (sp == e || sp - i > 1000) {
            st = llmc_fail(LLMC_ERR_FORMAT, ".tiktoken line %zu: expected '<base64> <rank>'", line);
            goto fail;
        }
        long n = b64decode(s + i, sp - i, buf);
        if (n <= 0) {
            st = llmc_fail(LLMC_ERR_FORMAT, ".tiktoken line %zu: invalid base64 '%.*s'", line, (int)(sp - i),
                           (const char *)s + i);
            goto fail;
        }
        uint64_t rank = 0;
        size_t d = sp + 1;
        if (d >= e || (e - d) > 10) {
            st = llmc_fail(LLMC_ERR_FORMAT, ".tiktoken line %zu: missing or too long rank", line);
            goto fail;
        }
        for (; d < e; d++) {
            if (s[d] < '0' || s[d] > '9') {
                st = llmc_fail(LLMC_ERR_FORMAT, ".tiktoken line %zu: rank is not a number", line);
                goto fail;
            }
            rank = rank * 10 + (uint64_t)(s[d] - '0');
        }
        if (rank >= INT32_MAX) {
            st = llmc_fail(LLMC_ERR_FORMAT, ".tiktoken line %zu: rank %llu is too large", line,
                           (unsigned long long)rank);
            goto fail;
        }
        if ((st = llmc_tok_set(t, (int64_t)rank, buf, (size_t)n))) goto fail;
        if (rank > max_rank) max_rank = rank;
        count++;
        i = e + 1;
    }
    if (!count) {
        st = llmc_fail(LLMC_ERR_FORMAT, ".tiktoken file has no tokens");
        goto fail;
    }
    if ((st = llmc_tok_build_map(t, max_rank + 1))) goto fail;
    for (int b = 0; b < 256; b++) { /* byte-level BPE needs every single byte as a token */
        uint8_t c = (uint8_t)b;
        if ((t->byte_id[b] = llmc_tok_lookup(t, &c, 1)) < 0) {
            st = llmc_fail(LLMC_ERR_FORMAT, ".tiktoken file has no token for the byte 0x%02X", b);
            goto fail;
        }
    }
    if ((st = pairs_reserve(t, count * 2)) || (st = llmc_tok_pairs_from_ranks(t))) goto fail;
    for (size_t k = 0; k < n_special; k++) {
        if (special_id[k] >= 0 && (size_t)special_id[k] <= max_rank &&
            t->tok_len[special_id[k]] != NO_TOKEN) {
            st = llmc_fail(LLMC_ERR_INVALID, "special token %lld collides with a regular token id",
                           (long long)special_id[k]);
            goto fail;
        }
        if ((st = llmc_tok_add_added(t, (const uint8_t *)special[k], special_len[k], special_id[k], 1))) goto fail;
    }
    if ((st = llmc_tok_finish(t))) goto fail;
    *out = t;
    return LLMC_OK;
fail:
    llmc_tokenizer_free(t);
    return st;
}

/* ---------------------------------------------------------------- encoding */
typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, n_ids;
} cache_slot;

/* A small direct-mapped cache in front of the vocabulary map for pieces of <= 16 bytes: frequent words stay in
 * L1/L2 instead of costing a cache miss in the multi-megabyte map. */
#define HOT_SLOTS 4096
typedef struct {
    uint64_t k0, k1;
    uint32_t len; /* 0: empty */
    int32_t id;   /* -1: known not to be a token */
} hot_slot;

/* A direct-mapped memo in front of the merge table for (left, right) -> (rank, merged id) lookups. The merge table
 * of a 100k-200k vocabulary is tens of MB (every split of every token into two tokens), so each lookup is a cache
 * miss; long pieces that are rarely repeated whole (a run of Han characters between punctuation is one cl100k /
 * o200k piece) miss the piece caches and spend their time in these lookups, yet they repeat the same few thousand
 * pairs (the bytes of common characters, then common characters). 8192 slots of 16 bytes stay in L2. */
#define PAIR_MEMO_SLOTS 32768
typedef struct {
    uint64_t key; /* left << 32 | right; UINT64_MAX: empty */
    uint32_t rank, id;
} pair_memo;

/* Byte-level BPE pieces that miss the piece caches are encoded by search (bpe_backtrack.c), which asks whether
 * adjacent tokens are compatible; the answers are memoized in the tokenizer (t->bt_memo). Short calls keep the
 * merge loop (a cold memo would cost more than it saves). */

/* Per-thread scratch for encoding: output ids, merge buffers, and a cache of piece -> ids. */
typedef struct {
    int32_t *out;
    size_t n_out, cap_out;
    uint32_t *sym, *rank, *nid; /* symbols, rank of (sym[i], sym[i+1]), the merged id of that pair */
    int32_t *prev, *next;       /* linked list for long pieces */
    uint64_t *heap;             /* (rank << 32 | left position) min-heap for long pieces */
    size_t cap_sym, cap_heap;
    cache_slot *cache; /* cache_mask + 1 slots (NULL until the first BPE'd piece); key_len == 0: empty */
    size_t cache_mask;
    uint8_t *ckeys;
    uint32_t *cids;
    size_t n_cache, n_ckeys, cap_ckeys, n_cids, cap_cids;
    uint8_t *tmp, *tmp2; /* normalised segment; Metaspace output */
    size_t cap_tmp, cap_tmp2;
    hot_slot *hot; /* HOT_SLOTS direct-mapped recent whole-piece hits (NULL: not used for short calls) */
    pair_memo *pmemo; /* PAIR_MEMO_SLOTS direct-mapped recent merge lookups (NULL: not used for short calls) */
    int search;       /* byte-level BPE pieces go to the search encoder when the tokenizer has one */
    uint32_t *bt_out; /* the search encoder's token stack */
    uint8_t *bt_dead; /* its dead positions */
    size_t cap_bt;
    uint32_t *tr_at;   /* (n_vocab,) 1 + where a token's merge trace starts in tr_data; 0: not made yet */
    uint32_t *tr_data; /* traces: [merges | valid << 31], then (rank, first symbol, last symbol) after each merge */
    size_t n_tr, cap_tr;
    llmc_split_scratch split; /* the general pre-tokenizer's pieces */
    llmc_uni_scratch uni;     /* Unigram's Viterbi arrays */
} enc_ctx;

static void ctx_free(enc_ctx *c) {
    llmc_free(c->out);
    llmc_free(c->sym);
    llmc_free(c->rank);
    llmc_free(c->nid);
    llmc_free(c->prev);
    llmc_free(c->next);
    llmc_free(c->heap);
    llmc_free(c->cache);
    llmc_free(c->ckeys);
    llmc_free(c->cids);
    llmc_free(c->tmp);
    llmc_free(c->tmp2);
    llmc_free(c->hot);
    llmc_free(c->pmemo);
    llmc_free(c->bt_out);
    llmc_free(c->bt_dead);
    llmc_free(c->tr_at);
    llmc_free(c->tr_data);
    llmc_split_scratch_free(&c->split);
    llmc_uni_scratch_free(&c->uni);
    memset(c, 0, sizeof *c);
}

/* Allocate the cache, double it (rehashing), or clear it when it is at its largest. */
static llmc_status cache_resize(enc_ctx *c) {
    size_t old = c->cache ? c->cache_mask + 1 : 0, slots = old ? old * 2 : CACHE_MIN_SLOTS;
    if (slots > CACHE_MAX_SLOTS) { /* at the limit: start over */
        memset(c->cache, 0, old * sizeof(cache_slot));
        c->n_cache = c->n_ckeys = c->n_cids = 0;
        return LLMC_OK;
    }
    cache_slot *nc = llmc_calloc(slots, sizeof(cache_slot), "BPE cache");
    if (!nc) return LLMC_ERR_NOMEM;
    for (size_t i = 0; i < old; i++) { /* rehash the live entries */
        if (!c->cache[i].key_len) continue;
        size_t j = c->cache[i].hash & (slots - 1);
        while (nc[j].key_len) j = (j + 1) & (slots - 1);
        nc[j] = c->cache[i];
    }
    llmc_free(c->cache);
    c->cache = nc;
    c->cache_mask = slots - 1;
    return LLMC_OK;
}

static inline llmc_status emit(enc_ctx *c, int32_t id) {
    if (c->n_out == c->cap_out && llmc_grow((void **)&c->out, &c->cap_out, c->n_out + 1, sizeof(int32_t), "token ids"))
        return LLMC_ERR_NOMEM;
    c->out[c->n_out++] = id;
    return LLMC_OK;
}

static llmc_status reserve_sym(enc_ctx *c, size_t n) {
    if (n <= c->cap_sym) return LLMC_OK;
    size_t a = c->cap_sym, b = a, d = a, e = a, f = a;
    if (llmc_grow((void **)&c->sym, &a, n, sizeof(uint32_t), "BPE buffer") ||
        llmc_grow((void **)&c->rank, &b, n, sizeof(uint32_t), "BPE buffer") ||
        llmc_grow((void **)&c->nid, &d, n, sizeof(uint32_t), "BPE buffer") ||
        llmc_grow((void **)&c->prev, &e, n, sizeof(int32_t), "BPE buffer") ||
        llmc_grow((void **)&c->next, &f, n, sizeof(int32_t), "BPE buffer"))
        return LLMC_ERR_NOMEM;
    c->cap_sym = a;
    return LLMC_OK;
}

/* Initial symbols of piece p[0..n) into c->sym; returns the count via *m. */
static llmc_status initial_symbols(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *p, size_t n, size_t *m) {
    llmc_status st = reserve_sym(c, n + 1);
    if (st) return st;
    size_t k = 0;
    if (t->model == LLMC_MODEL_BYTE_BPE) {
        for (size_t i = 0; i < n; i++) {
            int32_t id = t->byte_id[p[i]];
            if (id < 0) return llmc_fail(LLMC_ERR_INVALID, "the byte 0x%02X has no token", p[i]);
            c->sym[k++] = (uint32_t)id;
        }
    } else { /* characters, each a token if the vocabulary has it, else its bytes' <0xNN> tokens, else unk */
        int last_unk = 0;
        for (size_t i = 0; i < n;) {
            size_t l;
            llmc_utf8_next(p + i, n - i, &l);
            int32_t id = llmc_tok_lookup(t, p + i, l);
            if (id >= 0) {
                c->sym[k++] = (uint32_t)id;
                last_unk = 0;
            } else {
                int fell_back = 1;
                for (size_t j = 0; j < l; j++) fell_back &= t->byte_id[p[i + j]] >= 0;
                if (fell_back) {
                    for (size_t j = 0; j < l; j++) c->sym[k++] = (uint32_t)t->byte_id[p[i + j]];
                    last_unk = 0;
                } else if (t->unk_id >= 0) {
                    if (!(t->fuse_unk && last_unk)) c->sym[k++] = (uint32_t)t->unk_id; /* fuse_unk: one unk per run */
                    last_unk = 1;
                } /* else: no token, no byte fallback, no unk: HF's BPE drops the character, and so do we */
            }
            i += l;
        }
    }
    *m = k;
    return LLMC_OK;
}

/* pair_rank through the context's memo when it has one */
static inline uint32_t pair_rank_c(const llmc_tokenizer *t, enc_ctx *c, uint32_t a, uint32_t b, uint32_t *id) {
    if (!c->pmemo) return pair_rank(t, a, b, id);
    uint64_t key = (uint64_t)a << 32 | b;
    pair_memo *e = &c->pmemo[(hash_pair(key) >> 40) & (PAIR_MEMO_SLOTS - 1)];
    if (e->key != key) {
        uint32_t mid = 0, r = pair_rank(t, a, b, &mid);
        *e = (pair_memo){key, r, mid};
    }
    *id = e->id;
    return e->rank;
}

// sym: (m,) symbols -> merged in place; *m updated. Array scan: for each step, the lowest (rank, position).
// trace: NULL, or room for 3 (m - 1): (rank, first symbol, last symbol) after each merge.
static void merge_short(const llmc_tokenizer *t, enc_ctx *c, size_t *mp, uint32_t *trace) {
    size_t m = *mp;
    uint32_t *sym = c->sym, *rk = c->rank, *nid = c->nid;
    for (size_t i = 0; i + 1 < m; i++) rk[i] = pair_rank_c(t, c, sym[i], sym[i + 1], &nid[i]);
    while (m > 1) {
        uint32_t best = NO_TOKEN;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < m; i++)
            if (rk[i] < best) { /* strict: the leftmost of equal ranks wins */
                best = rk[i];
                bi = i;
            }
        if (best == NO_TOKEN) break;
        sym[bi] = nid[bi];
        /* drop symbol bi+1 and the rank of pair (bi+1, bi+2) */
        memmove(sym + bi + 1, sym + bi + 2, (m - bi - 2) * sizeof(uint32_t));
        memmove(rk + bi + 1, rk + bi + 2, (m - bi - 2) * sizeof(uint32_t));
        memmove(nid + bi + 1, nid + bi + 2, (m - bi - 2) * sizeof(uint32_t));
        m--;
        if (trace) {
            trace[0] = best;
            trace[1] = sym[0];
            trace[2] = sym[m - 1];
            trace += 3;
        }
        if (bi > 0) rk[bi - 1] = pair_rank_c(t, c, sym[bi - 1], sym[bi], &nid[bi - 1]);
        rk[bi] = bi + 1 < m ? pair_rank_c(t, c, sym[bi], sym[bi + 1], &nid[bi]) : NO_TOKEN;
    }
    *mp = m;
}

/* Binary min-heap of (rank << 32 | left position): the smallest value is the lowest rank, leftmost. */
static inline void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static inline uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0, sz = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= sz) break;
        if (l + 1 < sz && h[l + 1] < h[l]) l++;
        if (v <= h[l]) break;
        h[i] = h[l];
        i = l;
    }
    if (sz) h[i] = v;
    return top;
}

// sym: (m,) -> merged, compacted in place. Linked list + min-heap of (rank, left position), O(m log m).
// trace: as for merge_short.
static llmc_status merge_long(const llmc_tokenizer *t, enc_ctx *c, size_t *mp, uint32_t *trace) {
    size_t m = *mp;
    uint32_t *sym = c->sym;
    int32_t *prev = c->prev, *next = c->next;
    /* every live pair is in the heap at most twice over the run: m initial + 2 per merge */
    if (llmc_grow((void **)&c->heap, &c->cap_heap, 3 * m + 4, sizeof(uint64_t), "BPE heap")) return LLMC_ERR_NOMEM;
    uint64_t *h = c->heap;
    size_t hn = 0;
    uint32_t id, last = m - 1; /* the last live symbol */
    for (size_t i = 0; i < m; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < m ? (int32_t)i + 1 : -1;
        uint32_t r = i + 1 < m ? pair_rank_c(t, c, sym[i], sym[i + 1], &id) : NO_TOKEN;
        if (r != NO_TOKEN) heap_push(h, &hn, (uint64_t)r << 32 | i);
    }
    while (hn) {
        uint64_t e = heap_pop(h, &hn);
        uint32_t r = (uint32_t)(e >> 32), L = (uint32_t)e;
        if (sym[L] == NO_TOKEN || next[L] < 0) continue; /* stale: the left symbol died or has no neighbour */
        uint32_t R = (uint32_t)next[L];
        if (pair_rank_c(t, c, sym[L], sym[R], &id) != r) continue; /* stale: the pair changed since it was pushed */
        sym[L] = id;
        sym[R] = NO_TOKEN;
        next[L] = next[R];
        if (R == last) last = L;
        if (trace) {
            trace[0] = r;
            trace[1] = sym[0];
            trace[2] = sym[last];
            trace += 3;
        }
        if (next[R] >= 0) prev[next[R]] = (int32_t)L;
        uint32_t id2, r2;
        if (prev[L] >= 0 && (r2 = pair_rank_c(t, c, sym[prev[L]], sym[L], &id2)) != NO_TOKEN)
            heap_push(h, &hn, (uint64_t)r2 << 32 | (uint32_t)prev[L]);
        if (next[L] >= 0 && (r2 = pair_rank_c(t, c, sym[L], sym[next[L]], &id2)) != NO_TOKEN)
            heap_push(h, &hn, (uint64_t)r2 << 32 | L);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) sym[k++] = sym[i]; /* node 0 never dies: merges keep the left */
    *mp = k;
    return LLMC_OK;
}

/* The search encoder's pair check (llmc_bpe_compat_fn): the merge loop on bytes(a) + bytes(b), memoized. */
typedef struct {
    const llmc_tokenizer *t;
    enc_ctx *c;
} compat_arg;

/* Where token id's merge trace starts in c->tr_data, + 1 (0: out of memory). The trace is the merge loop on the
 * token's own bytes: [merges | valid << 31] (valid: it ends as the token itself), then (rank, first symbol, last
 * symbol) after each merge. */
static uint32_t token_trace(const llmc_tokenizer *t, enc_ctx *c, uint32_t id) {
    if (!c->tr_at && !(c->tr_at = llmc_calloc(t->n_vocab, sizeof(uint32_t), "BPE traces"))) return 0;
    if (c->tr_at[id]) return c->tr_at[id];
    size_t n = t->tok_len[id], m = n, need;
    if (!llmc_add_ok(c->n_tr, 3 * n + 1, &need) || need >= UINT32_MAX ||
        llmc_grow((void **)&c->tr_data, &c->cap_tr, need, sizeof(uint32_t), "BPE traces") || reserve_sym(c, n + 1))
        return 0;
    const uint8_t *p = t->blob + t->tok_off[id];
    for (size_t i = 0; i < n; i++) c->sym[i] = (uint32_t)t->byte_id[p[i]];
    uint32_t *tr = c->tr_data + c->n_tr;
    if (m <= SHORT_PIECE) merge_short(t, c, &m, tr + 1);
    else if (merge_long(t, c, &m, tr + 1)) return 0;
    tr[0] = (uint32_t)(n - m) | (uint32_t)(m == 1 && c->sym[0] == id) << 31;
    c->tr_at[id] = (uint32_t)c->n_tr + 1;
    c->n_tr += 1 + 3 * (n - m);
    return c->tr_at[id];
}

/* Does the merge loop on bytes(a) + bytes(b) end as (a, b)? Until a merge crosses between the two, each side merges
 * as it does alone (its trace); the run takes, in turn, the lowest of the left side's next merge, the pair across
 * (the left side's last symbol and the right side's first) and the right side's next merge, the leftmost on ties. */
static int pair_ok(const llmc_tokenizer *t, enc_ctx *c, uint32_t a, uint32_t b, const uint32_t *ta,
                   const uint32_t *tb) {
    uint32_t na = ta[0] & 0x7FFFFFFFu, nb = tb[0] & 0x7FFFFFFFu, i = 0, j = 0, id;
    uint32_t x = (uint32_t)t->byte_id[t->blob[t->tok_off[a] + t->tok_len[a] - 1]], y = (uint32_t)t->byte_id[t->blob[t->tok_off[b]]];
    uint32_t rc = pair_rank_c(t, c, x, y, &id);
    for (;;) {
        uint32_t ra = i < na ? ta[1 + 3 * i] : NO_TOKEN, rb = j < nb ? tb[1 + 3 * j] : NO_TOKEN;
        if (rc < ra && rc <= rb) return 0; /* the pair across merges first (left of b's pairs, right of a's) */
        if (ra == NO_TOKEN && rb == NO_TOKEN) return 1; /* both done, as a and b, and (a, b) does not merge */
        if (ra <= rb) {
            uint32_t nx = ta[1 + 3 * i + 2];
            i++;
            if (nx != x) rc = pair_rank_c(t, c, x = nx, y, &id);
        } else {
            uint32_t ny = tb[1 + 3 * j + 1];
            j++;
            if (ny != y) rc = pair_rank_c(t, c, x, y = ny, &id);
        }
    }
}

static int bt_compat(void *arg, uint32_t a, uint32_t b) {
    const llmc_tokenizer *t = ((compat_arg *)arg)->t;
    enc_ctx *c = ((compat_arg *)arg)->c;
    uint64_t key = (uint64_t)a << 31 | b; /* ids are below 2^31 */
    _Atomic uint64_t *e = &t->bt_memo[(hash_pair(key) >> 32) & t->bt_memo_mask];
    uint64_t v = atomic_load_explicit(e, memory_order_relaxed);
    if (v && (v - 1) >> 1 == key) return (int)((v - 1) & 1);
    uint32_t ob = token_trace(t, c, b), oa = a == LLMC_BPE_NONE ? 1 : token_trace(t, c, a);
    if (!ob || !oa) return -1;
    const uint32_t *tb = c->tr_data + ob - 1; /* pointers after both traces exist: making one may move tr_data */
    int ok = (int)(tb[0] >> 31); /* b must be its own bytes' output */
    if (ok && a != LLMC_BPE_NONE) ok = pair_ok(t, c, a, b, c->tr_data + oa - 1, tb);
    atomic_store_explicit(e, (key << 1 | (uint64_t)ok) + 1, memory_order_relaxed);
    return ok;
}

/* Encode piece p[0..n) by search into c->sym[0..*m). */
static llmc_status bt_piece(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *p, size_t n, size_t *m) {
    if (n + 1 > c->cap_bt) {
        size_t a = c->cap_bt, b = c->cap_bt;
        if (llmc_grow((void **)&c->bt_out, &a, n + 1, sizeof(uint32_t), "BPE search") ||
            llmc_grow((void **)&c->bt_dead, &b, n + 1, 1, "BPE search"))
            return LLMC_ERR_NOMEM;
        c->cap_bt = a < b ? a : b;
    }
    compat_arg arg = {t, c};
    llmc_status st = llmc_bpe_backtrack(t, p, n, t->whole_piece_first, bt_compat, &arg, c->bt_out, c->bt_dead, m);
    if (st || (st = reserve_sym(c, *m + 1))) return st;
    memcpy(c->sym, c->bt_out, *m * sizeof(uint32_t));
    return LLMC_OK;
}

/* The tokenizer's memo of short pieces (t->bt_words, byte-level BPE): pieces of at most 16 bytes with at most 8
 * ids, direct-mapped, one 64-byte line per slot, shared by every thread and call. A slot is a seqlock of 8 atomic
 * words: [sequence (odd while written)] [hash << 32 | length << 8 | ids] [key bytes 0-7] [8-15] [ids, two a word].
 * A reader that sees the sequence change (or odd) treats the slot as a miss; a writer that finds it taken skips. */
#define WORD_MAX_BYTES 16
#define WORD_MAX_IDS 8

// piece: hash hk, length n, first 16 bytes k0, k1 -> ids: (*m,) if the slot holds it
static int word_get(const llmc_tokenizer *t, uint64_t hk, size_t n, uint64_t k0, uint64_t k1, uint32_t *ids,
                    size_t *m) {
    _Atomic uint64_t *w = t->bt_words + 8 * (size_t)(hk & t->bt_words_mask);
    uint64_t s0 = atomic_load_explicit(&w[0], memory_order_acquire);
    if (s0 & 1) return 0;
    /* the slot's words are read with acquire (plain loads on x86): a word that came from a writer's release store
     * orders that writer's odd sequence before the re-check below, so a torn read is always caught */
    uint64_t hdr = atomic_load_explicit(&w[1], memory_order_acquire);
    if ((hdr & ~(uint64_t)0xFF) != ((hk >> 32) << 32 | (uint64_t)n << 8) ||
        atomic_load_explicit(&w[2], memory_order_acquire) != k0 ||
        atomic_load_explicit(&w[3], memory_order_acquire) != k1)
        return 0;
    size_t k = hdr & 0xFF;
    for (size_t i = 0; i < k; i += 2) {
        uint64_t v = atomic_load_explicit(&w[4 + i / 2], memory_order_acquire);
        ids[i] = (uint32_t)v;
        ids[i + 1] = (uint32_t)(v >> 32); /* ids has room for WORD_MAX_IDS */
    }
    if (atomic_load_explicit(&w[0], memory_order_relaxed) != s0) return 0; /* rewritten meanwhile */
    *m = k;
    return 1;
}

static void word_put(const llmc_tokenizer *t, uint64_t hk, size_t n, uint64_t k0, uint64_t k1, const uint32_t *ids,
                     size_t m) {
    _Atomic uint64_t *w = t->bt_words + 8 * (size_t)(hk & t->bt_words_mask);
    uint64_t s = atomic_load_explicit(&w[0], memory_order_relaxed);
    if ((s & 1) || !atomic_compare_exchange_strong_explicit(&w[0], &s, s + 1, memory_order_acquire,
                                                            memory_order_relaxed))
        return; /* another thread is writing this slot */
    /* release stores (plain stores on x86) instead of a fence, which gcc's ThreadSanitizer does not support: a reader
     * whose acquire load sees one of them also sees the odd sequence stored above */
    atomic_store_explicit(&w[1], (hk >> 32) << 32 | (uint64_t)n << 8 | m, memory_order_release);
    atomic_store_explicit(&w[2], k0, memory_order_release);
    atomic_store_explicit(&w[3], k1, memory_order_release);
    for (size_t i = 0; i < m; i += 2)
        atomic_store_explicit(&w[4 + i / 2], ids[i] | (i + 1 < m ? (uint64_t)ids[i + 1] << 32 : 0),
                              memory_order_release);
    atomic_store_explicit(&w[0], s + 2, memory_order_release);
}

/* A short piece of a byte-level BPE tokenizer through the tokenizer's memo (t->bt_words). */
static llmc_status bpe_word(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *p, size_t n) {
    uint64_t k0, k1, hk = key_hash(p, n, &k0, &k1);
    uint32_t ids[WORD_MAX_IDS];
    size_t m = 0;
    llmc_status st;
    if (c->n_out + WORD_MAX_IDS > c->cap_out &&
        llmc_grow((void **)&c->out, &c->cap_out, c->n_out + WORD_MAX_IDS, sizeof(int32_t), "token ids"))
        return LLMC_ERR_NOMEM;
    if (word_get(t, hk, n, k0, k1, ids, &m)) {
        memcpy(c->out + c->n_out, ids, m * sizeof(uint32_t));
        c->n_out += m;
        return LLMC_OK;
    }
    int32_t id = t->whole_piece_first ? lookup_hashed(t, p, n, hk, k0, k1) : -1; /* tiktoken: a token is itself */
    if (id >= 0) {
        ids[0] = (uint32_t)id;
        m = 1;
    } else {
        if (c->search) {
            if ((st = bt_piece(t, c, p, n, &m))) return st;
        } else {
            if ((st = initial_symbols(t, c, p, n, &m))) return st;
            merge_short(t, c, &m, NULL); /* n <= 16 symbols */
        }
        if (c->n_out + m > c->cap_out &&
            llmc_grow((void **)&c->out, &c->cap_out, c->n_out + m, sizeof(int32_t), "token ids"))
            return LLMC_ERR_NOMEM;
        memcpy(c->out + c->n_out, c->sym, m * sizeof(uint32_t));
        c->n_out += m;
        if (m <= WORD_MAX_IDS) word_put(t, hk, n, k0, k1, c->sym, m);
        return LLMC_OK;
    }
    c->out[c->n_out++] = id;
    word_put(t, hk, n, k0, k1, ids, m);
    return LLMC_OK;
}

/* BPE-encode one piece and append its ids. */
static llmc_status bpe_piece(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *p, size_t n) {
    if (n == 0) return LLMC_OK; /* an empty piece has no tokens */
    if (n <= WORD_MAX_BYTES && t->bt_words) return bpe_word(t, c, p, n);
    const int search = c->search && t->bt_memo;
    /* tiktoken and HF ignore_merges: a piece that is a token is that token (the search checks long pieces itself:
     * its first walk down the trie goes the whole way) */
    if (t->whole_piece_first && (n <= 16 || !search)) {
        uint64_t k0, k1, hk = key_hash(p, n, &k0, &k1);
        int32_t id;
        if (c->hot && n <= 16) {
            hot_slot *hs = &c->hot[hk & (HOT_SLOTS - 1)];
            if (hs->len == n && hs->k0 == k0 && hs->k1 == k1) {
                id = hs->id;
            } else {
                id = lookup_hashed(t, p, n, hk, k0, k1);
                *hs = (hot_slot){k0, k1, (uint32_t)n, id};
            }
        } else {
            id = lookup_hashed(t, p, n, hk, k0, k1);
        }
        if (id >= 0) return emit(c, id);
    }
    uint64_t h = 0;
    size_t slot = 0;
    const int cached = n <= CACHE_MAX_PIECE && !t->no_piece_cache;
    if (cached && c->cache) {
        h = hash_bytes(p, n);
        for (slot = h & c->cache_mask; c->cache[slot].key_len; slot = (slot + 1) & c->cache_mask) {
            cache_slot *cs = &c->cache[slot];
            if (cs->hash == h && cs->key_len == n && !memcmp(c->ckeys + cs->key_off, p, n)) {
                if (c->n_out + cs->n_ids > c->cap_out &&
                    llmc_grow((void **)&c->out, &c->cap_out, c->n_out + cs->n_ids, sizeof(int32_t), "token ids"))
                    return LLMC_ERR_NOMEM;
                if (cs->n_ids) /* a piece may give no ids (unknown bytes dropped): c->out may be NULL */
                    memcpy(c->out + c->n_out, c->cids + cs->ids_off, cs->n_ids * sizeof(uint32_t));
                c->n_out += cs->n_ids;
                return LLMC_OK;
            }
        }
    }
    size_t m = 0;
    llmc_status st;
    if (t->model == LLMC_MODEL_UNIGRAM && !cached) { /* Viterbi straight into the output (at most n + 1 ids) */
        if (c->n_out + n + 1 > c->cap_out &&
            llmc_grow((void **)&c->out, &c->cap_out, c->n_out + n + 1, sizeof(int32_t), "token ids"))
            return LLMC_ERR_NOMEM;
        if ((st = llmc_unigram_piece(t, &c->uni, p, n, (uint32_t *)(c->out + c->n_out), &m))) return st;
        c->n_out += m;
        return LLMC_OK;
    }
    if (t->model == LLMC_MODEL_UNIGRAM) { /* Viterbi: at most one id per byte */
        if ((st = reserve_sym(c, n + 1)) || (st = llmc_unigram_piece(t, &c->uni, p, n, c->sym, &m))) return st;
    } else if (search) {
        if ((st = bt_piece(t, c, p, n, &m))) return st;
    } else {
        if ((st = initial_symbols(t, c, p, n, &m))) return st;
        if (m <= SHORT_PIECE) merge_short(t, c, &m, NULL);
        else if ((st = merge_long(t, c, &m, NULL))) return st;
    }
    if (c->n_out + m > c->cap_out && llmc_grow((void **)&c->out, &c->cap_out, c->n_out + m, sizeof(int32_t), "token ids"))
        return LLMC_ERR_NOMEM;
    if (m) /* a piece may give no ids; memcpy(NULL, _, 0) is undefined */
        memcpy(c->out + c->n_out, c->sym, m * sizeof(uint32_t));
    c->n_out += m;
    if (cached) { /* remember the piece */
        if (!c->cache || c->n_cache >= (c->cache_mask + 1) / 2) {
            if ((st = cache_resize(c))) return st;
            h = hash_bytes(p, n);
            for (slot = h & c->cache_mask; c->cache[slot].key_len; slot = (slot + 1) & c->cache_mask) {
            }
        }
        if (llmc_grow((void **)&c->ckeys, &c->cap_ckeys, c->n_ckeys + n, 1, "BPE cache") ||
            llmc_grow((void **)&c->cids, &c->cap_cids, c->n_cids + m, sizeof(uint32_t), "BPE cache"))
            return LLMC_ERR_NOMEM;
        memcpy(c->ckeys + c->n_ckeys, p, n);
        if (m) memcpy(c->cids + c->n_cids, c->sym, m * sizeof(uint32_t)); /* c->cids is NULL until an id is cached */
        c->cache[slot] = (cache_slot){h, (uint32_t)c->n_ckeys, (uint32_t)n, (uint32_t)c->n_cids, (uint32_t)m};
        c->n_ckeys += n;
        c->n_cids += m;
        c->n_cache++;
    }
    return LLMC_OK;
}

/* Normalise segment s[0..n) per the tokenizer's normalizer (and ByteLevel's prefix space); *out points at s or at
 * c->tmp. */
static llmc_status normalize(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *s, size_t n, int normed,
                             const uint8_t **out, size_t *out_n, int *dropped) {
    *dropped = 0;
    *out = s;
    *out_n = n;
    if (n == 0) return LLMC_OK;
    if (normed) { /* the text went through the normalizer already (normalized added tokens) */
    } else if (t->normalizer == LLMC_NORM_STEPS || t->normalizer == LLMC_NORM_SPM) { /* HF's normalizer steps; SentencePiece's */
        uint8_t *r;
        size_t rn;
        if (t->normalizer == LLMC_NORM_SPM) { /* straight into the scratch buffer */
            llmc_status st = llmc_spm_normalize_into(t, s, n, &c->tmp, &c->cap_tmp, &rn);
            if (st) return st;
            *out = c->tmp;
            *out_n = rn;
            return LLMC_OK;
        }
        llmc_status st = llmc_normalize_steps(t->norm_steps, t->n_norm_steps, s, n, &r, &rn, dropped);
        if (st) return st;
        if (llmc_grow((void **)&c->tmp, &c->cap_tmp, rn + 2, 1, "normalised text")) {
            llmc_free(r);
            return LLMC_ERR_NOMEM;
        }
        if (rn) memcpy(c->tmp, r, rn);
        llmc_free(r);
        *out = c->tmp;
        *out_n = n = rn;
        s = c->tmp;
    } else if (t->normalizer == LLMC_NORM_NFC) {
        size_t i = 0;
        while (i < n && s[i] < 0x80) i++;
        if (i < n) { /* non-ASCII: full NFC (ASCII is always NFC) */
            uint8_t *r;
            size_t rn;
            llmc_status st = llmc_nfc(s, n, &r, &rn);
            if (st) return st;
            if (llmc_grow((void **)&c->tmp, &c->cap_tmp, rn + 1, 1, "normalised text")) {
                llmc_free(r);
                return LLMC_ERR_NOMEM;
            }
            memcpy(c->tmp, r, rn);
            llmc_free(r);
            *out = c->tmp;
            *out_n = n = rn;
            s = c->tmp;
        }
    } else if (t->normalizer == LLMC_NORM_METASPACE) { /* prepend U+2581 and replace ' ' by U+2581 */
        size_t spaces = 0, need;
        for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
        if (!llmc_add_ok(n + 3, spaces * 2, &need) ||
            llmc_grow((void **)&c->tmp, &c->cap_tmp, need, 1, "normalised text"))
            return LLMC_ERR_NOMEM;
        size_t o = 0;
        static const uint8_t meta[3] = {0xE2, 0x96, 0x81};
        memcpy(c->tmp, meta, 3);
        o = 3;
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ') {
                memcpy(c->tmp + o, meta, 3);
                o += 3;
            } else {
                c->tmp[o++] = s[i];
            }
        }
        *out = c->tmp;
        *out_n = o;
        return LLMC_OK;
    }
    if (t->prefix_space && n && s[0] != ' ') {
        if (llmc_grow((void **)&c->tmp, &c->cap_tmp, n + 1, 1, "normalised text")) return LLMC_ERR_NOMEM;
        memmove(c->tmp + 1, s, n); /* s may be c->tmp after NFC */
        c->tmp[0] = ' ';
        *out = c->tmp;
        *out_n = n + 1;
    }
    return LLMC_OK;
}

// s: (n,) -> *out: (*out_n,) the normalizer's output (new buffer)
llmc_status llmc_tok_normalize_alloc(const llmc_tokenizer *t, const uint8_t *s, size_t n, uint8_t **out, size_t *out_n,
                                     int *lead_dropped) {
    if (lead_dropped) *lead_dropped = 0;
    switch (t->normalizer) {
    case LLMC_NORM_NFC: return llmc_nfc(s, n, out, out_n);
    case LLMC_NORM_BERT: return llmc_bert_normalize(t, s, n, out, out_n);
    case LLMC_NORM_STEPS: return llmc_normalize_steps(t->norm_steps, t->n_norm_steps, s, n, out, out_n, lead_dropped);
    case LLMC_NORM_SPM: return llmc_spm_normalize(t, s, n, out, out_n);
    default: break;
    }
    size_t spaces = 0, need;
    for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
    if (!llmc_add_ok(n + 4, spaces * 2, &need)) return llmc_fail(LLMC_ERR_NOMEM, "text too long");
    uint8_t *o = llmc_malloc(need, "normalised text");
    if (!o) return LLMC_ERR_NOMEM;
    size_t k = 0;
    if (t->normalizer == LLMC_NORM_METASPACE && n) { /* Llama 2: Prepend(U+2581), Replace(' ', U+2581) */
        static const uint8_t meta[3] = {0xE2, 0x96, 0x81};
        memcpy(o, meta, 3);
        k = 3;
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ') {
                memcpy(o + k, meta, 3);
                k += 3;
            } else {
                o[k++] = s[i];
            }
        }
    } else if (n) {
        memcpy(o, s, n);
        k = n;
    }
    *out = o;
    *out_n = k;
    return LLMC_OK;
}

/* WordPiece segment: BertNormalizer, BertPreTokenizer (or whitespace split), WordPiece per word. */
static llmc_status encode_wordpiece(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *s0, size_t n0, int normed) {
    uint8_t *norm = NULL;
    size_t n = n0;
    const uint8_t *s = s0;
    llmc_status st = LLMC_OK;
    if (t->normalizer == LLMC_NORM_BERT && !normed) {
        if ((st = llmc_bert_normalize(t, s0, n0, &norm, &n))) return st;
        s = norm;
    }
    for (size_t i = 0; i < n;) {
        size_t e = llmc_bert_pretok_next(s, n, &i);
        if (i >= n) break;
        if (c->n_out + (e - i) + 1 > c->cap_out &&
            llmc_grow((void **)&c->out, &c->cap_out, c->n_out + (e - i) + 1, sizeof(int32_t), "token ids")) {
            st = LLMC_ERR_NOMEM;
            break;
        }
        size_t k;
        if ((st = llmc_wordpiece_word(t, s + i, e - i, c->out + c->n_out, &k))) break;
        c->n_out += k;
        i = e;
    }
    llmc_free(norm);
    return st;
}

/* HF Metaspace pre-tokenizer: ' ' -> U+2581, and a U+2581 in front per the prepend scheme (always; first: only
 * for the segment at the start of the text) unless there is one already. Output in c->tmp2. */
static llmc_status metaspace(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *s, size_t n, int first,
                             const uint8_t **out, size_t *out_n) {
    static const uint8_t meta[3] = {0xE2, 0x96, 0x81};
    size_t spaces = 0, need;
    for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
    if (!llmc_add_ok(n + 3, spaces * 2, &need) || llmc_grow((void **)&c->tmp2, &c->cap_tmp2, need, 1, "normalised text"))
        return LLMC_ERR_NOMEM;
    size_t o = 0;
    int scheme = t->ms_pre - 1;
    int starts = (n >= 3 && !memcmp(s, meta, 3)) || (n && s[0] == ' '); /* ' ' becomes U+2581 below */
    if (!starts && (scheme == 1 || (scheme == 2 && first))) {
        memcpy(c->tmp2, meta, 3);
        o = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(c->tmp2 + o, meta, 3);
            o += 3;
        } else {
            c->tmp2[o++] = s[i];
        }
    }
    *out = c->tmp2;
    *out_n = o;
    return LLMC_OK;
}

/* Encode a segment that contains no special tokens: normalise, pre-tokenize, BPE each piece. first: the segment
 * starts the text (for Metaspace's prepend_scheme "first"). */
static llmc_status encode_segment(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *s0, size_t n0, int first,
                                  int normed) {
    if (t->model == LLMC_MODEL_WORDPIECE) return encode_wordpiece(t, c, s0, n0, normed);
    const uint8_t *s;
    size_t n;
    int dropped;
    llmc_status st = normalize(t, c, s0, n0, normed, &s, &n, &dropped);
    if (dropped) first = 0; /* HF: the normalized text no longer starts at the text's offset 0 */
    if (st || n == 0) return st;
    if (t->ms_pre) {
        if ((st = metaspace(t, c, s, n, first, &s, &n))) return st;
        if (t->ms_split) { /* split before every U+2581 (MergedWithNext) */
            size_t start = 0;
            for (size_t i = 3, polls = 0; i + 3 <= n; i++) {
                if (s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
                    if ((++polls & 4095) == 0 && llmc_interrupted()) return LLMC_ERR_INTERRUPTED;
                    if ((st = bpe_piece(t, c, s + start, i - start))) return st;
                    start = i;
                }
            }
            return bpe_piece(t, c, s + start, n - start);
        }
    }
    if (t->normalizer == LLMC_NORM_SPM && t->model != LLMC_MODEL_UNIGRAM) {
        /* SentencePiece BPE: user-defined pieces are symbols of their own that never merge; words (cut before each
         * U+2581) are pieces of their own when no merge can join a U+2581 to what precedes it (spm_word_split) */
        size_t start = 0;
        for (size_t i = 0; i < n;) {
            size_t u = llmc_spm_user_match(t, s + i, n - i), l;
            if (!u) {
                if (t->spm_word_split && i > start && s[i] == 0xE2 && n - i >= 3 && s[i + 1] == 0x96 &&
                    s[i + 2] == 0x81) {
                    if ((st = bpe_piece(t, c, s + start, i - start))) return st;
                    start = i;
                }
                llmc_utf8_next(s + i, n - i, &l);
                i += l;
                continue;
            }
            if (i > start && (st = bpe_piece(t, c, s + start, i - start))) return st;
            if ((st = emit(c, llmc_tok_lookup(t, s + i, u)))) return st;
            i += u;
            start = i;
        }
        return start < n ? bpe_piece(t, c, s + start, n - start) : LLMC_OK;
    }
    if (t->n_steps) { /* the general pre-tokenizer */
        const size_t *pc;
        size_t np;
        if ((st = llmc_pretok_split(t->steps, t->n_steps, &c->split, s, n, &pc, &np))) return st;
        for (size_t k = 0; k < np; k++) {
            if ((k & 4095) == 4095 && llmc_interrupted()) return LLMC_ERR_INTERRUPTED; /* Ctrl-C on a long text */
            if ((st = bpe_piece(t, c, s + pc[2 * k], pc[2 * k + 1] - pc[2 * k]))) return st;
        }
        return LLMC_OK;
    }
    if (t->pretok == LLMC_PRE_NONE) return bpe_piece(t, c, s, n);
    for (size_t i = 0, polls = 0; i < n;) {
        if ((++polls & 4095) == 0 && llmc_interrupted()) return LLMC_ERR_INTERRUPTED; /* Ctrl-C on a long text */
        size_t e = llmc_pretok_next(t->pretok, s, n, i);
        if ((st = bpe_piece(t, c, s + i, e - i))) return st;
        i = e;
    }
    return LLMC_OK;
}

/* The added token of pass `pass` (its `normalized` flag) that matches at s[i..n) (the longest allowed one), or -1;
 * a disallowed match sets *bad to it. */
static long match_added(const llmc_tokenizer *t, const uint8_t *s, size_t n, size_t i, const uint8_t *mode,
                        int pass, long *bad) {
    long best = -1;
    for (size_t k = 0; k < t->n_added; k++) {
        const llmc_added_tok *a = &t->added[k];
        if (a->normalized != pass || a->mlen > n - i || s[i] != t->blob[a->moff] ||
            memcmp(s + i, t->blob + a->moff, a->mlen))
            continue;
        int m = a->special ? (mode ? mode[k] : 0) : LLMC_SPECIAL_ALLOWED;
        if (m & LLMC_SPECIAL_DISALLOWED) *bad = (long)k;
        else if ((m & LLMC_SPECIAL_ALLOWED) && (best < 0 || a->mlen > t->added[best].mlen)) best = (long)k;
    }
    return best;
}

/* The character that ends at byte j of s (j > 0): its code point, its start in *b. */
static uint32_t cp_before(const uint8_t *s, size_t j, size_t *b) {
    size_t k = j - 1, back = 0;
    while (back < 3 && k > 0 && (s[k] & 0xC0) == 0x80) k--, back++; /* over continuation bytes */
    size_t l;
    uint32_t cp = llmc_utf8_next(s + k, j - k, &l);
    if (k + l != j) { /* not one character ending at j: the last byte alone (invalid) */
        *b = j - 1;
        return LLMC_BAD_CP;
    }
    *b = k;
    return cp;
}

static inline int ws_cp(uint32_t cp) { return (llmc_uflags(cp) & LLMC_U_WS) != 0; }

/* Split s[0..n) (at offset `base` of the text) at the added tokens of `pass`, HF's AddedVocabulary way: leftmost-
 * longest matches in turn (the next search starts at the end of a match); single_word drops a match that touches a
 * word character (Rust's \w) on either side; lstrip / rstrip widen a match over the whitespace before / after it
 * (lstrip not past the previous match). The pieces between matches go through the normalized tokens (pass 1),
 * then to encode_segment. */
static llmc_status split_added(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *s, size_t n, size_t base,
                               const uint8_t *mode, int pass, int has_normalized);

/* HF's second pass: a piece between the other added tokens is normalized first, then split at the normalized
 * tokens (whose contents were normalized too); what is left is pre-tokenized without normalizing again. */
static llmc_status normalized_pass(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *s, size_t n, size_t base,
                                   const uint8_t *mode) {
    if (t->normalizer == LLMC_NORM_NONE) return split_added(t, c, s, n, base, mode, 1, 1);
    uint8_t *ns;
    size_t nn;
    int dropped;
    llmc_status st = llmc_tok_normalize_alloc(t, s, n, &ns, &nn, &dropped);
    if (st) return st;
    st = split_added(t, c, ns, nn, dropped ? base + 1 : base, mode, 1, 2); /* 2: the text is normalized */
    llmc_free(ns);
    return st;
}

static llmc_status split_added(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *s, size_t n, size_t base,
                               const uint8_t *mode, int pass, int has_normalized) {
    llmc_status st;
    int normed = has_normalized == 2;
    size_t seg = 0;
    for (size_t i = 0; i < n; i++) {
        if (!t->first_byte[s[i]]) continue;
        long bad = -1, k = match_added(t, s, n, i, mode, pass, &bad);
        if (bad >= 0) {
            const llmc_added_tok *a = &t->added[bad];
            return llmc_fail(LLMC_ERR_INVALID,
                             "text contains the special token '%.*s', which is disallowed (pass it in "
                             "allowed_special to encode it as a special token, or remove it from "
                             "disallowed_special to encode it as text)",
                             (int)a->len, (const char *)t->blob + a->off);
        }
        if (k < 0) continue;
        const llmc_added_tok *a = &t->added[k];
        size_t start = i, stop = i + a->mlen, l, b;
        i = stop - 1; /* the search goes on after the match (the loop's i++) */
        if (a->single_word) {
            int before = start > 0 && llmc_regex_is_word(cp_before(s, start, &b), LLMC_REGEX_RUST);
            int after = stop < n && llmc_regex_is_word(llmc_utf8_next(s + stop, n - stop, &l), LLMC_REGEX_RUST);
            if (before || after) continue; /* not a whole word: no match */
        }
        if (a->lstrip) {
            while (start > seg && ws_cp(cp_before(s, start, &b)) && b >= seg) start = b;
        }
        if (a->rstrip) {
            while (stop < n && ws_cp(llmc_utf8_next(s + stop, n - stop, &l))) stop += l;
        }
        if (start > seg) { /* start < seg: a match inside the previous one's rstrip, no text between */
            st = pass == 0 && has_normalized ? normalized_pass(t, c, s + seg, start - seg, base + seg, mode)
                                             : encode_segment(t, c, s + seg, start - seg, base + seg == 0, normed);
            if (st) return st;
        }
        if ((st = emit(c, a->id))) return st;
        /* the next match is searched from the end of this one, not of what rstrip took: HF finds every match
         * first, so a token that starts with whitespace can match inside the spaces rstrip took (it is emitted) */
        seg = stop;
    }
    if (seg < n || (seg == 0 && n == 0))
        return pass == 0 && has_normalized ? normalized_pass(t, c, s + seg, n - seg, base + seg, mode)
                                           : encode_segment(t, c, s + seg, n - seg, base + seg == 0, normed);
    return LLMC_OK;
}

/* Encode s[0..n) into c->out: split off added/special tokens (tiktoken's allowed/disallowed rules, HF's options),
 * encode the segments between them, wrap in the post-processor template when add_special. */
static llmc_status encode_into(const llmc_tokenizer *t, enc_ctx *c, const uint8_t *s, size_t n, const uint8_t *mode,
                               int add_special) {
    llmc_status st;
    c->n_out = 0;
    if (add_special)
        for (size_t k = 0; k < t->n_prefix; k++)
            if ((st = emit(c, t->prefix_ids[k]))) return st;
    int scan = 0, has_normalized = 0; /* is any added token active? any matched in the second pass? */
    for (size_t k = 0; k < t->n_added; k++) {
        int on = !t->added[k].special || (mode && mode[k]);
        scan |= on;
        has_normalized |= on && t->added[k].normalized;
    }
    if (scan) st = split_added(t, c, s, n, 0, mode, 0, has_normalized);
    else st = encode_segment(t, c, s, n, 1, 0);
    if (st) return st;
    if (add_special)
        for (size_t k = 0; k < t->n_suffix; k++)
            if ((st = emit(c, t->suffix_ids[k]))) return st;
    return LLMC_OK;
}

/* hot: 1 to use the direct-mapped hot cache (worth its allocation for long texts and for batches) */
static llmc_status ctx_init(enc_ctx *c, int hot) {
    memset(c, 0, sizeof *c); /* buffers and the BPE cache are allocated on first use */
    if (hot && !(c->hot = llmc_calloc(HOT_SLOTS, sizeof(hot_slot), "hot cache"))) return LLMC_ERR_NOMEM;
    if (hot) {
        if (!(c->pmemo = llmc_malloc(PAIR_MEMO_SLOTS * sizeof(pair_memo), "merge memo"))) {
            ctx_free(c);
            return LLMC_ERR_NOMEM;
        }
        for (size_t i = 0; i < PAIR_MEMO_SLOTS; i++) c->pmemo[i].key = UINT64_MAX;
        c->search = 1;
    }
    return LLMC_OK;
}

#define CHUNK_MIN (256u << 10)     /* texts over 2 chunks of this size are split across threads */
#define CHUNK_STEP_MIN (64u << 10) /* into chunks of at least this size */

/* Can a long text be encoded in independent chunks? Only for the hand-written regex pre-tokenizers, whose cut rule
 * (cut_ok) is proven per pattern by the tests (tiny chunks on every kind of whitespace run). Not when the whole
 * segment is one piece (SentencePiece), a normaliser or prefix space acts per segment, or an added token contains
 * '\n' (it could span a cut). */
static int chunkable(const llmc_tokenizer *t) {
    if (t->model == LLMC_MODEL_WORDPIECE || t->prefix_space || t->ms_pre) return 0;
    if (t->pretok != LLMC_PRE_GPT2 && t->pretok != LLMC_PRE_CL100K && t->pretok != LLMC_PRE_O200K &&
        t->pretok != LLMC_PRE_LLAMA3 && t->pretok != LLMC_PRE_QWEN2)
        return 0;
    if (t->normalizer != LLMC_NORM_NONE && t->normalizer != LLMC_NORM_NFC) return 0;
    for (size_t k = 0; k < t->n_added; k++) /* nor when one could take the '\n' before a cut (lstrip) */
        if (t->added[k].lstrip || memchr(t->blob + t->added[k].off, '\n', t->added[k].len)) return 0;
    return 1;
}

/* Is the candidate c (s[c-1] == '\n', s[c..] a valid non-whitespace character) a cut where the chunk before it,
 * encoded as a text of its own, ends with the same pieces as the whole text?
 *  - every pattern: the piece holding that '\n' must end at c. No piece starts before a '\n' and runs past it except
 *    whitespace runs and [\r\n]* / [\r\n/]* tails, and those stop at the non-space s[c] -- except o200k's
 *    [\r\n/]*, which takes a '/' at c: o200k needs s[c] != '/'.
 *  - GPT-2 has no \s*[\r\n]+: its whitespace run before a non-space is split as \s+(?!\S) (all but the last
 *    character) and \s+ (the last one); at the end of a chunk \s+(?!\S) takes the whole run. The two agree only
 *    for a run of one character, so GPT-2 needs the character before the '\n' to be no whitespace.
 * NFC (Qwen) cannot move a cut: '\n' is a starter that composes with nothing. */
static int cut_ok(const llmc_tokenizer *t, const uint8_t *s, size_t len, size_t c) {
    if (t->pretok == LLMC_PRE_O200K && s[c] == '/') return 0;
    if (t->pretok == LLMC_PRE_GPT2) {
        if (c < 2) return 0;
        size_t b = c - 2, k = 0; /* start of the character before the '\n': back over continuation bytes */
        while (k < 3 && b > 0 && (s[b] & 0xC0) == 0x80) b--, k++;
        size_t l;
        uint32_t cp = llmc_utf8_next(s + b, len - b, &l);
        if (b + l != c - 1) { /* not one character ending at the '\n': the last byte is an invalid one */
            cp = LLMC_BAD_CP;
        }
        if (cp != LLMC_BAD_CP && (llmc_uflags(cp) & LLMC_U_WS)) return 0;
    }
    return 1;
}

/* A cut point at or after p: just after a '\n' followed by a non-whitespace character, where cut_ok holds (or len). */
static size_t next_cut(const llmc_tokenizer *t, const uint8_t *s, size_t len, size_t p) {
    for (size_t i = p; i < len; i++) {
        const uint8_t *nl = memchr(s + i, '\n', len - i);
        if (!nl) return len;
        i = (size_t)(nl - s);
        if (i + 1 >= len) return len;
        size_t l;
        uint32_t cp = llmc_utf8_next(s + i + 1, len - i - 1, &l);
        if (cp != LLMC_BAD_CP && !(llmc_uflags(cp) & LLMC_U_WS) && cut_ok(t, s, len, i + 1)) return i + 1;
    }
    return len;
}

/* Encode text in chunks of at least `step` bytes (cut by next_cut) on nt threads, concatenating the ids. */
static llmc_status encode_chunks(const llmc_tokenizer *t, const char *text, size_t len, const uint8_t *special_mode,
                                 int add_special, size_t step, int nt, int32_t **ids, size_t *n_ids) {
    size_t n = 0, max_chunks = len / step + 2;
    const char **ptrs = llmc_malloc(max_chunks * sizeof(char *), "chunks");
    size_t *lens = llmc_malloc(max_chunks * sizeof(size_t), "chunks");
    size_t *counts = llmc_malloc(max_chunks * sizeof(size_t), "chunks");
    int32_t **parts = llmc_malloc(max_chunks * sizeof(int32_t *), "chunks");
    llmc_status st = (ptrs && lens && counts && parts) ? LLMC_OK : LLMC_ERR_NOMEM;
    for (size_t p = 0; !st && p < len;) {
        size_t e = next_cut(t, (const uint8_t *)text, len, p + step < len ? p + step : len);
        ptrs[n] = text + p;
        lens[n++] = e - p;
        p = e;
    }
    if (!st) st = llmc_tokenizer_encode_batch(t, ptrs, lens, n, special_mode, 0, nt, parts, counts);
    size_t total = add_special ? t->n_prefix + t->n_suffix : 0;
    for (size_t k = 0; !st && k < n; k++) total += counts[k];
    int32_t *out = st ? NULL : llmc_malloc((total + 1) * sizeof(int32_t), "token ids");
    if (!st && !out) st = LLMC_ERR_NOMEM;
    if (!st) { /* concatenate: [prefix] chunk ids... [suffix] */
        size_t o = 0;
        if (add_special)
            for (size_t k = 0; k < t->n_prefix; k++) out[o++] = t->prefix_ids[k];
        for (size_t k = 0; k < n; k++) {
            if (counts[k]) memcpy(out + o, parts[k], counts[k] * sizeof(int32_t));
            o += counts[k];
        }
        if (add_special)
            for (size_t k = 0; k < t->n_suffix; k++) out[o++] = t->suffix_ids[k];
        *ids = out;
        *n_ids = o;
        for (size_t k = 0; k < n; k++) llmc_free(parts[k]);
    }
    llmc_free(ptrs);
    llmc_free(lens);
    llmc_free(counts);
    llmc_free(parts);
    return st;
}

// text: (len,) bytes -> *ids: (*n_ids,) int32. Long texts run as chunks on llmc_threads() threads.
llmc_status llmc_tokenizer_encode(const llmc_tokenizer *t, const char *text, size_t len, const uint8_t *special_mode,
                                  int add_special, int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    int nt = llmc_threads();
    if (len >= 2 * CHUNK_MIN && chunkable(t)) {
        /* about 16 chunks per thread, each at least CHUNK_STEP_MIN: the threads take them in turn, so they finish
         * within about one small chunk of each other (cut points are uneven; with 4 chunks a thread the last one
         * left a thread idle for ~1/8 of the run); a chunk costs an allocation and a copy of its ids, nothing else
         * (the memos are the tokenizer's). With one thread the chunks run in turn, which lets a long encode stop
         * between them on Ctrl-C (llmc_interrupted) */
        size_t want = (size_t)nt * 16, step = len / want > CHUNK_STEP_MIN ? len / want : CHUNK_STEP_MIN;
        /* at most 4 * CHUNK_MIN: the calling thread, which alone sees Ctrl-C, keeps taking chunks (dynamic
         * schedule below) instead of waiting at the barrier while the others work through huge ones */
        if (step > 4 * (size_t)CHUNK_MIN) step = 4 * (size_t)CHUNK_MIN;
        return encode_chunks(t, text, len, special_mode, add_special, step, nt, ids, n_ids);
    }
    enc_ctx c;
    llmc_status st = ctx_init(&c, len >= 16384);
    if (!st) st = encode_into(t, &c, (const uint8_t *)text, len, special_mode, add_special);
    if (!st) {
        *ids = c.out; /* hand over the output buffer */
        *n_ids = c.n_out;
        c.out = NULL;
        if (!*ids && !(*ids = llmc_malloc(sizeof(int32_t), "token ids"))) st = LLMC_ERR_NOMEM; /* empty: non-NULL */
    }
    ctx_free(&c);
    return st;
}

// text: (len,) -> *ids: like llmc_tokenizer_encode, but cut into chunks of at least `step` bytes whatever the length
// (for tests: tiny steps put a cut at nearly every candidate). Tokenizers that cannot be cut encode in one pass.
llmc_status llmc_tokenizer_encode_chunked(const llmc_tokenizer *t, const char *text, size_t len,
                                          const uint8_t *special_mode, int add_special, size_t step, int num_threads,
                                          int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (step == 0) return llmc_fail(LLMC_ERR_INVALID, "chunk step must be at least 1 byte, got 0");
    if (!chunkable(t) || len == 0) return llmc_tokenizer_encode(t, text, len, special_mode, add_special, ids, n_ids);
    return encode_chunks(t, text, len, special_mode, add_special, step, num_threads > 0 ? num_threads : 1, ids,
                         n_ids);
}
/* poll function of encode_batch's worker threads: has the calling thread seen an interrupt? */
static int poll_flag(void *flag) { return *(_Atomic int *)flag; }

// texts: n_texts strings -> ids[i]: (n_ids[i],) int32; threads take texts dynamically
llmc_status llmc_tokenizer_encode_batch(const llmc_tokenizer *t, const char *const *texts, const size_t *lens,
                                        size_t n_texts, const uint8_t *special_mode, int add_special,
                                        int num_threads, int32_t **ids, size_t *n_ids) {
    for (size_t i = 0; i < n_texts; i++) {
        ids[i] = NULL;
        n_ids[i] = 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < n_texts; i++) total += lens[i];
    int nt = num_threads > 0 ? num_threads : llmc_threads();
    if ((size_t)nt > total / 4096 + 1) nt = (int)(total / 4096 + 1); /* at least ~4 KB of text per thread */
    if ((size_t)nt > n_texts) nt = n_texts ? (int)n_texts : 1;
    llmc_status status = LLMC_OK;
    char msg[512] = "";
    _Atomic int stop = 0; /* Ctrl-C seen by the calling thread */
#pragma omp parallel num_threads(nt)
    {
        /* the calling thread (0) polls its caller (Ctrl-C); the others poll `stop`, so a long text stops mid-way */
        const int worker = omp_get_thread_num() != 0;
        if (worker) llmc_set_poll(poll_flag, (void *)&stop);
        enc_ctx c;
        llmc_status st = ctx_init(&c, 1);
#pragma omp for schedule(dynamic, 1) /* one text at a time: 16 handed a whole chunked text to one thread */
        for (size_t i = 0; i < n_texts; i++) {
            if (st) continue;
            if (stop || llmc_interrupted()) { /* true only on the calling thread; it tells the others by stop */
                if (!stop) {
                    stop = 1;
#pragma omp critical(llmc_tok_err)
                    if (!status) {
                        status = LLMC_ERR_INTERRUPTED;
                        snprintf(msg, sizeof msg, "interrupted");
                    }
                }
                st = LLMC_ERR_INTERRUPTED;
                continue;
            }
            st = encode_into(t, &c, (const uint8_t *)texts[i], lens[i], special_mode, add_special);
            if (st == LLMC_ERR_INTERRUPTED) stop = 1;
            if (st) {
#pragma omp critical(llmc_tok_err)
                if (!status) { /* keep the first error and its (thread-local) message */
                    status = st;
                    snprintf(msg, sizeof msg, "text %zu: %s", i, llmc_last_error());
                }
                continue;
            }
            ids[i] = llmc_malloc((c.n_out ? c.n_out : 1) * sizeof(int32_t), "token ids");
            if (!ids[i]) {
                st = LLMC_ERR_NOMEM;
#pragma omp critical(llmc_tok_err)
                if (!status) {
                    status = st;
                    snprintf(msg, sizeof msg, "out of memory for the ids of text %zu", i);
                }
                continue;
            }
            if (c.n_out) memcpy(ids[i], c.out, c.n_out * sizeof(int32_t)); /* c.out may still be NULL */
            n_ids[i] = c.n_out;
        }
        ctx_free(&c);
        if (worker) llmc_set_poll(NULL, NULL);
    }
    if (status) {
        for (size_t i = 0; i < n_texts; i++) {
            llmc_free(ids[i]);
            ids[i] = NULL;
            n_ids[i] = 0;
        }
        return llmc_fail(status, "%s", msg);
    }
    return LLMC_OK;
}

// text: (len,) -> *spans: (2 * *n,) byte offsets: piece k is text[spans[2k] .. spans[2k+1]) (no special tokens, no
// normaliser; a general pre-tokenizer may drop spans, so pieces need not be contiguous)
llmc_status llmc_tokenizer_pieces(const llmc_tokenizer *t, const char *text, size_t len, size_t **spans, size_t *n) {
    const uint8_t *s = (const uint8_t *)text;
    *spans = NULL;
    *n = 0;
    if (t->n_steps) { /* the general pre-tokenizer */
        llmc_split_scratch sc = {0};
        const size_t *pc;
        size_t np;
        llmc_status st = llmc_pretok_split(t->steps, t->n_steps, &sc, s, len, &pc, &np);
        if (!st && !(*spans = llmc_malloc((2 * np + 1) * sizeof(size_t), "piece offsets"))) st = LLMC_ERR_NOMEM;
        if (!st) {
            if (np) memcpy(*spans, pc, 2 * np * sizeof(size_t));
            *n = np;
        }
        llmc_split_scratch_free(&sc);
        return st;
    }
    size_t cap = 0, k = 0;
    for (size_t i = 0; i < len;) {
        size_t e = t->pretok == LLMC_PRE_NONE ? len : llmc_pretok_next(t->pretok, s, len, i);
        if (llmc_grow((void **)spans, &cap, 2 * k + 2, sizeof(size_t), "piece offsets")) {
            llmc_free(*spans);
            *spans = NULL;
            return LLMC_ERR_NOMEM;
        }
        (*spans)[2 * k] = i;
        (*spans)[2 * k + 1] = e;
        k++;
        i = e;
    }
    if (!*spans && !(*spans = llmc_malloc(sizeof(size_t), "piece offsets"))) return LLMC_ERR_NOMEM;
    *n = k;
    return LLMC_OK;
}

/* ---------------------------------------------------------------- decoding */
static inline int id_ok(const llmc_tokenizer *t, int64_t id) {
    return id >= 0 && (uint64_t)id < t->n_vocab && t->tok_len[id] != NO_TOKEN;
}

llmc_status llmc_tokenizer_token_bytes(const llmc_tokenizer *t, int64_t id, const char **bytes, size_t *len) {
    if (!id_ok(t, id))
        return llmc_fail(LLMC_ERR_INVALID, "token id %lld is out of range (the vocabulary has %zu ids)",
                         (long long)id, t->n_vocab);
    int dec = t->dec_off && t->dec_len[id] != NO_TOKEN;
    *bytes = (const char *)t->blob + (dec ? t->dec_off[id] : t->tok_off[id]);
    *len = dec ? t->dec_len[id] : t->tok_len[id];
    return LLMC_OK;
}

// ids: (n,) -> *out: (*out_len,) bytes
llmc_status llmc_tokenizer_decode(const llmc_tokenizer *t, const int64_t *ids, size_t n, char **out, size_t *out_len) {
    *out = NULL;
    size_t total = 0;
    const int plain = !t->dec_off && !t->join_space && !t->strip_lead_space && !t->spm_decode; /* bytes joined */
    for (size_t i = 0; i < n; i++) {
        if (!id_ok(t, ids[i]))
            return llmc_fail(LLMC_ERR_INVALID, "token id %lld at index %zu is out of range (the vocabulary has %zu ids)",
                             (long long)ids[i], i, t->n_vocab);
        if (plain) {
            total += t->tok_len[ids[i]];
        } else {
            const char *b;
            size_t l;
            llmc_tokenizer_token_bytes(t, ids[i], &b, &l);
            total += l;
        }
    }
    if (t->join_space && n > 1) total += n - 1;
    char *o = llmc_malloc(total + 17, "decoded bytes"); /* 16 spare bytes: the copies below write 16 at a time */
    if (!o) return LLMC_ERR_NOMEM;
    size_t k = 0;
    if (plain) {
        /* most tokens are a few bytes: copy a fixed 16 (two vector moves, no call) and advance by the length, where
         * the blob has 16 bytes from the token's start (llmc_tok_finish pads it) */
        for (size_t i = 0; i < n; i++) {
            size_t off = t->tok_off[ids[i]], l = t->tok_len[ids[i]];
            if (l <= 16 && off + 16 <= t->blob_cap) memcpy(o + k, t->blob + off, 16);
            else memcpy(o + k, t->blob + off, l);
            k += l;
        }
        *out = o;
        *out_len = k;
        return LLMC_OK;
    }
    if (t->spm_decode) { /* sentencepiece: the leading U+2581 of the first piece that would start the text goes */
        int is_bos = 1, seen = 0, lead = t->spm_dummy_prefix || t->spm_remove_ws;
        for (size_t i = 0; i < n; i++) {
            const char *b;
            size_t l;
            llmc_tokenizer_token_bytes(t, ids[i], &b, &l);
            int is_byte = 0;
            for (int q = 0; q < 256 && !is_byte && t->byte_fallback; q++) is_byte = t->byte_id[q] == ids[i];
            if (!is_byte) {
                if (seen || k) is_bos = 0; /* once past the start, for good */
                seen = 0;
                if (is_bos && lead && !(t->uni_flags[ids[i]] & LLMC_UNI_CONTROL) && ids[i] != t->unk_id &&
                    t->tok_len[ids[i]] >= 3 && !memcmp(t->blob + t->tok_off[ids[i]], "\xE2\x96\x81", 3)) {
                    b++, l--; /* the ' ' that U+2581 became */
                    seen = !t->spm_remove_ws;
                }
            }
            memcpy(o + k, b, l);
            k += l;
        }
        *out = o;
        *out_len = k;
        return LLMC_OK;
    }
    for (size_t i = 0; i < n; i++) {
        const char *b;
        size_t l;
        if (i == 0 && t->strip_lead_space == 2) { /* Metaspace decoder: the first token without its U+2581s */
            b = (const char *)t->blob + t->tok_off[ids[0]];
            l = t->tok_len[ids[0]];
            for (size_t j = 0; j < l; j++) {
                if (j + 3 <= l && !memcmp(b + j, "\xE2\x96\x81", 3)) j += 2;
                else o[k++] = b[j];
            }
            continue;
        }
        llmc_tokenizer_token_bytes(t, ids[i], &b, &l);
        if (t->join_space && i) o[k++] = ' ';
        memcpy(o + k, b, l);
        k += l;
    }
    size_t skip = t->strip_lead_space == 1 && k && o[0] == ' '; /* HF Strip(' ', 1, 0) after Fuse */
    if (skip) memmove(o, o + 1, k - 1);
    *out = o;
    *out_len = k - skip;
    return LLMC_OK;
}
