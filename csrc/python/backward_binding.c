/* backward_binding.c: the gradient kernels of backward.c and the AdamW step, for tests and research notebooks.
 * Each returns freshly zeroed gradient arrays that the C kernels accumulate into. */
#include <string.h>

#include "binding.h"

/* float32 array with exactly `nd` dimensions (nd < 0: any) */
static PyArrayObject *f32(PyObject *o, const char *name, int nd) {
    PyArrayObject *a = llmc_py_float_array(o, name);
    if (a && nd >= 0 && PyArray_NDIM(a) != nd) {
        char s[128];
        llmc_py_shape_str(a, s, sizeof s);
        PyErr_Format(PyExc_ValueError, "%s must be %d-D, got shape %s", name, nd, s);
        Py_CLEAR(a);
    }
    return a;
}

static PyArrayObject *zeros_like(PyArrayObject *a) {
    return (PyArrayObject *)PyArray_ZEROS(PyArray_NDIM(a), PyArray_DIMS(a), NPY_FLOAT32, 0);
}

static int same_shape(PyArrayObject *a, PyArrayObject *b, const char *an, const char *bn) {
    if (PyArray_NDIM(a) == PyArray_NDIM(b) &&
        !memcmp(PyArray_DIMS(a), PyArray_DIMS(b), sizeof(npy_intp) * (size_t)PyArray_NDIM(a)))
        return 0;
    char s1[128], s2[128];
    llmc_py_shape_str(a, s1, sizeof s1);
    llmc_py_shape_str(b, s2, sizeof s2);
    PyErr_Format(PyExc_ValueError, "%s and %s must have the same shape, got %s and %s", an, bn, s1, s2);
    return -1;
}

#define F(a) ((float *)PyArray_DATA(a))
#define DIM(a, i) ((size_t)PyArray_DIM(a, i))

static PyObject *py_linear_backward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *dyo, *xo, *wo;
    int bias;
    if (!PyArg_ParseTuple(args, "OOOp", &dyo, &xo, &wo, &bias)) return NULL;
    PyArrayObject *dy = f32(dyo, "dy", 2), *x = dy ? f32(xo, "x", 2) : NULL, *w = x ? f32(wo, "w", 2) : NULL;
    PyArrayObject *dx = NULL, *dw = NULL, *db = NULL;
    PyObject *res = NULL;
    if (!w) goto done;
    if (DIM(dy, 0) != DIM(x, 0) || DIM(dy, 1) != DIM(w, 0) || DIM(x, 1) != DIM(w, 1)) {
        PyErr_SetString(PyExc_ValueError, "linear_backward needs dy (N, out), x (N, in), w (out, in)");
        goto done;
    }
    npy_intp bdim = PyArray_DIM(w, 0);
    dx = zeros_like(x);
    dw = zeros_like(w);
    db = bias ? (PyArrayObject *)PyArray_ZEROS(1, &bdim, NPY_FLOAT32, 0) : NULL;
    if (!dx || !dw || (bias && !db)) goto done;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_linear_backward(F(dy), F(x), F(w), F(dx), F(dw), db ? F(db) : NULL, DIM(x, 0), DIM(x, 1), DIM(w, 0));
    Py_END_ALLOW_THREADS
    if (!llmc_py_check(st)) res = Py_BuildValue("(OOO)", dx, dw, db ? (PyObject *)db : Py_None);
done:
    Py_XDECREF(dy); Py_XDECREF(x); Py_XDECREF(w); Py_XDECREF(dx); Py_XDECREF(dw); Py_XDECREF(db);
    return res;
}

