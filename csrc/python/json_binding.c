/* json_binding.c: exposes the C JSON reader to Python so tests can compare it with Python's json and fuzz it. */
#include "binding.h"
#include "../json.h"

static PyObject *to_python(const llmc_json *v) {
    switch (v->type) {
    case LLMC_JSON_NULL: Py_RETURN_NONE;
    case LLMC_JSON_BOOL: return PyBool_FromLong(v->boolean);
    case LLMC_JSON_NUMBER: return v->is_integer ? PyLong_FromLongLong(v->integer) : PyFloat_FromDouble(v->number);
    case LLMC_JSON_STRING: return PyUnicode_DecodeUTF8(v->str, (Py_ssize_t)v->len, "surrogatepass");
    case LLMC_JSON_ARRAY: {
        PyObject *list = PyList_New((Py_ssize_t)v->len);
        for (size_t i = 0; list && i < v->len; i++) {
            PyObject *item = to_python(&v->items[i]);
            if (!item) { Py_CLEAR(list); break; }
            PyList_SET_ITEM(list, (Py_ssize_t)i, item);
        }
        return list;
    }
    case LLMC_JSON_OBJECT: {
        PyObject *dict = PyDict_New();
        for (size_t i = 0; dict && i < v->len; i++) {
            PyObject *key = PyUnicode_DecodeUTF8(v->keys[i], (Py_ssize_t)v->key_lens[i], "surrogatepass");
            PyObject *val = key ? to_python(&v->items[i]) : NULL;
            if (!val || PyDict_SetItem(dict, key, val) < 0) Py_CLEAR(dict);
            Py_XDECREF(key);
            Py_XDECREF(val);
        }
        return dict;
    }
    }
    PyErr_SetString(PyExc_RuntimeError, "unknown JSON node type");
    return NULL;
}

static PyObject *py_json_parse(PyObject *self, PyObject *args) {
    (void)self;
    const char *buf;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "y#", &buf, &len)) return NULL;
    llmc_json_doc *doc = NULL;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_json_parse(buf, (size_t)len, "<bytes>", &doc);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) return NULL;
    PyObject *out = to_python(llmc_json_root(doc));
    llmc_json_free(doc);
    return out;
}

PyMethodDef llmc_py_json_methods[] = {
    {"json_parse", py_json_parse, METH_VARARGS, "json_parse(bytes) -> object (the C reader, for tests)"},
    {NULL, NULL, 0, NULL},
};
