/* convert.c: argument conversion and error mapping shared by all binding files. */
#include <stdio.h>

#include "binding.h"

PyObject *llmc_py_UnsupportedError = NULL;

unsigned long llmc_py_main_thread = 0;

int llmc_py_poll(void *ctx) {
    llmc_py_poll_ctx *pc = ctx;
    if (pc->stop) return 1;
    if (!pc->main) return 0;
    PyGILState_STATE g = PyGILState_Ensure();
    if (PyErr_CheckSignals() < 0) pc->stop = 1; /* the handler's exception (KeyboardInterrupt) stays set */
    PyGILState_Release(g);
    return pc->stop;
}

void llmc_py_callback_failed(llmc_py_poll_ctx *pc) {
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return;
    }
    pc->stop = 1;
}

int llmc_py_finish(llmc_status st, const llmc_py_poll_ctx *pc) {
    if (pc->stop || st == LLMC_ERR_INTERRUPTED) {
        if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
        return -1;
    }
    return llmc_py_check(st);
}

int llmc_py_check(llmc_status st) {
    if (st == LLMC_OK) return 0;
    if (st == LLMC_ERR_INTERRUPTED) {
        if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
        return -1;
    }
    const char *msg = llmc_last_error();
    if (!msg || !*msg) msg = "llmc error (no message)";
    PyObject *type;
    switch (st) {
    case LLMC_ERR_INVALID: type = PyExc_ValueError; break;
    case LLMC_ERR_NOMEM: type = PyExc_MemoryError; break;
    case LLMC_ERR_IO: type = PyExc_OSError; break;
    case LLMC_ERR_NOT_FOUND: type = PyExc_FileNotFoundError; break;
    case LLMC_ERR_FORMAT: type = PyExc_ValueError; break;
    case LLMC_ERR_UNSUPPORTED: type = llmc_py_UnsupportedError; break;
    default: type = PyExc_RuntimeError; break;
    }
    PyErr_SetString(type, msg);
    return -1;
}

static const char *kind_name(char kind) {
    switch (kind) {
    case 'U': return "str";
    case 'S': return "bytes";
    case 'O': return "object";
    case 'c': return "complex";
    case 'V': return "void/structured";
    case 'M': return "datetime";
    case 'm': return "timedelta";
    case 'b': return "bool";
    case 'f': return "float";
    default: return "non-numeric";
    }
}

/* np.asarray(obj) without a dtype, so we can look at what the user gave before casting. */
static PyArrayObject *as_array(PyObject *obj, const char *what) {
    if (PyUnicode_Check(obj) || PyBytes_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an array of real numbers, got %s", what, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (obj == Py_None) {
        PyErr_Format(PyExc_TypeError, "%s must be an array of real numbers, got None", what);
        return NULL;
    }
    PyObject *arr = PyArray_FROM_O(obj);
    if (!arr) {
        /* ragged lists and the like: numpy's own message, prefixed with which argument it was */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_Format(PyExc_ValueError, "%s could not be converted to an array: %S", what, value ? value : Py_None);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return NULL;
    }
    return (PyArrayObject *)arr;
}

/* a (checked) real array as a C-contiguous, aligned array of type npy */
static PyArrayObject *cast_c(PyArrayObject *a, int npy) {
    PyObject *out = PyArray_FromAny((PyObject *)a, PyArray_DescrFromType(npy), 0, 0,
                                    NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST, NULL);
    Py_DECREF(a);
    return (PyArrayObject *)out;
}

PyArrayObject *llmc_py_float_array(PyObject *obj, const char *what) {
    /* fast path: already native-endian, aligned, C-contiguous float32 (no copy) */
    if (PyArray_Check(obj) && PyArray_TYPE((PyArrayObject *)obj) == NPY_FLOAT32 &&
        PyArray_IS_C_CONTIGUOUS((PyArrayObject *)obj) && PyArray_ISALIGNED((PyArrayObject *)obj) &&
        PyArray_ISNOTSWAPPED((PyArrayObject *)obj)) {
        Py_INCREF(obj);
        return (PyArrayObject *)obj;
    }
    PyArrayObject *a = as_array(obj, what);
    if (!a) return NULL;
    char kind = PyArray_DESCR(a)->kind;
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') {
        PyErr_Format(PyExc_TypeError, "%s must be an array of real numbers, got dtype %s (%s)", what,
                     kind_name(kind), PyArray_DESCR(a)->typeobj->tp_name);
        Py_DECREF(a);
        return NULL;
    }
    return cast_c(a, NPY_FLOAT32);
}

PyArrayObject *llmc_py_int_array(PyObject *obj, const char *what) {
    PyArrayObject *a = as_array(obj, what);
    if (!a) return NULL;
    char kind = PyArray_DESCR(a)->kind;
    if (kind != 'i' && kind != 'u' && !(kind == 'f' && PyArray_SIZE(a) == 0)) {
        PyErr_Format(PyExc_TypeError, "%s must be integers, got dtype %s", what, kind_name(kind));
        Py_DECREF(a);
        return NULL;
    }
    if (kind == 'u' && PyArray_ITEMSIZE(a) == 8) {
        /* uint64 beyond int64's range would wrap to a negative id: check before casting */
        PyObject *mx = PyArray_SIZE(a) ? PyArray_Max(a, NPY_RAVEL_AXIS, NULL) : NULL;
        if (!mx && PyErr_Occurred()) {
            Py_DECREF(a);
            return NULL;
        }
        if (mx) { /* a NumPy uint64 scalar: through __index__ to a Python int */
            PyObject *mi = PyNumber_Index(mx);
            Py_DECREF(mx);
            unsigned long long v = mi ? PyLong_AsUnsignedLongLong(mi) : 0;
            Py_XDECREF(mi);
            if (PyErr_Occurred()) {
                Py_DECREF(a);
                return NULL;
            }
            if (v > 9223372036854775807ULL) {
                PyErr_Format(PyExc_ValueError, "%s contains %llu, which does not fit in int64", what, v);
                Py_DECREF(a);
                return NULL;
            }
        }
    }
    return cast_c(a, NPY_INT64);
}

void llmc_py_shape_str(PyArrayObject *a, char *buf, size_t n) {
    /* numpy's spelling: (), (3,), (3, 4) */
    int nd = PyArray_NDIM(a);
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < nd && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)PyArray_DIM(a, i));
    if (used < n) snprintf(buf + used, n - used, nd == 1 ? ",)" : ")");
}

PyArrayObject *llmc_py_new_float(int nd, const npy_intp *dims) {
    return (PyArrayObject *)PyArray_SimpleNew(nd, (npy_intp *)dims, NPY_FLOAT32);
}

PyArrayObject *llmc_py_ids_1d(PyObject *obj, const char *what) {
    PyArrayObject *a = llmc_py_int_array(obj, what);
    if (a && PyArray_NDIM(a) != 1) {
        char sh[128];
        llmc_py_shape_str(a, sh, sizeof sh);
        PyErr_Format(PyExc_ValueError, "%s must be a 1-D sequence of token ids, got shape %s", what, sh);
        Py_CLEAR(a);
    }
    return a;
}

PyObject *llmc_py_view_shape(const llmc_tensor_view *v) {
    return v->ndim == 1 ? Py_BuildValue("(n)", (Py_ssize_t)v->shape[0])
                        : Py_BuildValue("(nn)", (Py_ssize_t)v->shape[0], (Py_ssize_t)v->shape[1]);
}
