/* attention.c: scaled dot-product attention, two implementations behind llmc_attention().
 *
 * standard: the textbook three steps on the whole score tensor: S = scale * Q K^T (BLAS sgemm per head), a masked
 *           row softmax, O = P V (sgemm); heads run in parallel. Memory O(B * Hq * Tq * Tk).
 * flash:    one task per (batch, key/value head, block of queries), run in parallel; its tile holds those queries for
 *           every query head that shares the key/value head. A task walks the key blocks its queries can see (fully
 *           masked blocks are never visited), computes the score tile with a register-blocked SIMD kernel, and folds
 *           it into a running max / running sum per query (online softmax), rescaling its output accumulator
 *           whenever the max grows. Memory: a few tiles per thread, independent of Tq * Tk.
 *
 * The flash score tile is kept transposed, S^T: (keys, queries). Then S^T = K_blk @ (scale * Q_blk)^T is a plain
 * product of K's rows (read in place, any stride) with one packed copy of Q_blk^T made once per task, so K is never
 * repacked; the softmax statistics of a query are a column, which the SIMD kernel updates 16 queries at a time; and
 * P @ V reads P^T with swapped strides at no cost (see gemm_tile in simd.h). */
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <omp.h>

#include "blas.h"
#include "internal.h"
#include "simd.h"

/* ---------------------------------------------------------------- memory limit of the standard implementation */
static _Atomic size_t standard_limit; /* 0 = default */

static size_t default_standard_limit(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return (size_t)8 << 30; /* unknown RAM size: 8 GiB */
    return (size_t)pages / 2 * (size_t)page;
}

void llmc_attention_set_standard_limit(size_t bytes) { standard_limit = bytes; }

size_t llmc_attention_standard_limit(void) {
    size_t lim = standard_limit;
    return lim ? lim : default_standard_limit();
}

llmc_status llmc_attention_check_standard(size_t B, size_t Hq, size_t Tq, size_t Tk) {
    size_t rows, bytes;
    if (!llmc_mul_ok(B, Hq, &rows) || !llmc_size3(rows, Tq, Tk, sizeof(float), &bytes))
        return llmc_fail(LLMC_ERR_NOMEM,
                         "standard attention needs a (%zu, %zu, %zu, %zu) float32 score matrix, whose size overflows; "
                         "use impl=\"flash\"", B, Hq, Tq, Tk);
    size_t lim = llmc_attention_standard_limit();
    if (bytes > lim)
        return llmc_fail(LLMC_ERR_NOMEM,
                         "standard attention needs %.2f GiB for its (%zu, %zu, %zu, %zu) float32 score matrix, over "
                         "the limit of %.2f GiB (half the RAM unless set); use impl=\"flash\", which needs no score "
                         "matrix", bytes / 1073741824.0, B, Hq, Tq, Tk, lim / 1073741824.0);
    return LLMC_OK;
}

/* ---------------------------------------------------------------- arguments and masks */
/* The keys query i may see are [lo, hi). Query i sits at position p = Tk - Tq + i. */
typedef struct {
    size_t Tq, Tk, window;
    int causal;
} mask_spec;

static inline void visible_keys(const mask_spec *ms, size_t i, size_t *lo, size_t *hi) {
    if (!ms->causal && !ms->window) {
        *lo = 0;
        *hi = ms->Tk;
        return;
    }
    size_t p = ms->Tk - ms->Tq + i; /* >= 0: causal and window require Tq <= Tk */
    size_t W = ms->window;
    if (ms->causal) *hi = p + 1;
    else *hi = W < ms->Tk - p ? p + W : ms->Tk; /* non-causal window: |j - p| < W (no overflow for huge W) */
    *lo = W && p + 1 > W ? p + 1 - W : 0;       /* keys p - W < j */
}

