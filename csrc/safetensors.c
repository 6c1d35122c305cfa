/* safetensors.c: mmap + validate .safetensors files and sharded checkpoints (see safetensors.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "json.h"
#include "safetensors.h"

/* A header beyond this is not a real checkpoint (the reference implementation caps it at 100 MB as well). */
#define MAX_HEADER_BYTES ((uint64_t)100 * 1000 * 1000)

typedef struct {
    char *path;
    unsigned char *map;
    size_t len;
    llmc_json_doc *doc; /* tensor names point into it */
} st_file;

struct llmc_st {
    st_file *files;
    size_t n_files;
    llmc_st_tensor *t; /* sorted by name once all files are in */
    size_t n, cap;
};

const char *llmc_st_dtype_name(int dtype) {
    switch (dtype) {
    case LLMC_DT_F32: return "F32";
    case LLMC_DT_F16: return "F16";
    case LLMC_DT_BF16: return "BF16";
    default: return "?";
    }
}

/* ---------------------------------------------------------------- dtype conversion */
float llmc_bf16_to_f32(uint16_t h) {
    /* bfloat16 is the top half of a float32 */
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float llmc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (mant << 13); /* inf / NaN (payload kept) */
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (mant << 13); /* normal: rebias 15 -> 127 */
    } else if (mant == 0) {
        u = sign; /* +-0 */
    } else {
        /* subnormal half: mant * 2^-24; normalise by shifting until the implicit bit appears */
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// t: (numel,) in its dtype -> out: (numel,) float32
llmc_status llmc_st_to_f32(const llmc_st_tensor *t, float *out) {
    const unsigned char *p = t->data;
    if (t->dtype == LLMC_DT_OTHER)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; llmc loads only F32, F16 and BF16 tensors",
                         t->file, t->name, t->dtype_name);
    if (t->dtype == LLMC_DT_F32) {
        memcpy(out, p, t->numel * 4); /* the file is little-endian, like every machine we build for */
    } else {
        const int bf = t->dtype == LLMC_DT_BF16;
        const int nt = llmc_threads_for(t->numel * 2);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)); /* unaligned-safe little-endian read */
            out[i] = bf ? llmc_bf16_to_f32(h) : llmc_f16_to_f32(h);
        }
    }
    return LLMC_OK;
}

void llmc_st_release(const llmc_st_tensor *t) {
    if (!t->nbytes) return;
    /* round outwards to whole pages: a read-only file mapping just refaults a page that is touched again */
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)t->data & ~(pg - 1), hi = ((uintptr_t)t->data + t->nbytes + pg - 1) & ~(pg - 1);
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* ---------------------------------------------------------------- parsing one file */
static int dtype_from(const char *s, size_t *itemsize) {
    if (!strcmp(s, "F32")) return *itemsize = 4, LLMC_DT_F32;
    if (!strcmp(s, "F16")) return *itemsize = 2, LLMC_DT_F16;
    if (!strcmp(s, "BF16")) return *itemsize = 2, LLMC_DT_BF16;
    return -1;
}

/* dtypes the format defines that we keep (so the file opens) but do not convert; sub-byte ones are refused */
static size_t other_dtype_size(const char *s) {
    static const struct { const char *name; size_t size; } others[] = {
        {"F64", 8}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2},
        {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1}, {"C64", 8}};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (!strcmp(s, others[i].name)) return others[i].size;
    return 0;
}

static int subbyte_dtype(const char *s) { return !strcmp(s, "F6_E2M3") || !strcmp(s, "F6_E3M2") || !strcmp(s, "F4"); }

static llmc_status push_tensor(llmc_st *st, const llmc_st_tensor *t) {
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64, bytes;
        if (!llmc_mul_ok(cap, sizeof(llmc_st_tensor), &bytes)) return llmc_fail(LLMC_ERR_NOMEM, "too many tensors");
        llmc_st_tensor *nt = llmc_malloc(bytes, "safetensors tensor table");
        if (!nt) return LLMC_ERR_NOMEM;
        if (st->n) memcpy(nt, st->t, st->n * sizeof *nt);
        llmc_free(st->t);
        st->t = nt;
        st->cap = cap;
    }
    st->t[st->n++] = *t;
    return LLMC_OK;
}

