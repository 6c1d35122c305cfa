/* ops_binding.c: NumPy-facing wrappers of ops.c. Validate, allocate the output, release the GIL, call, map errors. */
#include "binding.h"

#define SHAPE(a, buf) (llmc_py_shape_str((a), (buf), sizeof(buf)), (buf))

/* Resolve a possibly negative axis of an nd-array and view its shape as (outer, n, inner). */
static int split_axis(PyArrayObject *x, int axis, size_t *outer, size_t *n, size_t *inner) {
    int nd = PyArray_NDIM(x);
    if (nd == 0) {
        PyErr_SetString(PyExc_ValueError, "expected an array with at least 1 dimension, got a scalar (shape ())");
        return -1;
    }
    if (axis < -nd || axis >= nd) {
        PyErr_Format(PyExc_ValueError, "axis %d is out of bounds for an array of %d dimensions", axis, nd);
        return -1;
    }
    if (axis < 0) axis += nd;
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= (size_t)PyArray_DIM(x, i);
    *n = (size_t)PyArray_DIM(x, axis);
    for (int i = axis + 1; i < nd; i++) *inner *= (size_t)PyArray_DIM(x, i);
    return 0;
}

static PyArrayObject *new_like(PyArrayObject *x) {
    return llmc_py_new_float(PyArray_NDIM(x), PyArray_DIMS(x));
}

static PyObject *py_matmul(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *ao, *bo;
    if (!PyArg_ParseTuple(args, "OO", &ao, &bo)) return NULL;
    PyArrayObject *a = llmc_py_float_array(ao, "a"), *b = a ? llmc_py_float_array(bo, "b") : NULL, *out = NULL;
    char sa[128], sb[128];
    if (!b) goto done;
    int na = PyArray_NDIM(a), nb = PyArray_NDIM(b);
    if (na < 2 || na > 3 || nb < 2 || nb > 3) {
        PyErr_Format(PyExc_ValueError, "matmul takes 2-D or batched 3-D arrays, got shapes %s and %s", SHAPE(a, sa),
                     SHAPE(b, sb));
        goto done;
    }
    size_t m = (size_t)PyArray_DIM(a, na - 2), k = (size_t)PyArray_DIM(a, na - 1);
    size_t k2 = (size_t)PyArray_DIM(b, nb - 2), n = (size_t)PyArray_DIM(b, nb - 1);
    size_t ba = na == 3 ? (size_t)PyArray_DIM(a, 0) : 1, bb = nb == 3 ? (size_t)PyArray_DIM(b, 0) : 1;
    if (k != k2 || (na == 3 && nb == 3 && ba != bb)) {
        PyErr_Format(PyExc_ValueError, "matmul shapes do not match: %s @ %s", SHAPE(a, sa), SHAPE(b, sb));
        goto done;
    }
    size_t batch = na == 3 ? ba : bb;
    npy_intp dims[3] = {(npy_intp)batch, (npy_intp)m, (npy_intp)n};
    int nd = (na == 3 || nb == 3) ? 3 : 2;
    out = llmc_py_new_float(nd, nd == 3 ? dims : dims + 1);
    if (!out) goto done;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_matmul(PyArray_DATA(a), PyArray_DATA(b), PyArray_DATA(out), batch, m, k, n, na == 3, nb == 3);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(out);
done:
    Py_XDECREF(a);
    Py_XDECREF(b);
    return (PyObject *)out;
}

