/* gguf.c: mmap + validate GGUF v2/v3 files, and write GGUF v3 atomically (see gguf.h for the layout). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "internal.h"
#include "unicode.h"

/* ---------------------------------------------------------------- ggml's types */
typedef struct {
    const char *name;
    uint32_t block;  /* values per block */
    uint32_t bytes;  /* bytes per block */
} ggml_type_info;

/* Indexed by ggml's type id (ggml.h); ids ggml removed are left empty. */
static const ggml_type_info GGML_TYPES[] = {
    [0] = {"f32", 1, 4},        [1] = {"f16", 1, 2},        [2] = {"q4_0", 32, 18},     [3] = {"q4_1", 32, 20},
    [6] = {"q5_0", 32, 22},     [7] = {"q5_1", 32, 24},     [8] = {"q8_0", 32, 34},     [9] = {"q8_1", 32, 36},
    [10] = {"q2_k", 256, 84},   [11] = {"q3_k", 256, 110},  [12] = {"q4_k", 256, 144},  [13] = {"q5_k", 256, 176},
    [14] = {"q6_k", 256, 210},  [15] = {"q8_k", 256, 292},  [16] = {"iq2_xxs", 256, 66}, [17] = {"iq2_xs", 256, 74},
    [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50}, [20] = {"iq4_nl", 32, 18},  [21] = {"iq3_s", 256, 110},
    [22] = {"iq2_s", 256, 82},  [23] = {"iq4_xs", 256, 136}, [24] = {"i8", 1, 1},       [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},       [27] = {"i64", 1, 8},       [28] = {"f64", 1, 8},       [29] = {"iq1_m", 256, 56},
    [30] = {"bf16", 1, 2},      [34] = {"tq1_0", 256, 54},  [35] = {"tq2_0", 256, 66},  [39] = {"mxfp4", 32, 17},
    [40] = {"nvfp4", 64, 36},   [41] = {"q1_0", 128, 18},   [42] = {"q2_0", 64, 18},
};
#define N_GGML_TYPES ((int)(sizeof GGML_TYPES / sizeof GGML_TYPES[0]))

static const ggml_type_info *type_info(int type) {
    if (type < 0 || type >= N_GGML_TYPES || !GGML_TYPES[type].name) return NULL;
    return &GGML_TYPES[type];
}

const char *llmc_ggml_type_name(int type) {
    const ggml_type_info *ti = type_info(type);
    return ti ? ti->name : NULL;
}
size_t llmc_ggml_type_block_size(int type) {
    const ggml_type_info *ti = type_info(type);
    return ti ? ti->block : 0;
}
size_t llmc_ggml_type_block_bytes(int type) {
    const ggml_type_info *ti = type_info(type);
    return ti ? ti->bytes : 0;
}
int llmc_ggml_type_from_name(const char *name) {
    for (int i = 0; i < N_GGML_TYPES; i++)
        if (GGML_TYPES[i].name && !strcasecmp(GGML_TYPES[i].name, name)) return i;
    return -1;
}

llmc_status llmc_ggml_nbytes(int type, int n_dims, const uint64_t *ne, const char *what, size_t *out) {
    const ggml_type_info *ti = type_info(type);
    if (!ti) return llmc_fail(LLMC_ERR_INVALID, "%s: unknown ggml type %d", what, type);
    uint64_t ne0 = n_dims > 0 ? ne[0] : 1;
    if (ne0 % ti->block)
        return llmc_fail(LLMC_ERR_INVALID, "%s: %llu values per row is not a multiple of %s's block of %u", what,
                         (unsigned long long)ne0, ti->name, ti->block);
    size_t n = (size_t)(ne0 / ti->block) * ti->bytes; /* one row; ne0 is bounded by the callers (< 2^63) */
    if (ne0 / ti->block > SIZE_MAX / ti->bytes)
        return llmc_fail(LLMC_ERR_INVALID, "%s: a row of %llu values overflows", what, (unsigned long long)ne0);
    for (int d = 1; d < n_dims; d++)
        if (ne[d] > SIZE_MAX || !llmc_mul_ok(n, (size_t)ne[d], &n))
            return llmc_fail(LLMC_ERR_INVALID, "%s: the size in bytes overflows (dimension %d = %llu)", what, d,
                             (unsigned long long)ne[d]);
    *out = n;
    return LLMC_OK;
}

