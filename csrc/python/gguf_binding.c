/* gguf_binding.c: the GGUF reader (a GGUFFile handle: metadata, tensor table, zero-copy byte views of tensors) and
 * the GGUF writer (gguf_write). Policy (which keys a model needs, NumPy shapes) lives in llmc/gguf.py. */
#include <string.h>

#include "binding.h"
#include "../gguf.h"
#include "../gguf_arch.h"

typedef struct {
    PyObject_HEAD
    llmc_gguf *g;
} GGUFObject;

static void gguf_dealloc(GGUFObject *self) {
    llmc_gguf_close(self->g); /* views into the map hold a reference to us, so none is left */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *str_value(const char *s, uint64_t n, int raw) {
    if (raw) return PyBytes_FromStringAndSize(s, (Py_ssize_t)n);
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "replace");
}

static PyObject *scalar_value(int type, const unsigned char *p) {
    switch (type) {
    case LLMC_GGUF_BOOL: return PyBool_FromLong(p[0]);
    case LLMC_GGUF_FLOAT32: case LLMC_GGUF_FLOAT64: return PyFloat_FromDouble(llmc_gguf_scalar_f64(type, p));
    case LLMC_GGUF_UINT64: return PyLong_FromUnsignedLongLong(llmc_gguf_scalar_u64(type, p));
    default: return PyLong_FromLongLong(llmc_gguf_scalar_i64(type, p));
    }
}

static int npy_of(int type) {
    switch (type) {
    case LLMC_GGUF_UINT8: return NPY_UINT8;
    case LLMC_GGUF_INT8: return NPY_INT8;
    case LLMC_GGUF_UINT16: return NPY_UINT16;
    case LLMC_GGUF_INT16: return NPY_INT16;
    case LLMC_GGUF_UINT32: return NPY_UINT32;
    case LLMC_GGUF_INT32: return NPY_INT32;
    case LLMC_GGUF_FLOAT32: return NPY_FLOAT32;
    case LLMC_GGUF_BOOL: return NPY_BOOL;
    case LLMC_GGUF_UINT64: return NPY_UINT64;
    case LLMC_GGUF_INT64: return NPY_INT64;
    case LLMC_GGUF_FLOAT64: return NPY_FLOAT64;
    default: return -1;
    }
}

/* One value: scalars as Python numbers, strings as str (raw: bytes), numeric arrays as NumPy arrays (a copy),
 * string arrays as lists. */
static PyObject *kv_value(const llmc_gguf_kv *kv, int raw) {
    if (kv->type == LLMC_GGUF_STRING) return str_value((const char *)kv->data, kv->len, raw);
    if (kv->type != LLMC_GGUF_ARRAY) return scalar_value(kv->type, kv->data);
    if (kv->elem_type == LLMC_GGUF_STRING) {
        PyObject *list = PyList_New((Py_ssize_t)kv->count);
        for (uint64_t i = 0; list && i < kv->count; i++) {
            const char *s;
            uint64_t n;
            llmc_gguf_arr_str(kv, i, &s, &n);
            PyObject *item = str_value(s, n, raw);
            if (!item) Py_CLEAR(list);
            else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
        }
        return list;
    }
    npy_intp dims[1] = {(npy_intp)kv->count};
    PyObject *arr = PyArray_SimpleNew(1, dims, npy_of(kv->elem_type));
    if (arr) memcpy(PyArray_DATA((PyArrayObject *)arr), kv->data, kv->count * llmc_gguf_value_size(kv->elem_type));
    return arr;
}

