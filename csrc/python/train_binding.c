/* train_binding.c: llmc._core.Trainer, owning an llmc_trainer (train.c); weights and gradients stay NumPy arrays
 * owned by Python (zero-copy: the C core writes the gradients straight into them). */
#include "binding.h"

typedef struct {
    PyObject_HEAD
    llmc_trainer *t;
    llmc_train_config c;
    size_t n_tensors;
    int busy; /* set while step runs without the GIL: a second thread gets an error, not a race on the activations */
} TrainerObject;

static int trainer_enter(TrainerObject *self) { return llmc_py_enter(self->busy, "Trainer"); }

static int Trainer_init(TrainerObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"arch", "n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab",
                            "n_positions", "eps", "rope_theta", "tied", "batch", "seq_len", "window", "qkv_bias",
                            "qk_norm", "rope_llama3", "rope_factor", "rope_low_freq_factor", "rope_high_freq_factor",
                            "rope_original_context", "rope_divisors", "precision", "n_experts", "n_experts_used",
                            "moe_d_ff", "shared_d_ff", "decoder_sparse_step", "norm_topk_prob", "moe_names",
                            "aux_loss_coef", "mlp_only_layers", NULL};
    llmc_train_config c = {0};
    Py_ssize_t v[9], B, T, window = 0, orig = 0, moe[5] = {0, 0, 0, 0, 1};
    PyObject *div_obj = Py_None, *mlp_only = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "innnnnnnnffpnn|$npppfffnOinnnnnppfO", names, &c.arch, &v[0], &v[1],
                                     &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &c.eps, &c.rope_theta, &c.tied, &B, &T,
                                     &window, &c.qkv_bias, &c.qk_norm, &c.rope.llama3, &c.rope.factor,
                                     &c.rope.low_freq_factor, &c.rope.high_freq_factor, &orig, &div_obj,
                                     &c.precision, &moe[0], &moe[1], &moe[2], &moe[3], &moe[4], &c.norm_topk_prob,
                                     &c.moe_names, &c.aux_loss_coef, &mlp_only))
        return -1;
    for (int i = 0; i < 5; i++)
        if (moe[i] < 0) {
            PyErr_Format(PyExc_ValueError, "%s must be >= 0, got %zd", names[24 + i], moe[i]);
            return -1;
        }
    c.n_experts = (size_t)moe[0]; c.n_experts_used = (size_t)moe[1]; c.moe_d_ff = (size_t)moe[2];
    c.shared_d_ff = (size_t)moe[3]; c.decoder_sparse_step = (size_t)moe[4];
    if (mlp_only != Py_None) { /* layer indices that keep a dense MLP */
        PyObject *seq = PySequence_Fast(mlp_only, "mlp_only_layers must be a sequence of layer indices");
        if (!seq) return -1;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            Py_ssize_t l = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i), PyExc_OverflowError);
            if (l == -1 && PyErr_Occurred()) {
                Py_DECREF(seq);
                return -1;
            }
            if (l < 0 || l >= LLMC_MOE_MAX_LAYERS) {
                Py_DECREF(seq);
                PyErr_Format(PyExc_ValueError, "mlp_only_layers: layer %zd outside [0, %d)", l, LLMC_MOE_MAX_LAYERS);
                return -1;
            }
            c.mlp_only[l / 64] |= (uint64_t)1 << (l % 64);
        }
        Py_DECREF(seq);
    }
    for (int i = 0; i < 8; i++)
        if (v[i] < 0) {
            PyErr_Format(PyExc_ValueError, "%s must be >= 0, got %zd", names[i + 1], v[i]);
            return -1;
        }
    if (B < 1 || T < 1) {
        PyErr_Format(PyExc_ValueError, "batch and seq_len must be >= 1, got %zd and %zd", B, T);
        return -1;
    }
    if (window < 0 || orig < 0) {
        PyErr_Format(PyExc_ValueError, "window and rope_original_context must be >= 0, got %zd and %zd", window, orig);
        return -1;
    }
    c.n_layers = (size_t)v[0]; c.d_model = (size_t)v[1]; c.n_heads = (size_t)v[2]; c.n_kv_heads = (size_t)v[3];
    c.head_dim = (size_t)v[4]; c.d_ff = (size_t)v[5]; c.vocab = (size_t)v[6]; c.n_positions = (size_t)v[7];
    c.window = (size_t)window;
    c.rope.original_context = (size_t)orig;
    PyArrayObject *div = NULL;
    if (div_obj != Py_None) { /* RoPE frequency divisors: float32 (head_dim / 2,) */
        div = (PyArrayObject *)PyArray_FROM_OTF(div_obj, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY);
        if (!div) return -1;
        if (PyArray_NDIM(div) != 1 || (size_t)PyArray_DIM(div, 0) != c.head_dim / 2) {
            PyErr_Format(PyExc_ValueError, "rope_divisors must have shape (%zu,) (head_dim / 2)", c.head_dim / 2);
            Py_DECREF(div);
            return -1;
        }
        c.rope_divisors = PyArray_DATA(div);
    }
    if (trainer_enter(self)) {
        Py_XDECREF(div);
        return -1;
    }
    llmc_trainer_free(self->t);
    self->t = NULL;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_trainer_create(&c, (size_t)B, (size_t)T, &self->t);
    Py_END_ALLOW_THREADS
    Py_XDECREF(div);
    c.rope_divisors = NULL; /* the trainer copied what it needs */
    if (llmc_py_check(st)) return -1;
    self->c = c;
    self->n_tensors = llmc_train_n_tensors(&c);
    return 0;
}