/* ---------------------------------------------------------------- value types */
static const char *VALUE_TYPE_NAMES[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                         "bool", "string", "array", "uint64", "int64", "float64"};
static const unsigned char VALUE_SIZES[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *llmc_gguf_value_type_name(int type) {
    return type >= 0 && type < LLMC_GGUF_N_VALUE_TYPES ? VALUE_TYPE_NAMES[type] : "?";
}
size_t llmc_gguf_value_size(int type) { return type >= 0 && type < LLMC_GGUF_N_VALUE_TYPES ? VALUE_SIZES[type] : 0; }

static uint64_t rd_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; /* little-endian, unaligned-safe */
    return v;
}
static uint32_t rd_u32(const unsigned char *p) { return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

int64_t llmc_gguf_scalar_i64(int type, const unsigned char *p) {
    switch (type) {
    case LLMC_GGUF_UINT8: case LLMC_GGUF_BOOL: return p[0];
    case LLMC_GGUF_INT8: return (int8_t)p[0];
    case LLMC_GGUF_UINT16: return (uint16_t)(p[0] | p[1] << 8);
    case LLMC_GGUF_INT16: return (int16_t)(uint16_t)(p[0] | p[1] << 8);
    case LLMC_GGUF_UINT32: return rd_u32(p);
    case LLMC_GGUF_INT32: return (int32_t)rd_u32(p);
    case LLMC_GGUF_UINT64: case LLMC_GGUF_INT64: return (int64_t)rd_u64(p);
    default: return 0;
    }
}
uint64_t llmc_gguf_scalar_u64(int type, const unsigned char *p) {
    return type == LLMC_GGUF_UINT64 ? rd_u64(p) : (uint64_t)llmc_gguf_scalar_i64(type, p);
}
double llmc_gguf_scalar_f64(int type, const unsigned char *p) {
    if (type == LLMC_GGUF_FLOAT32) {
        uint32_t u = rd_u32(p);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    if (type == LLMC_GGUF_FLOAT64) {
        uint64_t u = rd_u64(p);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    if (type == LLMC_GGUF_UINT64) return (double)rd_u64(p);
    return (double)llmc_gguf_scalar_i64(type, p);
}

/* ---------------------------------------------------------------- the handle */
struct llmc_gguf {
    char *path;
    unsigned char *map;
    size_t len;
    uint32_t version;
    size_t alignment;
    uint64_t data_off;
    llmc_gguf_kv *kv;
    size_t n_kv, kv_cap;
    llmc_gguf_tensor *t;
    size_t n_t, t_cap;
    size_t *kv_sorted, *t_sorted; /* indices sorted by key / name, for lookups */
    char *names;                  /* every key and tensor name, NUL-terminated (kv[i].key / t[i].name point in) */
    size_t names_len, names_cap;
    uint64_t *str_offs;           /* every ARRAY-of-STRING offset table, back to back */
    size_t str_offs_len, str_offs_cap;
};

typedef struct {
    const unsigned char *p;
    size_t len, pos;
    const char *path;
} cursor;

static size_t left(const cursor *c) { return c->len - c->pos; }

/* Read a string header; *s points at its bytes. `what` names it in the error ("key 'x'"). */
static llmc_status read_str(cursor *c, const char *what, const unsigned char **s, uint64_t *n) {
    if (left(c) < 8)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: truncated: %s: string length needs 8 bytes, %zu left", c->path, what,
                         left(c));
    uint64_t len = rd_u64(c->p + c->pos);
    c->pos += 8;
    if (len > left(c))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: %s: string length %llu exceeds the %zu bytes left in the file",
                         c->path, what, (unsigned long long)len, left(c));
    *s = c->p + c->pos;
    *n = len;
    c->pos += (size_t)len;
    return LLMC_OK;
}

/* 1 if s[0..n) is valid UTF-8 without NUL bytes (keys and tensor names become C and Python strings). */
static int name_ok(const unsigned char *s, uint64_t n) {
    for (size_t i = 0, l; i < n; i += l)
        if (!s[i] || llmc_utf8_next(s + i, (size_t)(n - i), &l) == LLMC_BAD_CP) return 0;
    return 1;
}

/* Copy a name into the arena; *off receives its offset (pointers are fixed up once the arena stops growing). */
static llmc_status keep_name(llmc_gguf *g, const unsigned char *s, uint64_t n, size_t *off) {
    if (llmc_grow((void **)&g->names, &g->names_cap, g->names_len + (size_t)n + 1, 1, "GGUF names")) return LLMC_ERR_NOMEM;
    memcpy(g->names + g->names_len, s, (size_t)n);
    g->names[g->names_len + n] = '\0';
    *off = g->names_len;
    g->names_len += (size_t)n + 1;
    return LLMC_OK;
}

/* A key's value at the cursor. kv->key is still an arena offset, so messages use `key`. */
static llmc_status read_value(llmc_gguf *g, cursor *c, llmc_gguf_kv *kv, const char *key) {
    const int type = kv->type;
    kv->count = 1;
    kv->elem_type = -1;
    if (type < 0 || type >= LLMC_GGUF_N_VALUE_TYPES)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s' has unknown value type %d", c->path, key, type);
    if (type == LLMC_GGUF_STRING) {
        char what[320];
        snprintf(what, sizeof what, "key '%.256s'", key);
        return read_str(c, what, &kv->data, &kv->len);
    }
    if (type != LLMC_GGUF_ARRAY) {
        size_t sz = VALUE_SIZES[type];
        if (left(c) < sz)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: truncated: key '%s': a %s value needs %zu bytes, %zu left", c->path,
                             key, VALUE_TYPE_NAMES[type], sz, left(c));
        kv->data = c->p + c->pos;
        if (type == LLMC_GGUF_BOOL && kv->data[0] > 1)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s': bool value %u is neither 0 nor 1", c->path, key,
                             kv->data[0]);
        c->pos += sz;
        return LLMC_OK;
    }
    if (left(c) < 12)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: truncated: key '%s': array header needs 12 bytes, %zu left", c->path,
                         key, left(c));
    uint32_t et = rd_u32(c->p + c->pos);
    uint64_t count = rd_u64(c->p + c->pos + 4);
    c->pos += 12;
    if (et == LLMC_GGUF_ARRAY)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: key '%s' is an array of arrays, which llmc (like llama.cpp) does "
                         "not read", c->path, key);
    if (et >= LLMC_GGUF_N_VALUE_TYPES)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s': array has unknown element type %u", c->path, key, et);
    kv->elem_type = (int)et;
    kv->count = count;
    kv->data = c->p + c->pos;
    if (et != LLMC_GGUF_STRING) {
        size_t sz = VALUE_SIZES[et];
        if (count > left(c) / sz) /* count * sz > left without overflowing */
            return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s': array of %llu %s values needs %llu bytes, %zu left",
                             c->path, key, (unsigned long long)count, VALUE_TYPE_NAMES[et],
                             (unsigned long long)(count > UINT64_MAX / sz ? UINT64_MAX : count * sz), left(c));
        if (et == LLMC_GGUF_BOOL)
            for (uint64_t i = 0; i < count; i++)
                if (kv->data[i] > 1)
                    return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s': bool element %llu is %u, neither 0 nor 1", c->path,
                                     key, (unsigned long long)i, kv->data[i]);
        c->pos += (size_t)(count * sz);
        return LLMC_OK;
    }
    /* strings: every element has at least its 8-byte length, which bounds count before we allocate for it */
    if (count > left(c) / 8)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s': array of %llu strings cannot fit in the %zu bytes left",
                         c->path, key, (unsigned long long)count, left(c));
    size_t start = g->str_offs_len;
    if (llmc_grow((void **)&g->str_offs, &g->str_offs_cap, start + (size_t)count + 1, sizeof(uint64_t),
                  "GGUF string array offsets"))
        return LLMC_ERR_NOMEM;
    const size_t base = c->pos;
    for (uint64_t i = 0; i < count; i++) {
        g->str_offs[start + i] = c->pos - base;
        if (left(c) < 8)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: truncated: key '%s': string %llu of %llu has no length", c->path,
                             key, (unsigned long long)i, (unsigned long long)count);
        uint64_t n = rd_u64(c->p + c->pos);
        if (n > left(c) - 8)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s': string %llu has length %llu, past the end of the file "
                             "(%zu bytes left)", c->path, key, (unsigned long long)i, (unsigned long long)n,
                             left(c) - 8);
        c->pos += 8 + (size_t)n;
    }
    g->str_offs[start + count] = c->pos - base;
    g->str_offs_len = start + (size_t)count + 1;
    kv->str_off = (const uint64_t *)(uintptr_t)start; /* an index until the table stops growing */
    return LLMC_OK;
}

