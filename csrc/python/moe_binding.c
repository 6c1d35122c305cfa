/* moe_binding.c: llmc.moe on NumPy arrays (csrc/moe.c). Validate shapes, allocate, release the GIL, map errors. */
#include "binding.h"

#define SHAPE(a, buf) (llmc_py_shape_str((a), (buf), sizeof(buf)), (buf))

/* moe(x (T, D), router (E, D), w_gate (E, F, D), w_up (E, F, D), w_down (E, D, F), top_k, normalize)
 * -> (out (T, D), experts (T, k) int32, weights (T, k)) */
static PyObject *py_moe(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *xo, *ro, *go, *uo, *dobj;
    Py_ssize_t k;
    int normalize;
    if (!PyArg_ParseTuple(args, "OOOOOnp", &xo, &ro, &go, &uo, &dobj, &k, &normalize)) return NULL;
    PyArrayObject *x = NULL, *r = NULL, *g = NULL, *u = NULL, *d = NULL, *out = NULL, *ex = NULL, *wt = NULL;
    PyObject *res = NULL;
    char s1[128], s2[128], s3[128], s4[128], s5[128];
    if (!(x = llmc_py_float_array(xo, "x")) || !(r = llmc_py_float_array(ro, "router_w")) ||
        !(g = llmc_py_float_array(go, "w_gate")) || !(u = llmc_py_float_array(uo, "w_up")) ||
        !(d = llmc_py_float_array(dobj, "w_down")))
        goto done;
    if (PyArray_NDIM(x) != 2 || PyArray_NDIM(r) != 2 || PyArray_NDIM(g) != 3 || PyArray_NDIM(u) != 3 ||
        PyArray_NDIM(d) != 3) {
        PyErr_Format(PyExc_ValueError, "moe takes x (T, D), router_w (E, D), w_gate (E, F, D), w_up (E, F, D), "
                     "w_down (E, D, F); got %s, %s, %s, %s, %s", SHAPE(x, s1), SHAPE(r, s2), SHAPE(g, s3),
                     SHAPE(u, s4), SHAPE(d, s5));
        goto done;
    }
    const npy_intp T = PyArray_DIM(x, 0), D = PyArray_DIM(x, 1), E = PyArray_DIM(r, 0), F = PyArray_DIM(g, 1);
    if (PyArray_DIM(r, 1) != D || PyArray_DIM(g, 0) != E || PyArray_DIM(g, 2) != D || PyArray_DIM(u, 0) != E ||
        PyArray_DIM(u, 1) != F || PyArray_DIM(u, 2) != D || PyArray_DIM(d, 0) != E || PyArray_DIM(d, 1) != D ||
        PyArray_DIM(d, 2) != F) {
        PyErr_Format(PyExc_ValueError, "moe shapes do not match: x %s, router_w %s, w_gate %s, w_up %s, w_down %s "
                     "(expected (T, D), (E, D), (E, F, D), (E, F, D), (E, D, F))", SHAPE(x, s1), SHAPE(r, s2),
                     SHAPE(g, s3), SHAPE(u, s4), SHAPE(d, s5));
        goto done;
    }
    if (E == 0) {
        PyErr_SetString(PyExc_ValueError, "moe needs at least one expert (router_w has 0 rows)");
        goto done;
    }
    if (k < 1 || k > E) {
        PyErr_Format(PyExc_ValueError, "top_k must be in [1, %zd] (the number of experts), got %zd", (Py_ssize_t)E,
                     (Py_ssize_t)k);
        goto done;
    }
    npy_intp dk[2] = {T, (npy_intp)k};
    if (!(out = llmc_py_new_float(2, PyArray_DIMS(x))) || !(wt = llmc_py_new_float(2, dk)) ||
        !(ex = (PyArrayObject *)PyArray_SimpleNew(2, dk, NPY_INT32)))
        goto done;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_moe(PyArray_DATA(x), (size_t)T, (size_t)D, PyArray_DATA(r), PyArray_DATA(g), PyArray_DATA(u),
                  PyArray_DATA(d), (size_t)E, (size_t)F, (size_t)k, normalize, PyArray_DATA(out), PyArray_DATA(ex),
                  PyArray_DATA(wt));
    Py_END_ALLOW_THREADS
    if (!llmc_py_check(st)) res = Py_BuildValue("OOO", out, ex, wt);
done:
    Py_XDECREF(x);
    Py_XDECREF(r);
    Py_XDECREF(g);
    Py_XDECREF(u);
    Py_XDECREF(d);
    Py_XDECREF(out);
    Py_XDECREF(ex);
    Py_XDECREF(wt);
    return res;
}

PyMethodDef llmc_py_moe_methods[] = {
    {"moe", py_moe, METH_VARARGS, "moe(x, router_w, w_gate, w_up, w_down, top_k, normalize) -> (out, experts, weights)"},
    {NULL, NULL, 0, NULL},
};