/* softmax / log_softmax / hardmax share argument handling; which = 0, 1, 2 */
static PyObject *softmax_family(PyObject *args, int which) {
    PyObject *xo;
    int axis = -1;
    float temperature = 1.0f;
    if (which == 2 ? !PyArg_ParseTuple(args, "Oi", &xo, &axis) : !PyArg_ParseTuple(args, "Oif", &xo, &axis, &temperature))
        return NULL;
    PyArrayObject *x = llmc_py_float_array(xo, "x"), *out = NULL;
    size_t outer, n, inner;
    if (!x || split_axis(x, axis, &outer, &n, &inner)) goto done;
    if (!(out = new_like(x))) goto done;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    if (which == 0) st = llmc_softmax(PyArray_DATA(x), PyArray_DATA(out), outer, n, inner, temperature);
    else if (which == 1) st = llmc_log_softmax(PyArray_DATA(x), PyArray_DATA(out), outer, n, inner, temperature);
    else st = llmc_hardmax(PyArray_DATA(x), PyArray_DATA(out), outer, n, inner);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(out);
done:
    Py_XDECREF(x);
    return (PyObject *)out;
}

static PyObject *py_softmax(PyObject *self, PyObject *args) { (void)self; return softmax_family(args, 0); }
static PyObject *py_log_softmax(PyObject *self, PyObject *args) { (void)self; return softmax_family(args, 1); }
static PyObject *py_hardmax(PyObject *self, PyObject *args) { (void)self; return softmax_family(args, 2); }

static PyObject *py_cross_entropy(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *lo, *to, *result = NULL;
    if (!PyArg_ParseTuple(args, "OO", &lo, &to)) return NULL;
    PyArrayObject *logits = llmc_py_float_array(lo, "logits"), *targets = logits ? llmc_py_int_array(to, "targets") : NULL;
    char s1[128], s2[128];
    if (!targets) goto done;
    if (PyArray_NDIM(logits) != 2 || PyArray_NDIM(targets) != 1 || PyArray_DIM(logits, 0) != PyArray_DIM(targets, 0)) {
        PyErr_Format(PyExc_ValueError, "cross_entropy needs logits (T, V) and targets (T,), got %s and %s",
                     SHAPE(logits, s1), SHAPE(targets, s2));
        goto done;
    }
    double nll = 0.0;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_cross_entropy(PyArray_DATA(logits), PyArray_DATA(targets), (size_t)PyArray_DIM(logits, 0),
                            (size_t)PyArray_DIM(logits, 1), &nll);
    Py_END_ALLOW_THREADS
    if (!llmc_py_check(st)) result = PyFloat_FromDouble(nll);
done:
    Py_XDECREF(logits);
    Py_XDECREF(targets);
    return result;
}

/* x (..., C) with a (C,) parameter vector */
static int check_param(PyArrayObject *x, PyArrayObject *p, const char *name) {
    char s1[128], s2[128];
    int nd = PyArray_NDIM(x);
    if (nd < 1) {
        PyErr_SetString(PyExc_ValueError, "expected x with at least 1 dimension (..., C), got a scalar");
        return -1;
    }
    if (PyArray_NDIM(p) != 1 || PyArray_DIM(p, 0) != PyArray_DIM(x, nd - 1)) {
        PyErr_Format(PyExc_ValueError, "%s must have shape (C,) = (%lld,) for x of shape %s, got %s", name,
                     (long long)PyArray_DIM(x, nd - 1), SHAPE(x, s1), SHAPE(p, s2));
        return -1;
    }
    return 0;
}

static PyObject *py_layer_norm(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *xo, *wo, *bo;
    float eps;
    if (!PyArg_ParseTuple(args, "OOOf", &xo, &wo, &bo, &eps)) return NULL;
    PyArrayObject *x = llmc_py_float_array(xo, "x"), *w = NULL, *b = NULL, *out = NULL;
    if (!x || !(w = llmc_py_float_array(wo, "weight"))) goto done;
    if (bo != Py_None && !(b = llmc_py_float_array(bo, "bias"))) goto done;
    if (check_param(x, w, "weight") || (b && check_param(x, b, "bias"))) goto done;
    if (!(out = new_like(x))) goto done;
    size_t cols = (size_t)PyArray_DIM(x, PyArray_NDIM(x) - 1), rows = cols ? (size_t)PyArray_SIZE(x) / cols : 0;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_layer_norm(PyArray_DATA(x), PyArray_DATA(w), b ? PyArray_DATA(b) : NULL, PyArray_DATA(out), rows, cols,
                         eps);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(out);
done:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    return (PyObject *)out;
}