/* Fill in the packed strides (those given as 0) and check everything; `r` is the resolved copy. */
static llmc_status check_args(const llmc_attention_args *a, llmc_attention_args *r) {
    if (!a) return llmc_fail(LLMC_ERR_INVALID, "attention: args is NULL");
    *r = *a;
    if (!a->q || !a->k || !a->v || !a->out)
        return llmc_fail(LLMC_ERR_INVALID, "attention: q, k, v and out must not be NULL");
    if (a->impl != LLMC_ATTN_STANDARD && a->impl != LLMC_ATTN_FLASH)
        return llmc_fail(LLMC_ERR_INVALID, "attention: unknown impl %d (0 = standard, 1 = flash)", a->impl);
    if (a->d == 0) return llmc_fail(LLMC_ERR_INVALID, "attention: head dimension d must be >= 1, got 0");
    if (a->Tk == 0) return llmc_fail(LLMC_ERR_INVALID, "attention: needs at least one key (Tk = 0)");
    if (a->Hkv == 0 || a->Hq == 0)
        return llmc_fail(LLMC_ERR_INVALID, "attention: head counts must be >= 1, got Hq = %zu, Hkv = %zu", a->Hq,
                         a->Hkv);
    if (a->Hq % a->Hkv)
        return llmc_fail(LLMC_ERR_INVALID,
                         "attention: query heads Hq = %zu must be a multiple of key/value heads Hkv = %zu", a->Hq,
                         a->Hkv);
    if ((a->causal || a->window) && a->Tq > a->Tk)
        return llmc_fail(LLMC_ERR_INVALID,
                         "attention: causal or windowed attention aligns the %zu queries to the last keys, so it needs "
                         "Tq <= Tk, got Tq = %zu > Tk = %zu", a->Tq, a->Tq, a->Tk);
    if (!isfinite(a->scale))
        return llmc_fail(LLMC_ERR_INVALID, "attention: scale must be finite, got %g", (double)a->scale);
    if (a->weights && a->impl != LLMC_ATTN_STANDARD)
        return llmc_fail(LLMC_ERR_INVALID, "attention: weights are only produced by the standard implementation");
    /* packed defaults, and every element count checked against size_t overflow */
    size_t qt = a->d, qh, qb, kt = a->d, kh, kb, ot = a->d, oh, ob;
    if (!llmc_mul_ok(a->Tq, a->d, &qh) || !llmc_mul_ok(qh, a->Hq, &qb) || !llmc_mul_ok(a->Tk, a->d, &kh) ||
        !llmc_mul_ok(kh, a->Hkv, &kb) || !llmc_mul_ok(qb, a->B, &ob))
        return llmc_fail(LLMC_ERR_NOMEM, "attention: tensor sizes overflow (B=%zu, Hq=%zu, Tq=%zu, Tk=%zu, d=%zu)",
                         a->B, a->Hq, a->Tq, a->Tk, a->d);
    oh = qh;
    ob = qb;
    r->q_st = a->q_st ? a->q_st : qt; r->q_sh = a->q_sh ? a->q_sh : qh; r->q_sb = a->q_sb ? a->q_sb : qb;
    r->k_st = a->k_st ? a->k_st : kt; r->k_sh = a->k_sh ? a->k_sh : kh; r->k_sb = a->k_sb ? a->k_sb : kb;
    r->v_st = a->v_st ? a->v_st : kt; r->v_sh = a->v_sh ? a->v_sh : kh; r->v_sb = a->v_sb ? a->v_sb : kb;
    r->o_st = a->o_st ? a->o_st : ot; r->o_sh = a->o_sh ? a->o_sh : oh; r->o_sb = a->o_sb ? a->o_sb : ob;
    if (r->q_st < a->d || r->k_st < a->d || r->v_st < a->d || r->o_st < a->d)
        return llmc_fail(LLMC_ERR_INVALID,
                         "attention: time strides must be >= d = %zu so rows do not overlap, got q %zu, k %zu, v %zu, "
                         "out %zu", a->d, r->q_st, r->k_st, r->v_st, r->o_st);
    return LLMC_OK;
}

