/* quant_binding.c: NumPy-facing wrappers of the typed-weight API (quant*.c). Validate, allocate the output,
 * release the GIL, call, map errors. Type names, shapes and defaults live in llmc/quant.py. */
#include "binding.h"

/* A C-contiguous uint8 array holding exactly `need` bytes, or NULL with ValueError/TypeError set. */
static PyArrayObject *byte_array(PyObject *obj, size_t need, const char *what, const char *type_name) {
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_UINT8 ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous uint8 array", what);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if ((size_t)PyArray_NBYTES(a) != need) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, but the %s shape needs %zu", what,
                     (Py_ssize_t)PyArray_NBYTES(a), type_name, need);
        return NULL;
    }
    Py_INCREF(obj);
    return a;
}

static int check_type(int type) {
    if (!llmc_type_valid(type)) {
        PyErr_Format(PyExc_ValueError, "unknown tensor type id %d", type);
        return -1;
    }
    return 0;
}

/* quantize(x: (rows, n) float32, type) -> (rows, row_bytes) uint8 */
static PyObject *py_quantize(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *xo;
    int type;
    if (!PyArg_ParseTuple(args, "Oi", &xo, &type) || check_type(type)) return NULL;
    PyArrayObject *x = llmc_py_float_array(xo, "x"), *out = NULL;
    if (!x) return NULL;
    if (PyArray_NDIM(x) != 2) {
        PyErr_Format(PyExc_ValueError, "quantize takes a 2-D (rows, n) array, got %d dimensions", PyArray_NDIM(x));
        goto done;
    }
    size_t rows = (size_t)PyArray_DIM(x, 0), n = (size_t)PyArray_DIM(x, 1), rb;
    if (llmc_py_check(llmc_type_row_bytes(type, n, &rb))) goto done;
    npy_intp dims[2] = {(npy_intp)rows, (npy_intp)rb};
    out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_UINT8);
    if (!out) goto done;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_quantize(type, PyArray_DATA(x), PyArray_DATA(out), rows, n);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(out);
done:
    Py_DECREF(x);
    return (PyObject *)out;
}

/* dequantize(data: uint8 (rows * row_bytes,), type, rows, n) -> (rows, n) float32 */
static PyObject *py_dequantize(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *bo;
    int type;
    Py_ssize_t rows, n;
    if (!PyArg_ParseTuple(args, "Oinn", &bo, &type, &rows, &n) || check_type(type)) return NULL;
    if (rows < 0 || n < 0) {
        PyErr_Format(PyExc_ValueError, "shape (%zd, %zd) has a negative dimension", rows, n);
        return NULL;
    }
    size_t rb, need;
    if (llmc_py_check(llmc_type_row_bytes(type, (size_t)n, &rb))) return NULL;
    if (__builtin_mul_overflow(rb, (size_t)rows, &need)) return PyErr_NoMemory();
    PyArrayObject *b = byte_array(bo, need, "data", llmc_type_name(type)), *out = NULL;
    if (!b) return NULL;
    npy_intp dims[2] = {(npy_intp)rows, (npy_intp)n};
    out = llmc_py_new_float(2, dims);
    if (out) {
        llmc_status st;
        Py_BEGIN_ALLOW_THREADS
        st = llmc_dequantize(type, PyArray_DATA(b), PyArray_DATA(out), (size_t)rows, (size_t)n);
        Py_END_ALLOW_THREADS
        if (llmc_py_check(st)) Py_CLEAR(out);
    }
    Py_DECREF(b);
    return (PyObject *)out;
}

/* matmul_typed(x: (T, in) float32, w: uint8 (out * row_bytes(in),), type, out, path, y, beta) -> y: (T, out).
 * y None: a new array (beta ignored); else a C-contiguous float32 (T, out) array updated in place: beta * y + x W^T */
static PyObject *py_matmul_typed(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *xo, *wo, *yo = Py_None;
    int type, path = LLMC_MATMUL_AUTO;
    Py_ssize_t n_out;
    float beta = 0.0f;
    if (!PyArg_ParseTuple(args, "OOin|iOf", &xo, &wo, &type, &n_out, &path, &yo, &beta) || check_type(type))
        return NULL;
    if (n_out < 0) {
        PyErr_Format(PyExc_ValueError, "out_features must be >= 0, got %zd", n_out);
        return NULL;
    }
    PyArrayObject *x = llmc_py_float_array(xo, "x"), *w = NULL, *y = NULL;
    if (!x) return NULL;
    if (PyArray_NDIM(x) != 2) {
        PyErr_Format(PyExc_ValueError, "x must be 2-D (T, in), got %d dimensions", PyArray_NDIM(x));
        goto fail;
    }
    size_t T = (size_t)PyArray_DIM(x, 0), in = (size_t)PyArray_DIM(x, 1), rb, need;
    if (llmc_py_check(llmc_type_row_bytes(type, in, &rb))) goto fail;
    if (__builtin_mul_overflow(rb, (size_t)n_out, &need)) {
        PyErr_NoMemory();
        goto fail;
    }
    if (!(w = byte_array(wo, need, "w", llmc_type_name(type)))) goto fail;
    if (yo == Py_None) {
        npy_intp dims[2] = {(npy_intp)T, (npy_intp)n_out};
        if (!(y = llmc_py_new_float(2, dims))) goto fail;
        beta = 0.0f;
    } else {
        if (!PyArray_Check(yo) || PyArray_TYPE((PyArrayObject *)yo) != NPY_FLOAT32 ||
            !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)yo) || !PyArray_ISWRITEABLE((PyArrayObject *)yo) ||
            PyArray_NDIM((PyArrayObject *)yo) != 2 || (size_t)PyArray_DIM((PyArrayObject *)yo, 0) != T ||
            PyArray_DIM((PyArrayObject *)yo, 1) != n_out) {
            PyErr_Format(PyExc_ValueError, "out must be a writable C-contiguous float32 array of shape (%zu, %zd)", T,
                         n_out);
            goto fail;
        }
        y = (PyArrayObject *)yo;
        Py_INCREF(y);
    }
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_matmul_typed_path(type, PyArray_DATA(w), PyArray_DATA(x), PyArray_DATA(y), T, in, (size_t)n_out, beta,
                                path);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) goto fail;
    Py_DECREF(x);
    Py_DECREF(w);
    return (PyObject *)y;
fail:
    Py_DECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(y);
    return NULL;
}

/* type_info(type) -> (name, block_size, block_bytes), or None for an id llmc does not know */
static PyObject *py_type_info(PyObject *self, PyObject *args) {
    (void)self;
    int type;
    if (!PyArg_ParseTuple(args, "i", &type)) return NULL;
    if (!llmc_type_valid(type)) Py_RETURN_NONE;
    return Py_BuildValue("(snn)", llmc_type_name(type), (Py_ssize_t)llmc_type_block_size(type),
                         (Py_ssize_t)llmc_type_block_bytes(type));
}

PyMethodDef llmc_py_quant_methods[] = {
    {"quantize", py_quantize, METH_VARARGS, "quantize(x (rows, n) float32, type_id) -> (rows, row_bytes) uint8"},
    {"dequantize", py_dequantize, METH_VARARGS, "dequantize(data uint8, type_id, rows, n) -> (rows, n) float32"},
    {"matmul_typed", py_matmul_typed, METH_VARARGS,
     "matmul_typed(x (T, in) float32, w uint8 (out * row_bytes,), type_id, out, path=0, y=None, beta=0) -> y"},
    {"type_info", py_type_info, METH_VARARGS, "type_info(type_id) -> (name, block_size, block_bytes) or None"},
    {NULL, NULL, 0, NULL},
};
