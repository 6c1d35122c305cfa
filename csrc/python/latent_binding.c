/* latent_binding.c: converting a Python list of hook tuples into an llmc_hook array (llmc/hooks.py builds them).
 * Each item: (kind, act, layer, data | None, rows, scale, pos_start, pos_stop (< 0: no end), index | None);
 * data must be a float32 C-contiguous writable ndarray, index a 1-D int64 C-contiguous ndarray. The arrays are not
 * copied: the caller keeps the list alive while the hooks are used. */
#include <stdint.h>

#include "binding.h"

static int array_arg(PyObject *o, int type, const char *what, Py_ssize_t i, PyArrayObject **out) {
    *out = NULL;
    if (o == Py_None) return 0;
    if (!PyArray_Check(o) || PyArray_TYPE((PyArrayObject *)o) != type ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)o) || !PyArray_ISWRITEABLE((PyArrayObject *)o)) {
        PyErr_Format(PyExc_TypeError, "hook %zd: %s must be a writable C-contiguous %s ndarray", i, what,
                     type == NPY_FLOAT32 ? "float32" : "int64");
        return -1;
    }
    *out = (PyArrayObject *)o;
    return 0;
}

int llmc_py_hooks(PyObject *list, llmc_hook **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (!PyList_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "hooks must be a list");
        return -1;
    }
    const Py_ssize_t n = PyList_GET_SIZE(list);
    if (n == 0) return 0;
    llmc_hook *h = PyMem_Calloc((size_t)n, sizeof *h);
    if (!h) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int kind, act;
        Py_ssize_t layer, rows, p0, p1;
        float scale;
        PyObject *data, *index;
        PyArrayObject *d, *ix;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(list, i), "iinOnfnnO", &kind, &act, &layer, &data, &rows, &scale, &p0,
                              &p1, &index) ||
            array_arg(data, NPY_FLOAT32, "data", i, &d) || array_arg(index, NPY_INT64, "index", i, &ix)) {
            PyMem_Free(h);
            return -1;
        }
        if (layer < 0 || rows < 0 || p0 < 0) {
            PyErr_Format(PyExc_ValueError, "hook %zd: layer, rows and pos_start must be >= 0", i);
            PyMem_Free(h);
            return -1;
        }
        h[i].kind = kind;
        h[i].act = act;
        h[i].layer = (size_t)layer;
        h[i].data = d ? (float *)PyArray_DATA(d) : NULL;
        h[i].data_len = d ? (size_t)PyArray_SIZE(d) : 0;
        h[i].rows = (size_t)rows;
        h[i].scale = scale;
        h[i].pos_start = (size_t)p0;
        h[i].pos_stop = p1 < 0 ? SIZE_MAX : (size_t)p1;
        h[i].index = ix ? (const int64_t *)PyArray_DATA(ix) : NULL;
        h[i].n_index = ix ? (size_t)PyArray_SIZE(ix) : 0;
    }
    *out = h;
    *n_out = (size_t)n;
    return 0;
}
