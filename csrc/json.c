/* json.c: recursive-descent JSON parser into an arena-allocated tree (see json.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"

/* ---------------------------------------------------------------- arena: big blocks, freed all at once */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

struct llmc_json_doc {
    arena_block *blocks;
    llmc_json root;
};

static void *arena_alloc(llmc_json_doc *doc, size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15; /* keep every allocation 16-byte aligned */
    arena_block *b = doc->blocks;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > (1u << 20) ? bytes : (1u << 20);
        b = llmc_malloc(sizeof(arena_block) + cap, "JSON document");
        if (!b) return NULL;
        b->next = doc->blocks;
        b->used = 0;
        b->cap = cap;
        doc->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += bytes;
    return p;
}

/* ---------------------------------------------------------------- parser */
typedef struct {
    const char *s, *end, *what;
    const char *p;
    llmc_json_doc *doc;
    llmc_status status;
} parser;

static llmc_status perr(parser *ps, const char *problem) {
    if (ps->status) return ps->status; /* keep the first error */
    size_t line = 1, col = 1;
    for (const char *c = ps->s; c < ps->p && c < ps->end; c++) {
        if (*c == '\n') line++, col = 1;
        else col++;
    }
    ps->status = llmc_fail(LLMC_ERR_FORMAT, "%s: invalid JSON: %s at line %zu column %zu", ps->what, problem, line, col);
    return ps->status;
}

static llmc_status pnomem(parser *ps) {
    if (!ps->status) ps->status = LLMC_ERR_NOMEM; /* llmc_malloc already set the message */
    return ps->status;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static size_t utf8_put(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parse a string at ps->p (on the opening quote). The unescaped text is never longer than the escaped one. */
static llmc_status parse_string(parser *ps, const char **out, size_t *out_len) {
    const char *start = ++ps->p;
    /* find the closing quote to size the buffer */
    const char *q = start;
    while (q < ps->end && *q != '"') {
        if (*q == '\\') q++;
        q++;
    }
    if (q >= ps->end) return perr(ps, "unterminated string");
    char *buf = arena_alloc(ps->doc, (size_t)(q - start) + 1);
    if (!buf) return pnomem(ps);
    size_t n = 0;
    while (ps->p < q) {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) return perr(ps, "control character in string");
        if (c >= 0x80) { /* RFC 8259: JSON text is UTF-8, so a malformed sequence is an error, not passed on */
            size_t len = llmc_utf8_seq((const unsigned char *)ps->p, (size_t)(q - ps->p));
            if (!len) return perr(ps, "invalid UTF-8 in string");
            memcpy(buf + n, ps->p, len);
            n += len;
            ps->p += len;
            continue;
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            ps->p++;
            continue;
        }
        ps->p++; /* the escape */
        char e = *ps->p++;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (q - ps->p < 4 || !hex4(ps->p, &cp)) return perr(ps, "bad \\u escape");
            ps->p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* a high surrogate must be followed by \uDC00..\uDFFF: the pair encodes one code point */
                unsigned lo;
                if (q - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u' && hex4(ps->p + 2, &lo) && lo >= 0xDC00 &&
                    lo <= 0xDFFF) {
                    ps->p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    cp = 0xFFFD; /* a lone surrogate cannot be UTF-8: replace it, as Python's json does on encode */
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            n += utf8_put(buf + n, cp);
            break;
        }
        default: ps->p -= 1; return perr(ps, "unknown escape in string");
        }
    }
    ps->p = q + 1;
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return LLMC_OK;
}

static llmc_status parse_number(parser *ps, llmc_json *v) {
    const char *start = ps->p;
    int integral = 1;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return perr(ps, "bad number");
    if (*ps->p == '0') ps->p++;
    else while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        integral = 0;
        ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return perr(ps, "bad number (digits after '.')");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integral = 0;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return perr(ps, "bad number (exponent)");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    /* strtod needs a terminated copy: numbers are short, so a stack buffer is enough for any sane file */
    char tmp[512];
    size_t n = (size_t)(ps->p - start);
    if (n >= sizeof tmp) return perr(ps, "number too long");
    memcpy(tmp, start, n);
    tmp[n] = '\0';
    v->type = LLMC_JSON_NUMBER;
    v->number = strtod(tmp, NULL);
    if (integral) {
        errno = 0;
        long long ll = strtoll(tmp, NULL, 10);
        if (errno != ERANGE) { /* out of int64's range: only the double is kept */
            v->is_integer = 1;
            v->integer = ll;
        }
    }
    return LLMC_OK;
}

static llmc_status parse_value(parser *ps, llmc_json *v, int depth);

/* Growable temporary arrays during parsing live on the heap; the final ones are copied into the arena. */
static llmc_status parse_array(parser *ps, llmc_json *v, int depth) {
    ps->p++; /* [ */
    size_t cap = 8, n = 0;
    llmc_json *tmp = malloc(cap * sizeof *tmp);
    if (!tmp) return perr(ps, "out of memory");
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        for (;;) {
            if (n == cap) {
                cap *= 2;
                llmc_json *t2 = realloc(tmp, cap * sizeof *tmp);
                if (!t2) { free(tmp); return perr(ps, "out of memory"); }
                tmp = t2;
            }
            memset(&tmp[n], 0, sizeof tmp[n]);
            if (parse_value(ps, &tmp[n], depth + 1)) { free(tmp); return ps->status; }
            n++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
            if (ps->p < ps->end && *ps->p == ']') { ps->p++; break; }
            free(tmp);
            return perr(ps, "expected ',' or ']' in array");
        }
    }
    v->type = LLMC_JSON_ARRAY;
    v->len = n;
    v->items = n ? arena_alloc(ps->doc, n * sizeof *tmp) : NULL;
    if (n && !v->items) { free(tmp); return pnomem(ps); }
    if (n) memcpy(v->items, tmp, n * sizeof *tmp);
    free(tmp);
    return LLMC_OK;
}