static int by_offset(const void *a, const void *b) {
    const llmc_st_tensor *x = *(llmc_st_tensor *const *)a, *y = *(llmc_st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const llmc_st_tensor *)a)->name, ((const llmc_st_tensor *)b)->name);
}

/* Parse the header of f (already mapped) and append its tensors to st. */
static llmc_status parse_header(llmc_st *st, st_file *f) {
    const char *path = f->path;
    if (f->len < 8)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: not a safetensors file: %zu bytes, shorter than the 8-byte header length",
                         path, f->len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->map[i]; /* little-endian u64 */
    if (hlen > MAX_HEADER_BYTES)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: header length %llu is not sane (more than %llu bytes)", path,
                         (unsigned long long)hlen, (unsigned long long)MAX_HEADER_BYTES);
    if (hlen > f->len - 8)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: truncated: header length %llu exceeds the %zu bytes after it", path,
                         (unsigned long long)hlen, f->len - 8);
    if (hlen < 2) return llmc_fail(LLMC_ERR_FORMAT, "%s: header of %llu bytes is too short", path, (unsigned long long)hlen);
    llmc_status s = llmc_json_parse((const char *)f->map + 8, (size_t)hlen, path, &f->doc);
    if (s) return s;
    const llmc_json *root = llmc_json_root(f->doc);
    if (!llmc_json_is(root, LLMC_JSON_OBJECT))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: header must be a JSON object", path);
    const unsigned char *base = f->map + 8 + hlen;
    const size_t data_len = f->len - 8 - (size_t)hlen;
    const size_t first = st->n;
    for (size_t i = 0; i < root->len; i++) {
        const char *name = root->keys[i];
        const llmc_json *e = &root->items[i];
        if (root->key_lens[i] != strlen(name))
            return llmc_fail(LLMC_ERR_FORMAT, "%s: a tensor name contains a NUL byte", path);
        if (!strcmp(name, "__metadata__")) {
            if (!llmc_json_is(e, LLMC_JSON_OBJECT))
                return llmc_fail(LLMC_ERR_FORMAT, "%s: __metadata__ must be an object", path);
            continue;
        }
        if (!llmc_json_is(e, LLMC_JSON_OBJECT))
            return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': entry must be an object", path, name);
        const llmc_json *dt = llmc_json_get(e, "dtype"), *sh = llmc_json_get(e, "shape"),
                        *off = llmc_json_get(e, "data_offsets");
        if (!llmc_json_is(dt, LLMC_JSON_STRING))
            return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': missing or non-string 'dtype'", path, name);
        if (!llmc_json_is(sh, LLMC_JSON_ARRAY))
            return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': missing or non-array 'shape'", path, name);
        if (!llmc_json_is(off, LLMC_JSON_ARRAY) || off->len != 2)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': 'data_offsets' must be [start, end]", path, name);
        llmc_st_tensor t;
        memset(&t, 0, sizeof t);
        t.name = name;
        t.file = f->path;
        size_t itemsize = 0;
        t.dtype = dtype_from(dt->str, &itemsize);
        t.dtype_name = dt->str;
        if (t.dtype < 0) {
            if ((itemsize = other_dtype_size(dt->str)) > 0) t.dtype = LLMC_DT_OTHER;
            else if (subbyte_dtype(dt->str))
                return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; llmc does not read sub-byte dtypes",
                                 path, name, dt->str);
            else return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%.32s'", path, name, dt->str);
        }
        if (sh->len > LLMC_ST_MAX_DIMS)
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions (at most %d supported)", path,
                             name, sh->len, LLMC_ST_MAX_DIMS);
        t.ndim = (int)sh->len;
        size_t numel = 1;
        for (size_t d = 0; d < sh->len; d++) {
            const llmc_json *v = &sh->items[d];
            if (!llmc_json_is(v, LLMC_JSON_NUMBER) || !v->is_integer || v->integer < 0)
                return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer", path,
                                 name, d);
            t.shape[d] = (size_t)v->integer;
            if (!llmc_mul_ok(numel, t.shape[d], &numel))
                return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': shape product overflows", path, name);
        }
        t.numel = numel;
        int64_t o[2];
        for (int k = 0; k < 2; k++) {
            const llmc_json *v = &off->items[k];
            if (!llmc_json_is(v, LLMC_JSON_NUMBER) || !v->is_integer || v->integer < 0)
                return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': data_offsets[%d] is not a non-negative integer",
                                 path, name, k);
            o[k] = v->integer;
        }
        if (o[1] < o[0])
            return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s': data_offsets end %lld is before start %lld", path, name,
                             (long long)o[1], (long long)o[0]);
        if ((uint64_t)o[1] > data_len)
            return llmc_fail(LLMC_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets end %lld is past the end of the data (%zu bytes; file "
                             "truncated?)",
                             path, name, (long long)o[1], data_len);
        size_t nbytes;
        if (!llmc_mul_ok(numel, itemsize, &nbytes) || nbytes != (size_t)(o[1] - o[0]))
            return llmc_fail(LLMC_ERR_FORMAT,
                             "%s: tensor '%s': shape x itemsize = %zu elements x %zu bytes does not match "
                             "data_offsets [%lld, %lld) (%lld bytes)",
                             path, name, numel, itemsize, (long long)o[0], (long long)o[1], (long long)(o[1] - o[0]));
        t.data = base + o[0];
        t.nbytes = nbytes;
        s = push_tensor(st, &t);
        if (s) return s;
    }
    /* no two tensors of this file may share bytes: sort by start and compare neighbours */
    size_t cnt = st->n - first;
    if (cnt > 1) {
        llmc_st_tensor **order = llmc_malloc(cnt * sizeof *order, "safetensors overlap check");
        if (!order) return LLMC_ERR_NOMEM;
        for (size_t i = 0; i < cnt; i++) order[i] = &st->t[first + i];
        qsort(order, cnt, sizeof *order, by_offset);
        for (size_t i = 1; i < cnt; i++)
            if (order[i]->data < order[i - 1]->data + order[i - 1]->nbytes) {
                s = llmc_fail(LLMC_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data buffer", path,
                              order[i - 1]->name, order[i]->name);
                break;
            }
        llmc_free(order);
    }
    return s;
}