static PyObject *py_rms_norm(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *xo, *wo;
    float eps;
    if (!PyArg_ParseTuple(args, "OOf", &xo, &wo, &eps)) return NULL;
    PyArrayObject *x = llmc_py_float_array(xo, "x"), *w = NULL, *out = NULL;
    if (!x || !(w = llmc_py_float_array(wo, "weight"))) goto done;
    if (check_param(x, w, "weight")) goto done;
    if (!(out = new_like(x))) goto done;
    size_t cols = (size_t)PyArray_DIM(x, PyArray_NDIM(x) - 1), rows = cols ? (size_t)PyArray_SIZE(x) / cols : 0;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_rms_norm(PyArray_DATA(x), PyArray_DATA(w), PyArray_DATA(out), rows, cols, eps);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(out);
done:
    Py_XDECREF(x);
    Py_XDECREF(w);
    return (PyObject *)out;
}

/* gelu (mode 0 exact, 1 tanh) and silu (mode 2) */
static PyObject *activation(PyObject *args, int mode) {
    PyObject *xo;
    if (!PyArg_ParseTuple(args, "O", &xo)) return NULL;
    PyArrayObject *x = llmc_py_float_array(xo, "x"), *out = NULL;
    if (!x || !(out = new_like(x))) goto done;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mode == 2 ? llmc_silu(PyArray_DATA(x), PyArray_DATA(out), (size_t)PyArray_SIZE(x))
                   : llmc_gelu(PyArray_DATA(x), PyArray_DATA(out), (size_t)PyArray_SIZE(x), mode == 1);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(out);
done:
    Py_XDECREF(x);
    return (PyObject *)out;
}

static PyObject *py_gelu(PyObject *self, PyObject *args) { (void)self; return activation(args, 0); }
static PyObject *py_gelu_tanh(PyObject *self, PyObject *args) { (void)self; return activation(args, 1); }
static PyObject *py_silu(PyObject *self, PyObject *args) { (void)self; return activation(args, 2); }

static PyObject *py_sinusoidal_positions(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t n, dim;
    if (!PyArg_ParseTuple(args, "nn", &n, &dim)) return NULL;
    if (n < 0 || dim < 0) {
        PyErr_Format(PyExc_ValueError, "n_positions and dim must be >= 0, got %zd and %zd", n, dim);
        return NULL;
    }
    if (dim % 2) {
        PyErr_Format(PyExc_ValueError, "sinusoidal positions need an even dim, got %zd", dim);
        return NULL;
    }
    npy_intp dims[2] = {n, dim};
    PyArrayObject *out = llmc_py_new_float(2, dims);
    if (!out) return NULL;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_sinusoidal_positions(PyArray_DATA(out), (size_t)n, (size_t)dim);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(out);
    return (PyObject *)out;
}