/* ---------------------------------------------------------------- standard */
/* Row r of one head's scores: the visible keys [lo, hi) get softmax weights, the rest exactly 0. x: (Tk,) */
static void masked_softmax_row(float *x, size_t i, const mask_spec *ms) {
    size_t lo, hi;
    visible_keys(ms, i, &lo, &hi);
    float mx = llmc_k->max(x + lo, hi - lo);
    if (isnan(mx) || mx == INFINITY) { /* a NaN (or +inf) score: the whole row is NaN, as NumPy's softmax gives */
        for (size_t j = lo; j < hi; j++) x[j] = NAN;
        memset(x, 0, lo * sizeof(float));
        memset(x + hi, 0, (ms->Tk - hi) * sizeof(float));
        return;
    }
    float sum = llmc_k->exp_shift_sum(x + lo, x + lo, mx, 1.0f, hi - lo); /* exp(x - max): no overflow */
    llmc_k->scale(x + lo, 1.0f / sum, hi - lo);
    memset(x, 0, lo * sizeof(float));
    memset(x + hi, 0, (ms->Tk - hi) * sizeof(float));
}

/* One head, the textbook three steps. S: (Tq, Tk) of this head. */
static llmc_status standard_head(const llmc_attention_args *a, const mask_spec *ms, size_t b, size_t h, float *S,
                                 int threaded_softmax) {
    const size_t Tq = a->Tq, Tk = a->Tk, d = a->d, hk = h / (a->Hq / a->Hkv);
    /* 1. S = scale * q[b, h] @ k[b, hk]^T: (Tq, d) @ (d, Tk) */
    llmc_status st = llmc_sgemm(0, 1, Tq, Tk, d, a->scale, a->q + b * a->q_sb + h * a->q_sh, a->q_st,
                                a->k + b * a->k_sb + hk * a->k_sh, a->k_st, 0.0f, S, Tk);
    if (st) return st;
    /* 2. masked softmax of every row */
    const int nt = threaded_softmax ? llmc_threads_for(Tq * Tk) : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < Tq; i++) masked_softmax_row(S + i * Tk, i, ms);
    /* 3. out[b, h] = P @ v[b, hk]: (Tq, Tk) @ (Tk, d) */
    return llmc_sgemm(0, 0, Tq, d, Tk, 1.0f, S, Tk, a->v + b * a->v_sb + hk * a->v_sh, a->v_st, 0.0f,
                      a->out + b * a->o_sb + h * a->o_sh, a->o_st);
}

static llmc_status attention_standard(const llmc_attention_args *a) {
    const size_t B = a->B, Hq = a->Hq, Tq = a->Tq, Tk = a->Tk;
    llmc_status st = llmc_attention_check_standard(B, Hq, Tq, Tk);
    if (st) return st;
    const size_t lim = 2147483647u; /* what 32-bit BLAS accepts; checked here so no call below can fail */
    if (Tq > lim || Tk > lim || a->d > lim || a->q_st > lim || a->k_st > lim || a->v_st > lim || a->o_st > lim)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "standard attention: a dimension or stride exceeds 32-bit BLAS "
                         "(Tq=%zu, Tk=%zu, d=%zu)", Tq, Tk, a->d);
    const size_t per_head = Tq * Tk; /* fits: checked above */
    float *S = a->weights;           // S: (B, Hq, Tq, Tk), all of it at once, as the textbook algorithm holds it
    if (!S) {
        S = llmc_malloc(B * Hq * per_head * sizeof(float), "standard attention scores");
        if (!S)
            return llmc_fail(LLMC_ERR_NOMEM,
                             "standard attention could not allocate %.2f GiB for its (%zu, %zu, %zu, %zu) score matrix; "
                             "use impl=\"flash\"", (double)(B * Hq * per_head) * sizeof(float) / 1073741824.0, B, Hq,
                             Tq, Tk);
    }
    const mask_spec ms = {Tq, Tk, a->window, a->causal};
    const size_t heads = B * Hq;
    size_t work;
    int nt = llmc_size3(heads, per_head, a->d, 1, &work) ? llmc_threads_for(work / 4) : llmc_threads();
    if ((size_t)nt > heads) nt = (int)heads;
    if (nt > 1) {
        /* enough heads to share out: one thread per head at a time; OpenBLAS is always single-threaded and
         * llmc_sgemm does not split work inside a parallel region (threads.c), so nothing oversubscribes */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (size_t bh = 0; bh < heads; bh++) /* cannot fail: every size was checked above */
            (void)standard_head(a, &ms, bh / Hq, bh % Hq, S + bh * per_head, 0);
    } else {
        /* one head (or a tiny problem): heads in turn, BLAS and the softmax threaded inside each */
        for (size_t bh = 0; bh < heads && !st; bh++)
            st = standard_head(a, &ms, bh / Hq, bh % Hq, S + bh * per_head, 1);
    }
    if (S != a->weights) llmc_free(S);
    return st;
}

