/* tokenizer_binding.c: the _core.TokenizerHandle type (owns an llmc_tokenizer *) and the loader/trainer functions.
 * The Python face is llmc/tokenizer.py; this file validates, releases the GIL around the C calls, maps errors. */
#include "binding.h"

typedef struct {
    PyObject_HEAD llmc_tokenizer *tok;
    /* ints[id]: the Python int of token id, made on first use and kept (NULL until then). An encoded text is a
     * list of a few thousand distinct ids repeated: reusing their int objects (one INCREF each) instead of
     * allocating one per token takes most of the cost of building the list, and of freeing it later. */
    PyObject **ints;
    size_t n_ints;
} TokHandle;

static void tok_dealloc(TokHandle *self) {
    for (size_t i = 0; self->ints && i < self->n_ints; i++) Py_XDECREF(self->ints[i]);
    PyMem_Free(self->ints);
    llmc_tokenizer_free(self->tok);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ids: (n,) valid token ids (0 <= id < n_vocab) -> a new list of Python ints (called with the GIL held) */
static PyObject *ids_to_list(TokHandle *self, const int32_t *ids, size_t n) {
    PyObject *l = PyList_New((Py_ssize_t)n);
    if (!l) return NULL;
    if (!self->ints && n >= 64) { /* a short result is not worth the table */
        size_t nv = llmc_tokenizer_n_vocab(self->tok);
        self->ints = PyMem_Calloc(nv ? nv : 1, sizeof(PyObject *));
        if (self->ints) self->n_ints = nv;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        PyObject *v;
        if (self->ints && id >= 0 && (size_t)id < self->n_ints) {
            v = self->ints[id];
            if (!v && !(v = self->ints[id] = PyLong_FromLong(id))) {
                Py_DECREF(l);
                return NULL;
            }
            Py_INCREF(v);
        } else if (!(v = PyLong_FromLong(id))) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, v);
    }
    return l;
}

/* special_mode: None or bytes of length n_added (flags per added token). */
static int get_mode(TokHandle *self, PyObject *mode, const uint8_t **out) {
    *out = NULL;
    if (mode == Py_None) return 0;
    if (!PyBytes_Check(mode) || (size_t)PyBytes_GET_SIZE(mode) != llmc_tokenizer_n_added(self->tok)) {
        PyErr_SetString(PyExc_TypeError, "special mode must be None or bytes of one flag per added token");
        return -1;
    }
    *out = (const uint8_t *)PyBytes_AS_STRING(mode);
    return 0;
}

/* text: str (UTF-8 taken from the str object) or bytes */
static int get_text(PyObject *o, const char **s, Py_ssize_t *n) {
    if (PyUnicode_Check(o)) return (*s = PyUnicode_AsUTF8AndSize(o, n)) ? 0 : -1;
    if (PyBytes_Check(o)) {
        *s = PyBytes_AS_STRING(o);
        *n = PyBytes_GET_SIZE(o);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "text must be str or bytes, got %s", Py_TYPE(o)->tp_name);
    return -1;
}

static PyObject *tok_encode(TokHandle *self, PyObject *args) {
    PyObject *text, *mode;
    int add_special;
    if (!PyArg_ParseTuple(args, "OOp", &text, &mode, &add_special)) return NULL;
    const char *s;
    Py_ssize_t n;
    const uint8_t *m;
    if (get_text(text, &s, &n) || get_mode(self, mode, &m)) return NULL;
    int32_t *ids;
    size_t k;
    llmc_status st;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_tokenizer_encode(self->tok, s, (size_t)n, m, add_special, &ids, &k);
    LLMC_PY_INTERRUPTIBLE_END(pc)
    if (llmc_py_finish(st, &pc)) {
        if (!st) llmc_tokenizer_free_buffer(ids);
        return NULL;
    }
    PyObject *l = ids_to_list(self, ids, k);
    llmc_tokenizer_free_buffer(ids);
    return l;
}