static PyObject *gguf_metadata(GGUFObject *self, PyObject *args) {
    int raw = 0;
    if (!PyArg_ParseTuple(args, "|p", &raw)) return NULL;
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < llmc_gguf_n_kv(self->g); i++) {
        const llmc_gguf_kv *kv = llmc_gguf_kv_at(self->g, i);
        PyObject *v = kv_value(kv, raw);
        if (!v || PyDict_SetItemString(d, kv->key, v) < 0) Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

/* get(key, raw=False) -> value or None */
static PyObject *gguf_get(GGUFObject *self, PyObject *args) {
    const char *key;
    int raw = 0;
    if (!PyArg_ParseTuple(args, "s|p", &key, &raw)) return NULL;
    const llmc_gguf_kv *kv = llmc_gguf_find_kv(self->g, key);
    if (!kv) Py_RETURN_NONE;
    return kv_value(kv, raw);
}

/* {key: (type name, element type name or None, count)} */
static PyObject *gguf_kv_types(GGUFObject *self, PyObject *args) {
    (void)args;
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < llmc_gguf_n_kv(self->g); i++) {
        const llmc_gguf_kv *kv = llmc_gguf_kv_at(self->g, i);
        PyObject *v = kv->type == LLMC_GGUF_ARRAY
                          ? Py_BuildValue("(ssK)", "array", llmc_gguf_value_type_name(kv->elem_type),
                                          (unsigned long long)kv->count)
                          : Py_BuildValue("(sOK)", llmc_gguf_value_type_name(kv->type), Py_None, 1ULL);
        if (!v || PyDict_SetItemString(d, kv->key, v) < 0) Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

/* [(name, ggml type id, ne tuple, offset, nbytes)] in file order */
static PyObject *gguf_tensors(GGUFObject *self, PyObject *args) {
    (void)args;
    size_t n = llmc_gguf_n_tensors(self->g);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        const llmc_gguf_tensor *t = llmc_gguf_tensor_at(self->g, i);
        PyObject *ne = PyTuple_New(t->n_dims);
        for (int d = 0; ne && d < t->n_dims; d++) PyTuple_SET_ITEM(ne, d, PyLong_FromUnsignedLongLong(t->ne[d]));
        PyObject *item = ne ? Py_BuildValue("(siNKK)", t->name, t->type, ne, (unsigned long long)t->offset,
                                            (unsigned long long)t->nbytes)
                            : NULL;
        if (!item) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

/* tensor_bytes(name) -> read-only uint8 array viewing the tensor's bytes in the map (keeps the file open) */
static PyObject *gguf_tensor_bytes(GGUFObject *self, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
    const llmc_gguf_tensor *t = llmc_gguf_find_tensor(self->g, name);
    if (!t) return PyErr_Format(PyExc_KeyError, "%s: no tensor named '%s'", llmc_gguf_path(self->g), name);
    npy_intp dims[1] = {(npy_intp)t->nbytes};
    static const unsigned char empty[1];
    PyObject *arr = PyArray_New(&PyArray_Type, 1, dims, NPY_UINT8, NULL, (void *)(t->nbytes ? t->data : empty), 0, 0,
                                NULL);
    if (!arr) return NULL;
    Py_INCREF(self);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

static PyObject *gguf_info_tuple(GGUFObject *self, PyObject *args) {
    (void)args;
    return Py_BuildValue("{s:I,s:n,s:K,s:n,s:s}", "version", llmc_gguf_version(self->g), "alignment",
                         (Py_ssize_t)llmc_gguf_alignment(self->g), "data_offset",
                         (unsigned long long)llmc_gguf_data_offset(self->g), "file_size",
                         (Py_ssize_t)llmc_gguf_file_size(self->g), "path", llmc_gguf_path(self->g));
}

static PyMethodDef gguf_methods[] = {
    {"metadata", (PyCFunction)gguf_metadata, METH_VARARGS, "metadata(raw=False) -> {key: value}"},
    {"get", (PyCFunction)gguf_get, METH_VARARGS, "get(key, raw=False) -> value or None"},
    {"kv_types", (PyCFunction)gguf_kv_types, METH_NOARGS, "kv_types() -> {key: (type, elem_type, count)}"},
    {"tensors", (PyCFunction)gguf_tensors, METH_NOARGS, "tensors() -> [(name, type, ne, offset, nbytes)]"},
    {"tensor_bytes", (PyCFunction)gguf_tensor_bytes, METH_VARARGS, "tensor_bytes(name) -> uint8 view"},
    {"info", (PyCFunction)gguf_info_tuple, METH_NOARGS, "info() -> {version, alignment, data_offset, ...}"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject llmc_py_GGUFType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "llmc._core.GGUFFile",
    .tp_basicsize = sizeof(GGUFObject),
    .tp_dealloc = (destructor)gguf_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An open GGUF file (use llmc.gguf).",
    .tp_methods = gguf_methods,
};

static PyObject *py_gguf_open(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *path_obj;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_obj)) return NULL;
    llmc_gguf *g = NULL;
    llmc_status st;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    st = llmc_gguf_open(path, &g);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (llmc_py_check(st)) return NULL;
    GGUFObject *o = PyObject_New(GGUFObject, &llmc_py_GGUFType);
    if (!o) {
        llmc_gguf_close(g);
        return NULL;
    }
    o->g = g;
    return (PyObject *)o;
}

/* ---------------------------------------------------------------- writing */
/* Everything the C writer reads, kept alive until it returns. */
typedef struct {
    llmc_gguf_kv_in *kv;
    llmc_gguf_tensor_in *t;
    Py_buffer *bufs;       /* tensor data and numeric arrays */
    size_t n_bufs;
    PyObject *keep;        /* a list holding encoded strings */
    void **allocs;         /* PyMem blocks (string pointer/length tables, scalar values) */
    size_t n_allocs, cap_allocs;
} write_args;

static void *wa_alloc(write_args *wa, size_t bytes) {
    if (wa->n_allocs == wa->cap_allocs) {
        size_t cap = wa->cap_allocs ? wa->cap_allocs * 2 : 64;
        void **p = PyMem_Realloc(wa->allocs, cap * sizeof *p);
        if (!p) return PyErr_NoMemory();
        wa->allocs = p;
        wa->cap_allocs = cap;
    }
    void *p = PyMem_Calloc(1, bytes ? bytes : 1);
    if (!p) return PyErr_NoMemory();
    wa->allocs[wa->n_allocs++] = p;
    return p;
}

/* UTF-8 bytes of a str (or the bytes of a bytes object), kept alive in wa->keep. */
static const char *wa_bytes(write_args *wa, PyObject *o, uint64_t *len, const char *what) {
    PyObject *b;
    if (PyUnicode_Check(o)) b = PyUnicode_AsEncodedString(o, "utf-8", "strict");
    else if (PyBytes_Check(o)) b = Py_NewRef(o);
    else return PyErr_Format(PyExc_TypeError, "%s must be str or bytes, got %s", what, Py_TYPE(o)->tp_name), NULL;
    if (!b) return NULL;
    int r = PyList_Append(wa->keep, b);
    Py_DECREF(b);
    if (r < 0) return NULL;
    *len = (uint64_t)PyBytes_GET_SIZE(b);
    return PyBytes_AS_STRING(b);
}

static int scalar_to(int type, PyObject *v, void *out, const char *key) {
    if (type == LLMC_GGUF_FLOAT32 || type == LLMC_GGUF_FLOAT64) {
        double d = PyFloat_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred()) return -1;
        if (type == LLMC_GGUF_FLOAT32) {
            float f = (float)d;
            memcpy(out, &f, 4);
        } else {
            memcpy(out, &d, 8);
        }
        return 0;
    }
    if (type == LLMC_GGUF_BOOL) {
        int b = PyObject_IsTrue(v);
        if (b < 0) return -1;
        *(uint8_t *)out = (uint8_t)b;
        return 0;
    }
    if (type == LLMC_GGUF_UINT64) {
        unsigned long long u = PyLong_AsUnsignedLongLong(v);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) return -1;
        memcpy(out, &u, 8);
        return 0;
    }
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    static const long long lo[] = {0, -128, 0, -32768, 0, -2147483648LL}, hi[] = {255, 127, 65535, 32767, 4294967295LL,
                                                                               2147483647LL};
    if (type <= LLMC_GGUF_INT32 && (x < lo[type] || x > hi[type])) {
        PyErr_Format(PyExc_ValueError, "key '%s': %lld does not fit in %s", key, x, llmc_gguf_value_type_name(type));
        return -1;
    }
    switch (type) {
    case LLMC_GGUF_UINT8: case LLMC_GGUF_INT8: *(uint8_t *)out = (uint8_t)x; break;
    case LLMC_GGUF_UINT16: case LLMC_GGUF_INT16: { uint16_t u = (uint16_t)x; memcpy(out, &u, 2); break; }
    case LLMC_GGUF_UINT32: case LLMC_GGUF_INT32: { uint32_t u = (uint32_t)x; memcpy(out, &u, 4); break; }
    default: memcpy(out, &x, 8); break; /* INT64 */
    }
    return 0;
}

static int fill_kv(write_args *wa, llmc_gguf_kv_in *kv, PyObject *item) {
    PyObject *key, *value;
    int type, elem_type;
    if (!PyArg_ParseTuple(item, "UiOi", &key, &type, &value, &elem_type)) return -1;
    kv->key = PyUnicode_AsUTF8(key);
    if (!kv->key) return -1;
    kv->type = type;
    kv->elem_type = elem_type;
    if (type < 0 || type >= LLMC_GGUF_N_VALUE_TYPES) {
        PyErr_Format(PyExc_ValueError, "key '%s': unknown GGUF value type %d", kv->key, type);
        return -1;
    }
    if (type == LLMC_GGUF_STRING) return (kv->data = wa_bytes(wa, value, &kv->len, kv->key)) ? 0 : -1;
    if (type != LLMC_GGUF_ARRAY) {
        void *p = wa_alloc(wa, 8);
        if (!p || scalar_to(type, value, p, kv->key) < 0) return -1;
        kv->data = p;
        return 0;
    }
    if (elem_type == LLMC_GGUF_STRING) {
        PyObject *seq = PySequence_Fast(value, "a string array value must be a sequence");
        if (!seq) return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        const char **ptrs = wa_alloc(wa, (size_t)n * sizeof *ptrs);
        uint64_t *lens = wa_alloc(wa, (size_t)n * sizeof *lens);
        int r = ptrs && lens ? 0 : -1;
        for (Py_ssize_t i = 0; !r && i < n; i++)
            if (!(ptrs[i] = wa_bytes(wa, PySequence_Fast_GET_ITEM(seq, i), &lens[i], kv->key))) r = -1;
        Py_DECREF(seq);
        kv->data = ptrs;
        kv->lens = lens;
        kv->count = (uint64_t)n;
        return r;
    }
    size_t esz = llmc_gguf_value_size(elem_type);
    if (!esz) {
        PyErr_Format(PyExc_ValueError, "key '%s': bad array element type %d", kv->key, elem_type);
        return -1;
    }
    Py_buffer *b = &wa->bufs[wa->n_bufs];
    if (PyObject_GetBuffer(value, b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    wa->n_bufs++;
    if (b->len % (Py_ssize_t)esz) {
        PyErr_Format(PyExc_ValueError, "key '%s': %zd bytes is not a whole number of %s", kv->key, b->len,
                     llmc_gguf_value_type_name(elem_type));
        return -1;
    }
    kv->data = b->buf;
    kv->count = (uint64_t)b->len / esz;
    return 0;
}

static int fill_tensor(write_args *wa, llmc_gguf_tensor_in *t, PyObject *item) {
    PyObject *ne, *data;
    if (!PyArg_ParseTuple(item, "siOO", &t->name, &t->type, &ne, &data)) return -1;
    PyObject *seq = PySequence_Fast(ne, "a tensor's ne must be a sequence of ints");
    if (!seq) return -1;
    Py_ssize_t nd = PySequence_Fast_GET_SIZE(seq);
    if (nd < 1 || nd > LLMC_GGUF_MAX_DIMS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "tensor '%s': %zd dimensions (1 to 4 allowed)", t->name, nd);
        return -1;
    }
    t->n_dims = (int)nd;
    for (Py_ssize_t d = 0; d < nd; d++) {
        unsigned long long v = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(seq, d));
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        t->ne[d] = v;
    }
    Py_DECREF(seq);
    Py_buffer *b = &wa->bufs[wa->n_bufs];
    if (PyObject_GetBuffer(data, b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    wa->n_bufs++;
    t->data = b->buf;
    t->nbytes = (size_t)b->len;
    return 0;
}

/* gguf_write(path, [(key, type, value, elem_type)], [(name, ggml type, ne, buffer)], alignment) */
static PyObject *py_gguf_write(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *path_obj, *kvs, *tensors;
    Py_ssize_t alignment;
    if (!PyArg_ParseTuple(args, "O&O!O!n", PyUnicode_FSConverter, &path_obj, &PyList_Type, &kvs, &PyList_Type,
                          &tensors, &alignment))
        return NULL;
    Py_ssize_t n_kv = PyList_GET_SIZE(kvs), n_t = PyList_GET_SIZE(tensors);
    write_args wa;
    memset(&wa, 0, sizeof wa);
    PyObject *result = NULL;
    wa.keep = PyList_New(0);
    wa.kv = PyMem_Calloc((size_t)n_kv + 1, sizeof *wa.kv);
    wa.t = PyMem_Calloc((size_t)n_t + 1, sizeof *wa.t);
    wa.bufs = PyMem_Calloc((size_t)(n_kv + n_t) + 1, sizeof *wa.bufs);
    if (!wa.keep || !wa.kv || !wa.t || !wa.bufs) {
        PyErr_NoMemory();
        goto done;
    }
    if (alignment < 0) {
        PyErr_Format(PyExc_ValueError, "alignment must be >= 0, got %zd", alignment);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n_kv; i++)
        if (fill_kv(&wa, &wa.kv[i], PyList_GET_ITEM(kvs, i)) < 0) goto done;
    for (Py_ssize_t i = 0; i < n_t; i++)
        if (fill_tensor(&wa, &wa.t[i], PyList_GET_ITEM(tensors, i)) < 0) goto done;
    llmc_status st;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    st = llmc_gguf_write(path, wa.kv, (size_t)n_kv, wa.t, (size_t)n_t, (size_t)alignment);
    Py_END_ALLOW_THREADS
    if (!llmc_py_check(st)) result = Py_NewRef(Py_None);
done:
    for (size_t i = 0; i < wa.n_bufs; i++) PyBuffer_Release(&wa.bufs[i]);
    for (size_t i = 0; i < wa.n_allocs; i++) PyMem_Free(wa.allocs[i]);
    PyMem_Free(wa.allocs);
    PyMem_Free(wa.bufs);
    PyMem_Free(wa.kv);
    PyMem_Free(wa.t);
    Py_XDECREF(wa.keep);
    Py_DECREF(path_obj);
    return result;
}

/* ggml_types() -> [(id, name, block_size, block_bytes)] */
static PyObject *py_ggml_types(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    PyObject *list = PyList_New(0);
    for (int i = 0; list && i < 256; i++) {
        const char *name = llmc_ggml_type_name(i);
        if (!name) continue;
        PyObject *item = Py_BuildValue("(isnn)", i, name, (Py_ssize_t)llmc_ggml_type_block_size(i),
                                       (Py_ssize_t)llmc_ggml_type_block_bytes(i));
        if (!item || PyList_Append(list, item) < 0) Py_CLEAR(list);
        Py_XDECREF(item);
    }
    return list;
}

/* gguf_name(arch, name, to_gguf) -> the tensor's name in the other convention, or None */
static PyObject *py_gguf_name(PyObject *self, PyObject *args) {
    (void)self;
    const char *arch, *name;
    int to_gguf;
    if (!PyArg_ParseTuple(args, "ssp", &arch, &name, &to_gguf)) return NULL;
    static const struct { const char *name; int arch; } archs[] = {
        {"gpt2", LLMC_ARCH_GPT2}, {"llama", LLMC_ARCH_LLAMA}, {"mistral", LLMC_ARCH_MISTRAL},
        {"qwen2", LLMC_ARCH_QWEN2}, {"qwen3", LLMC_ARCH_QWEN3}};
    int a = -1;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(arch, archs[i].name)) a = archs[i].arch;
    if (a < 0) return PyErr_Format(PyExc_ValueError, "unknown architecture '%s'", arch);
    char out[160];
    int ok = to_gguf ? llmc_gguf_name_from_hf(a, name, out, sizeof out) : llmc_gguf_name_to_hf(a, name, out, sizeof out);
    if (!ok) Py_RETURN_NONE;
    return PyUnicode_FromString(out);
}

PyMethodDef llmc_py_gguf_methods[] = {
    {"gguf_name", py_gguf_name, METH_VARARGS, "gguf_name(arch, name, to_gguf) -> str or None"},
    {"gguf_open", py_gguf_open, METH_VARARGS, "gguf_open(path) -> GGUFFile"},
    {"gguf_write", py_gguf_write, METH_VARARGS, "gguf_write(path, kvs, tensors, alignment)"},
    {"ggml_types", py_ggml_types, METH_NOARGS, "ggml_types() -> [(id, name, block_size, block_bytes)]"},
    {NULL, NULL, 0, NULL},
};