/* ---------------------------------------------------------------- flash */
/* A tile's columns are the queries of all G = Hq / Hkv heads that share one key/value head (column c = g * mq + i is
 * query i0 + i of head hk * G + g), so each K/V block is read once per group rather than once per head: decoding
 * with grouped-query attention streams the cache G times less. With G = 1 a tile is simply a block of queries. */

/* Below this many columns the score tile is computed with dot products of contiguous rows (decoding: Tq = 1),
 * which beats a register tile that would be mostly empty. */
#define FLASH_DOT_COLS 8

static inline size_t pad16(size_t n) { return (n + 15) / 16 * 16; } /* keep each scratch array 64-byte aligned */

/* Floats of scratch one thread needs for tiles of `cols` columns and key blocks of bk keys. */
static size_t flash_scratch_floats(size_t cols, size_t bk, size_t d) {
    return pad16(d * cols) + pad16(bk * cols) + pad16(cols * d) + 4 * pad16(cols);
}

/* One task: queries [i0, i0 + mq) of the G query heads of key/value head hk in batch b.
 * scratch: flash_scratch_floats(G * mq_max, bk, d) floats. */
static void flash_task(const llmc_attention_args *a, const mask_spec *ms, size_t b, size_t hk, size_t i0, size_t mq,
                       size_t bk, float *scratch) {
    const size_t d = a->d, G = a->Hq / a->Hkv, C = G * mq; /* C: columns of the tile */
    const float scale = a->scale;
    const float *q0 = a->q + b * a->q_sb + hk * G * a->q_sh + i0 * a->q_st; // q of column c: q0 + qoff(c)
    const float *kh = a->k + b * a->k_sb + hk * a->k_sh;                   // k: (Tk, d), row stride k_st
    const float *vh = a->v + b * a->v_sb + hk * a->v_sh;                   // v: (Tk, d), row stride v_st
    float *o0 = a->out + b * a->o_sb + hk * G * a->o_sh + i0 * a->o_st;    // out of column c: o0 + ooff(c)
#define QOFF(c) (((c) / mq) * a->q_sh + ((c) % mq) * a->q_st) /* head g = c / mq, query i = c % mq */
#define OOFF(c) (((c) / mq) * a->o_sh + ((c) % mq) * a->o_st)
    float *qt = scratch;                   // qt: (d, C) = (scale * q)^T
    float *st = qt + pad16(d * C);         // st: (bk, C) = S^T tile, then P^T tile
    float *acc = st + pad16(bk * C);       // acc: (C, d) = unnormalised output
    float *m = acc + pad16(C * d);         // m: (C,) running max of each column's scores
    float *l = m + pad16(C);               // l: (C,) running sum of exp(score - m)
    float *alpha = l + pad16(C);           // alpha: (C,) exp(m_old - m_new) of the last step
    float *bad = alpha + pad16(C);         // bad: (C,) 1 once a column saw a NaN or +inf score: its output is NaN

    /* lo and hi are non-decreasing in i, so the tile sees keys [lo of its first query, hi of its last query) and a
     * key block lies fully inside every query's range iff it lies inside [lo of the last, hi of the first). */
    size_t lo_first, hi_first, lo_last, hi_last;
    visible_keys(ms, i0, &lo_first, &hi_first);
    visible_keys(ms, i0 + mq - 1, &lo_last, &hi_last);

    const int dot_path = C < FLASH_DOT_COLS;
    if (!dot_path)
        for (size_t c = 0; c < C; c++) {
            const float *qc = q0 + QOFF(c);
            for (size_t p = 0; p < d; p++) qt[p * C + c] = qc[p] * scale;
        }
    memset(acc, 0, C * d * sizeof(float));
    for (size_t c = 0; c < C; c++) {
        m[c] = -INFINITY;
        l[c] = 0.0f;
        bad[c] = 0.0f;
    }

    for (size_t j0 = lo_first; j0 < hi_last; j0 += bk) {
        const size_t nk = hi_last - j0 < bk ? hi_last - j0 : bk;
        const float *kj = kh + j0 * a->k_st; // kj: (nk, d)
        /* st (nk, C) = kj (nk, d) @ qt (d, C): scores of the tile's queries against keys j0 .. j0 + nk */
        if (dot_path) {
            for (size_t r = 0; r < nk; r++)
                for (size_t c = 0; c < C; c++) st[r * C + c] = scale * llmc_k->dot(kj + r * a->k_st, q0 + QOFF(c), d);
        } else {
            llmc_k->gemm_tile(nk, C, d, kj, a->k_st, 1, qt, C, st, C, 0);
        }
        /* partially visible block (diagonal of a causal mask, edge of a window): hide what a query may not see */
        if (!(j0 >= lo_last && j0 + nk <= hi_first)) {
            for (size_t c = 0; c < C; c++) {
                size_t lo, hi;
                visible_keys(ms, i0 + c % mq, &lo, &hi);
                /* this query sees rows [ra, rb) of the block: keys j0 + r with lo <= j0 + r < hi */
                const size_t ra = lo > j0 ? (lo - j0 < nk ? lo - j0 : nk) : 0;
                const size_t rb = hi > j0 ? (hi - j0 < nk ? hi - j0 : nk) : 0;
                for (size_t r = 0; r < ra; r++) st[r * C + c] = -INFINITY;
                for (size_t r = rb > ra ? rb : ra; r < nk; r++) st[r * C + c] = -INFINITY;
            }
        }
        /* NaN semantics (NumPy's softmax): a NaN or +inf among a query's visible scores makes its output NaN. The
         * vector exp clamps its input, so such columns are flagged here (one SIMD max over the tile; the search for
         * the column runs only when there is one) and written as NaN at the end. */
        if (!(llmc_k->max(st, nk * C) < INFINITY))
            for (size_t r = 0; r < nk; r++)
                for (size_t c = 0; c < C; c++)
                    if (!(st[r * C + c] < INFINITY) && st[r * C + c] != -INFINITY) bad[c] = 1.0f;
        if (C == 1) {
            /* one query (decoding without GQA): its scores are a contiguous row, every one visible (the block lies
             * inside [lo, hi)), so the row primitives do the same update without 15 idle vector lanes */
            const float m_new = fmaxf(m[0], llmc_k->max(st, nk));
            alpha[0] = expf(m[0] - m_new); /* exp(-inf) = 0 on the first block */
            l[0] = l[0] * alpha[0] + llmc_k->exp_shift_sum(st, st, m_new, 1.0f, nk);
            m[0] = m_new;
        } else {
            /* st becomes P^T = exp(S^T - m_new) column by column; m, l updated; alpha = exp(m_old - m_new) */
            llmc_k->softmax_cols_online(st, nk, C, C, m, l, alpha);
        }
        /* the accumulator was summed under the old max: acc[c] *= alpha[c] puts it under the new one */
        for (size_t c = 0; c < C; c++)
            if (alpha[c] != 1.0f) llmc_k->scale(acc + c * d, alpha[c], d);
        /* acc (C, d) += P (C, nk) @ v[j0 : j0 + nk] (nk, d), reading P from st with swapped strides */
        llmc_k->gemm_tile(C, d, nk, st, 1, C, vh + j0 * a->v_st, a->v_st, acc, d, 1);
    }
    /* out = acc / l: every query saw at least its own position, so l >= 1 (the max term contributes exp(0)) */
    for (size_t c = 0; c < C; c++) {
        const float inv = bad[c] != 0.0f ? NAN : 1.0f / l[c];
        float *oc = o0 + OOFF(c);
        for (size_t p = 0; p < d; p++) oc[p] = acc[c * d + p] * inv;
    }
#undef QOFF
#undef OOFF
}

