/* model_binding.c: llmc._core's safetensors inspection functions and the Model / Session types. */
#include <string.h>

#include "binding.h"
#include "../safetensors.h"

/* ---------------------------------------------------------------- safetensors (for tests and inspection) */
static PyObject *py_safetensors_info(PyObject *self, PyObject *args) {
    (void)self;
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    llmc_st *st = NULL;
    llmc_status s;
    Py_BEGIN_ALLOW_THREADS
    s = llmc_st_open(path, &st);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(s)) return NULL;
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < llmc_st_count(st); i++) {
        const llmc_st_tensor *t = llmc_st_at(st, i);
        PyObject *shape = PyTuple_New(t->ndim);
        for (int k = 0; shape && k < t->ndim; k++) PyTuple_SET_ITEM(shape, k, PyLong_FromSize_t(t->shape[k]));
        PyObject *v = shape ? Py_BuildValue("(sN)", llmc_st_dtype_name(t->dtype), shape) : NULL;
        if (!v || PyDict_SetItemString(d, t->name, v) < 0) Py_CLEAR(d);
        Py_XDECREF(v);
    }
    llmc_st_close(st);
    return d;
}

static PyObject *py_safetensors_read(PyObject *self, PyObject *args) {
    (void)self;
    const char *path, *name;
    if (!PyArg_ParseTuple(args, "ss", &path, &name)) return NULL;
    llmc_st *st = NULL;
    llmc_status s;
    Py_BEGIN_ALLOW_THREADS
    s = llmc_st_open(path, &st);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(s)) return NULL;
    const llmc_st_tensor *t = llmc_st_find(st, name);
    PyArrayObject *out = NULL;
    if (!t) {
        PyErr_Format(PyExc_KeyError, "%s: no tensor named '%s'", path, name);
    } else {
        npy_intp dims[LLMC_ST_MAX_DIMS];
        for (int k = 0; k < t->ndim; k++) dims[k] = (npy_intp)t->shape[k];
        out = llmc_py_new_float(t->ndim, dims);
        if (out) {
            Py_BEGIN_ALLOW_THREADS
            llmc_st_to_f32(t, PyArray_DATA(out));
            Py_END_ALLOW_THREADS
        }
    }
    llmc_st_close(st);
    return (PyObject *)out;
}

PyMethodDef llmc_py_model_methods[] = {
    {"safetensors_info", py_safetensors_info, METH_VARARGS,
     "safetensors_info(path) -> {name: (dtype, shape)}: the validated header of a .safetensors file"},
    {"safetensors_read", py_safetensors_read, METH_VARARGS,
     "safetensors_read(path, name) -> float32 ndarray: one tensor converted to float32"},
    {NULL, NULL, 0, NULL},
};

int llmc_py_model_init(PyObject *m) {
    (void)m;
    return 0;
}