static void Trainer_dealloc(TrainerObject *self) {
    llmc_trainer_free(self->t);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* [(name, shape), ...] in the order step() takes tensors */
static PyObject *Trainer_tensors(TrainerObject *self, PyObject *noargs) {
    (void)noargs;
    PyObject *list = PyList_New((Py_ssize_t)self->n_tensors);
    for (size_t i = 0; list && i < self->n_tensors; i++) {
        char name[256];
        size_t shape[2];
        int nd;
        if (llmc_py_check(llmc_train_tensor_info(&self->c, i, name, sizeof name, shape, &nd))) {
            Py_CLEAR(list);
            break;
        }
        PyObject *item = nd == 2 ? Py_BuildValue("(s(nn))", name, (Py_ssize_t)shape[0], (Py_ssize_t)shape[1])
                                 : Py_BuildValue("(s(n))", name, (Py_ssize_t)shape[0]);
        if (!item) { Py_CLEAR(list); break; }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

/* Fill ptrs from a list of arrays that must be writable float32 C-contiguous with the exact shapes. */
static int gather(TrainerObject *self, PyObject *seq, const char *what, float **ptrs) {
    if (!PyList_Check(seq) || (size_t)PyList_GET_SIZE(seq) != self->n_tensors) {
        PyErr_Format(PyExc_ValueError, "%s must be a list of %zu arrays", what, self->n_tensors);
        return -1;
    }
    for (size_t i = 0; i < self->n_tensors; i++) {
        PyObject *o = PyList_GET_ITEM(seq, (Py_ssize_t)i);
        char name[256];
        size_t shape[2];
        int nd;
        llmc_train_tensor_info(&self->c, i, name, sizeof name, shape, &nd);
        if (!PyArray_Check(o)) {
            PyErr_Format(PyExc_TypeError, "%s[%zu] (%s) must be a NumPy array", what, i, name);
            return -1;
        }
        PyArrayObject *a = (PyArrayObject *)o;
        if (PyArray_TYPE(a) != NPY_FLOAT32 || !PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISWRITEABLE(a) ||
            !PyArray_ISALIGNED(a)) {
            PyErr_Format(PyExc_TypeError, "%s[%zu] (%s) must be a writable, aligned, C-contiguous float32 array", what,
                         i, name);
            return -1;
        }
        if (PyArray_NDIM(a) != nd || (size_t)PyArray_DIM(a, 0) != shape[0] ||
            (nd == 2 && (size_t)PyArray_DIM(a, 1) != shape[1])) {
            char s[128];
            llmc_py_shape_str(a, s, sizeof s);
            if (nd == 2)
                PyErr_Format(PyExc_ValueError, "%s %s must have shape (%zu, %zu), got %s", what, name, shape[0], shape[1], s);
            else
                PyErr_Format(PyExc_ValueError, "%s %s must have shape (%zu,), got %s", what, name, shape[0], s);
            return -1;
        }
        ptrs[i] = PyArray_DATA(a);
    }
    return 0;
}

/* step(params, grads_or_None, inputs (B, T), targets (B, T), grad_scale) -> mean loss */
static PyObject *Trainer_step(TrainerObject *self, PyObject *args) {
    PyObject *po, *go, *io, *to, *res = NULL;
    float scale;
    if (!PyArg_ParseTuple(args, "OOOOf", &po, &go, &io, &to, &scale)) return NULL;
    float **P = PyMem_Calloc(2 * self->n_tensors + 1, sizeof(float *));
    if (!P) return PyErr_NoMemory();
    float **G = P + self->n_tensors;
    PyArrayObject *in = NULL, *tg = NULL;
    if (gather(self, po, "params", P) || (go != Py_None && gather(self, go, "grads", G))) goto done;
    if (!(in = llmc_py_int_array(io, "inputs")) || !(tg = llmc_py_int_array(to, "targets"))) goto done;
    if (PyArray_NDIM(in) != 2 || PyArray_NDIM(tg) != 2 || PyArray_DIM(in, 0) != PyArray_DIM(tg, 0) ||
        PyArray_DIM(in, 1) != PyArray_DIM(tg, 1)) {
        char s1[128], s2[128];
        llmc_py_shape_str(in, s1, sizeof s1);
        llmc_py_shape_str(tg, s2, sizeof s2);
        PyErr_Format(PyExc_ValueError, "inputs and targets must both be (B, T), got %s and %s", s1, s2);
        goto done;
    }
    double loss = 0.0;
    llmc_status st;
    if (trainer_enter(self)) goto done;
    self->busy = 1;
    LLMC_PY_INTERRUPTIBLE_BEGIN(pc)
    st = llmc_trainer_step(self->t, P, go == Py_None ? NULL : G, PyArray_DATA(in), PyArray_DATA(tg),
                           (size_t)PyArray_DIM(in, 0), (size_t)PyArray_DIM(in, 1), scale, &loss);
    LLMC_PY_INTERRUPTIBLE_END(pc)
    self->busy = 0;
    if (!llmc_py_finish(st, &pc)) res = PyFloat_FromDouble(loss);
done:
    Py_XDECREF(in);
    Py_XDECREF(tg);
    PyMem_Free(P);
    return res;
}

static PyMethodDef Trainer_methods[] = {
    {"tensors", (PyCFunction)Trainer_tensors, METH_NOARGS, "tensors() -> [(name, shape)] in step() order"},
    {"step", (PyCFunction)Trainer_step, METH_VARARGS, "step(params, grads_or_None, inputs, targets, grad_scale) -> loss"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject llmc_py_TrainerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "llmc._core.Trainer",
    .tp_basicsize = sizeof(TrainerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Trainer(arch, n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab, n_positions, eps, "
              "rope_theta, tied, batch, seq_len, *, window=0, qkv_bias=False, qk_norm=False, rope_llama3=False, "
              "rope_factor=0, rope_low_freq_factor=0, rope_high_freq_factor=0, rope_original_context=0, "
              "rope_divisors=None, precision=0)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Trainer_init,
    .tp_dealloc = (destructor)Trainer_dealloc,
    .tp_methods = Trainer_methods,
};

static PyObject *py_random_starts(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long seed, step;
    Py_ssize_t n, max_start;
    if (!PyArg_ParseTuple(args, "KKnn", &seed, &step, &n, &max_start)) return NULL;
    if (n < 0 || max_start < 0) {
        PyErr_SetString(PyExc_ValueError, "n and max_start must be >= 0");
        return NULL;
    }
    npy_intp dim = n;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, &dim, NPY_INT64);
    if (out) llmc_random_starts(seed, step, (size_t)n, (size_t)max_start, PyArray_DATA(out));
    return (PyObject *)out;
}

PyMethodDef llmc_py_train_methods[] = {
    {"random_starts", py_random_starts, METH_VARARGS, "random_starts(seed, step, n, max_start) -> int64 (n,)"},
    {NULL, NULL, 0, NULL},
};