/* Sort indices 0..n by name with a merge sort (no shared state, so two threads may open files at once). */
static void sort_idx(size_t *idx, size_t *tmp, size_t n, const char *const *names) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_idx(idx, tmp, h, names);
    sort_idx(idx + h, tmp, n - h, names);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = strcmp(names[idx[i]], names[idx[j]]) <= 0 ? idx[i++] : idx[j++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* Build a name-sorted index and refuse duplicates. */
static llmc_status sorted_index(const char *path, const char *const *names, size_t n, const char *what, size_t **out) {
    size_t *idx = llmc_malloc((n ? n : 1) * sizeof *idx, "GGUF index"), *tmp = llmc_malloc((n ? n : 1) * sizeof *tmp,
                                                                                             "GGUF index scratch");
    if (!idx || !tmp) {
        llmc_free(idx);
        llmc_free(tmp);
        return LLMC_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) idx[i] = i;
    sort_idx(idx, tmp, n, names);
    llmc_free(tmp);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(names[idx[i]], names[idx[i - 1]])) {
            size_t a = idx[i - 1] < idx[i] ? idx[i - 1] : idx[i], b = idx[i - 1] < idx[i] ? idx[i] : idx[i - 1];
            llmc_free(idx);
            return llmc_fail(LLMC_ERR_FORMAT, "%s: duplicate %s '%s' (entries %zu and %zu)", path, what, names[a], a, b);
        }
    *out = idx;
    return LLMC_OK;
}