static PyObject *tok_count(TokHandle *self, PyObject *args) {
    PyObject *text, *mode;
    if (!PyArg_ParseTuple(args, "OO", &text, &mode)) return NULL;
    const char *s;
    Py_ssize_t n;
    const uint8_t *m;
    if (get_text(text, &s, &n) || get_mode(self, mode, &m)) return NULL;
    int32_t *ids;
    size_t k;
    llmc_status st;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_tokenizer_encode(self->tok, s, (size_t)n, m, 0, &ids, &k);
    LLMC_PY_INTERRUPTIBLE_END(pc)
    if (llmc_py_finish(st, &pc)) {
        if (!st) llmc_tokenizer_free_buffer(ids);
        return NULL;
    }
    llmc_tokenizer_free_buffer(ids);
    return PyLong_FromSize_t(k);
}

/* encode_chunked(text, step, num_threads): the chunked long-text path with a chosen chunk size (tests) */
static PyObject *tok_encode_chunked(TokHandle *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t step;
    int nthreads;
    if (!PyArg_ParseTuple(args, "Oni", &text, &step, &nthreads)) return NULL;
    if (step < 1) {
        PyErr_Format(PyExc_ValueError, "step must be >= 1, got %zd", step);
        return NULL;
    }
    const char *s;
    Py_ssize_t n;
    if (get_text(text, &s, &n)) return NULL;
    int32_t *ids;
    size_t k;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_tokenizer_encode_chunked(self->tok, s, (size_t)n, NULL, 0, (size_t)step, nthreads, &ids, &k);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) return NULL;
    PyObject *l = ids_to_list(self, ids, k);
    llmc_tokenizer_free_buffer(ids);
    return l;
}

static PyObject *tok_encode_batch(TokHandle *self, PyObject *args) {
    PyObject *texts, *mode;
    int add_special, nthreads;
    if (!PyArg_ParseTuple(args, "OOpi", &texts, &mode, &add_special, &nthreads)) return NULL;
    const uint8_t *m;
    if (get_mode(self, mode, &m)) return NULL;
    PyObject *seq = PySequence_Fast(texts, "texts must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t nt = PySequence_Fast_GET_SIZE(seq);
    PyObject *result = NULL;
    const char **ptrs = PyMem_Calloc((size_t)nt + 1, sizeof(char *));
    size_t *lens = PyMem_Calloc((size_t)nt + 1, sizeof(size_t)), *nids = PyMem_Calloc((size_t)nt + 1, sizeof(size_t));
    int32_t **ids = PyMem_Calloc((size_t)nt + 1, sizeof(int32_t *));
    if (!ptrs || !lens || !nids || !ids) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nt; i++) {
        Py_ssize_t n;
        if (get_text(PySequence_Fast_GET_ITEM(seq, i), &ptrs[i], &n)) goto done;
        lens[i] = (size_t)n;
    }
    llmc_status st;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_tokenizer_encode_batch(self->tok, ptrs, lens, (size_t)nt, m, add_special, nthreads, ids, nids);
    LLMC_PY_INTERRUPTIBLE_END(pc)
    if (llmc_py_finish(st, &pc)) {
        if (!st)
            for (Py_ssize_t i = 0; i < nt; i++) llmc_tokenizer_free_buffer(ids[i]);
        goto done;
    }
    /* the lists hold only ints (no cycles): pause the cyclic GC, which would otherwise rescan them repeatedly */
    int gc_was = PyGC_Disable();
    result = PyList_New(nt);
    for (Py_ssize_t i = 0; result && i < nt; i++) {
        PyObject *l = ids_to_list(self, ids[i], nids[i]);
        if (!l) Py_CLEAR(result);
        else PyList_SET_ITEM(result, i, l);
    }
    if (gc_was) PyGC_Enable();
    for (Py_ssize_t i = 0; i < nt; i++) llmc_tokenizer_free_buffer(ids[i]);
done:
    Py_DECREF(seq);
    PyMem_Free(ptrs);
    PyMem_Free(lens);
    PyMem_Free(nids);
    PyMem_Free(ids);
    return result;
}