static llmc_status add_file(llmc_st *st, const char *path) {
    size_t bytes = st->n_files + 1;
    if (!llmc_mul_ok(bytes, sizeof(st_file), &bytes)) return llmc_fail(LLMC_ERR_NOMEM, "too many files");
    st_file *nf = llmc_malloc(bytes, "safetensors file table");
    if (!nf) return LLMC_ERR_NOMEM;
    if (st->n_files) memcpy(nf, st->files, st->n_files * sizeof *nf);
    llmc_free(st->files);
    st->files = nf;
    st_file *f = &st->files[st->n_files];
    memset(f, 0, sizeof *f);
    size_t plen = strlen(path);
    if (!(f->path = llmc_malloc(plen + 1, "file name"))) return LLMC_ERR_NOMEM;
    memcpy(f->path, path, plen + 1);
    st->n_files++; /* counted now, so close() frees it whatever happens next */
    int fd;
    llmc_status s = llmc_open_regular(path, &fd, &f->len); /* a FIFO is refused, not waited on */
    if (s) return s;
    if (f->len > 0) {
        void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return llmc_fail(LLMC_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        f->map = m;
    }
    close(fd); /* the mapping stays valid */
    return parse_header(st, f);
}

/* sort by name and reject a name present twice (in two shards) */
static llmc_status finish(llmc_st *st) {
    if (st->n > 1) qsort(st->t, st->n, sizeof *st->t, by_name);
    for (size_t i = 1; i < st->n; i++)
        if (!strcmp(st->t[i].name, st->t[i - 1].name))
            return llmc_fail(LLMC_ERR_FORMAT, "tensor '%s' appears twice (in %s and %s)", st->t[i].name,
                             st->t[i - 1].file, st->t[i].file);
    return LLMC_OK;
}

static llmc_st *st_new(void) {
    llmc_st *st = llmc_calloc(1, sizeof *st, "safetensors handle");
    return st;
}

llmc_status llmc_st_open(const char *path, llmc_st **out) {
    *out = NULL;
    llmc_st *st = st_new();
    if (!st) return LLMC_ERR_NOMEM;
    llmc_status s = add_file(st, path);
    if (!s) s = finish(st);
    if (s) {
        llmc_st_close(st);
        return s;
    }
    *out = st;
    return LLMC_OK;
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = llmc_malloc(a + b + 2, "path");
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static llmc_status open_sharded(llmc_st *st, const char *dir, const char *index_path) {
    char *text = NULL;
    size_t len = 0;
    llmc_status s = llmc_read_file(index_path, (size_t)64 << 20, &text, &len);
    if (s) return s;
    llmc_json_doc *doc = NULL;
    s = llmc_json_parse(text, len, index_path, &doc);
    llmc_free(text);
    if (s) return s;
    const llmc_json *map = llmc_json_get(llmc_json_root(doc), "weight_map");
    if (!llmc_json_is(map, LLMC_JSON_OBJECT)) {
        s = llmc_fail(LLMC_ERR_FORMAT, "%s: missing or non-object field 'weight_map'", index_path);
        goto done;
    }
    /* open each distinct shard once */
    for (size_t i = 0; i < map->len && !s; i++) {
        const llmc_json *v = &map->items[i];
        if (!llmc_json_is(v, LLMC_JSON_STRING) || v->len != strlen(v->str) || !v->len || strchr(v->str, '/') ||
            !strcmp(v->str, "..") || !strcmp(v->str, ".")) {
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: weight_map['%s'] must be a file name in the same folder", index_path,
                          map->keys[i]);
            break;
        }
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = !strcmp(map->items[j].str, v->str);
        if (seen) continue;
        char *p = join(dir, v->str);
        if (!p) {
            s = LLMC_ERR_NOMEM;
            break;
        }
        s = add_file(st, p);
        llmc_free(p);
    }
    if (!s) s = finish(st);
    /* every tensor the index names must be in the shard it names */
    for (size_t i = 0; i < map->len && !s; i++) {
        const llmc_st_tensor *t = llmc_st_find(st, map->keys[i]);
        const char *file = map->items[i].str, *base = t ? strrchr(t->file, '/') : NULL;
        if (!t || strcmp(base ? base + 1 : t->file, file))
            s = llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s' is listed in shard %s but is not there", index_path,
                          map->keys[i], file);
    }
done:
    llmc_json_free(doc);
    return s;
}