static int by_offset(const void *a, const void *b) {
    const llmc_gguf_tensor *x = *(const llmc_gguf_tensor *const *)a, *y = *(const llmc_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static llmc_status parse(llmc_gguf *g) {
    cursor c = {g->map, g->len, 0, g->path};
    if (g->len < 24) {
        if (g->len >= 4 && memcmp(g->map, "GGUF", 4))
            return llmc_fail(LLMC_ERR_FORMAT, "%s: not a GGUF file (no 'GGUF' magic)", g->path);
        return llmc_fail(LLMC_ERR_FORMAT, "%s: truncated: %zu bytes, shorter than the 24-byte GGUF header", g->path,
                         g->len);
    }
    if (memcmp(g->map, "GGUF", 4))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: not a GGUF file (magic is %02x %02x %02x %02x, not 'GGUF')", g->path,
                         g->map[0], g->map[1], g->map[2], g->map[3]);
    g->version = rd_u32(g->map + 4);
    if (g->version == 1)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: GGUF version 1 (32-bit counts) is not supported; convert it with "
                         "a current llama.cpp", g->path);
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: a big-endian GGUF file is not supported", g->path);
    if (g->version != 2 && g->version != 3)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: unknown GGUF version %u (llmc reads 2 and 3)", g->path, g->version);
    uint64_t n_t = rd_u64(g->map + 8), n_kv = rd_u64(g->map + 16);
    c.pos = 24;
    /* a kv takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info 8 + 4 + 4 + 8 */
    if (n_kv > left(&c) / 13)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: header claims %llu metadata keys, more than the %zu bytes after it can "
                         "hold", g->path, (unsigned long long)n_kv, left(&c));
    if (n_t > left(&c) / 24)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: header claims %llu tensors, more than the %zu bytes after it can hold",
                         g->path, (unsigned long long)n_t, left(&c));
    size_t *key_off = NULL, *name_off = NULL;
    llmc_status s = LLMC_OK;
    if (!(g->kv = llmc_calloc(n_kv ? n_kv : 1, sizeof *g->kv, "GGUF metadata table")) ||
        !(key_off = llmc_malloc((n_kv ? n_kv : 1) * sizeof *key_off, "GGUF key offsets")) ||
        !(g->t = llmc_calloc(n_t ? n_t : 1, sizeof *g->t, "GGUF tensor table")) ||
        !(name_off = llmc_malloc((n_t ? n_t : 1) * sizeof *name_off, "GGUF name offsets"))) {
        s = LLMC_ERR_NOMEM;
        goto done;
    }
    for (uint64_t i = 0; i < n_kv && !s; i++) {
        char who[64];
        snprintf(who, sizeof who, "the key of metadata entry %llu", (unsigned long long)i);
        const unsigned char *k;
        uint64_t klen;
        if ((s = read_str(&c, who, &k, &klen))) break;
        if (!name_ok(k, klen)) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: %s is not valid UTF-8 or contains a NUL byte", g->path, who);
            break;
        }
        if ((s = keep_name(g, k, klen, &key_off[i]))) break;
        const char *key = g->names + key_off[i];
        if (left(&c) < 4) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: truncated: key '%s' has no value type", g->path, key);
            break;
        }
        g->kv[i].type = (int)rd_u32(c.p + c.pos);
        if (rd_u32(c.p + c.pos) >= LLMC_GGUF_N_VALUE_TYPES) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s' has unknown value type %u", g->path, key, rd_u32(c.p + c.pos));
            break;
        }
        c.pos += 4;
        s = read_value(g, &c, &g->kv[i], key);
        g->n_kv = (size_t)i + 1;
    }
    if (s) goto done;
    for (size_t i = 0; i < g->n_kv; i++) {
        g->kv[i].key = g->names + key_off[i];
        if (g->kv[i].type == LLMC_GGUF_ARRAY && g->kv[i].elem_type == LLMC_GGUF_STRING)
            g->kv[i].str_off = g->str_offs + (uintptr_t)g->kv[i].str_off;
    }
    {
        const char **names = llmc_malloc((g->n_kv ? g->n_kv : 1) * sizeof *names, "GGUF key list");
        if (!names) {
            s = LLMC_ERR_NOMEM;
            goto done;
        }
        for (size_t i = 0; i < g->n_kv; i++) names[i] = g->kv[i].key;
        s = sorted_index(g->path, names, g->n_kv, "metadata key", &g->kv_sorted);
        llmc_free(names);
        if (s) goto done;
    }
    g->alignment = LLMC_GGUF_DEFAULT_ALIGNMENT;
    const llmc_gguf_kv *al = llmc_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != LLMC_GGUF_UINT32) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: key 'general.alignment' must be uint32, not %s", g->path,
                          llmc_gguf_value_type_name(al->type));
            goto done;
        }
        uint32_t a = rd_u32(al->data);
        if (a == 0 || (a & (a - 1))) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: key 'general.alignment' = %u is not a power of two", g->path, a);
            goto done;
        }
        g->alignment = a;
    }
    /* tensor infos */
    for (uint64_t i = 0; i < n_t && !s; i++) {
        char who[64];
        snprintf(who, sizeof who, "the name of tensor %llu", (unsigned long long)i);
        const unsigned char *nm;
        uint64_t nlen;
        if ((s = read_str(&c, who, &nm, &nlen))) break;
        if (!name_ok(nm, nlen)) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: %s is not valid UTF-8 or contains a NUL byte", g->path, who);
            break;
        }
        if ((s = keep_name(g, nm, nlen, &name_off[i]))) break;
        const char *name = g->names + name_off[i];
        llmc_gguf_tensor *t = &g->t[i];
        g->n_t = (size_t)i + 1;
        if (left(&c) < 4) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: truncated: tensor '%s' has no dimension count", g->path, name);
            break;
        }
        uint32_t nd = rd_u32(c.p + c.pos);
        c.pos += 4;
        if (nd > LLMC_GGUF_MAX_DIMS) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (GGUF allows at most %d)", g->path, name,
                          nd, LLMC_GGUF_MAX_DIMS);
            break;
        }
        t->n_dims = (int)nd;
        if (left(&c) < (size_t)nd * 8 + 12) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: truncated: tensor '%s': its shape, type and offset need %zu bytes, "
                          "%zu left", g->path, name, (size_t)nd * 8 + 12, left(&c));
            break;
        }
        for (int d = 0; d < LLMC_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd && !s; d++) {
            t->ne[d] = rd_u64(c.p + c.pos);
            c.pos += 8;
            if (t->ne[d] > (uint64_t)INT64_MAX)
                s = llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': dimension %u = %llu is negative as ggml's int64", g->path,
                              name, d, (unsigned long long)t->ne[d]);
        }
        if (s) break;
        uint32_t ty = rd_u32(c.p + c.pos);
        t->offset = rd_u64(c.p + c.pos + 4);
        c.pos += 12;
        if (!type_info((int)ty)) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s' has unknown ggml type %u", g->path, name, ty);
            break;
        }
        t->type = (int)ty;
        char what[400];
        snprintf(what, sizeof what, "%s: tensor '%s'", g->path, name);
        if ((s = llmc_ggml_nbytes(t->type, t->n_dims, t->ne, what, &t->nbytes))) {
            s = LLMC_ERR_FORMAT;
            break;
        }
        if (t->offset % g->alignment) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': offset %llu is not a multiple of the alignment %zu",
                          g->path, name, (unsigned long long)t->offset, g->alignment);
            break;
        }
    }
    if (s) goto done;
    for (size_t i = 0; i < g->n_t; i++) g->t[i].name = g->names + name_off[i];
    for (size_t i = 0; i < g->n_kv; i++) g->kv[i].key = g->names + key_off[i]; /* the arena may have moved */
    {
        const char **names = llmc_malloc((g->n_t ? g->n_t : 1) * sizeof *names, "GGUF name list");
        if (!names) {
            s = LLMC_ERR_NOMEM;
            goto done;
        }
        for (size_t i = 0; i < g->n_t; i++) names[i] = g->t[i].name;
        s = sorted_index(g->path, names, g->n_t, "tensor name", &g->t_sorted);
        llmc_free(names);
        if (s) goto done;
    }
    /* the data section starts at the next multiple of the alignment */
    g->data_off = ((uint64_t)c.pos + g->alignment - 1) / g->alignment * g->alignment;
    const uint64_t data_len = g->data_off <= g->len ? g->len - g->data_off : 0;
    for (size_t i = 0; i < g->n_t; i++) {
        llmc_gguf_tensor *t = &g->t[i];
        if (t->offset > data_len || t->nbytes > data_len - t->offset) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': bytes [%llu, %llu) of the data section run past its end "
                          "(%llu bytes; file truncated?)", g->path, t->name, (unsigned long long)t->offset,
                          (unsigned long long)t->offset + t->nbytes, (unsigned long long)data_len);
            goto done;
        }
        t->data = g->map + g->data_off + t->offset;
    }
    /* no two tensors may share bytes */
    if (g->n_t > 1) {
        llmc_gguf_tensor **order = llmc_malloc(g->n_t * sizeof *order, "GGUF overlap check");
        if (!order) {
            s = LLMC_ERR_NOMEM;
            goto done;
        }
        size_t k = 0;
        for (size_t i = 0; i < g->n_t; i++)
            if (g->t[i].nbytes) order[k++] = &g->t[i];
        qsort(order, k, sizeof *order, by_offset);
        for (size_t i = 1; i < k && !s; i++)
            if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes)
                s = llmc_fail(LLMC_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section", g->path,
                              order[i - 1]->name, order[i]->name);
        llmc_free(order);
    }
