/* sampling_binding.c: llmc._core.Sampler, a Python type owning an llmc_sampler (sampling.c). */
#include "binding.h"

typedef struct {
    PyObject_HEAD
    llmc_sampler *s;
    Py_ssize_t vocab;
    int busy; /* set while a call runs without the GIL: a second thread gets an error, not a race on the scratch */
} SamplerObject;

static int sampler_enter(SamplerObject *self) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this Sampler is in use by another thread (use one Sampler per thread)");
        return -1;
    }
    return 0;
}

static int Sampler_init(SamplerObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"vocab", "temperature", "top_k", "top_p", "min_p", "repetition_penalty",
                            "no_repeat_ngram_size", "do_sample", "seed", NULL};
    Py_ssize_t vocab;
    llmc_sampler_params p = {1.0f, 0, 1.0f, 0.0f, 1.0f, 0, 1, 0};
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|fiffflpK", names, &vocab, &p.temperature, &p.top_k, &p.top_p,
                                     &p.min_p, &p.repetition_penalty, &p.no_repeat_ngram_size, &p.do_sample, &seed))
        return -1;
    if (vocab < 1) {
        PyErr_Format(PyExc_ValueError, "vocab must be >= 1, got %zd", vocab);
        return -1;
    }
    p.seed = seed;
    if (sampler_enter(self)) return -1;
    llmc_sampler_free(self->s);
    self->s = NULL;
    if (llmc_py_check(llmc_sampler_create(&p, (size_t)vocab, &self->s))) return -1;
    self->vocab = vocab;
    return 0;
}

static void Sampler_dealloc(SamplerObject *self) {
    llmc_sampler_free(self->s);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* logits (V,) or (N, V) -> a processed float32 copy; history: ids (n,) shared by every row */
static int prepare(SamplerObject *self, PyObject *lo, PyObject *ho, PyArrayObject **out, PyArrayObject **hist,
                   size_t *rows) {
    char s1[128];
    if (!self->s) {
        PyErr_SetString(PyExc_RuntimeError, "Sampler was not initialised");
        return -1;
    }
    if (sampler_enter(self)) return -1;
    PyArrayObject *x = llmc_py_float_array(lo, "logits");
    if (!x) return -1;
    int nd = PyArray_NDIM(x);
    if ((nd != 1 && nd != 2) || PyArray_DIM(x, nd - 1) != self->vocab) {
        llmc_py_shape_str(x, s1, sizeof s1);
        PyErr_Format(PyExc_ValueError, "logits must have shape (V,) or (N, V) with V = %zd, got %s", self->vocab, s1);
        Py_DECREF(x);
        return -1;
    }
    *out = (PyArrayObject *)PyArray_NewCopy(x, NPY_CORDER);
    Py_DECREF(x);
    if (!*out) return -1;
    if (ho == Py_None) {
        npy_intp zero = 0;
        *hist = (PyArrayObject *)PyArray_SimpleNew(1, &zero, NPY_INT64);
    } else {
        *hist = llmc_py_int_array(ho, "history");
    }
    if (!*hist) {
        Py_CLEAR(*out);
        return -1;
    }
    if (PyArray_NDIM(*hist) != 1) {
        llmc_py_shape_str(*hist, s1, sizeof s1);
        PyErr_Format(PyExc_ValueError, "history must be 1-D token ids, got shape %s", s1);
        Py_CLEAR(*out);
        Py_CLEAR(*hist);
        return -1;
    }
    *rows = nd == 2 ? (size_t)PyArray_DIM(*out, 0) : 1;
    return 0;
}

static PyObject *Sampler_process(SamplerObject *self, PyObject *args) {
    PyObject *lo, *ho = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &lo, &ho)) return NULL;
    PyArrayObject *out, *hist;
    size_t rows;
    if (prepare(self, lo, ho, &out, &hist, &rows)) return NULL;
    llmc_status st = LLMC_OK;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    for (size_t r = 0; r < rows && !st; r++)
        st = llmc_sampler_process(self->s, (float *)PyArray_DATA(out) + r * (size_t)self->vocab, PyArray_DATA(hist),
                                  (size_t)PyArray_DIM(hist, 0));
    Py_END_ALLOW_THREADS
    self->busy = 0;
    Py_DECREF(hist);
    if (llmc_py_check(st)) Py_CLEAR(out);
    return (PyObject *)out;
}

/* -> (tokens int64 (N,) or int, logprobs float32 (N,) or float) */
static PyObject *Sampler_sample(SamplerObject *self, PyObject *args) {
    PyObject *lo, *ho = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &lo, &ho)) return NULL;
    PyArrayObject *work, *hist;
    size_t rows;
    if (prepare(self, lo, ho, &work, &hist, &rows)) return NULL;
    int batched = PyArray_NDIM(work) == 2;
    npy_intp n = (npy_intp)rows;
    PyArrayObject *tok = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_INT64);
    PyArrayObject *lp = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_FLOAT32);
    PyObject *result = NULL;
    if (!tok || !lp) goto done;
    llmc_status st = LLMC_OK;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    for (size_t r = 0; r < rows && !st; r++)
        st = llmc_sampler_sample(self->s, (float *)PyArray_DATA(work) + r * (size_t)self->vocab, PyArray_DATA(hist),
                                 (size_t)PyArray_DIM(hist, 0), (int64_t *)PyArray_DATA(tok) + r,
                                 (float *)PyArray_DATA(lp) + r);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (llmc_py_check(st)) goto done;
    if (batched) result = Py_BuildValue("(OO)", tok, lp);
    else result = Py_BuildValue("(Ld)", (long long)((int64_t *)PyArray_DATA(tok))[0], (double)((float *)PyArray_DATA(lp))[0]);
done:
    Py_XDECREF(tok);
    Py_XDECREF(lp);
    Py_DECREF(work);
    Py_DECREF(hist);
    return result;
}

static PyObject *Sampler_seed(SamplerObject *self, PyObject *args) {
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "K", &seed)) return NULL;
    if (sampler_enter(self)) return NULL;
    if (self->s) llmc_sampler_seed(self->s, seed);
    Py_RETURN_NONE;
}

static PyMethodDef Sampler_methods[] = {
    {"process", (PyCFunction)Sampler_process, METH_VARARGS, "process(logits, history=None) -> processed logits"},
    {"sample", (PyCFunction)Sampler_sample, METH_VARARGS, "sample(logits, history=None) -> (token, logprob)"},
    {"seed", (PyCFunction)Sampler_seed, METH_VARARGS, "seed(n): restart the random generator"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject llmc_py_SamplerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "llmc._core.Sampler",
    .tp_basicsize = sizeof(SamplerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Sampler(vocab, temperature=1, top_k=0, top_p=1, min_p=0, repetition_penalty=1, no_repeat_ngram_size=0, "
              "do_sample=True, seed=0)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Sampler_init,
    .tp_dealloc = (destructor)Sampler_dealloc,
    .tp_methods = Sampler_methods,
};