/* ids -> (n,) int64 token ids. A list or tuple of ints is read item by item (no intermediate array); a 1-D
 * integer NumPy array is used in place when it is C-contiguous int64, else cast once in C; anything else goes through
 * NumPy's conversion. *keep (to Py_XDECREF) owns the memory *ids points into; *tmp (to PyMem_Free) too. */
static int get_ids(PyObject *o, const int64_t **ids, Py_ssize_t *n, PyObject **keep, int64_t **tmp) {
    *keep = NULL;
    *tmp = NULL;
    if (PyList_CheckExact(o) || PyTuple_CheckExact(o)) {
        Py_ssize_t len = PySequence_Fast_GET_SIZE(o);
        PyObject **items = PySequence_Fast_ITEMS(o);
        int64_t *buf = PyMem_Malloc((size_t)(len ? len : 1) * sizeof(int64_t));
        if (!buf) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < len; i++) {
            PyObject *it = items[i]; /* a list cannot change under us: no Python code runs in this loop */
            long long v;
            int overflow = 0;
            if (PyLong_CheckExact(it)) {
                v = PyLong_AsLongLongAndOverflow(it, &overflow);
            } else if (PyBool_Check(it) || PyFloat_Check(it) || !PyIndex_Check(it)) {
                PyErr_Format(PyExc_TypeError, "ids must be integers, got %s at index %zd", Py_TYPE(it)->tp_name, i);
                PyMem_Free(buf);
                return -1;
            } else { /* NumPy integers and other int-like objects (__index__): may run Python code, list re-read */
                PyObject *iv = PyNumber_Index(it);
                v = iv ? PyLong_AsLongLongAndOverflow(iv, &overflow) : -1;
                Py_XDECREF(iv);
                if (!iv) {
                    PyMem_Free(buf);
                    return -1;
                }
                if (PySequence_Fast_GET_SIZE(o) != len) {
                    PyErr_SetString(PyExc_RuntimeError, "ids changed size while being read");
                    PyMem_Free(buf);
                    return -1;
                }
                items = PySequence_Fast_ITEMS(o);
            }
            if (overflow) {
                PyErr_Format(PyExc_ValueError, "token id %S at index %zd is out of range", it, i);
                PyMem_Free(buf);
                return -1;
            }
            if (v == -1 && PyErr_Occurred()) {
                PyMem_Free(buf);
                return -1;
            }
            buf[i] = v;
        }
        *ids = buf;
        *tmp = buf;
        *n = len;
        return 0;
    }
    PyArrayObject *a = llmc_py_int_array(o, "ids"); /* int64, C-contiguous: no copy when it already is */
    if (!a) return -1;
    if (PyArray_NDIM(a) > 1) {
        PyErr_Format(PyExc_ValueError, "ids must be a 1-D sequence of ints, got %d dimensions", PyArray_NDIM(a));
        Py_DECREF(a);
        return -1;
    }
    *keep = (PyObject *)a;
    *ids = PyArray_DATA(a);
    *n = PyArray_SIZE(a);
    return 0;
}