/* layer_norm (which 0) and rms_norm (which 1): x (..., C), w (C,) */
static PyObject *norm_backward(PyObject *args, int which) {
    PyObject *dyo, *xo, *wo;
    float eps;
    if (!PyArg_ParseTuple(args, "OOOf", &dyo, &xo, &wo, &eps)) return NULL;
    PyArrayObject *dy = f32(dyo, "dy", -1), *x = dy ? f32(xo, "x", -1) : NULL, *w = x ? f32(wo, "w", 1) : NULL;
    PyArrayObject *dx = NULL, *dw = NULL, *db = NULL;
    PyObject *res = NULL;
    if (!w || same_shape(dy, x, "dy", "x")) goto done;
    if (PyArray_NDIM(x) < 1 || PyArray_DIM(x, PyArray_NDIM(x) - 1) != PyArray_DIM(w, 0)) {
        PyErr_SetString(PyExc_ValueError, "norm backward needs x (..., C) and w (C,)");
        goto done;
    }
    dx = zeros_like(x);
    dw = zeros_like(w);
    db = zeros_like(w);
    if (!dx || !dw || !db) goto done;
    size_t C = DIM(w, 0), rows = C ? (size_t)PyArray_SIZE(x) / C : 0;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = which == 0 ? llmc_layer_norm_backward(F(dy), F(x), F(w), F(dx), F(dw), F(db), rows, C, eps)
                    : llmc_rms_norm_backward(F(dy), F(x), F(w), F(dx), F(dw), rows, C, eps);
    Py_END_ALLOW_THREADS
    if (!llmc_py_check(st))
        res = which == 0 ? Py_BuildValue("(OOO)", dx, dw, db) : Py_BuildValue("(OO)", dx, dw);
done:
    Py_XDECREF(dy); Py_XDECREF(x); Py_XDECREF(w); Py_XDECREF(dx); Py_XDECREF(dw); Py_XDECREF(db);
    return res;
}
static PyObject *py_layer_norm_backward(PyObject *s, PyObject *a) { (void)s; return norm_backward(a, 0); }
static PyObject *py_rms_norm_backward(PyObject *s, PyObject *a) { (void)s; return norm_backward(a, 1); }

/* gelu tanh (0), gelu exact (1), silu (2) */
static PyObject *act_backward(PyObject *args, int which) {
    PyObject *dyo, *xo;
    if (!PyArg_ParseTuple(args, "OO", &dyo, &xo)) return NULL;
    PyArrayObject *dy = f32(dyo, "dy", -1), *x = dy ? f32(xo, "x", -1) : NULL, *dx = NULL;
    if (!x || same_shape(dy, x, "dy", "x") || !(dx = zeros_like(x))) goto done;
    size_t n = (size_t)PyArray_SIZE(x);
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = which == 2 ? llmc_silu_backward(F(dy), F(x), F(dx), n) : llmc_gelu_backward(F(dy), F(x), F(dx), n, which == 0);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(dx);
done:
    Py_XDECREF(dy); Py_XDECREF(x);
    return (PyObject *)dx;
}
static PyObject *py_gelu_tanh_backward(PyObject *s, PyObject *a) { (void)s; return act_backward(a, 0); }
static PyObject *py_gelu_backward(PyObject *s, PyObject *a) { (void)s; return act_backward(a, 1); }
static PyObject *py_silu_backward(PyObject *s, PyObject *a) { (void)s; return act_backward(a, 2); }

static PyObject *py_embedding_backward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *dyo, *io;
    Py_ssize_t vocab;
    if (!PyArg_ParseTuple(args, "OOn", &dyo, &io, &vocab)) return NULL;
    PyArrayObject *dy = f32(dyo, "dy", 2), *ids = dy ? llmc_py_int_array(io, "ids") : NULL, *dt = NULL;
    if (!ids) goto done;
    if (PyArray_NDIM(ids) != 1 || PyArray_DIM(ids, 0) != PyArray_DIM(dy, 0) || vocab < 0) {
        PyErr_SetString(PyExc_ValueError, "embedding_backward needs dy (n, dim), ids (n,), vocab >= 0");
        goto done;
    }
    npy_intp dims[2] = {vocab, PyArray_DIM(dy, 1)};
    if (!(dt = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0))) goto done;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_embedding_backward(F(dy), PyArray_DATA(ids), DIM(ids, 0), DIM(dy, 1), F(dt), (size_t)vocab);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(dt);
done:
    Py_XDECREF(dy); Py_XDECREF(ids);
    return (PyObject *)dt;
}

static PyObject *py_rope_backward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *dyo, *po;
    float theta;
    int layout;
    if (!PyArg_ParseTuple(args, "OOfi", &dyo, &po, &theta, &layout)) return NULL;
    PyArrayObject *dy = f32(dyo, "dy", -1), *pos = dy ? llmc_py_int_array(po, "positions") : NULL, *dx = NULL;
    if (!pos) goto done;
    int nd = PyArray_NDIM(dy);
    if (nd < 2 || PyArray_NDIM(pos) != 1 || PyArray_DIM(pos, 0) != PyArray_DIM(dy, nd - 2)) {
        PyErr_SetString(PyExc_ValueError, "rope_backward needs dy (..., T, d) and positions (T,)");
        goto done;
    }
    if (!(dx = zeros_like(dy))) goto done;
    size_t T = DIM(dy, nd - 2), d = DIM(dy, nd - 1), outer = T && d ? (size_t)PyArray_SIZE(dy) / (T * d) : 0;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_apply_rope_backward(F(dy), F(dx), outer, T, d, PyArray_DATA(pos), theta, layout);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(dx);
