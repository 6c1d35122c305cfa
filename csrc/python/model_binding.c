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
        PyObject *v = shape ? Py_BuildValue("(sN)", t->dtype_name, shape) : NULL;
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
            s = llmc_st_to_f32(t, PyArray_DATA(out));
            Py_END_ALLOW_THREADS
            if (llmc_py_check(s)) Py_CLEAR(out);
        }
    }
    llmc_st_close(st);
    return (PyObject *)out;
}

/* ---------------------------------------------------------------- Model */
typedef struct {
    PyObject_HEAD
    llmc_model *m;
    int active;     /* calls running without the GIL (forward, session append): convert refuses while any runs */
    int converting; /* convert is running without the GIL: every other call refuses */
    llmc_batch *batch; /* workspace of append_batch (created on first use), or NULL */
    int batch_busy;    /* a call is using it without the GIL: another thread gets a workspace of its own */
} ModelObject;

static int model_busy(const ModelObject *m) {
    if (!m->converting) return 0;
    PyErr_SetString(PyExc_RuntimeError, "the model's weights are being converted in another thread");
    return -1;
}

typedef struct {
    PyObject_HEAD
    llmc_session *s;
    PyObject *owner; /* the ModelObject: keeps the weights alive while the session exists */
    int busy;        /* set while append runs without the GIL: a second thread gets an error, not a race */
    llmc_hook *hooks;    /* attached interventions (PyMem), or NULL */
    PyObject *hook_refs; /* the Python list whose arrays the hooks point into */
} SessionObject;