/* decode(ids) -> bytes; decode(ids, errors) -> str (the bytes decoded as UTF-8 with that error handler) */
static PyObject *tok_decode(TokHandle *self, PyObject *args) {
    PyObject *ido;
    const char *errors = NULL;
    int as_str = PyTuple_GET_SIZE(args) > 1;
    if (!PyArg_ParseTuple(args, "O|s", &ido, &errors)) return NULL;
    const int64_t *ids;
    Py_ssize_t k;
    PyObject *keep;
    int64_t *tmp;
    if (get_ids(ido, &ids, &k, &keep, &tmp)) return NULL;
    char *out;
    size_t n;
    llmc_status st;
    if (k > 4096) { /* long inputs: let other Python threads run meanwhile */
        Py_BEGIN_ALLOW_THREADS
        st = llmc_tokenizer_decode(self->tok, ids, (size_t)k, &out, &n);
        Py_END_ALLOW_THREADS
    } else {
        st = llmc_tokenizer_decode(self->tok, ids, (size_t)k, &out, &n);
    }
    Py_XDECREF(keep);
    PyMem_Free(tmp);
    if (llmc_py_check(st)) return NULL;
    PyObject *r = as_str ? PyUnicode_DecodeUTF8(out, (Py_ssize_t)n, errors)
                         : PyBytes_FromStringAndSize(out, (Py_ssize_t)n);
    llmc_tokenizer_free_buffer(out);
    return r;
}

static PyObject *tok_token_bytes(TokHandle *self, PyObject *args) {
    long long id;
    if (!PyArg_ParseTuple(args, "L", &id)) return NULL;
    const char *b;
    size_t n;
    if (llmc_py_check(llmc_tokenizer_token_bytes(self->tok, id, &b, &n))) return NULL;
    return PyBytes_FromStringAndSize(b, (Py_ssize_t)n);
}

static PyObject *tok_pieces(TokHandle *self, PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "O", &text)) return NULL;
    const char *s;
    Py_ssize_t n;
    if (get_text(text, &s, &n)) return NULL;
    size_t *spans, k;
    if (llmc_py_check(llmc_tokenizer_pieces(self->tok, s, (size_t)n, &spans, &k))) return NULL;
    PyObject *l = PyList_New((Py_ssize_t)(2 * k));
    for (size_t i = 0; l && i < 2 * k; i++) {
        PyObject *v = PyLong_FromSize_t(spans[i]);
        if (!v) Py_CLEAR(l);
        else PyList_SET_ITEM(l, (Py_ssize_t)i, v);
    }
    llmc_tokenizer_free_buffer(spans);
    return l;
}

static PyObject *tok_n_vocab(TokHandle *self, PyObject *args) {
    (void)args;
    return PyLong_FromSize_t(llmc_tokenizer_n_vocab(self->tok));
}

static PyObject *tok_added(TokHandle *self, PyObject *args) {
    (void)args;
    size_t n = llmc_tokenizer_n_added(self->tok);
    PyObject *l = PyList_New((Py_ssize_t)n);
    for (size_t k = 0; l && k < n; k++) {
        const char *b;
        size_t len;
        int32_t id;
        int sp;
        llmc_tokenizer_added(self->tok, k, &b, &len, &id, &sp);
        PyObject *v = Py_BuildValue("(y#iN)", b, (Py_ssize_t)len, (int)id, PyBool_FromLong(sp));
        if (!v) Py_CLEAR(l);
        else PyList_SET_ITEM(l, (Py_ssize_t)k, v);
    }
    return l;
}