/* automatic tiles: 64 columns (64 / G queries of each of the G heads) x 64 keys keeps q^T, the score tile, the
 * accumulator (16 KiB each at d = 64) and the streamed K/V rows in L2, and the causal diagonal wastes little */
static void flash_blocks(const llmc_attention_args *a, size_t *bq_out, size_t *bk_out) {
    const size_t G = a->Hq / a->Hkv;
    size_t bq = a->block_q ? a->block_q : (G < 64 ? 64 / G : 1), bk = a->block_k ? a->block_k : 64;
    *bq_out = bq > a->Tq ? a->Tq : bq;
    *bk_out = bk > a->Tk ? a->Tk : bk;
}

/* Task t of attention_flash: key/value head bh % Hkv of batch bh / Hkv, query block qb */
static void flash_run_task(const llmc_attention_args *a, const mask_spec *ms, size_t t, size_t bq, size_t bk,
                           float *scratch) {
    const size_t nqb = (a->Tq + bq - 1) / bq;
    /* under a causal mask later query blocks see more keys: hand them out first so the cheap ones fill the end */
    const size_t bh = t / nqb, qb = nqb - 1 - t % nqb;
    const size_t i0 = qb * bq, mq = a->Tq - i0 < bq ? a->Tq - i0 : bq;
    flash_task(a, ms, bh / a->Hkv, bh % a->Hkv, i0, mq, bk, scratch);
}