done:
    Py_XDECREF(dy); Py_XDECREF(pos);
    return (PyObject *)dx;
}

/* -> (mean loss, dlogits of the mean loss) */
static PyObject *py_cross_entropy_backward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *lo, *to, *res = NULL;
    if (!PyArg_ParseTuple(args, "OO", &lo, &to)) return NULL;
    PyArrayObject *lg = f32(lo, "logits", 2), *tg = lg ? llmc_py_int_array(to, "targets") : NULL, *dl = NULL;
    if (!tg) goto done;
    if (PyArray_NDIM(tg) != 1 || PyArray_DIM(tg, 0) != PyArray_DIM(lg, 0) || PyArray_DIM(lg, 0) == 0) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy_backward needs logits (T, V) and targets (T,), T >= 1");
        goto done;
    }
    if (!(dl = zeros_like(lg))) goto done;
    double sum = 0.0;
    size_t T = DIM(lg, 0);
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_cross_entropy_backward(F(lg), PyArray_DATA(tg), T, DIM(lg, 1), 1.0f / (float)T, F(dl), &sum);
    Py_END_ALLOW_THREADS
    if (!llmc_py_check(st)) res = Py_BuildValue("(dO)", sum / (double)T, dl);
done:
    Py_XDECREF(lg); Py_XDECREF(tg); Py_XDECREF(dl);
    return res;
}

static PyObject *py_attention_backward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *qo, *ko, *vo, *doo, *res = NULL;
    float scale;
    int causal;
    Py_ssize_t window = 0;
    if (!PyArg_ParseTuple(args, "OOOOfp|n", &qo, &ko, &vo, &doo, &scale, &causal, &window)) return NULL;
    if (window < 0) {
        PyErr_Format(PyExc_ValueError, "window must be >= 0, got %zd", window);
        return NULL;
    }
    PyArrayObject *q = f32(qo, "q", 3), *k = q ? f32(ko, "k", 3) : NULL, *v = k ? f32(vo, "v", 3) : NULL;
    PyArrayObject *dout = v ? f32(doo, "dout", 3) : NULL, *dq = NULL, *dk = NULL, *dv = NULL;
    if (!dout || same_shape(q, dout, "q", "dout") || same_shape(k, v, "k", "v")) goto done;
    if (DIM(q, 1) != DIM(k, 1) || DIM(q, 2) != DIM(k, 2)) {
        PyErr_SetString(PyExc_ValueError, "attention_backward needs q (Hq, T, d) and k, v (Hkv, T, d)");
        goto done;
    }
    if (!(dq = zeros_like(q)) || !(dk = zeros_like(k)) || !(dv = zeros_like(v))) goto done;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_attention_backward(F(q), F(k), F(v), F(dout), F(dq), F(dk), F(dv), DIM(q, 0), DIM(k, 0), DIM(q, 1),
                                 DIM(q, 2), scale, causal, (size_t)window);
    Py_END_ALLOW_THREADS
    if (!llmc_py_check(st)) res = Py_BuildValue("(OOO)", dq, dk, dv);
done:
    Py_XDECREF(q); Py_XDECREF(k); Py_XDECREF(v); Py_XDECREF(dout);
    Py_XDECREF(dq); Py_XDECREF(dk); Py_XDECREF(dv);
    return res;
}