static PyObject *py_apply_rope(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *xo, *po;
    float theta;
    int layout;
    if (!PyArg_ParseTuple(args, "OOfi", &xo, &po, &theta, &layout)) return NULL;
    PyArrayObject *x = llmc_py_float_array(xo, "x"), *pos = NULL, *out = NULL;
    char s1[128], s2[128];
    if (!x || !(pos = llmc_py_int_array(po, "positions"))) goto done;
    int nd = PyArray_NDIM(x);
    if (nd < 2) {
        PyErr_Format(PyExc_ValueError, "apply_rope needs x of shape (..., T, d), got %s", SHAPE(x, s1));
        goto done;
    }
    size_t T = (size_t)PyArray_DIM(x, nd - 2), d = (size_t)PyArray_DIM(x, nd - 1);
    if (PyArray_NDIM(pos) != 1 || (size_t)PyArray_DIM(pos, 0) != T) {
        PyErr_Format(PyExc_ValueError, "positions must have shape (T,) = (%zu,) for x of shape %s, got %s", T,
                     SHAPE(x, s1), SHAPE(pos, s2));
        goto done;
    }
    if (d % 2) {
        PyErr_Format(PyExc_ValueError, "apply_rope needs an even last dimension d, got x of shape %s", SHAPE(x, s1));
        goto done;
    }
    if (!(out = new_like(x))) goto done;
    size_t outer = (T != 0 && d != 0) ? (size_t)PyArray_SIZE(x) / (T * d) : 0;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_apply_rope(PyArray_DATA(x), PyArray_DATA(out), outer, T, d, PyArray_DATA(pos), theta, layout);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(out);
done:
    Py_XDECREF(x);
    Py_XDECREF(pos);
    return (PyObject *)out;
}

static PyObject *py_embedding(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *to, *io;
    if (!PyArg_ParseTuple(args, "OO", &to, &io)) return NULL;
    PyArrayObject *table = llmc_py_float_array(to, "table"), *ids = NULL, *out = NULL;
    char s1[128];
    if (!table || !(ids = llmc_py_int_array(io, "ids"))) goto done;
    if (PyArray_NDIM(table) != 2) {
        PyErr_Format(PyExc_ValueError, "embedding table must be 2-D (vocab, dim), got %s", SHAPE(table, s1));
        goto done;
    }
    /* out: ids.shape + (dim,) */
    int nd = PyArray_NDIM(ids);
    if (nd > NPY_MAXDIMS - 1) {
        PyErr_SetString(PyExc_ValueError, "ids has too many dimensions");
        goto done;
    }
    npy_intp dims[NPY_MAXDIMS];
    for (int i = 0; i < nd; i++) dims[i] = PyArray_DIM(ids, i);
    dims[nd] = PyArray_DIM(table, 1);
    if (!(out = llmc_py_new_float(nd + 1, dims))) goto done;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_embedding(PyArray_DATA(table), (size_t)PyArray_DIM(table, 0), (size_t)PyArray_DIM(table, 1),
                        PyArray_DATA(ids), (size_t)PyArray_SIZE(ids), PyArray_DATA(out));
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(out);
done:
    Py_XDECREF(table);
    Py_XDECREF(ids);
    return (PyObject *)out;
}

PyMethodDef llmc_py_ops_methods[] = {
    {"matmul", py_matmul, METH_VARARGS, "matmul(a, b)"},
    {"softmax", py_softmax, METH_VARARGS, "softmax(x, axis, temperature)"},
    {"log_softmax", py_log_softmax, METH_VARARGS, "log_softmax(x, axis, temperature)"},
    {"hardmax", py_hardmax, METH_VARARGS, "hardmax(x, axis)"},
    {"cross_entropy", py_cross_entropy, METH_VARARGS, "cross_entropy(logits, targets)"},
    {"layer_norm", py_layer_norm, METH_VARARGS, "layer_norm(x, weight, bias_or_None, eps)"},
    {"rms_norm", py_rms_norm, METH_VARARGS, "rms_norm(x, weight, eps)"},
    {"gelu", py_gelu, METH_VARARGS, "gelu(x) (exact, erf)"},
    {"gelu_tanh", py_gelu_tanh, METH_VARARGS, "gelu_tanh(x)"},
    {"silu", py_silu, METH_VARARGS, "silu(x)"},
    {"sinusoidal_positions", py_sinusoidal_positions, METH_VARARGS, "sinusoidal_positions(n, dim)"},
    {"apply_rope", py_apply_rope, METH_VARARGS, "apply_rope(x, positions, theta, layout)"},
    {"embedding", py_embedding, METH_VARARGS, "embedding(table, ids)"},
    {NULL, NULL, 0, NULL},
};
