/* handle.c: what the binding types that own a C handle (Model, Seq2Seq, Session, Seq2SeqDecoder, Trainer) share:
 * the load and random-init entry points (parse, call the core without the GIL, map the status), the bridge that
 * lets the core call a Python progress callable, and the one-call-at-a-time guard. */
#include "binding.h"

/* ---------------------------------------------------------------- progress */
void llmc_py_progress_cb(void *ud, size_t done, size_t total) {
    llmc_py_progress *p = ud;
    if (!p->fn || p->failed) return;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunction(p->fn, "nn", (Py_ssize_t)done, (Py_ssize_t)total);
    if (!r) {
        p->failed = 1; /* later calls are skipped; the exception is raised when the C call returns */
        PyErr_Fetch(&p->type, &p->value, &p->tb);
    }
    Py_XDECREF(r);
    PyGILState_Release(g);
}

int llmc_py_progress_finish(llmc_py_progress *p, llmc_status st) {
    if (p->failed) {
        PyErr_Restore(p->type, p->value, p->tb);
        return -1;
    }
    return llmc_py_check(st);
}

/* ---------------------------------------------------------------- constructors */
void *llmc_py_load(PyObject *args, llmc_py_load_fn load, llmc_py_free_fn free_fn, int with_progress) {
    PyObject *po, *fn = Py_None;
    const char *dtype = NULL;
    if (with_progress ? !PyArg_ParseTuple(args, "O&|zO", PyUnicode_FSConverter, &po, &dtype, &fn)
                      : !PyArg_ParseTuple(args, "O&|z", PyUnicode_FSConverter, &po, &dtype))
        return NULL;
    void *h = NULL;
    llmc_status st;
    const char *path = PyBytes_AS_STRING(po);
    llmc_py_progress p = {fn == Py_None ? NULL : fn, 0, NULL, NULL, NULL};
    Py_BEGIN_ALLOW_THREADS
    st = load(path, dtype, llmc_py_progress_cb, &p, &h);
    Py_END_ALLOW_THREADS
    Py_DECREF(po);
    if (llmc_py_progress_finish(&p, st)) {
        free_fn(h); /* a handle the core made before the callback failed */
        return NULL;
    }
    return h;
}

void *llmc_py_init_random(PyObject *args, llmc_py_init_fn init) {
    const char *text;
    Py_ssize_t len;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "s#K", &text, &len, &seed)) return NULL;
    void *h = NULL;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = init(text, (size_t)len, (uint64_t)seed, &h);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) return NULL;
    return h;
}

/* ---------------------------------------------------------------- one call at a time */
int llmc_py_enter(int busy, const char *what) {
    if (!busy) return 0;
    PyErr_Format(PyExc_RuntimeError, "this %s is in use by another thread", what);
    return -1;
}
