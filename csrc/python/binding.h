/* binding.h: shared helpers of the CPython binding (the only C in llmc that includes Python.h).
 * Each concept has one binding file (ops_binding.c, ...) exporting a method table that module.c installs. */
#ifndef LLMC_BINDING_H
#define LLMC_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL llmc_ARRAY_API
#ifndef LLMC_BINDING_MODULE_C
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "../llmc.h"

/* llmc.UnsupportedError: subclass of ValueError and NotImplementedError. */
extern PyObject *llmc_py_UnsupportedError;

/* If st is an error, raise the matching Python exception with llmc_last_error()'s message and return -1. */
int llmc_py_check(llmc_status st);

/* Convert an array-like of real numbers to a float32 C-contiguous array (no copy when it already is one).
 * Strings, bytes, objects, complex numbers raise TypeError naming `what`. New reference or NULL. */
PyArrayObject *llmc_py_float_array(PyObject *obj, const char *what);
/* Same for integer ids, as int64. Floats, bools, strings raise TypeError. */
PyArrayObject *llmc_py_int_array(PyObject *obj, const char *what);
/* "(3, 4)" */
void llmc_py_shape_str(PyArrayObject *a, char *buf, size_t n);
/* A new float32 C-contiguous array of the given shape (uninitialised). */
PyArrayObject *llmc_py_new_float(int nd, const npy_intp *dims);

extern PyMethodDef llmc_py_core_methods[];
extern PyMethodDef llmc_py_ops_methods[];
extern PyMethodDef llmc_py_json_methods[];
extern PyMethodDef llmc_py_backward_methods[];
extern PyTypeObject llmc_py_SamplerType;
extern PyTypeObject llmc_py_TrainerType;
extern PyMethodDef llmc_py_train_methods[];
extern PyMethodDef llmc_py_attention_methods[];
extern PyMethodDef llmc_py_tokenizer_methods[];
extern PyTypeObject llmc_py_TokHandle_Type;
extern PyMethodDef llmc_py_model_methods[];
extern PyMethodDef llmc_py_quant_methods[];
/* Adds the Model and Session types to the module (model_binding.c). */
int llmc_py_model_init(PyObject *m);

#endif