llmc_status llmc_st_open_dir(const char *dir, llmc_st **out) {
    *out = NULL;
    llmc_st *st = st_new();
    if (!st) return LLMC_ERR_NOMEM;
    char *index = join(dir, "model.safetensors.index.json"), *single = join(dir, "model.safetensors");
    llmc_status s = LLMC_OK;
    struct stat sb;
    if (!index || !single) s = LLMC_ERR_NOMEM;
    else if (stat(index, &sb) == 0) s = open_sharded(st, dir, index);
    else if (stat(single, &sb) == 0) s = (s = add_file(st, single)) ? s : finish(st);
    else s = llmc_fail(LLMC_ERR_NOT_FOUND, "%s: no model.safetensors or model.safetensors.index.json in this folder", dir);
    llmc_free(index);
    llmc_free(single);
    if (s) {
        llmc_st_close(st);
        return s;
    }
    *out = st;
    return LLMC_OK;
}

void llmc_st_close(llmc_st *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n_files; i++) {
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].len);
        llmc_json_free(st->files[i].doc);
        llmc_free(st->files[i].path);
    }
    llmc_free(st->files);
    llmc_free(st->t);
    llmc_free(st);
}

size_t llmc_st_count(const llmc_st *st) { return st->n; }
const llmc_st_tensor *llmc_st_at(const llmc_st *st, size_t i) { return i < st->n ? &st->t[i] : NULL; }

const llmc_st_tensor *llmc_st_find(const llmc_st *st, const char *name) {
    size_t lo = 0, hi = st->n; /* binary search over the name-sorted table */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->t[mid].name, name);
        if (!c) return &st->t[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}
