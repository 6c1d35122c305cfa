/* attention_binding.c: NumPy-facing wrapper of attention.c. Validate, allocate the output, release the GIL, call,
 * map errors. Float32 inputs whose last axis is contiguous are passed with their strides (no copy), so views such
 * as x.transpose(0, 2, 1, 3) of a (B, T, H, d) tensor cost nothing. */
#include <math.h>

#include "binding.h"

#define SHAPE(a, buf) (llmc_py_shape_str((a), (buf), sizeof(buf)), (buf))

/* A float32 array usable in place (native byte order, aligned, last axis contiguous, other strides positive
 * multiples of 4 bytes), else a packed float32 copy. New reference or NULL. */
static PyArrayObject *as_strided_float(PyObject *obj, const char *what) {
    if (PyArray_Check(obj)) {
        PyArrayObject *x = (PyArrayObject *)obj;
        if (PyArray_TYPE(x) == NPY_FLOAT32 && !PyArray_ISNOTSWAPPED(x))
            /* big-endian float32 ('>f4'): the type number alone would pass it through unconverted */
            return (PyArrayObject *)PyArray_FromAny(obj, PyArray_DescrFromType(NPY_FLOAT32), 0, 0,
                                                    NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST,
                                                    NULL);
        int ok = PyArray_TYPE(x) == NPY_FLOAT32 && PyArray_ISALIGNED(x) && PyArray_NDIM(x) >= 1;
        for (int i = 0; ok && i < PyArray_NDIM(x); i++) {
            npy_intp s = PyArray_STRIDE(x, i), n = PyArray_DIM(x, i);
            if (n <= 1) continue; /* the stride of a length-1 axis is never used */
            if (i == PyArray_NDIM(x) - 1) ok = s == (npy_intp)sizeof(float);
            else ok = s > 0 && s % (npy_intp)sizeof(float) == 0;
        }
        if (ok) {
            Py_INCREF(obj);
            return x;
        }
    }
    return llmc_py_float_array(obj, what);
}

/* Element stride of axis i (a length-1 axis gets 1: any nonzero value works, and 0 would mean "packed"). */
static size_t elem_stride(PyArrayObject *x, int i) {
    if (PyArray_DIM(x, i) <= 1) return 1;
    return (size_t)(PyArray_STRIDE(x, i) / (npy_intp)sizeof(float));
}