done:
    llmc_free(key_off);
    llmc_free(name_off);
    return s;
}

llmc_status llmc_gguf_open(const char *path, llmc_gguf **out) {
    *out = NULL;
    llmc_gguf *g = llmc_calloc(1, sizeof *g, "GGUF handle");
    if (!g) return LLMC_ERR_NOMEM;
    size_t plen = strlen(path);
    llmc_status s = LLMC_OK;
    if (!(g->path = llmc_malloc(plen + 1, "file name"))) {
        llmc_gguf_close(g);
        return LLMC_ERR_NOMEM;
    }
    memcpy(g->path, path, plen + 1);
    int fd = -1;
    if ((s = llmc_open_regular(path, &fd, &g->len))) { /* regular files only: a FIFO would block, a device stream */
        llmc_gguf_close(g);
        return s;
    }
    if (g->len > 0) {
        void *m = mmap(NULL, g->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            llmc_gguf_close(g);
            return llmc_fail(LLMC_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        g->map = m;
    }
    close(fd); /* the mapping stays valid */
    static const unsigned char empty[1];
    if (!g->map) g->map = (unsigned char *)empty; /* a zero-byte file: parse reports it as truncated */
    s = parse(g);
    if (g->map == empty) g->map = NULL;
    if (s) {
        llmc_gguf_close(g);
        return s;
    }
    *out = g;
    return LLMC_OK;
}

void llmc_gguf_close(llmc_gguf *g) {
    if (!g) return;
    if (g->map) munmap(g->map, g->len);
    llmc_free(g->path);
    llmc_free(g->kv);
    llmc_free(g->t);
    llmc_free(g->kv_sorted);
    llmc_free(g->t_sorted);
    llmc_free(g->names);
    llmc_free(g->str_offs);
    llmc_free(g);
}

uint32_t llmc_gguf_version(const llmc_gguf *g) { return g->version; }
size_t llmc_gguf_alignment(const llmc_gguf *g) { return g->alignment; }
uint64_t llmc_gguf_data_offset(const llmc_gguf *g) { return g->data_off; }
size_t llmc_gguf_file_size(const llmc_gguf *g) { return g->len; }
const char *llmc_gguf_path(const llmc_gguf *g) { return g->path; }
size_t llmc_gguf_n_kv(const llmc_gguf *g) { return g->n_kv; }
const llmc_gguf_kv *llmc_gguf_kv_at(const llmc_gguf *g, size_t i) { return i < g->n_kv ? &g->kv[i] : NULL; }
size_t llmc_gguf_n_tensors(const llmc_gguf *g) { return g->n_t; }
const llmc_gguf_tensor *llmc_gguf_tensor_at(const llmc_gguf *g, size_t i) { return i < g->n_t ? &g->t[i] : NULL; }

void llmc_gguf_arr_str(const llmc_gguf_kv *kv, uint64_t i, const char **s, uint64_t *len) {
    const unsigned char *p = kv->data + kv->str_off[i];
    *len = rd_u64(p);
    *s = (const char *)p + 8;
}

const llmc_gguf_kv *llmc_gguf_find_kv(const llmc_gguf *g, const char *key) {
    if (!g->kv_sorted) { /* during parsing, before the index exists */
        for (size_t i = 0; i < g->n_kv; i++)
            if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
        return NULL;
    }
    size_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->kv[g->kv_sorted[mid]].key, key);
        if (!c) return &g->kv[g->kv_sorted[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const llmc_gguf_tensor *llmc_gguf_find_tensor(const llmc_gguf *g, const char *name) {
    size_t lo = 0, hi = g->n_t;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->t[g->t_sorted[mid]].name, name);
        if (!c) return &g->t[g->t_sorted[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static const llmc_gguf_kv *need_kv(const llmc_gguf *g, const char *key, llmc_status *s) {
    const llmc_gguf_kv *kv = llmc_gguf_find_kv(g, key);
    if (!kv) *s = llmc_fail(LLMC_ERR_FORMAT, "%s: missing metadata key '%s'", g->path, key);
    return kv;
}

static int is_int_type(int t) {
    return t == LLMC_GGUF_UINT8 || t == LLMC_GGUF_INT8 || t == LLMC_GGUF_UINT16 || t == LLMC_GGUF_INT16 ||
           t == LLMC_GGUF_UINT32 || t == LLMC_GGUF_INT32 || t == LLMC_GGUF_UINT64 || t == LLMC_GGUF_INT64;
}

llmc_status llmc_gguf_get_uint(const llmc_gguf *g, const char *key, uint64_t *out) {
    llmc_status s = LLMC_OK;
    const llmc_gguf_kv *kv = need_kv(g, key, &s);
    if (!kv) return s;
    if (!is_int_type(kv->type))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s' must be an integer, not %s", g->path, key,
                         llmc_gguf_value_type_name(kv->type));
    if (kv->type != LLMC_GGUF_UINT64 && llmc_gguf_scalar_i64(kv->type, kv->data) < 0)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s' = %lld must be >= 0", g->path, key,
                         (long long)llmc_gguf_scalar_i64(kv->type, kv->data));
    *out = llmc_gguf_scalar_u64(kv->type, kv->data);
    return LLMC_OK;
}

llmc_status llmc_gguf_get_float(const llmc_gguf *g, const char *key, double *out) {
    llmc_status s = LLMC_OK;
    const llmc_gguf_kv *kv = need_kv(g, key, &s);
    if (!kv) return s;
    if (!is_int_type(kv->type) && kv->type != LLMC_GGUF_FLOAT32 && kv->type != LLMC_GGUF_FLOAT64)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s' must be a number, not %s", g->path, key,
                         llmc_gguf_value_type_name(kv->type));
    *out = llmc_gguf_scalar_f64(kv->type, kv->data);
    return LLMC_OK;
}

llmc_status llmc_gguf_get_str(const llmc_gguf *g, const char *key, const char **str, uint64_t *len) {
    llmc_status s = LLMC_OK;
    const llmc_gguf_kv *kv = need_kv(g, key, &s);
    if (!kv) return s;
    if (kv->type != LLMC_GGUF_STRING)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s' must be a string, not %s", g->path, key,
                         llmc_gguf_value_type_name(kv->type));
    *str = (const char *)kv->data;
    *len = kv->len;
    return LLMC_OK;
}

llmc_status llmc_gguf_get_bool(const llmc_gguf *g, const char *key, int *out) {
    llmc_status s = LLMC_OK;
    const llmc_gguf_kv *kv = need_kv(g, key, &s);
    if (!kv) return s;
    if (kv->type != LLMC_GGUF_BOOL)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: key '%s' must be a bool, not %s", g->path, key,
                         llmc_gguf_value_type_name(kv->type));
    *out = kv->data[0];
    return LLMC_OK;
}

/* ---------------------------------------------------------------- writing */
typedef struct {
    FILE *fp;
    int err;
    uint64_t pos;
} wr;

static void put(wr *w, const void *p, size_t n) {
    if (w->err || !n) return;
    if (fwrite(p, 1, n, w->fp) != n) w->err = errno ? errno : EIO;
    w->pos += n;
}
static void put_u32(wr *w, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(w, b, 4);
}
static void put_u64(wr *w, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, 8);
}
static void put_str(wr *w, const void *s, uint64_t n) {
    put_u64(w, n);
    put(w, s, (size_t)n);
}
static void pad_to(wr *w, size_t alignment) {
    static const unsigned char zeros[64];
    while (w->pos % alignment) {
        size_t n = alignment - (size_t)(w->pos % alignment);
        put(w, zeros, n < sizeof zeros ? n : sizeof zeros);
    }
}