static llmc_status attention_flash(const llmc_attention_args *a) {
    const size_t B = a->B, Hq = a->Hq, Hkv = a->Hkv, Tq = a->Tq, Tk = a->Tk, d = a->d, G = Hq / Hkv;
    size_t bq, bk;
    flash_blocks(a, &bq, &bk);
    const size_t nqb = (Tq + bq - 1) / bq;
    size_t tasks, work, cols, per_thread, bytes;
    if (!llmc_mul_ok(B * Hkv, nqb, &tasks) || !llmc_size3(Tq, Tk, d, 1, &work) || !llmc_size3(work, Hq, B, 1, &work) ||
        !llmc_mul_ok(G, bq, &cols) || !llmc_size3(d + bk + 3, cols, 4, 1, &per_thread))
        return llmc_fail(LLMC_ERR_NOMEM, "flash attention: sizes overflow (block_q = %zu, block_k = %zu)", bq, bk);
    per_thread = flash_scratch_floats(cols, bk, d);
    /* fork only when there is enough work (~ multiply-adds / 4) and never more threads than tasks */
    int nt = llmc_threads_for(work / 4);
    if ((size_t)nt > tasks) nt = (int)tasks;
    if (!llmc_size3(per_thread, (size_t)nt, sizeof(float), 1, &bytes))
        return llmc_fail(LLMC_ERR_NOMEM, "flash attention: scratch size overflows");
    float *scratch = llmc_malloc(bytes, "flash attention scratch");
    if (!scratch) return LLMC_ERR_NOMEM;
    const mask_spec ms = {Tq, Tk, a->window, a->causal};
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t t = 0; t < tasks; t++)
        flash_run_task(a, &ms, t, bq, bk, scratch + (size_t)omp_get_thread_num() * per_thread);
    llmc_free(scratch);
    return LLMC_OK;
}

