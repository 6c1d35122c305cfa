/* seq2seq_binding.c: llmc._core's encoder-decoder types: Seq2Seq (a T5 / BART model) and Seq2SeqDecoder (the
 * decoding state over one encoded source: cross K/V + the self-attention caches of n beams). */
#include <string.h>

#include "binding.h"

typedef struct {
    PyObject_HEAD
    llmc_s2s *m;
} S2SObject;

typedef struct {
    PyObject_HEAD
    llmc_s2s_dec *d;
    PyObject *owner; /* the S2SObject: keeps the weights alive */
    int busy;        /* set while a call runs without the GIL: a second thread gets an error, not a race */
    size_t B, T_in;  /* beams and source tokens */
} DecObject;

static void s2s_dealloc(S2SObject *self) {
    llmc_s2s_free(self->m);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* a new Seq2Seq owning m (freed if that fails); NULL stays NULL, with the caller's exception */
static PyObject *wrap(llmc_s2s *m) {
    if (!m) return NULL;
    S2SObject *o = PyObject_New(S2SObject, &llmc_py_Seq2SeqType);
    if (!o) {
        llmc_s2s_free(m);
        return NULL;
    }
    o->m = m;
    return (PyObject *)o;
}

/* the core's constructors, typed for the shared entry points (handle.c); seq2seq loading reports no progress */
static llmc_status load_dir(const char *path, const char *dtype, llmc_progress_fn fn, void *ud, void **out) {
    (void)fn, (void)ud;
    llmc_s2s *m = NULL;
    llmc_status st = llmc_s2s_load_as(path, dtype, &m);
    *out = m;
    return st;
}

static llmc_status init_random(const char *json, size_t len, uint64_t seed, void **out) {
    llmc_s2s *m = NULL;
    llmc_status st = llmc_s2s_init(json, len, seed, &m);
    *out = m;
    return st;
}

static void free_s2s(void *m) { llmc_s2s_free(m); }

/* s2s_load(path, dtype=None) -> Seq2Seq */
static PyObject *py_s2s_load(PyObject *self, PyObject *args) {
    (void)self;
    return wrap(llmc_py_load(args, load_dir, free_s2s, 0));
}

/* s2s_init(config_json, seed) -> Seq2Seq */
static PyObject *py_s2s_init(PyObject *self, PyObject *args) {
    (void)self;
    return wrap(llmc_py_init_random(args, init_random));
}

/* t5_bucket(rel, bidirectional, num_buckets, max_distance) -> int */
static PyObject *py_t5_bucket(PyObject *self, PyObject *args) {
    (void)self;
    long long rel;
    int bi;
    Py_ssize_t nb, md;
    if (!PyArg_ParseTuple(args, "Lpnn", &rel, &bi, &nb, &md)) return NULL;
    if (nb < 2 || md < 1) {
        PyErr_Format(PyExc_ValueError, "num_buckets must be >= 2 and max_distance >= 1, got %zd and %zd", nb, md);
        return NULL;
    }
    return PyLong_FromLongLong((long long)llmc_t5_bucket((int64_t)rel, bi, (size_t)nb, (size_t)md));
}

static PyObject *s2s_config(S2SObject *self, PyObject *args) {
    (void)args;
    const llmc_s2s_config *c = llmc_s2s_get_config(self->m);
    static const char *const acts[] = {"relu", "gelu", "gelu_new", "silu"};
    return Py_BuildValue("{s:s,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:f,s:s,s:O,s:f,s:f,s:O}", "arch",
                         c->arch == LLMC_S2S_T5 ? "t5" : "bart", "vocab_size", (Py_ssize_t)c->vocab, "d_model",
                         (Py_ssize_t)c->d_model, "encoder_layers", (Py_ssize_t)c->enc_layers, "encoder_heads",
                         (Py_ssize_t)c->enc_heads, "encoder_head_dim", (Py_ssize_t)c->enc_head_dim, "encoder_ffn",
                         (Py_ssize_t)c->enc_ff, "decoder_layers", (Py_ssize_t)c->dec_layers, "decoder_heads",
                         (Py_ssize_t)c->dec_heads, "decoder_head_dim", (Py_ssize_t)c->dec_head_dim, "decoder_ffn",
                         (Py_ssize_t)c->dec_ff, "max_positions", (Py_ssize_t)c->max_positions, "num_buckets",
                         (Py_ssize_t)c->num_buckets, "max_distance", (Py_ssize_t)c->max_distance, "eps",
                         (double)c->eps, "activation", acts[c->act & 3], "gated", c->gated ? Py_True : Py_False,
                         "embed_scale", (double)c->embed_scale, "out_scale", (double)c->out_scale, "untied_head",
                         c->untied_head ? Py_True : Py_False);
}

/* the result of a call that may also have filled attention probabilities: out, or (out, probs) */
static PyObject *with_probs(PyArrayObject *out, PyArrayObject *probs) {
    if (probs) return PyTuple_Pack(2, (PyObject *)out, (PyObject *)probs);
    Py_INCREF(out);
    return (PyObject *)out;
}

/* encode(ids, attn, probs_layer=-1) -> states (T, D), or (states, probs (H, T, T)) when probs_layer >= 0 */
static PyObject *s2s_encode(S2SObject *self, PyObject *args) {
    PyObject *io;
    int attn;
    Py_ssize_t layer = -1;
    if (!PyArg_ParseTuple(args, "Oi|n", &io, &attn, &layer)) return NULL;
    const llmc_s2s_config *c = llmc_s2s_get_config(self->m);
    PyArrayObject *ids = llmc_py_ids_1d(io, "source ids"), *out = NULL, *probs = NULL;
    if (!ids) return NULL;
    PyObject *res = NULL;
    const npy_intp T = PyArray_DIM(ids, 0);
    npy_intp dims[2] = {T, (npy_intp)c->d_model}, pd[3] = {(npy_intp)c->enc_heads, T, T};
    if (layer >= 0 && (size_t)layer >= c->enc_layers) {
        PyErr_Format(PyExc_ValueError, "layer %zd out of range: the encoder has %zu layers", layer, c->enc_layers);
        goto done;
    }
    if (!(out = llmc_py_new_float(2, dims)) || (layer >= 0 && !(probs = llmc_py_new_float(3, pd)))) goto done;
    llmc_status st;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_s2s_encode(self->m, PyArray_DATA(ids), (size_t)T, attn, PyArray_DATA(out), layer < 0 ? 0 : (size_t)layer,
                         probs ? PyArray_DATA(probs) : NULL);
    LLMC_PY_INTERRUPTIBLE_END(pc)
    if (llmc_py_finish(st, &pc)) goto done;
    res = with_probs(out, probs);
done:
    Py_DECREF(ids);
    Py_XDECREF(out);
    Py_XDECREF(probs);
    return res;
}

static PyObject *s2s_encoder_runs(S2SObject *self, PyObject *args) {
    (void)args;
    return PyLong_FromUnsignedLongLong(llmc_s2s_encoder_runs(self->m));
}

/* tensors() -> [(name, type name, shape)] */
static PyObject *s2s_tensors(S2SObject *self, PyObject *args) {
    (void)args;
    const size_t n = llmc_s2s_n_tensors(self->m);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        llmc_tensor_view v;
        if (llmc_py_check(llmc_s2s_tensor_typed(self->m, i, &v))) {
            Py_CLEAR(list);
            break;
        }
        PyObject *shape = llmc_py_view_shape(&v);
        PyObject *item = shape ? Py_BuildValue("(ssN)", v.name, llmc_type_name(v.type), shape) : NULL;
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

/* decoder(states (T_in, D), n_beams, capacity, attn) -> Seq2SeqDecoder */
static PyObject *s2s_decoder(S2SObject *self, PyObject *args) {
    PyObject *eo;
    Py_ssize_t beams, cap;
    int attn;
    if (!PyArg_ParseTuple(args, "Onni", &eo, &beams, &cap, &attn)) return NULL;
    if (beams < 1 || cap < 1) {
        PyErr_Format(PyExc_ValueError, "n_beams and capacity must be >= 1, got %zd and %zd", beams, cap);
        return NULL;
    }
    const llmc_s2s_config *c = llmc_s2s_get_config(self->m);
    PyArrayObject *enc = llmc_py_float_array(eo, "encoder states");
    if (!enc) return NULL;
    if (PyArray_NDIM(enc) != 2 || PyArray_DIM(enc, 1) != (npy_intp)c->d_model) {
        char sh[128];
        llmc_py_shape_str(enc, sh, sizeof sh);
        PyErr_Format(PyExc_ValueError, "encoder states must be (T_in, %zu), got shape %s", c->d_model, sh);
        Py_DECREF(enc);
        return NULL;
    }
    llmc_s2s_dec *d = NULL;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_s2s_dec_new(self->m, PyArray_DATA(enc), (size_t)PyArray_DIM(enc, 0), (size_t)beams, (size_t)cap, attn,
                          &d);
    Py_END_ALLOW_THREADS
    const size_t T_in = (size_t)PyArray_DIM(enc, 0);
    Py_DECREF(enc);
    if (llmc_py_check(st)) return NULL;
    DecObject *o = PyObject_New(DecObject, &llmc_py_Seq2SeqDecoderType);
    if (!o) {
        llmc_s2s_dec_free(d);
        return NULL;
    }
    o->d = d;
    o->busy = 0;
    o->B = (size_t)beams;
    o->T_in = T_in;
    Py_INCREF(self);
    o->owner = (PyObject *)self;
    return (PyObject *)o;
}

static PyMethodDef s2s_methods[] = {
    {"config", (PyCFunction)s2s_config, METH_NOARGS, "the parsed configuration"},
    {"encode", (PyCFunction)s2s_encode, METH_VARARGS, "encode(ids, attn, probs_layer=-1) -> states [, probs]"},
    {"encoder_runs", (PyCFunction)s2s_encoder_runs, METH_NOARGS, "how many times the encoder has run"},
    {"tensors", (PyCFunction)s2s_tensors, METH_NOARGS, "tensors() -> [(name, type, shape)]"},
    {"decoder", (PyCFunction)s2s_decoder, METH_VARARGS, "decoder(states, n_beams, capacity, attn) -> decoder"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject llmc_py_Seq2SeqType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "llmc._core.Seq2Seq",
    .tp_basicsize = sizeof(S2SObject),
    .tp_dealloc = (destructor)s2s_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An encoder-decoder model in the C core (use llmc.Seq2SeqModel).",
    .tp_methods = s2s_methods,
};

/* ---------------------------------------------------------------- decoder */
static void dec_dealloc(DecObject *self) {
    llmc_s2s_dec_free(self->d);
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int dec_enter(DecObject *self) { return llmc_py_enter(self->busy, "decoder"); }

/* append(ids (B, T), all_logits, probs_layer=-1) -> logits (B, T, V) | (B, V) [, cross probs (H, T, T_in)] */
static PyObject *dec_append(DecObject *self, PyObject *args) {
    PyObject *io;
    int all;
    Py_ssize_t layer = -1;
    if (!PyArg_ParseTuple(args, "Op|n", &io, &all, &layer)) return NULL;
    if (dec_enter(self)) return NULL;
    const llmc_s2s_config *c = llmc_s2s_get_config(((S2SObject *)self->owner)->m);
    PyArrayObject *ids = llmc_py_int_array(io, "decoder ids"), *out = NULL, *probs = NULL;
    if (!ids) return NULL;
    PyObject *res = NULL;
    if (PyArray_NDIM(ids) != 2) {
        char sh[128];
        llmc_py_shape_str(ids, sh, sizeof sh);
        PyErr_Format(PyExc_ValueError, "decoder ids must be (n_beams, T), got shape %s", sh);
        goto done;
    }
    const npy_intp B = PyArray_DIM(ids, 0), T = PyArray_DIM(ids, 1);
    if ((size_t)B != self->B) {
        PyErr_Format(PyExc_ValueError, "decoder ids have %zd rows for a decoder of %zu beams", (Py_ssize_t)B, self->B);
        goto done;
    }
    npy_intp d3[3] = {B, T, (npy_intp)c->vocab}, d2[2] = {B, (npy_intp)c->vocab},
             pd[3] = {(npy_intp)c->dec_heads, T, (npy_intp)self->T_in};
    if (layer >= 0 && (B != 1 || (size_t)layer >= c->dec_layers)) {
        PyErr_Format(PyExc_ValueError, "cross-attention weights need one beam and a layer in [0, %zu), got layer %zd",
                     c->dec_layers, layer);
        goto done;
    }
    if (!(out = all ? llmc_py_new_float(3, d3) : llmc_py_new_float(2, d2)) ||
        (layer >= 0 && !(probs = llmc_py_new_float(3, pd))))
        goto done;
    llmc_status st;
    self->busy = 1;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_s2s_dec_append(self->d, PyArray_DATA(ids), (size_t)T, PyArray_DATA(out), all,
                             layer < 0 ? 0 : (size_t)layer, probs ? PyArray_DATA(probs) : NULL);
    LLMC_PY_INTERRUPTIBLE_END(pc)
    self->busy = 0;
    if (llmc_py_finish(st, &pc)) goto done;
    res = with_probs(out, probs);
done:
    Py_DECREF(ids);
    Py_XDECREF(out);
    Py_XDECREF(probs);
    return res;
}

/* reorder(parents (B,)): beam i continues beam parents[i] */
static PyObject *dec_reorder(DecObject *self, PyObject *args) {
    PyObject *po;
    if (!PyArg_ParseTuple(args, "O", &po)) return NULL;
    if (dec_enter(self)) return NULL;
    PyArrayObject *p = llmc_py_ids_1d(po, "parents");
    if (!p) return NULL;
    llmc_status st;
    if ((size_t)PyArray_DIM(p, 0) != self->B) {
        PyErr_Format(PyExc_ValueError, "parents has %zd entries for %zu beams", (Py_ssize_t)PyArray_DIM(p, 0),
                     self->B);
        Py_DECREF(p);
        return NULL;
    }
    st = llmc_s2s_dec_reorder(self->d, PyArray_DATA(p));
    Py_DECREF(p);
    if (llmc_py_check(st)) return NULL;
    Py_RETURN_NONE;
}

static PyObject *dec_reset(DecObject *self, PyObject *args) {
    (void)args;
    if (dec_enter(self)) return NULL;
    llmc_s2s_dec_reset(self->d);
    Py_RETURN_NONE;
}

static PyObject *dec_n_tokens(DecObject *self, void *closure) {
    (void)closure;
    return PyLong_FromSize_t(llmc_s2s_dec_n_tokens(self->d));
}

static PyMethodDef dec_methods[] = {
    {"append", (PyCFunction)dec_append, METH_VARARGS, "append(ids (B, T), all_logits, probs_layer=-1) -> logits"},
    {"reorder", (PyCFunction)dec_reorder, METH_VARARGS, "reorder(parents): beam i continues beam parents[i]"},
    {"reset", (PyCFunction)dec_reset, METH_NOARGS, "forget the decoder tokens (the source is kept)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef dec_getset[] = {
    {"n_tokens", (getter)dec_n_tokens, NULL, "decoder tokens cached per beam", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject llmc_py_Seq2SeqDecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "llmc._core.Seq2SeqDecoder",
    .tp_basicsize = sizeof(DecObject),
    .tp_dealloc = (destructor)dec_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Decoding state over one encoded source (use llmc.Seq2SeqModel).",
    .tp_methods = dec_methods,
    .tp_getset = dec_getset,
};

PyMethodDef llmc_py_seq2seq_methods[] = {
    {"s2s_load", py_s2s_load, METH_VARARGS, "s2s_load(path, dtype=None) -> Seq2Seq (t5 / bart folder)"},
    {"s2s_init", py_s2s_init, METH_VARARGS, "s2s_init(config_json, seed) -> Seq2Seq with random weights"},
    {"t5_bucket", py_t5_bucket, METH_VARARGS, "t5_bucket(rel, bidirectional, num_buckets, max_distance) -> int"},
    {NULL, NULL, 0, NULL},
};