static llmc_status check_kv(const llmc_gguf_kv_in *kv) {
    if (!kv->key || !*kv->key) return llmc_fail(LLMC_ERR_INVALID, "GGUF metadata key must be a non-empty string");
    if (kv->type < 0 || kv->type >= LLMC_GGUF_N_VALUE_TYPES)
        return llmc_fail(LLMC_ERR_INVALID, "key '%s': unknown GGUF value type %d", kv->key, kv->type);
    if (kv->type == LLMC_GGUF_ARRAY && (kv->elem_type < 0 || kv->elem_type >= LLMC_GGUF_N_VALUE_TYPES ||
                                        kv->elem_type == LLMC_GGUF_ARRAY))
        return llmc_fail(LLMC_ERR_INVALID, "key '%s': bad array element type %d", kv->key, kv->elem_type);
    if (!kv->data && !(kv->type == LLMC_GGUF_STRING && !kv->len) && !(kv->type == LLMC_GGUF_ARRAY && !kv->count))
        return llmc_fail(LLMC_ERR_INVALID, "key '%s': no value", kv->key);
    return LLMC_OK;
}

static void put_kv(wr *w, const llmc_gguf_kv_in *kv) {
    put_str(w, kv->key, strlen(kv->key));
    put_u32(w, (uint32_t)kv->type);
    if (kv->type == LLMC_GGUF_STRING) {
        put_str(w, kv->data, kv->len);
    } else if (kv->type == LLMC_GGUF_ARRAY) {
        put_u32(w, (uint32_t)kv->elem_type);
        put_u64(w, kv->count);
        if (kv->elem_type == LLMC_GGUF_STRING) {
            const char *const *strs = kv->data;
            for (uint64_t i = 0; i < kv->count; i++) put_str(w, strs[i], kv->lens[i]);
        } else {
            put(w, kv->data, (size_t)(kv->count * VALUE_SIZES[kv->elem_type])); /* little-endian host */
        }
    } else {
        put(w, kv->data, VALUE_SIZES[kv->type]);
    }
}