/* ---------------------------------------------------------------- entry point */
llmc_status llmc_attention(const llmc_attention_args *args) {
    llmc_attention_args a;
    llmc_status st = check_args(args, &a);
    if (st) return st;
    if (a.B == 0 || a.Tq == 0) return LLMC_OK; /* nothing to compute */
    return a.impl == LLMC_ATTN_STANDARD ? attention_standard(&a) : attention_flash(&a);
}

/* ---------------------------------------------------------------- the tasks, for a caller's own team (decode.c)
 * llmc_attention runs independent tasks in parallel: one per head (standard) or per key/value head and query
 * block (flash). A caller that already runs a team (decoding one token on a team kept for the whole forward pass)
 * plans once, then shares the tasks out; each task writes only its own heads' output, computed exactly as
 * llmc_attention computes it. */
llmc_status llmc_attention_plan(const llmc_attention_args *args, llmc_attention_tasks *p) {
    memset(p, 0, sizeof *p);
    llmc_status st = check_args(args, &p->a);
    if (st) return st;
    const llmc_attention_args *a = &p->a;
    if (a->weights) return llmc_fail(LLMC_ERR_INVALID, "attention tasks: weights are written by llmc_attention only");
    if (a->B == 0 || a->Tq == 0) return LLMC_OK; /* no task */
    if (a->impl == LLMC_ATTN_STANDARD) {
        const size_t lim = 2147483647u;
        if ((st = llmc_attention_check_standard(a->B, a->Hq, a->Tq, a->Tk))) return st;
        if (a->Tq > lim || a->Tk > lim || a->d > lim || a->q_st > lim || a->k_st > lim || a->v_st > lim ||
            a->o_st > lim)
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "standard attention: a dimension or stride exceeds 32-bit BLAS "
                             "(Tq=%zu, Tk=%zu, d=%zu)", a->Tq, a->Tk, a->d);
        p->n_tasks = a->B * a->Hq;         /* one head each */
        p->scratch_floats = a->Tq * a->Tk; /* its score matrix (Tq, Tk): fits, checked above */
        return LLMC_OK;
    }
    size_t cols;
    flash_blocks(a, &p->bq, &p->bk);
    const size_t nqb = (a->Tq + p->bq - 1) / p->bq;
    if (!llmc_mul_ok(a->B * a->Hkv, nqb, &p->n_tasks) || !llmc_mul_ok(a->Hq / a->Hkv, p->bq, &cols) ||
        !llmc_size3(a->d + p->bk + 3, cols, 4, 1, &p->scratch_floats))
        return llmc_fail(LLMC_ERR_NOMEM, "flash attention: sizes overflow (block_q = %zu, block_k = %zu)", p->bq,
                         p->bk);
    p->scratch_floats = flash_scratch_floats(cols, p->bk, a->d);
    return LLMC_OK;
}

void llmc_attention_run_task(const llmc_attention_tasks *p, size_t t, float *scratch) {
    const llmc_attention_args *a = &p->a;
    const mask_spec ms = {a->Tq, a->Tk, a->window, a->causal};
    if (a->impl == LLMC_ATTN_STANDARD) /* cannot fail: every size was checked by the plan */
        (void)standard_head(a, &ms, t / a->Hq, t % a->Hq, scratch, 0);
    else
        flash_run_task(a, &ms, t, p->bq, p->bk, scratch);
}