static llmc_status parse_object(parser *ps, llmc_json *v, int depth) {
    ps->p++; /* { */
    size_t cap = 8, n = 0;
    llmc_json *vals = malloc(cap * sizeof *vals);
    const char **keys = malloc(cap * sizeof *keys);
    size_t *klens = malloc(cap * sizeof *klens);
    llmc_status st = LLMC_OK;
    if (!vals || !keys || !klens) { st = perr(ps, "out of memory"); goto out; }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
    } else {
        for (;;) {
            if (n == cap) {
                cap *= 2;
                llmc_json *v2 = realloc(vals, cap * sizeof *vals);
                if (v2) vals = v2;
                const char **k2 = realloc(keys, cap * sizeof *keys);
                if (k2) keys = k2;
                size_t *l2 = realloc(klens, cap * sizeof *klens);
                if (l2) klens = l2;
                if (!v2 || !k2 || !l2) { st = perr(ps, "out of memory"); goto out; }
            }
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') { st = perr(ps, "expected a string key in object"); goto out; }
            if ((st = parse_string(ps, &keys[n], &klens[n]))) goto out;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') { st = perr(ps, "expected ':' after object key"); goto out; }
            ps->p++;
            memset(&vals[n], 0, sizeof vals[n]);
            if ((st = parse_value(ps, &vals[n], depth + 1))) goto out;
            n++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
            if (ps->p < ps->end && *ps->p == '}') { ps->p++; break; }
            st = perr(ps, "expected ',' or '}' in object");
            goto out;
        }
    }
    v->type = LLMC_JSON_OBJECT;
    v->len = n;
    if (n) {
        v->items = arena_alloc(ps->doc, n * sizeof *vals);
        v->keys = arena_alloc(ps->doc, n * sizeof *keys);
        v->key_lens = arena_alloc(ps->doc, n * sizeof *klens);
        if (!v->items || !v->keys || !v->key_lens) { st = pnomem(ps); goto out; }
        memcpy(v->items, vals, n * sizeof *vals);
        memcpy(v->keys, keys, n * sizeof *keys);
        memcpy(v->key_lens, klens, n * sizeof *klens);
    }
out:
    free(vals);
    free(keys);
    free(klens);
    return st;
}

static int match_word(parser *ps, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0) {
        ps->p += n;
        return 1;
    }
    return 0;
}

static llmc_status parse_value(parser *ps, llmc_json *v, int depth) {
    if (depth > LLMC_JSON_MAX_DEPTH) return perr(ps, "nesting deeper than 256 levels");
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, "unexpected end of input");
    char c = *ps->p;
    if (c == '{') return parse_object(ps, v, depth);
    if (c == '[') return parse_array(ps, v, depth);
    if (c == '"') {
        v->type = LLMC_JSON_STRING;
        return parse_string(ps, &v->str, &v->len);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps, v);
    if (match_word(ps, "true")) { v->type = LLMC_JSON_BOOL; v->boolean = 1; return LLMC_OK; }
    if (match_word(ps, "false")) { v->type = LLMC_JSON_BOOL; v->boolean = 0; return LLMC_OK; }
    if (match_word(ps, "null")) { v->type = LLMC_JSON_NULL; return LLMC_OK; }
    /* Python's json writes these for non-finite floats; configs in the wild contain them */
    if (match_word(ps, "NaN")) { v->type = LLMC_JSON_NUMBER; v->number = NAN; return LLMC_OK; }
    if (match_word(ps, "Infinity")) { v->type = LLMC_JSON_NUMBER; v->number = INFINITY; return LLMC_OK; }
    if (match_word(ps, "-Infinity")) { v->type = LLMC_JSON_NUMBER; v->number = -INFINITY; return LLMC_OK; }
    return perr(ps, "unexpected character");
}

llmc_status llmc_json_parse(const char *text, size_t len, const char *what, llmc_json_doc **out) {
    *out = NULL;
    llmc_json_doc *doc = llmc_calloc(1, sizeof *doc, "JSON document");
    if (!doc) return LLMC_ERR_NOMEM;
    parser ps = {text, text + len, what ? what : "JSON", text, doc, LLMC_OK};
    /* a UTF-8 byte-order mark is tolerated */
    if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB && (unsigned char)text[2] == 0xBF)
        ps.p += 3;
    if (parse_value(&ps, &doc->root, 0) == LLMC_OK) {
        skip_ws(&ps);
        if (ps.p != ps.end) perr(&ps, "trailing characters after the document");
    }
    if (ps.status) {
        llmc_json_free(doc);
        return ps.status;
    }
    *out = doc;
    return LLMC_OK;
}

const llmc_json *llmc_json_root(const llmc_json_doc *doc) { return &doc->root; }

void llmc_json_free(llmc_json_doc *doc) {
    if (!doc) return;
    arena_block *b = doc->blocks;
    while (b) {
        arena_block *next = b->next;
        llmc_free(b);
        b = next;
    }
    llmc_free(doc);
}

const llmc_json *llmc_json_get(const llmc_json *obj, const char *key) {
    if (!obj || obj->type != LLMC_JSON_OBJECT) return NULL;
    size_t kl = strlen(key);
    for (size_t i = obj->len; i-- > 0;)
        if (obj->key_lens[i] == kl && memcmp(obj->keys[i], key, kl) == 0) return &obj->items[i];
    return NULL;
}

int llmc_json_is(const llmc_json *v, llmc_json_type t) { return v && v->type == t; }