static PyMethodDef tok_methods[] = {
    {"encode", (PyCFunction)tok_encode, METH_VARARGS, "encode(text, mode, add_special) -> list[int]"},
    {"count", (PyCFunction)tok_count, METH_VARARGS, "count(text, mode) -> int"},
    {"encode_batch", (PyCFunction)tok_encode_batch, METH_VARARGS,
     "encode_batch(texts, mode, add_special, num_threads) -> list[list[int]]"},
    {"encode_chunked", (PyCFunction)tok_encode_chunked, METH_VARARGS,
     "encode_chunked(text, step, num_threads) -> list[int] (specials as text; for tests)"},
    {"decode", (PyCFunction)tok_decode, METH_VARARGS,
     "decode(ids) -> bytes; decode(ids, errors) -> str (UTF-8 with that error handler)"},
    {"token_bytes", (PyCFunction)tok_token_bytes, METH_VARARGS, "token_bytes(id) -> bytes"},
    {"pieces", (PyCFunction)tok_pieces, METH_VARARGS, "pieces(text) -> [start0, end0, start1, end1, ...] byte offsets of the pieces"},
    {"n_vocab", (PyCFunction)tok_n_vocab, METH_NOARGS, "n_vocab() -> int"},
    {"added", (PyCFunction)tok_added, METH_NOARGS, "added() -> [(bytes, id, special)]"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject llmc_py_TokHandle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "llmc._core.TokenizerHandle",
    .tp_basicsize = sizeof(TokHandle),
    .tp_dealloc = (destructor)tok_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An llmc_tokenizer (use llmc.Tokenizer).",
    .tp_methods = tok_methods,
};

static PyObject *wrap(llmc_tokenizer *t) {
    TokHandle *h = PyObject_New(TokHandle, &llmc_py_TokHandle_Type);
    if (!h) {
        llmc_tokenizer_free(t);
        return NULL;
    }
    h->tok = t;
    h->ints = NULL;
    h->n_ints = 0;
    return (PyObject *)h;
}

/* tokenizer_from_tiktoken(data: bytes, pattern: str, specials: list[(bytes, int)]) */
static PyObject *py_from_tiktoken(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data;
    const char *pattern;
    PyObject *specials;
    if (!PyArg_ParseTuple(args, "y*sO", &data, &pattern, &specials)) return NULL;
    PyObject *seq = PySequence_Fast(specials, "special tokens must be a sequence of (bytes, int)");
    PyObject *res = NULL;
    if (!seq) {
        PyBuffer_Release(&data);
        return NULL;
    }
    Py_ssize_t ns = PySequence_Fast_GET_SIZE(seq);
    const char **sp = PyMem_Calloc((size_t)ns + 1, sizeof(char *));
    size_t *sl = PyMem_Calloc((size_t)ns + 1, sizeof(size_t));
    int64_t *si = PyMem_Calloc((size_t)ns + 1, sizeof(int64_t));
    if (!sp || !sl || !si) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < ns; k++) {
        Py_ssize_t l;
        long long id;
        char *b;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "y#L", &b, &l, &id)) goto done;
        sp[k] = b;
        sl[k] = (size_t)l;
        si[k] = id;
    }
    llmc_tokenizer *t;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_tokenizer_from_tiktoken(data.buf, (size_t)data.len, pattern, sp, sl, si, (size_t)ns, &t);
    Py_END_ALLOW_THREADS
    if (!llmc_py_check(st)) res = wrap(t);
done:
    PyMem_Free(sp);
    PyMem_Free(sl);
    PyMem_Free(si);
    Py_DECREF(seq);
    PyBuffer_Release(&data);
    return res;
}

/* tokenizer_from_hf_json(data: bytes, what: str) */
static PyObject *py_from_hf_json(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data;
    const char *what;
    if (!PyArg_ParseTuple(args, "y*s", &data, &what)) return NULL;
    llmc_tokenizer *t;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_tokenizer_from_hf_json(data.buf, (size_t)data.len, what, &t);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (llmc_py_check(st)) return NULL;
    return wrap(t);
}

/* tokenizer_from_sentencepiece(data: bytes, what: str) */
static PyObject *py_from_spm(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data;
    const char *what;
    if (!PyArg_ParseTuple(args, "y*s", &data, &what)) return NULL;
    llmc_tokenizer *t;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_tokenizer_from_sentencepiece(data.buf, (size_t)data.len, what, &t);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (llmc_py_check(st)) return NULL;
    return wrap(t);
}

typedef struct {
    PyObject *fn;
    llmc_py_poll_ctx *pc;
} progress_ctx;

/* progress callback: called from the training thread with the GIL released */
static void train_progress(size_t done, size_t total, void *ctx) {
    progress_ctx *p = ctx;
    if (p->pc->stop) return;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunction(p->fn, "nn", (Py_ssize_t)done, (Py_ssize_t)total);
    /* a failing progress printer must not stop training, but a KeyboardInterrupt raised while it ran (Ctrl-C is
     * handled whenever Python code runs) must: it stays set and the next poll stops the training */
    if (!r) llmc_py_callback_failed(p->pc);
    Py_XDECREF(r);
    PyGILState_Release(g);
}

