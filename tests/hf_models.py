"""Small random-weight Hugging Face models: the oracles of the model tests (test_model, test_model_quant,
test_generate, test_batch, ...), built in one place from plain config dicts and saved as checkpoint folders.

A config is a dict with its `model_type` and the transformers config fields, e.g.
`dict(model_type="llama", vocab_size=97, hidden_size=48, ...)`, so the same dict also feeds `llmc.Model.init`.
torch and transformers are imported lazily (conftest.lazy_import): importing this module needs neither, and a test
that builds a model skips with the reason when they are absent (`pip install ".[test-light]"`)."""
from conftest import lazy_import

torch = lazy_import("torch")
transformers = lazy_import("transformers")


def hf_config(spec: dict):
    """The transformers config of `spec` (a dict with model_type), with eager attention (attention weights come out,
    and the math is the plain softmax(QK^T)V that llmc is compared with)."""
    kw = dict(spec)
    cfg = transformers.AutoConfig.for_model(kw.pop("model_type"), **kw)
    cfg._attn_implementation = "eager"
    return cfg


def hf_model(spec: dict, *, seed: int = 0, perturb: float = 0.0, eos: int | None = None):
    """A transformers model of `spec` with random weights drawn after torch.manual_seed(seed): BertModel for bert,
    AutoModelForCausalLM otherwise. perturb > 0 adds N(0, perturb^2) noise to every parameter (so biases, norm
    weights and every block matter); eos doubles that token's output-embedding row (so some sequences end on it)."""
    cfg = hf_config(spec)
    torch.manual_seed(seed)
    if spec["model_type"] == "bert":
        m = transformers.BertModel(cfg)
    else:
        m = transformers.AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        if perturb:
            for p in m.parameters():
                p.add_(torch.randn_like(p) * perturb)
        if eos is not None:
            m.get_output_embeddings().weight[eos] *= 2.0
    return m.eval()


def checkpoints(tmp_path_factory, specs: dict, **build):
    """name -> (transformers model, the folder it was saved to), each built (hf_model(specs[name], **build)) and
    saved on first use, then cached: return it from a module-scoped fixture."""
    cache = {}

    def get(name):
        if name not in cache:
            m = hf_model(specs[name], **build)
            d = tmp_path_factory.mktemp(name)
            m.save_pretrained(d)
            cache[name] = (m, d)
        return cache[name]

    return get


def model_pairs(tmp_path_factory, specs: dict, **build):
    """name -> (transformers model, llmc.Model loaded from its checkpoint), cached like checkpoints()."""
    import llmc

    folders = checkpoints(tmp_path_factory, specs, **build)
    cache = {}

    def get(name):
        if name not in cache:
            m, d = folders(name)
            cache[name] = (m, llmc.Model.load(d))
        return cache[name]

    return get


def hf_generate(m, prompt: list[int], eos: int, **kw) -> list[list[int]]:
    """transformers' generate from one prompt (greedy unless kw asks otherwise; eos also pads): the new ids of each
    returned sequence, cut after the first eos (kept), as llmc's generate returns them."""
    with torch.no_grad():
        out = m.generate(torch.tensor([prompt]), pad_token_id=eos, eos_token_id=eos, do_sample=False, **kw)
    rows = []
    for row in out[:, len(prompt):].tolist():
        rows.append(row[: row.index(eos) + 1] if eos in row else row)
    return rows
