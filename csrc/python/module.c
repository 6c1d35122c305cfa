/* module.c: the llmc._core extension module: installs every concept's method table and the error types. */
#define LLMC_BINDING_MODULE_C
#include <string.h>

#include "binding.h"

static PyObject *py_set_num_threads(PyObject *self, PyObject *args) {
    (void)self;
    int n;
    if (!PyArg_ParseTuple(args, "i", &n)) return NULL;
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "number of threads must be >= 1, got %d", n);
        return NULL;
    }
    llmc_set_num_threads(n);
    Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyLong_FromLong(llmc_get_num_threads());
}

static PyObject *py_simd_info(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    const llmc_cpu_features *f = llmc_cpu_get_features();
    PyObject *feat = Py_BuildValue("{s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "avx2", f->avx2 ? Py_True : Py_False,
                                   "fma", f->fma ? Py_True : Py_False, "f16c", f->f16c ? Py_True : Py_False,
                                   "avx512f", f->avx512f ? Py_True : Py_False, "avx512bw",
                                   f->avx512bw ? Py_True : Py_False, "avx512vl", f->avx512vl ? Py_True : Py_False,
                                   "avx512_vnni", f->avx512_vnni ? Py_True : Py_False, "avx512_bf16",
                                   f->avx512_bf16 ? Py_True : Py_False, "amx_tile", f->amx_tile ? Py_True : Py_False,
                                   "amx_bf16", f->amx_bf16 ? Py_True : Py_False, "amx_int8",
                                   f->amx_int8 ? Py_True : Py_False);
    if (!feat) return NULL;
    return Py_BuildValue("{s:s,s:s,s:N,s:s,s:s,s:i}", "active", llmc_simd_level_name(llmc_simd_get_level()), "best",
                         llmc_simd_level_name(llmc_simd_best_level()), "features", feat, "quant_kernels",
                         llmc_quant_kernels_name(), "quant_reason", llmc_quant_kernels_reason(), "amx_os",
                         f->amx_os);
}

static PyObject *py_set_simd_level(PyObject *self, PyObject *args) {
    (void)self;
    int level;
    if (!PyArg_ParseTuple(args, "i", &level)) return NULL;
    if (llmc_py_check(llmc_simd_set_level(level))) return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_blas_info(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyUnicode_FromString(llmc_blas_info());
}

static PyObject *py_blas_one_pool(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyBool_FromLong(llmc_blas_one_pool());
}

static PyObject *py_mem_stats(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return Py_BuildValue("{s:n,s:n}", "current", (Py_ssize_t)llmc_mem_current(), "peak", (Py_ssize_t)llmc_mem_peak());
}

static PyObject *py_mem_reset_peak(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    llmc_mem_reset_peak();
    Py_RETURN_NONE;
}

static PyObject *py_flop_counter_enable(PyObject *self, PyObject *args) {
    (void)self;
    int on;
    if (!PyArg_ParseTuple(args, "p", &on)) return NULL;
    llmc_flop_counter_enable(on);
    Py_RETURN_NONE;
}

static PyObject *py_flop_counter_read(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    uint64_t flops = 0, calls = 0;
    llmc_flop_counter_read(&flops, &calls);
    return Py_BuildValue("(KK)", (unsigned long long)flops, (unsigned long long)calls);
}

PyMethodDef llmc_py_core_methods[] = {
    {"flop_counter_enable", py_flop_counter_enable, METH_VARARGS, "flop_counter_enable(on)"},
    {"flop_counter_read", py_flop_counter_read, METH_NOARGS, "flop_counter_read() -> (flops, calls)"},
    {"set_num_threads", py_set_num_threads, METH_VARARGS, "set_num_threads(n)"},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "get_num_threads()"},
    {"simd_info", py_simd_info, METH_NOARGS, "simd_info() -> {'active': ..., 'best': ...}"},
    {"set_simd_level", py_set_simd_level, METH_VARARGS, "set_simd_level(level) (0 scalar, 1 avx2, 2 avx512)"},
    {"blas_info", py_blas_info, METH_NOARGS, "blas_info()"},
    {"blas_one_pool", py_blas_one_pool, METH_NOARGS, "blas_one_pool()"},
    {"mem_stats", py_mem_stats, METH_NOARGS, "mem_stats() -> {'current': bytes, 'peak': bytes}"},
    {"mem_reset_peak", py_mem_reset_peak, METH_NOARGS, "mem_reset_peak()"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "llmc._core", "llmc's C core (use the llmc package, not this module).", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__core(void) {
    import_array();
    /* Python runs signal handlers in the main thread only; interruptible calls poll there (convert.c) */
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *mt = threading ? PyObject_CallMethod(threading, "main_thread", NULL) : NULL;
    PyObject *ident = mt ? PyObject_GetAttrString(mt, "ident") : NULL;
    Py_XDECREF(threading);
    Py_XDECREF(mt);
    if (!ident) return NULL;
    llmc_py_main_thread = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    /* one table per concept; a new concept adds its table here */
    PyMethodDef *tables[] = {
        llmc_py_core_methods,
        llmc_py_ops_methods,
        llmc_py_moe_methods,
        llmc_py_json_methods,
        llmc_py_backward_methods,
        llmc_py_attention_methods,
        llmc_py_train_methods,
        llmc_py_tokenizer_methods,
        llmc_py_model_methods,
        llmc_py_quant_methods,
        llmc_py_gguf_methods,
        llmc_py_seq2seq_methods,
    };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (PyModule_AddFunctions(m, tables[i]) < 0) goto fail;
    /* Python types, one per handle */
    PyTypeObject *types[] = {
        &llmc_py_SamplerType,
        &llmc_py_TrainerType,
        &llmc_py_TokHandle_Type,
        &llmc_py_GGUFType,
        &llmc_py_ModelType,
        &llmc_py_SessionType,
        &llmc_py_Seq2SeqType,
        &llmc_py_Seq2SeqDecoderType,
    };
    const char *type_names[] = {"Sampler", "Trainer", "TokenizerHandle", "GGUFFile",
                                "Model", "Session", "Seq2Seq", "Seq2SeqDecoder"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (PyType_Ready(types[i]) < 0 || PyModule_AddObjectRef(m, type_names[i], (PyObject *)types[i]) < 0)
            goto fail;
    PyObject *bases = PyTuple_Pack(2, PyExc_ValueError, PyExc_NotImplementedError);
    if (!bases) goto fail;
    llmc_py_UnsupportedError = PyErr_NewExceptionWithDoc(
        "llmc.UnsupportedError", "A valid input that llmc does not support (a ValueError and a NotImplementedError).",
        bases, NULL);
    Py_DECREF(bases);
    if (!llmc_py_UnsupportedError || PyModule_AddObjectRef(m, "UnsupportedError", llmc_py_UnsupportedError) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