/* bpe_train(texts: list[str], pattern: str, n_merges: int, min_frequency: int, progress) -> list[(a, b, id)] */
static PyObject *py_bpe_train(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *texts, *progress;
    const char *pattern;
    Py_ssize_t n_merges;
    unsigned long long min_freq;
    if (!PyArg_ParseTuple(args, "OsnKO", &texts, &pattern, &n_merges, &min_freq, &progress)) return NULL;
    if (n_merges < 0) {
        PyErr_Format(PyExc_ValueError, "number of merges must be >= 0, got %zd", n_merges);
        return NULL;
    }
    PyObject *seq = PySequence_Fast(texts, "texts must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t nt = PySequence_Fast_GET_SIZE(seq);
    PyObject *result = NULL;
    const char **ptrs = PyMem_Calloc((size_t)nt + 1, sizeof(char *));
    size_t *lens = PyMem_Calloc((size_t)nt + 1, sizeof(size_t));
    if (!ptrs || !lens) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nt; i++) {
        Py_ssize_t n;
        if (get_text(PySequence_Fast_GET_ITEM(seq, i), &ptrs[i], &n)) goto done;
        lens[i] = (size_t)n;
    }
    int32_t *m;
    size_t k;
    llmc_status st;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    progress_ctx prog = {progress, &pc};
    st = llmc_bpe_train(ptrs, lens, (size_t)nt, pattern, (size_t)n_merges, min_freq,
                        progress == Py_None ? NULL : train_progress, &prog, &m, &k);
    LLMC_PY_INTERRUPTIBLE_END(pc)
    if (llmc_py_finish(st, &pc)) {
        if (!st) llmc_tokenizer_free_buffer(m);
        goto done;
    }
    result = PyList_New((Py_ssize_t)k);
    for (size_t i = 0; result && i < k; i++) {
        PyObject *t = Py_BuildValue("(iii)", m[3 * i], m[3 * i + 1], m[3 * i + 2]);
        if (!t) Py_CLEAR(result);
        else PyList_SET_ITEM(result, (Py_ssize_t)i, t);
    }
    llmc_tokenizer_free_buffer(m);
done:
    Py_DECREF(seq);
    PyMem_Free(ptrs);
    PyMem_Free(lens);
    return result;
}

static PyObject *py_pretok_regex(PyObject *self, PyObject *args) {
    (void)self;
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
    const char *r = llmc_pretokenizer_regex(name);
    if (!r) {
        PyErr_Format(llmc_py_UnsupportedError,
                     "pre-tokenizer '%s' is not supported: use gpt2, gpt4 (= cl100k), o200k, llama3 or qwen2", name);
        return NULL;
    }
    return PyUnicode_FromString(r);
}

PyMethodDef llmc_py_tokenizer_methods[] = {
    {"bpe_train", py_bpe_train, METH_VARARGS,
     "bpe_train(texts, pattern, n_merges, min_frequency, progress) -> [(left, right, id)]"},
    {"pretokenizer_regex", py_pretok_regex, METH_VARARGS, "pretokenizer_regex(name) -> the regex it implements"},
    {"tokenizer_from_tiktoken", py_from_tiktoken, METH_VARARGS,
     "tokenizer_from_tiktoken(data, pattern, specials) -> TokenizerHandle"},
    {"tokenizer_from_hf_json", py_from_hf_json, METH_VARARGS, "tokenizer_from_hf_json(data, what) -> TokenizerHandle"},
    {"tokenizer_from_sentencepiece", py_from_spm, METH_VARARGS,
     "tokenizer_from_sentencepiece(data, what) -> TokenizerHandle"},
    {NULL, NULL, 0, NULL},
};