// attention(q, k, v, causal, impl, scale_or_None, window, block_q, block_k, return_weights)
static PyObject *py_attention(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *qo, *ko, *vo, *scale_o, *result = NULL;
    int causal, impl, return_weights;
    Py_ssize_t window, block_q, block_k;
    if (!PyArg_ParseTuple(args, "OOOiiOnnnp", &qo, &ko, &vo, &causal, &impl, &scale_o, &window, &block_q, &block_k,
                          &return_weights))
        return NULL;
    PyArrayObject *q = as_strided_float(qo, "q"), *k = q ? as_strided_float(ko, "k") : NULL;
    PyArrayObject *v = k ? as_strided_float(vo, "v") : NULL, *out = NULL, *w = NULL;
    char s1[128], s2[128], s3[128];
    if (!v) goto done;
    if (window < 0 || block_q < 0 || block_k < 0) {
        PyErr_Format(PyExc_ValueError, "window, block_q and block_k must be >= 0 here, got %zd, %zd, %zd", window,
                     block_q, block_k);
        goto done;
    }
    const int nd = PyArray_NDIM(q);
    if ((nd != 3 && nd != 4) || PyArray_NDIM(k) != nd || PyArray_NDIM(v) != nd) {
        PyErr_Format(PyExc_ValueError,
                     "attention takes q (H, Tq, d), k and v (Hkv, Tk, d), or all with a leading batch axis; got shapes "
                     "q %s, k %s, v %s", SHAPE(q, s1), SHAPE(k, s2), SHAPE(v, s3));
        goto done;
    }
    const int o = nd - 3; /* offset of the head axis */
    size_t B = nd == 4 ? (size_t)PyArray_DIM(q, 0) : 1;
    size_t Hq = (size_t)PyArray_DIM(q, o), Tq = (size_t)PyArray_DIM(q, o + 1), d = (size_t)PyArray_DIM(q, o + 2);
    size_t Hkv = (size_t)PyArray_DIM(k, o), Tk = (size_t)PyArray_DIM(k, o + 1);
    int same_kv = 1;
    for (int i = 0; i < nd; i++) same_kv &= PyArray_DIM(k, i) == PyArray_DIM(v, i);
    if (!same_kv || (size_t)PyArray_DIM(k, o + 2) != d || (nd == 4 && (size_t)PyArray_DIM(k, 0) != B)) {
        PyErr_Format(PyExc_ValueError,
                     "attention shapes do not match: k and v must have the same shape, with q's batch size and head "
                     "dimension; got q %s, k %s, v %s", SHAPE(q, s1), SHAPE(k, s2), SHAPE(v, s3));
        goto done;
    }
    if (Hkv == 0 || Hq % Hkv) {
        PyErr_Format(PyExc_ValueError,
                     "query heads (%zu) must be a multiple of key/value heads (%zu); got q %s, k %s", Hq, Hkv,
                     SHAPE(q, s1), SHAPE(k, s2));
        goto done;
    }
    double scale = scale_o == Py_None ? (d ? 1.0 / sqrt((double)d) : 1.0) : PyFloat_AsDouble(scale_o);
    if (scale == -1.0 && PyErr_Occurred()) goto done;
    if (!(out = llmc_py_new_float(nd, PyArray_DIMS(q)))) goto done;
    if (return_weights) {
        if (impl != LLMC_ATTN_STANDARD) {
            PyErr_SetString(PyExc_ValueError, "return_weights=True needs impl=\"standard\" (flash never forms them)");
            goto done;
        }
        /* check the size before numpy allocates (and the kernel touches) a possibly huge array */
        if (llmc_py_check(llmc_attention_check_standard(B, Hq, Tq, Tk))) goto done;
        npy_intp wd[4] = {(npy_intp)B, (npy_intp)Hq, (npy_intp)Tq, (npy_intp)Tk};
        if (!(w = llmc_py_new_float(nd, nd == 4 ? wd : wd + 1))) goto done;
    }
    llmc_attention_args a = {
        .q = PyArray_DATA(q), .k = PyArray_DATA(k), .v = PyArray_DATA(v), .out = PyArray_DATA(out),
        .B = B, .Hq = Hq, .Hkv = Hkv, .Tq = Tq, .Tk = Tk, .d = d,
        .q_sb = nd == 4 ? elem_stride(q, 0) : 0, .q_sh = elem_stride(q, o), .q_st = elem_stride(q, o + 1),
        .k_sb = nd == 4 ? elem_stride(k, 0) : 0, .k_sh = elem_stride(k, o), .k_st = elem_stride(k, o + 1),
        .v_sb = nd == 4 ? elem_stride(v, 0) : 0, .v_sh = elem_stride(v, o), .v_st = elem_stride(v, o + 1),
        .impl = impl, .causal = causal, .window = (size_t)window, .scale = (float)scale,
        .block_q = (size_t)block_q, .block_k = (size_t)block_k, .weights = w ? PyArray_DATA(w) : NULL,
    };
    /* a length-1 time axis reports stride 1 from elem_stride, but the kernels read rows of d: use the packed value */
    if (Tq <= 1) a.q_st = 0;
    if (Tk <= 1) a.k_st = a.v_st = 0;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_attention(&a);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) goto done;
    if (w) result = Py_BuildValue("(OO)", out, w);
    else {
        result = (PyObject *)out;
        out = NULL;
    }
done:
    Py_XDECREF(q);
    Py_XDECREF(k);
    Py_XDECREF(v);
    Py_XDECREF(out);
    Py_XDECREF(w);
    return result;
}

static PyObject *py_attention_standard_limit(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t bytes = -1;
    if (!PyArg_ParseTuple(args, "|n", &bytes)) return NULL;
    if (bytes >= 0) llmc_attention_set_standard_limit((size_t)bytes); /* 0 restores the default */
    return PyLong_FromSize_t(llmc_attention_standard_limit());
}

PyMethodDef llmc_py_attention_methods[] = {
    {"attention", py_attention, METH_VARARGS,
     "attention(q, k, v, causal, impl, scale_or_None, window, block_q, block_k, return_weights)"},
    {"attention_standard_limit", py_attention_standard_limit, METH_VARARGS,
     "attention_standard_limit([bytes]) -> bytes (set when given; 0 = default, half the RAM)"},
    {NULL, NULL, 0, NULL},
};
