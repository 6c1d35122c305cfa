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

/* If st is an error, raise the matching Python exception with llmc_last_error()'s message and return -1.
 * LLMC_ERR_INTERRUPTED keeps the KeyboardInterrupt a poll raised (or raises one). */
int llmc_py_check(llmc_status st);

/* Interruptible calls (Ctrl-C during a long C call). The C core asks llmc_py_poll every ~20 ms; on the main thread
 * it takes the GIL for a moment and runs Python's signal handlers (PyErr_CheckSignals): a KeyboardInterrupt (or
 * any exception a handler raises) stays set and the call unwinds with LLMC_ERR_INTERRUPTED. Use as
 *     LLMC_PY_INTERRUPTIBLE_BEGIN(pc)  st = llmc_long_call(...);  LLMC_PY_INTERRUPTIBLE_END(pc)
 *     if (llmc_py_finish(st, &pc)) return NULL;
 * A progress callback that raises KeyboardInterrupt sets pc.stop (llmc_py_callback_failed) instead of losing it. */
typedef struct {
    int stop; /* 1: a Python exception is set on this thread and the C call should stop */
    int main; /* polling only on the main thread, where Python runs signal handlers */
} llmc_py_poll_ctx;
int llmc_py_poll(void *ctx);
/* llmc_py_check, and also an error when a poll raised although the call then finished: never a result with an
 * exception set. */
int llmc_py_finish(llmc_status st, const llmc_py_poll_ctx *pc);
/* In a callback that failed (with the GIL held): KeyboardInterrupt, SystemExit and other non-Exception errors
 * stop the call (kept set, pc->stop = 1); an ordinary Exception is cleared (a broken progress printer does not
 * stop training). */
void llmc_py_callback_failed(llmc_py_poll_ctx *pc);
/* thread id of the main thread, recorded when the module is imported */
extern unsigned long llmc_py_main_thread;
#define LLMC_PY_INTERRUPTIBLE_BEGIN(pc)                                                            \
    llmc_py_poll_ctx pc = {0, PyThread_get_thread_ident() == llmc_py_main_thread};                  \
    llmc_set_poll(llmc_py_poll, &pc);                                                              \
    Py_BEGIN_ALLOW_THREADS
#define LLMC_PY_INTERRUPTIBLE_END(pc) \
    Py_END_ALLOW_THREADS              \
    llmc_set_poll(NULL, NULL);

/* Convert an array-like of real numbers to a float32 C-contiguous array (no copy when it already is one).
 * Strings, bytes, objects, complex numbers raise TypeError naming `what`. New reference or NULL. */
PyArrayObject *llmc_py_float_array(PyObject *obj, const char *what);
/* Same for integer ids, as int64. Floats, bools, strings raise TypeError. */
PyArrayObject *llmc_py_int_array(PyObject *obj, const char *what);
/* "(3, 4)" */
void llmc_py_shape_str(PyArrayObject *a, char *buf, size_t n);
/* A new float32 C-contiguous array of the given shape (uninitialised). */
PyArrayObject *llmc_py_new_float(int nd, const npy_intp *dims);
/* llmc_py_int_array that must be 1-D: "<what> must be a 1-D sequence of token ids, got shape (..)" otherwise. */
PyArrayObject *llmc_py_ids_1d(PyObject *obj, const char *what);
/* A weight's shape as a tuple: (rows,) or (rows, cols). New reference or NULL. */
PyObject *llmc_py_view_shape(const llmc_tensor_view *v);

/* Handle-owning types (handle.c). A progress callable the core calls without the GIL: an exception it raises is
 * kept (later calls are skipped) and raised by llmc_py_progress_finish when the C call has returned. */
typedef struct {
    PyObject *fn; /* the Python callable, or NULL */
    int failed;
    PyObject *type, *value, *tb;
} llmc_py_progress;
void llmc_py_progress_cb(void *ud, size_t done, size_t total); /* an llmc_progress_fn; ud: llmc_py_progress * */
/* After the C call: 0, or -1 with the callback's exception (or st's error) raised. */
int llmc_py_progress_finish(llmc_py_progress *p, llmc_status st);
/* A core constructor typed for the shared entry points (the handle comes back through a void *). */
typedef llmc_status (*llmc_py_load_fn)(const char *path, const char *dtype, llmc_progress_fn progress, void *ud,
                                       void **out);
typedef llmc_status (*llmc_py_init_fn)(const char *config_json, size_t len, uint64_t seed, void **out);
typedef void (*llmc_py_free_fn)(void *handle);
/* The body of every load entry point: args (path, dtype=None[, progress=None when with_progress]), load called
 * without the GIL. The new handle, or NULL with an exception (a handle made before progress failed is freed). */
void *llmc_py_load(PyObject *args, llmc_py_load_fn load, llmc_py_free_fn free_fn, int with_progress);
/* The body of every random-init entry point: args (config_json: str, seed: int). The handle or NULL. */
void *llmc_py_init_random(PyObject *args, llmc_py_init_fn init);
/* 0 when a handle is free; -1 with RuntimeError("this <what> is in use by another thread") while busy. */
int llmc_py_enter(int busy, const char *what);

extern PyMethodDef llmc_py_core_methods[];
extern PyMethodDef llmc_py_ops_methods[];
extern PyMethodDef llmc_py_moe_methods[];
extern PyMethodDef llmc_py_json_methods[];
extern PyMethodDef llmc_py_backward_methods[];
extern PyTypeObject llmc_py_SamplerType;
extern PyTypeObject llmc_py_TrainerType;
extern PyMethodDef llmc_py_train_methods[];
extern PyMethodDef llmc_py_attention_methods[];
extern PyMethodDef llmc_py_tokenizer_methods[];
extern PyTypeObject llmc_py_TokHandle_Type;
extern PyMethodDef llmc_py_model_methods[];
extern PyTypeObject llmc_py_ModelType, llmc_py_SessionType;
/* A Python list of hook tuples -> a PyMem-allocated llmc_hook array (latent_binding.c); -1 with an exception. */
int llmc_py_hooks(PyObject *list, llmc_hook **out, size_t *n_out);
extern PyMethodDef llmc_py_quant_methods[];
extern PyMethodDef llmc_py_gguf_methods[];
extern PyTypeObject llmc_py_GGUFType;
extern PyMethodDef llmc_py_seq2seq_methods[];
extern PyTypeObject llmc_py_Seq2SeqType, llmc_py_Seq2SeqDecoderType;

#endif