static void model_dealloc(ModelObject *self) {
    llmc_batch_free(self->batch);
    llmc_model_free(self->m);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* a new Model owning m (freed if that fails); NULL stays NULL, with the caller's exception */
static PyObject *wrap_model(llmc_model *m) {
    if (!m) return NULL;
    ModelObject *o = PyObject_New(ModelObject, &llmc_py_ModelType);
    if (!o) {
        llmc_model_free(m);
        return NULL;
    }
    o->m = m;
    o->active = o->converting = 0;
    o->batch = NULL;
    o->batch_busy = 0;
    return (PyObject *)o;
}

/* the core's constructors, typed for the shared entry points (handle.c) */
static llmc_status load_dir(const char *path, const char *dtype, llmc_progress_fn fn, void *ud, void **out) {
    llmc_model *m = NULL;
    llmc_status st = llmc_model_load_as(path, dtype, fn, ud, &m);
    *out = m;
    return st;
}

static llmc_status load_gguf(const char *path, const char *dtype, llmc_progress_fn fn, void *ud, void **out) {
    llmc_model *m = NULL;
    llmc_status st = llmc_model_load_gguf(path, dtype, fn, ud, &m);
    *out = m;
    return st;
}

static llmc_status init_random(const char *json, size_t len, uint64_t seed, void **out) {
    llmc_model *m = NULL;
    llmc_status st = llmc_model_init(json, len, seed, &m);
    *out = m;
    return st;
}

static void free_model(void *m) { llmc_model_free(m); }

/* model_load(path, dtype=None, progress=None): a Hugging Face folder */
static PyObject *py_model_load(PyObject *self, PyObject *args) {
    (void)self;
    return wrap_model(llmc_py_load(args, load_dir, free_model, 1));
}

/* model_load_gguf(path, dtype=None, progress=None) */
static PyObject *py_model_load_gguf(PyObject *self, PyObject *args) {
    (void)self;
    return wrap_model(llmc_py_load(args, load_gguf, free_model, 1));
}

/* model_init(config_json, seed) */
static PyObject *py_model_init(PyObject *self, PyObject *args) {
    (void)self;
    return wrap_model(llmc_py_init_random(args, init_random));
}

static const char *arch_name(int arch) {
    static const char *const names[] = {"gpt2", "llama", "mistral", "qwen2", "qwen3", "bert",
                                        "mixtral", "qwen2_moe", "qwen3_moe", "olmoe"};
    return arch >= 0 && arch < (int)(sizeof names / sizeof names[0]) ? names[arch] : "?";
}

static PyObject *model_config(ModelObject *self, PyObject *args) {
    (void)args;
    const llmc_model_config *c = llmc_model_get_config(self->m);
    PyObject *moe_layers = PyList_New(0);
    if (!moe_layers) return NULL;
    for (size_t l = 0; l < c->n_layers; l++) {
        PyObject *v = llmc_layer_is_moe(c, l) ? PyLong_FromSize_t(l) : NULL;
        if (v && PyList_Append(moe_layers, v) < 0) Py_CLEAR(moe_layers);
        Py_XDECREF(v);
        if (!moe_layers) return NULL;
    }
    return Py_BuildValue("{s:s,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:f,s:O,s:O,s:n,s:f,s:n,s:n,s:n,s:n,s:O,s:f,s:N}",
                         "arch", arch_name(c->arch),
                         "n_layers", (Py_ssize_t)c->n_layers, "d_model", (Py_ssize_t)c->d_model, "n_heads",
                         (Py_ssize_t)c->n_heads, "n_kv_heads", (Py_ssize_t)c->n_kv_heads, "head_dim",
                         (Py_ssize_t)c->head_dim, "d_ff", (Py_ssize_t)c->d_ff, "vocab_size", (Py_ssize_t)c->vocab,
                         "context_length", (Py_ssize_t)c->context_length, "type_vocab_size",
                         (Py_ssize_t)c->type_vocab, "norm_eps", (double)c->norm_eps, "tied_embeddings",
                         c->tied_embeddings ? Py_True : Py_False, "causal", c->causal ? Py_True : Py_False,
                         "sliding_window", (Py_ssize_t)c->sliding_window, "rope_theta", (double)c->rope_theta,
                         "n_experts", (Py_ssize_t)c->n_experts, "n_experts_used", (Py_ssize_t)c->n_experts_used,
                         "moe_d_ff", (Py_ssize_t)c->moe_d_ff, "shared_d_ff", (Py_ssize_t)c->shared_d_ff,
                         "norm_topk_prob", c->norm_topk_prob ? Py_True : Py_False, "router_aux_loss_coef",
                         (double)c->router_aux_loss_coef, "moe_layers", moe_layers);
}

/* ids (T,) and token_type_ids (T,) or None: 0, or -1 with an exception; *ids and *types get new references or NULL */
static int ids_and_types(PyObject *io, PyObject *to, PyArrayObject **ids, PyArrayObject **types) {
    *types = NULL;
    if (!(*ids = llmc_py_ids_1d(io, "ids"))) return -1;
    if (to != Py_None && !(*types = llmc_py_ids_1d(to, "token_type_ids"))) return -1;
    const npy_intp T = PyArray_DIM(*ids, 0);
    if (*types && PyArray_DIM(*types, 0) != T) {
        PyErr_Format(PyExc_ValueError, "token_type_ids has %zd entries for %zd tokens", (Py_ssize_t)PyArray_DIM(*types, 0),
                     (Py_ssize_t)T);
        return -1;
    }
    return 0;
}

/* forward(ids, type_ids, attn, want_logits, want_hidden, want_last) -> (logits | None, hidden | None, last | None) */
static PyObject *model_forward(ModelObject *self, PyObject *args) {
    PyObject *io, *to;
    int attn, wl, wh, wlast;
    if (!PyArg_ParseTuple(args, "OOippp", &io, &to, &attn, &wl, &wh, &wlast)) return NULL;
    const llmc_model_config *c = llmc_model_get_config(self->m);
    PyArrayObject *ids, *types, *lo = NULL, *ho = NULL, *la = NULL;
    PyObject *res = NULL;
    if (ids_and_types(io, to, &ids, &types)) goto done;
    const npy_intp T = PyArray_DIM(ids, 0);
    npy_intp dl[2] = {T, (npy_intp)c->vocab}, dh[3] = {(npy_intp)c->n_layers + 1, T, (npy_intp)c->d_model},
             dlast[2] = {T, (npy_intp)c->d_model};
    if ((wl && !(lo = llmc_py_new_float(2, dl))) || (wh && !(ho = llmc_py_new_float(3, dh))) ||
        (wlast && !(la = llmc_py_new_float(2, dlast))))
        goto done;
    llmc_status st;
    if (model_busy(self)) goto done;
    self->active++;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_model_forward(self->m, PyArray_DATA(ids), types ? PyArray_DATA(types) : NULL, (size_t)T, attn,
                            lo ? PyArray_DATA(lo) : NULL, ho ? PyArray_DATA(ho) : NULL, la ? PyArray_DATA(la) : NULL);
    LLMC_PY_INTERRUPTIBLE_END(pc)
    self->active--;
    if (llmc_py_finish(st, &pc)) goto done;
    res = PyTuple_Pack(3, lo ? (PyObject *)lo : Py_None, ho ? (PyObject *)ho : Py_None, la ? (PyObject *)la : Py_None);
done:
    Py_XDECREF(ids);
    Py_XDECREF(types);
    Py_XDECREF(lo);
    Py_XDECREF(ho);
    Py_XDECREF(la);
    return res;
}

static PyObject *model_attention_weights(ModelObject *self, PyObject *args) {
    PyObject *io, *to;
    Py_ssize_t layer;
    if (!PyArg_ParseTuple(args, "OOn", &io, &to, &layer)) return NULL;
    const llmc_model_config *c = llmc_model_get_config(self->m);
    if (layer < 0 || (size_t)layer >= c->n_layers) {
        PyErr_Format(PyExc_ValueError, "layer %zd out of range: the model has %zu layers", layer, c->n_layers);
        return NULL;
    }
    PyArrayObject *ids, *types, *out = NULL;
    if (ids_and_types(io, to, &ids, &types)) goto done;
    const npy_intp T = PyArray_DIM(ids, 0);
    npy_intp dims[3] = {(npy_intp)c->n_heads, T, T};
    if (!(out = llmc_py_new_float(3, dims))) goto done;
    llmc_status st;
    if (model_busy(self)) {
        Py_CLEAR(out);
        goto done;
    }
    self->active++;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_model_attention_weights(self->m, PyArray_DATA(ids), types ? PyArray_DATA(types) : NULL, (size_t)T,
                                      (size_t)layer, PyArray_DATA(out));
    LLMC_PY_INTERRUPTIBLE_END(pc)
    self->active--;
    if (llmc_py_finish(st, &pc)) Py_CLEAR(out);
done:
    Py_XDECREF(ids);
    Py_XDECREF(types);
    return (PyObject *)out;
}

/* routing(ids) -> (logits (Lm, T, E), experts (Lm, T, k) int32, weights (Lm, T, k)) over the MoE layers */
static PyObject *model_routing(ModelObject *self, PyObject *args) {
    PyObject *io;
    if (!PyArg_ParseTuple(args, "O", &io)) return NULL;
    const llmc_model_config *c = llmc_model_get_config(self->m);
    if (!c->n_experts) {
        PyErr_SetString(llmc_py_UnsupportedError, "this model has no mixture-of-experts layers");
        return NULL;
    }
    PyArrayObject *ids = llmc_py_ids_1d(io, "ids"), *lg = NULL, *ex = NULL, *wt = NULL;
    PyObject *res = NULL;
    if (!ids) return NULL;
    size_t Lm = 0;
    for (size_t l = 0; l < c->n_layers; l++) Lm += (size_t)llmc_layer_is_moe(c, l);
    npy_intp T = PyArray_DIM(ids, 0);
    npy_intp dl[3] = {(npy_intp)Lm, T, (npy_intp)c->n_experts}, dk[3] = {(npy_intp)Lm, T, (npy_intp)c->n_experts_used};
    if (!(lg = llmc_py_new_float(3, dl)) || !(wt = llmc_py_new_float(3, dk)) ||
        !(ex = (PyArrayObject *)PyArray_SimpleNew(3, dk, NPY_INT32)))
        goto done;
    if (model_busy(self)) goto done;
    llmc_status st;
    self->active++;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_model_routing(self->m, PyArray_DATA(ids), (size_t)T, PyArray_DATA(lg), PyArray_DATA(ex),
                            PyArray_DATA(wt));
    LLMC_PY_INTERRUPTIBLE_END(pc)
    self->active--;
    if (!llmc_py_finish(st, &pc)) res = Py_BuildValue("OOO", lg, ex, wt);
done:
    Py_XDECREF(ids);
    Py_XDECREF(lg);
    Py_XDECREF(ex);
    Py_XDECREF(wt);
    return res;
}

/* embed(ids (N, T) int64, type_ids (N, T) | None, lengths (N,), pooling, normalize, attn) -> (N, D) */
static PyObject *model_embed(ModelObject *self, PyObject *args) {
    PyObject *io, *to, *lo;
    int pooling, normalize, attn;
    if (!PyArg_ParseTuple(args, "OOOipi", &io, &to, &lo, &pooling, &normalize, &attn)) return NULL;
    const llmc_model_config *c = llmc_model_get_config(self->m);
    PyArrayObject *ids = llmc_py_int_array(io, "ids"), *types = NULL, *lens = NULL, *out = NULL;
    size_t *lv = NULL;
    if (!ids) return NULL;
    if (PyArray_NDIM(ids) != 2) {
        PyErr_SetString(PyExc_ValueError, "ids must be (N, T)");
        goto done;
    }
    npy_intp N = PyArray_DIM(ids, 0), T = PyArray_DIM(ids, 1);
    if (to != Py_None) {
        if (!(types = llmc_py_int_array(to, "token_type_ids"))) goto done;
        if (PyArray_NDIM(types) != 2 || PyArray_DIM(types, 0) != N || PyArray_DIM(types, 1) != T) {
            PyErr_SetString(PyExc_ValueError, "token_type_ids must have the shape of ids");
            goto done;
        }
    }
    if (!(lens = llmc_py_int_array(lo, "lengths"))) goto done;
    if (PyArray_NDIM(lens) != 1 || PyArray_DIM(lens, 0) != N) {
        PyErr_SetString(PyExc_ValueError, "lengths must be (N,)");
        goto done;
    }
    if (!(lv = PyMem_Malloc(((size_t)N + 1) * sizeof(size_t)))) {
        PyErr_NoMemory();
        goto done;
    }
    for (npy_intp i = 0; i < N; i++) {
        int64_t v = ((const int64_t *)PyArray_DATA(lens))[i];
        lv[i] = v < 0 ? 0 : (size_t)v;
    }
    npy_intp dims[2] = {N, (npy_intp)c->d_model};
    if (!(out = llmc_py_new_float(2, dims))) goto done;
    llmc_status st;
    if (model_busy(self)) {
        Py_CLEAR(out);
        goto done;
    }
    self->active++;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_model_embed(self->m, PyArray_DATA(ids), types ? PyArray_DATA(types) : NULL, lv, (size_t)N, (size_t)T,
                          pooling, normalize, attn, PyArray_DATA(out));
    LLMC_PY_INTERRUPTIBLE_END(pc)
    self->active--;
    if (llmc_py_finish(st, &pc)) Py_CLEAR(out);
done:
    PyMem_Free(lv);
    Py_XDECREF(ids);
    Py_XDECREF(types);
    Py_XDECREF(lens);
    return (PyObject *)out;
}

/* tensors(writable=False) -> [(name, view, type name, checkpoint shape, transposed)]: views of the weights that
 * keep the model alive. F32: a float32 array of the checkpoint's shape; any other type: a uint8 array (rows, row
 * bytes) of the bytes as stored (transposed: rows are the checkpoint's columns, GPT-2 Conv1D). Read-only unless
 * writable. */
static PyObject *model_tensors(ModelObject *self, PyObject *args) {
    int writable = 0;
    if (!PyArg_ParseTuple(args, "|p", &writable)) return NULL;
    size_t n = llmc_model_n_tensors(self->m);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        llmc_tensor_view v;
        if (llmc_py_check(llmc_model_tensor_typed(self->m, i, &v))) {
            Py_CLEAR(list);
            break;
        }
        PyObject *arr;
        const int flags = writable ? NPY_ARRAY_WRITEABLE : 0;
        if (v.type == LLMC_TYPE_F32) {
            npy_intp dims[2] = {(npy_intp)v.shape[0], (npy_intp)v.shape[1]}; /* F32 is never transposed */
            arr = PyArray_New(&PyArray_Type, v.ndim, dims, NPY_FLOAT32, NULL, v.data, 0, NPY_ARRAY_CARRAY_RO | flags,
                              NULL);
        } else {
            npy_intp dims[2] = {(npy_intp)v.rows, (npy_intp)(v.rows ? v.nbytes / v.rows : 0)};
            arr = PyArray_New(&PyArray_Type, 2, dims, NPY_UINT8, NULL, v.data, 0, NPY_ARRAY_CARRAY_RO, NULL); /* never written */
        }
        if (!arr) {
            Py_CLEAR(list);
            break;
        }
        Py_INCREF(self);
        if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) {
            Py_DECREF(arr);
            Py_CLEAR(list);
            break;
        }
        PyObject *shape = llmc_py_view_shape(&v);
        PyObject *item = shape ? Py_BuildValue("(sNsNO)", v.name, arr, llmc_type_name(v.type), shape,
                                               v.transposed ? Py_True : Py_False) : NULL;
        if (!item) {
            if (!shape) Py_DECREF(arr);
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

/* convert(dtype, progress=None): the weights in place to a dtype recipe */
static PyObject *model_convert(ModelObject *self, PyObject *args) {
    const char *dtype;
    PyObject *fn = Py_None;
    if (!PyArg_ParseTuple(args, "s|O", &dtype, &fn)) return NULL;
    if (model_busy(self)) return NULL;
    if (self->active) {
        PyErr_SetString(PyExc_RuntimeError, "the model is running in another thread; convert it when it is idle");
        return NULL;
    }
    llmc_py_progress p = {fn == Py_None ? NULL : fn, 0, NULL, NULL, NULL};
    llmc_status st;
    self->converting = 1;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_model_convert(self->m, dtype, llmc_py_progress_cb, &p);
    Py_END_ALLOW_THREADS
    self->converting = 0;
    if (llmc_py_progress_finish(&p, st)) return NULL;
    Py_RETURN_NONE;
}

static PyObject *model_dtype(ModelObject *self, PyObject *args) {
    (void)args;
    return PyUnicode_FromString(llmc_model_dtype(self->m));
}

static PyObject *model_session(ModelObject *self, PyObject *args) {
    Py_ssize_t cap, keep;
    int overflow, attn;
    if (!PyArg_ParseTuple(args, "nini", &cap, &overflow, &keep, &attn)) return NULL;
    if (cap < 0 || keep < 0) {
        PyErr_SetString(PyExc_ValueError, "capacity and keep_first must be >= 0");
        return NULL;
    }
    llmc_session *s = NULL;
    if (llmc_py_check(llmc_session_new(self->m, (size_t)cap, overflow, (size_t)keep, attn, &s))) return NULL;
    SessionObject *o = PyObject_New(SessionObject, &llmc_py_SessionType);
    if (!o) {
        llmc_session_free(s);
        return NULL;
    }
    o->s = s;
    o->busy = 0;
    o->hooks = NULL;
    o->hook_refs = NULL;
    Py_INCREF(self);
    o->owner = (PyObject *)self;
    return (PyObject *)o;
}

/* forward_hooked(ids, type_ids, attn, want_logits, hooks) -> logits (T, V) | None; hooks fire during the pass */
static PyObject *model_forward_hooked(ModelObject *self, PyObject *args) {
    PyObject *io, *to, *list;
    int attn, wl;
    if (!PyArg_ParseTuple(args, "OOipO!", &io, &to, &attn, &wl, &PyList_Type, &list)) return NULL;
    const llmc_model_config *c = llmc_model_get_config(self->m);
    PyArrayObject *ids, *types, *lo = NULL;
    llmc_hook *h = NULL;
    size_t n = 0;
    if (ids_and_types(io, to, &ids, &types)) goto done;
    const npy_intp T = PyArray_DIM(ids, 0);
    npy_intp dl[2] = {T, (npy_intp)c->vocab};
    if ((wl && !(lo = llmc_py_new_float(2, dl))) || llmc_py_hooks(list, &h, &n)) goto done;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_model_forward_hooked(self->m, PyArray_DATA(ids), types ? PyArray_DATA(types) : NULL, (size_t)T, attn,
                                   lo ? PyArray_DATA(lo) : NULL, h, n);
    Py_END_ALLOW_THREADS
    if (llmc_py_check(st)) Py_CLEAR(lo);
    else if (!lo) {
        Py_INCREF(Py_None);
        lo = (PyArrayObject *)Py_None;
    }
done:
    PyMem_Free(h);
    Py_XDECREF(ids);
    Py_XDECREF(types);
    return (PyObject *)lo;
}

/* readout(x (rows, D)) -> logits (rows, V): the final norm and the unembedding (the logit lens) */
static PyObject *model_readout(ModelObject *self, PyObject *args) {
    PyObject *xo;
    if (!PyArg_ParseTuple(args, "O", &xo)) return NULL;
    const llmc_model_config *c = llmc_model_get_config(self->m);
    PyArrayObject *x = llmc_py_float_array(xo, "x"), *out = NULL;
    if (!x) return NULL;
    if (PyArray_NDIM(x) != 2 || PyArray_DIM(x, 1) != (npy_intp)c->d_model) {
        char sh[128];
        llmc_py_shape_str(x, sh, sizeof sh);
        PyErr_Format(PyExc_ValueError, "x must be (rows, %zu), got shape %s", c->d_model, sh);
        Py_DECREF(x);
        return NULL;
    }
    npy_intp dims[2] = {PyArray_DIM(x, 0), (npy_intp)c->vocab};
    if ((out = llmc_py_new_float(2, dims))) {
        llmc_status st;
        Py_BEGIN_ALLOW_THREADS
        st = llmc_model_readout(self->m, PyArray_DATA(x), (size_t)dims[0], PyArray_DATA(out));
        Py_END_ALLOW_THREADS
        if (llmc_py_check(st)) Py_CLEAR(out);
    }
    Py_DECREF(x);
    return (PyObject *)out;
}

/* act_layout(act) -> (units, width) of a named activation for this model (see llmc.h) */
static PyObject *model_act_layout(ModelObject *self, PyObject *args) {
    int act;
    if (!PyArg_ParseTuple(args, "i", &act)) return NULL;
    size_t U, W;
    if (llmc_py_check(llmc_act_layout(self->m, act, &U, &W))) return NULL;
    return Py_BuildValue("(nn)", (Py_ssize_t)U, (Py_ssize_t)W);
}

/* ---------------------------------------------------------------- batched calls (csrc/batch.c) */
/* (N,) int64 array-like of non-negative counts -> PyMem size_t array (new) or NULL with an exception */
static size_t *sizes_1d(PyObject *o, const char *what, Py_ssize_t N) {
    PyArrayObject *a = llmc_py_int_array(o, what);
    if (!a) return NULL;
    size_t *v = NULL;
    if (PyArray_NDIM(a) != 1 || PyArray_DIM(a, 0) != N) {
        PyErr_Format(PyExc_ValueError, "%s must have %zd entries", what, N);
    } else if ((v = PyMem_Malloc(((size_t)N + 1) * sizeof(size_t)))) {
        for (Py_ssize_t i = 0; i < N; i++) {
            int64_t x = ((const int64_t *)PyArray_DATA(a))[i];
            if (x < 0) {
                PyErr_Format(PyExc_ValueError, "%s[%zd] is negative (%lld)", what, i, (long long)x);
                PyMem_Free(v);
                v = NULL;
                break;
            }
            v[i] = (size_t)x;
        }
    } else {
        PyErr_NoMemory();
    }
    Py_DECREF(a);
    return v;
}

static int session_enter(SessionObject *self);

/* append_batch(sessions: list, ids: packed int64, n: (B,), all_logits) -> logits (B, V), or (sum n, V) */
static PyObject *model_append_batch(ModelObject *self, PyObject *args) {
    PyObject *list, *io, *no;
    int all;
    if (!PyArg_ParseTuple(args, "O!OOp", &PyList_Type, &list, &io, &no, &all)) return NULL;
    const llmc_model_config *c = llmc_model_get_config(self->m);
    const Py_ssize_t B = PyList_GET_SIZE(list);
    PyArrayObject *ids = llmc_py_ids_1d(io, "ids"), *out = NULL;
    size_t *n = NULL;
    llmc_session **ss = NULL;
    if (!ids || !(n = sizes_1d(no, "n", B))) goto done;
    size_t total = 0;
    for (Py_ssize_t i = 0; i < B; i++) total += n[i];
    if (total != (size_t)PyArray_DIM(ids, 0)) {
        PyErr_Format(PyExc_ValueError, "ids holds %zd tokens but n adds up to %zu", (Py_ssize_t)PyArray_DIM(ids, 0),
                     total);
        goto done;
    }
    if (!(ss = PyMem_Malloc(((size_t)B + 1) * sizeof *ss))) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < B; i++) {
        PyObject *it = PyList_GET_ITEM(list, i);
        if (!PyObject_TypeCheck(it, &llmc_py_SessionType)) {
            PyErr_Format(PyExc_TypeError, "sessions[%zd] is a %s, not a session", i, Py_TYPE(it)->tp_name);
            goto done;
        }
        SessionObject *so = (SessionObject *)it;
        if (so->owner != (PyObject *)self) {
            PyErr_Format(PyExc_ValueError, "sessions[%zd] belongs to another model", i);
            goto done;
        }
        if (session_enter(so)) goto done;
        ss[i] = so->s;
    }
    npy_intp dims[2] = {all ? (npy_intp)total : (npy_intp)B, (npy_intp)c->vocab};
    if (!(out = llmc_py_new_float(2, dims)) || model_busy(self)) {
        Py_CLEAR(out);
        goto done;
    }
    llmc_batch *b = self->batch_busy ? NULL : self->batch, *own = NULL;
    if (!b) {
        if (llmc_py_check(llmc_batch_new(self->m, &own))) {
            Py_CLEAR(out);
            goto done;
        }
        if (!self->batch_busy && !self->batch) self->batch = own, own = NULL; /* kept for the next call */
        b = own ? own : self->batch;
    }
    const int mine = b == self->batch;
    if (mine) self->batch_busy = 1;
    for (Py_ssize_t i = 0; i < B; i++) ((SessionObject *)PyList_GET_ITEM(list, i))->busy = 1;
    self->active++;
    llmc_status st;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_batch_append(b, ss, (size_t)B, PyArray_DATA(ids), n, PyArray_DATA(out), all, NULL);
    LLMC_PY_INTERRUPTIBLE_END(pc)
    self->active--;
    for (Py_ssize_t i = 0; i < B; i++) ((SessionObject *)PyList_GET_ITEM(list, i))->busy = 0;
    if (mine) self->batch_busy = 0;
    llmc_batch_free(own);
    if (llmc_py_finish(st, &pc)) Py_CLEAR(out);
done:
    PyMem_Free(ss);
    PyMem_Free(n);
    Py_XDECREF(ids);
    return (PyObject *)out;
}

/* forward_batch(ids packed, type_ids packed | None, lengths (N,), attn, want_logits, want_last, out_rows (N,) | None,
 * rows) -> (logits (rows, V) | None, last (rows, D) | None); rows not written are zero */
static PyObject *model_forward_batch(ModelObject *self, PyObject *args) {
    PyObject *io, *to, *lo, *ro;
    int attn, wl, wlast;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "OOOippOn", &io, &to, &lo, &attn, &wl, &wlast, &ro, &rows)) return NULL;
    const llmc_model_config *c = llmc_model_get_config(self->m);
    PyArrayObject *ids = llmc_py_ids_1d(io, "ids"), *types = NULL, *lg = NULL, *la = NULL;
    PyObject *res = NULL;
    size_t *len = NULL, *orow = NULL;
    if (!ids) return NULL;
    PyArrayObject *la_n = (PyArrayObject *)PyArray_FROM_O(lo);
    if (!la_n) goto done;
    const Py_ssize_t N = PyArray_NDIM(la_n) == 1 ? PyArray_DIM(la_n, 0) : -1;
    Py_DECREF(la_n);
    if (N < 0) {
        PyErr_SetString(PyExc_ValueError, "lengths must be 1-D");
        goto done;
    }
    if (!(len = sizes_1d(lo, "lengths", N))) goto done;
    if (to != Py_None && !(types = llmc_py_ids_1d(to, "token_type_ids"))) goto done;
    size_t total = 0;
    for (Py_ssize_t i = 0; i < N; i++) total += len[i];
    if (total != (size_t)PyArray_DIM(ids, 0) || (types && PyArray_DIM(types, 0) != PyArray_DIM(ids, 0))) {
        PyErr_Format(PyExc_ValueError, "ids (and token_type_ids) must hold the %zu tokens the lengths add up to", total);
        goto done;
    }
    if (ro != Py_None) {
        if (!(orow = sizes_1d(ro, "out_rows", N))) goto done;
        for (Py_ssize_t i = 0; i < N; i++)
            if (orow[i] + len[i] > (size_t)rows) {
                PyErr_Format(PyExc_ValueError, "sequence %zd's rows end past the %zd output rows", i, rows);
                goto done;
            }
    } else if ((size_t)rows != total) {
        PyErr_Format(PyExc_ValueError, "packed output needs %zu rows, got %zd", total, rows);
        goto done;
    }
    npy_intp dl[2] = {(npy_intp)rows, (npy_intp)c->vocab}, dh[2] = {(npy_intp)rows, (npy_intp)c->d_model};
    if ((wl && !(lg = (PyArrayObject *)PyArray_ZEROS(2, dl, NPY_FLOAT32, 0))) ||
        (wlast && !(la = (PyArrayObject *)PyArray_ZEROS(2, dh, NPY_FLOAT32, 0))) || model_busy(self))
        goto done;
    llmc_status st;
    self->active++;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_model_forward_batch(self->m, PyArray_DATA(ids), types ? PyArray_DATA(types) : NULL, len, (size_t)N, attn,
                                  lg ? PyArray_DATA(lg) : NULL, la ? PyArray_DATA(la) : NULL, orow);
    LLMC_PY_INTERRUPTIBLE_END(pc)
    self->active--;
    if (llmc_py_finish(st, &pc)) goto done;
    res = PyTuple_Pack(2, lg ? (PyObject *)lg : Py_None, la ? (PyObject *)la : Py_None);