/* in place on float32 contiguous arrays: adamw_step(param, grad, m, v, lr, beta1, beta2, eps, wd, step) */
static PyObject *py_adamw_step(PyObject *self, PyObject *args) {
    (void)self;
    PyArrayObject *arr[4];
    float lr, b1, b2, eps, wd;
    long long step;
    if (!PyArg_ParseTuple(args, "O!O!O!O!fffffL", &PyArray_Type, &arr[0], &PyArray_Type, &arr[1], &PyArray_Type,
                          &arr[2], &PyArray_Type, &arr[3], &lr, &b1, &b2, &eps, &wd, &step))
        return NULL;
    const char *names[4] = {"param", "grad", "m", "v"};
    for (int i = 0; i < 4; i++) {
        if (PyArray_TYPE(arr[i]) != NPY_FLOAT32 || !PyArray_IS_C_CONTIGUOUS(arr[i]) || !PyArray_ISWRITEABLE(arr[i])) {
            PyErr_Format(PyExc_TypeError, "%s must be a writable C-contiguous float32 array", names[i]);
            return NULL;
        }
        if (PyArray_SIZE(arr[i]) != PyArray_SIZE(arr[0])) {
            PyErr_Format(PyExc_ValueError, "%s has %zd elements, param has %zd", names[i], (Py_ssize_t)PyArray_SIZE(arr[i]),
                         (Py_ssize_t)PyArray_SIZE(arr[0]));
            return NULL;
        }
    }
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_adamw_step(F(arr[0]), F(arr[1]), F(arr[2]), F(arr[3]), (size_t)PyArray_SIZE(arr[0]), lr, b1, b2, eps, wd,
                         (int64_t)step);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) return NULL;
    Py_RETURN_NONE;
}

/* grad_sumsq([arrays]) -> sum of squares of every element (double accumulation), for the global grad norm */
static PyObject *py_grad_sumsq(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &seq)) return NULL;
    double total = 0.0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(seq); i++) {
        PyObject *o = PyList_GET_ITEM(seq, i);
        if (!PyArray_Check(o) || PyArray_TYPE((PyArrayObject *)o) != NPY_FLOAT32 ||
            !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)o)) {
            PyErr_Format(PyExc_TypeError, "grad_sumsq: item %zd must be a C-contiguous float32 array", i);
            return NULL;
        }
        PyArrayObject *a = (PyArrayObject *)o;
        total += llmc_sumsq(PyArray_DATA(a), (size_t)PyArray_SIZE(a));
    }
    return PyFloat_FromDouble(total);
}

static PyObject *py_lr_cosine(PyObject *self, PyObject *args) {
    (void)self;
    long long step, warmup, total;
    float lr_max, lr_min;
    if (!PyArg_ParseTuple(args, "LLLff", &step, &warmup, &total, &lr_max, &lr_min)) return NULL;
    return PyFloat_FromDouble(llmc_lr_cosine(step, warmup, total, lr_max, lr_min));
}

PyMethodDef llmc_py_backward_methods[] = {
    {"linear_backward", py_linear_backward, METH_VARARGS, "linear_backward(dy, x, w, has_bias) -> (dx, dw, db)"},
    {"layer_norm_backward", py_layer_norm_backward, METH_VARARGS, "layer_norm_backward(dy, x, w, eps) -> (dx, dw, db)"},
    {"rms_norm_backward", py_rms_norm_backward, METH_VARARGS, "rms_norm_backward(dy, x, w, eps) -> (dx, dw)"},
    {"gelu_tanh_backward", py_gelu_tanh_backward, METH_VARARGS, "gelu_tanh_backward(dy, x) -> dx"},
    {"gelu_backward", py_gelu_backward, METH_VARARGS, "gelu_backward(dy, x) -> dx"},
    {"silu_backward", py_silu_backward, METH_VARARGS, "silu_backward(dy, x) -> dx"},
    {"embedding_backward", py_embedding_backward, METH_VARARGS, "embedding_backward(dy, ids, vocab) -> dtable"},
    {"rope_backward", py_rope_backward, METH_VARARGS, "rope_backward(dy, positions, theta, layout) -> dx"},
    {"cross_entropy_backward", py_cross_entropy_backward, METH_VARARGS, "cross_entropy_backward(logits, targets) -> (loss, dlogits)"},
    {"attention_backward", py_attention_backward, METH_VARARGS, "attention_backward(q, k, v, dout, scale, causal, window=0) -> (dq, dk, dv)"},
    {"adamw_step", py_adamw_step, METH_VARARGS, "adamw_step(param, grad, m, v, lr, beta1, beta2, eps, wd, step) in place"},
    {"grad_sumsq", py_grad_sumsq, METH_VARARGS, "grad_sumsq([float32 arrays]) -> sum of squares"},
    {"lr_cosine", py_lr_cosine, METH_VARARGS, "lr_cosine(step, warmup, total, lr_max, lr_min) -> lr"},
    {NULL, NULL, 0, NULL},
};