static llmc_status write_body(wr *w, const llmc_gguf_kv_in *kv, size_t n_kv, const llmc_gguf_tensor_in *t,
                              size_t n_t, size_t alignment) {
    put(w, "GGUF", 4);
    put_u32(w, 3);
    put_u64(w, n_t);
    put_u64(w, n_kv);
    for (size_t i = 0; i < n_kv; i++) put_kv(w, &kv[i]);
    uint64_t off = 0;
    for (size_t i = 0; i < n_t; i++) {
        put_str(w, t[i].name, strlen(t[i].name));
        put_u32(w, (uint32_t)t[i].n_dims);
        for (int d = 0; d < t[i].n_dims; d++) put_u64(w, t[i].ne[d]);
        put_u32(w, (uint32_t)t[i].type);
        put_u64(w, off);
        off = (off + t[i].nbytes + alignment - 1) / alignment * alignment;
    }
    pad_to(w, alignment);
    for (size_t i = 0; i < n_t; i++) {
        put(w, t[i].data, t[i].nbytes);
        pad_to(w, alignment);
    }
    return LLMC_OK;
}

llmc_status llmc_gguf_write(const char *path, const llmc_gguf_kv_in *kv, size_t n_kv, const llmc_gguf_tensor_in *t,
                            size_t n_t, size_t alignment) {
    llmc_status s = LLMC_OK;
    /* validate everything before touching the disk */
    for (size_t i = 0; i < n_kv; i++) {
        if ((s = check_kv(&kv[i]))) return s;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(kv[i].key, kv[j].key)) return llmc_fail(LLMC_ERR_INVALID, "duplicate GGUF key '%s'", kv[i].key);
        if (!strcmp(kv[i].key, "general.alignment")) {
            if (kv[i].type != LLMC_GGUF_UINT32)
                return llmc_fail(LLMC_ERR_INVALID, "key 'general.alignment' must be uint32, not %s",
                                 llmc_gguf_value_type_name(kv[i].type));
            uint32_t a;
            memcpy(&a, kv[i].data, 4);
            if (alignment && a != alignment)
                return llmc_fail(LLMC_ERR_INVALID, "general.alignment = %u disagrees with alignment %zu", a, alignment);
            alignment = a;
        }
    }
    if (!alignment) alignment = LLMC_GGUF_DEFAULT_ALIGNMENT;
    if (alignment & (alignment - 1))
        return llmc_fail(LLMC_ERR_INVALID, "GGUF alignment %zu is not a power of two", alignment);
    for (size_t i = 0; i < n_t; i++) {
        const char *name = t[i].name;
        if (!name || !*name) return llmc_fail(LLMC_ERR_INVALID, "tensor %zu has no name", i);
        if (strlen(name) >= 64)
            return llmc_fail(LLMC_ERR_INVALID, "tensor name '%s' is %zu bytes; llama.cpp allows at most 63", name,
                             strlen(name));
        if (t[i].n_dims < 1 || t[i].n_dims > LLMC_GGUF_MAX_DIMS)
            return llmc_fail(LLMC_ERR_INVALID, "tensor '%s': %d dimensions (1 to 4 allowed)", name, t[i].n_dims);
        char what[128];
        snprintf(what, sizeof what, "tensor '%s'", name);
        size_t nb;
        if ((s = llmc_ggml_nbytes(t[i].type, t[i].n_dims, t[i].ne, what, &nb))) return s;
        if (nb != t[i].nbytes)
            return llmc_fail(LLMC_ERR_INVALID, "tensor '%s': %zu bytes given, its %s shape needs %zu", name,
                             t[i].nbytes, llmc_ggml_type_name(t[i].type), nb);
        if (nb && !t[i].data) return llmc_fail(LLMC_ERR_INVALID, "tensor '%s' has no data", name);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(name, t[j].name)) return llmc_fail(LLMC_ERR_INVALID, "duplicate tensor name '%s'", name);
    }
    /* temporary file beside the target, so the rename stays on one file system */
    size_t plen = strlen(path);
    char *tmp = llmc_malloc(plen + 16, "temporary file name");
    if (!tmp) return LLMC_ERR_NOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        s = llmc_fail(errno == ENOENT ? LLMC_ERR_NOT_FOUND : LLMC_ERR_IO, "%s: cannot create a file beside it: %s",
                      path, strerror(errno));
        llmc_free(tmp);
        return s;
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; a model file is normally readable by all */
    wr w = {fdopen(fd, "wb"), 0, 0};
    if (!w.fp) {
        s = llmc_fail(LLMC_ERR_IO, "%s: fdopen failed: %s", tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    errno = 0;
    write_body(&w, kv, n_kv, t, n_t, alignment);
    if (!w.err && fflush(w.fp) != 0) w.err = errno ? errno : EIO;
    if (!w.err && fsync(fileno(w.fp)) != 0) w.err = errno;
    if (fclose(w.fp) != 0 && !w.err) w.err = errno ? errno : EIO;
    if (w.err) {
        s = llmc_fail(LLMC_ERR_IO, "%s: writing failed: %s", path, strerror(w.err));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        s = llmc_fail(LLMC_ERR_IO, "%s: cannot rename the finished file into place: %s", path, strerror(errno));
        goto fail;
    }
    {
        /* make the rename itself durable */
        char *dir = llmc_malloc(plen + 1, "directory name");
        if (dir) {
            memcpy(dir, path, plen + 1);
            int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            llmc_free(dir);
        }
    }
    llmc_free(tmp);
    return LLMC_OK;
fail:
    unlink(tmp);
    llmc_free(tmp);
    return s;
}