done:
    PyMem_Free(len);
    PyMem_Free(orow);
    Py_XDECREF(ids);
    Py_XDECREF(types);
    Py_XDECREF(lg);
    Py_XDECREF(la);
    return res;
}

static PyMethodDef model_methods[] = {
    {"forward_hooked", (PyCFunction)model_forward_hooked, METH_VARARGS,
     "forward_hooked(ids, type_ids, attn, want_logits, hooks) -> logits | None"},
    {"readout", (PyCFunction)model_readout, METH_VARARGS, "readout(x) -> lm_head(final_norm(x))"},
    {"act_layout", (PyCFunction)model_act_layout, METH_VARARGS, "act_layout(act) -> (units, width)"},
    {"config", (PyCFunction)model_config, METH_NOARGS, "the parsed configuration"},
    {"forward", (PyCFunction)model_forward, METH_VARARGS, "forward(ids, type_ids, attn, logits, hidden, last)"},
    {"attention_weights", (PyCFunction)model_attention_weights, METH_VARARGS, "attention_weights(ids, type_ids, layer)"},
    {"routing", (PyCFunction)model_routing, METH_VARARGS, "routing(ids) -> (logits, experts, weights) per MoE layer"},
    {"embed", (PyCFunction)model_embed, METH_VARARGS, "embed(ids, type_ids, lengths, pooling, normalize, attn)"},
    {"tensors", (PyCFunction)model_tensors, METH_VARARGS, "tensors(writable=False) -> [(name, view, type, shape)]"},
    {"convert", (PyCFunction)model_convert, METH_VARARGS, "convert(dtype, progress=None)"},
    {"dtype", (PyCFunction)model_dtype, METH_NOARGS, "the recipe of the weights ('' = as stored)"},
    {"session", (PyCFunction)model_session, METH_VARARGS, "session(capacity, overflow, keep_first, attn)"},
    {"append_batch", (PyCFunction)model_append_batch, METH_VARARGS,
     "append_batch(sessions, ids, n, all_logits) -> logits: one batched append to several sessions"},
    {"forward_batch", (PyCFunction)model_forward_batch, METH_VARARGS,
     "forward_batch(ids, type_ids, lengths, attn, logits, last, out_rows, rows) -> (logits, last)"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject llmc_py_ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "llmc._core.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A transformer model in the C core (use llmc.Model).",
    .tp_methods = model_methods,
};

/* ---------------------------------------------------------------- Session */
static void session_dealloc(SessionObject *self) {
    llmc_session_free(self->s);
    PyMem_Free(self->hooks);
    Py_XDECREF(self->hook_refs);
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int session_enter(SessionObject *self) { return llmc_py_enter(self->busy, "session"); }

static PyObject *session_append(SessionObject *self, PyObject *args) {
    PyObject *io;
    if (!PyArg_ParseTuple(args, "O", &io)) return NULL;
    if (session_enter(self)) return NULL;
    PyArrayObject *ids = llmc_py_ids_1d(io, "ids"), *out = NULL;
    if (!ids) return NULL;
    const llmc_model_config *c = llmc_model_get_config(((ModelObject *)self->owner)->m);
    npy_intp dims[1] = {(npy_intp)c->vocab};
    if ((out = llmc_py_new_float(1, dims))) {
        llmc_status st;
        ModelObject *owner = (ModelObject *)self->owner;
        if (model_busy(owner)) {
            Py_CLEAR(out);
        } else {
            self->busy = 1;
            owner->active++;
            LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
            st = llmc_session_append(self->s, PyArray_DATA(ids), (size_t)PyArray_DIM(ids, 0), PyArray_DATA(out));
            LLMC_PY_INTERRUPTIBLE_END(pc)
            owner->active--;
            self->busy = 0;
            if (llmc_py_finish(st, &pc)) Py_CLEAR(out);
        }
    }
    Py_DECREF(ids);
    return (PyObject *)out;
}

static PyObject *session_n_tokens(SessionObject *self, void *closure) {
    (void)closure;
    return PyLong_FromSize_t(llmc_session_n_tokens(self->s));
}

static PyObject *session_tokens(SessionObject *self, PyObject *args) {
    (void)args;
    npy_intp n = (npy_intp)llmc_session_n_tokens(self->s);
    PyObject *a = PyArray_SimpleNew(1, &n, NPY_INT64);
    if (a && n) memcpy(PyArray_DATA((PyArrayObject *)a), llmc_session_tokens(self->s), (size_t)n * sizeof(int64_t));
    return a;
}

static PyObject *session_reset(SessionObject *self, PyObject *args) {
    (void)args;
    if (session_enter(self)) return NULL;
    llmc_session_reset(self->s);
    Py_RETURN_NONE;
}

/* copy_from(other): a memcpy of the live cache, done with the GIL held */
static PyObject *session_copy_from(SessionObject *self, PyObject *args) {
    SessionObject *src;
    if (!PyArg_ParseTuple(args, "O!", &llmc_py_SessionType, &src)) return NULL;
    if (session_enter(self) || session_enter(src)) return NULL;
    if (llmc_py_check(llmc_session_copy(self->s, src->s))) return NULL;
    Py_RETURN_NONE;
}

static PyObject *session_set_attn(SessionObject *self, PyObject *args) {
    int attn;
    if (!PyArg_ParseTuple(args, "i", &attn)) return NULL;
    if (session_enter(self)) return NULL;
    llmc_session_set_attn(self->s, attn);
    Py_RETURN_NONE;
}

/* set_hooks(list): attach interventions (validated in C); [] detaches. The list is kept alive with the session. */
static PyObject *session_set_hooks(SessionObject *self, PyObject *args) {
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    if (session_enter(self)) return NULL;
    llmc_hook *h;
    size_t n;
    if (llmc_py_hooks(list, &h, &n)) return NULL;
    if (llmc_py_check(llmc_session_set_hooks(self->s, h, n))) {
        PyMem_Free(h);
        return NULL;
    }
    PyMem_Free(self->hooks);
    Py_XDECREF(self->hook_refs);
    self->hooks = h;
    if (n) Py_INCREF(list);
    self->hook_refs = n ? list : NULL;
    Py_RETURN_NONE;
}

static PyMethodDef session_methods[] = {
    {"set_hooks", (PyCFunction)session_set_hooks, METH_VARARGS, "set_hooks(hooks): attach interventions"},
    {"append", (PyCFunction)session_append, METH_VARARGS, "append(ids) -> logits of the last token"},
    {"tokens", (PyCFunction)session_tokens, METH_NOARGS, "the tokens in the cache"},
    {"reset", (PyCFunction)session_reset, METH_NOARGS, "forget every token"},
    {"set_attn", (PyCFunction)session_set_attn, METH_VARARGS, "set_attn(impl)"},
    {"copy_from", (PyCFunction)session_copy_from, METH_VARARGS, "copy_from(other): take other's cached state"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef session_getset[] = {
    {"n_tokens", (getter)session_n_tokens, NULL, "tokens in the cache", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject llmc_py_SessionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "llmc._core.Session",
    .tp_basicsize = sizeof(SessionObject),
    .tp_dealloc = (destructor)session_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A KV-cached decoding state (use llmc.Model.session).",
    .tp_methods = session_methods,
    .tp_getset = session_getset,
};

PyMethodDef llmc_py_model_methods[] = {
    {"model_load", py_model_load, METH_VARARGS, "model_load(path, dtype=None, progress=None) -> Model"},
    {"model_load_gguf", py_model_load_gguf, METH_VARARGS, "model_load_gguf(path, dtype=None, progress=None) -> Model"},
    {"model_init", py_model_init, METH_VARARGS, "model_init(config_json, seed) -> Model"},
    {"safetensors_info", py_safetensors_info, METH_VARARGS,
     "safetensors_info(path) -> {name: (dtype, shape)}: the validated header of a .safetensors file"},
    {"safetensors_read", py_safetensors_read, METH_VARARGS,
     "safetensors_read(path, name) -> float32 ndarray: one tensor converted to float32"},
    {NULL, NULL, 0, NULL},
};

