"""Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/): small valid files of each format, made by
llmc itself and by hand. Run from the repository root after building llmc in place: python fuzz/make_corpus.py.
Crashes the fuzzer finds are added beside these seeds as regression files (fuzz/corpus/<target>/crash-*)."""
import json
import os
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np  # noqa: E402

import llmc  # noqa: E402
import llmc.data  # noqa: E402

C = Path(__file__).resolve().parent / "corpus"


def put(target, name, data):
    d = C / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


# ---- JSON
put("json", "object.json", '{"a": [1, -2.5e-3, true, false, null], "b": {"c": "x\\u00e9\\ud83d\\ude00"}, "": ""}')
put("json", "nested.json", "[[[[[[{}]]]]]]")
put("json", "numbers.json", "[0, -0, 1e308, -1e-308, 123456789012345678901234567890, 0.1, 9007199254740993]")
put("json", "strings.json", '["\\n\\t\\"\\\\\\/\\b\\f\\r", "ünï 中文 🙂", "\\u0000"]')

# ---- config.json
CFGS = {
    "llama": dict(model_type="llama", vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32, rms_norm_eps=1e-6,
                  rope_theta=10000.0, tie_word_embeddings=False, hidden_act="silu"),
    "llama3": dict(model_type="llama", vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                   num_attention_heads=4, max_position_embeddings=32,
                   rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                     original_max_position_embeddings=16)),
    "gpt2": dict(model_type="gpt2", vocab_size=64, n_embd=32, n_layer=1, n_head=4, n_positions=32,
                 activation_function="gelu_new", layer_norm_epsilon=1e-5),
    "bert": dict(model_type="bert", vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                 intermediate_size=48, max_position_embeddings=32, type_vocab_size=2, hidden_act="gelu"),
    "mistral": dict(architectures=["MistralForCausalLM"], vocab_size=64, hidden_size=32, intermediate_size=48,
                    num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=32,
                    sliding_window=8),
    "qwen3": dict(model_type="qwen3", vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=32,
                  rope_parameters=dict(rope_theta=1e6, rope_type="default")),
}
for name, cfg in CFGS.items():
    put("config", f"{name}.json", json.dumps(cfg, indent=1))

# ---- safetensors
def safetensors(tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dtype, arr) in tensors.items():
        b = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


rng = np.random.default_rng(0)
put("safetensors", "f32.safetensors", safetensors({"w": ("F32", rng.normal(size=(3, 4)).astype("<f4")),
                                                  "b": ("F32", np.zeros(4, "<f4"))}))
put("safetensors", "f16_bf16.safetensors", safetensors({
    "h": ("F16", rng.normal(size=(2, 5)).astype("<f2")),
    "bf": ("BF16", (rng.normal(size=(4,)).astype("<f4").view("<u4") >> 16).astype("<u2")),
    "e": ("F32", np.zeros((0, 3), "<f4"))}))

# ---- tokenizers: a small trained byte-level BPE, as tokenizer.json and as .tiktoken
text = ("In the beginning God created the heaven and the earth. And the earth was without form, and void; "
        "and darkness was upon the face of the deep. 12345 ünïcødé 中文 🙂\n") * 8
tok = llmc.Tokenizer.train(text, 300, special_tokens=["<|endoftext|>"], progress=False)
tmp = C / "tmp.json"
tok.save(tmp)
put("tokenizer_json", "bpe_bytelevel.json", tmp.read_bytes())
os.unlink(tmp)
tmp = C / "tmp.tiktoken"
tok.save(tmp)
put("tiktoken", "small.tiktoken", tmp.read_bytes())
os.unlink(tmp)
put("tokenizer_json", "wordpiece.json", json.dumps({
    "normalizer": {"type": "BertNormalizer", "lowercase": True},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100,
              "vocab": {t: i for i, t in enumerate(["[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", "it", "'",
                                                    "!", "2024", ":", "un", "##ic", "##ode"])}},
    "added_tokens": [{"id": 1, "content": "[CLS]", "special": True}, {"id": 2, "content": "[SEP]", "special": True}],
}))
put("tokenizer_json", "metaspace_bytefallback.json", json.dumps({
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                 {"type": "ByteFallback"}, {"type": "Fuse"},
                                                 {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>", "fuse_unk": True,
              "vocab": dict({"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "H": 4, "e": 5, "l": 6, "o": 7,
                             "\u2581H": 8, "ll": 9},
                            **{f"<0x{b:02X}>": 10 + b for b in range(256)}),
              "merges": ["\u2581 H", "l l"]},
    "added_tokens": [{"id": 1, "content": "<s>", "special": True}],
}))
put("tokenizer_json", "unigram_precompiled.json", json.dumps({
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Strip", "strip_left": False, "strip_right": True},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "\u2581"},
        {"type": "Replace", "pattern": {"String": "x"}, "content": "y"}, {"type": "Lowercase"},
        {"type": "Prepend", "prepend": "\u2581"}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        {"type": "Digits", "individual_digits": True}]},
    "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
    "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": True,
              "vocab": [["<unk>", 0.0], ["\u2581", -1.0], ["h", -2.0], ["e", -2.0], ["\u2581he", -3.0], ["l", -2.0],
                        ["ll", -2.5], ["o", -2.0]] + [[f"<0x{b:02X}>", -9.0] for b in range(256)]},
}))
# ---- SentencePiece models (when the sentencepiece package is there): Unigram and BPE, byte fallback, user pieces,
# the identity normalization (the nmt_nfkc charsmap alone is ~240 KB, over the fuzzer's max_len)
try:
    import sentencepiece as spm

    lines = llmc.data.kjv_text().splitlines()[:400]
    for mt, bf in (("unigram", True), ("bpe", False)):
        prefix = str(C / f"tmp_{mt}")
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=prefix, vocab_size=400 if bf else 120,
                                       model_type=mt, normalization_rule_name="identity", byte_fallback=bf,
                                       user_defined_symbols=["<user>"], num_threads=1, minloglevel=2)
        put("spm", f"{mt}.model", Path(prefix + ".model").read_bytes())
        os.unlink(prefix + ".model")
        os.unlink(prefix + ".vocab")
except ImportError:
    print("sentencepiece is not installed: no spm seeds")
# ---- GGUF (llmc's writer: every value type, string arrays, f32/f16/q8_0/q4_k tensors, a model's keys)
def _gguf(name, md, tensors, alignment=32):
    tmp = C / "gguf" / (name + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    llmc.gguf.write(tmp, md, tensors, alignment=alignment)
    put("gguf", name, tmp.read_bytes())
    tmp.unlink()


V = llmc.gguf.Value
rng = np.random.default_rng(0)
_gguf("values.gguf", {"u8": V(200, "uint8"), "i8": V(-1, "int8"), "u16": V(7, "uint16"), "i16": V(-7, "int16"),
                      "u32": 4000000000, "i32": -5, "f32": 0.5, "b": True, "s": "ünï 🙂", "u64": V(2**63, "uint64"),
                      "i64": V(-(2**40), "int64"), "f64": V(1e300, "float64"), "ai": [1, 2, 3], "af": [0.5],
                      "as": ["a", "", "\u2581x"], "ab": V([True, False], "array", "bool")},
      {"w": rng.normal(size=(2, 32)).astype(np.float32), "h": rng.normal(size=(3,)).astype(np.float16)})
_gguf("quant.gguf", {"general.alignment": V(64, "uint32")},
      {"q8": ("q8_0", (2, 32), llmc.quantize(rng.normal(size=(2, 32)).astype(np.float32), "q8_0")),
       "q4k": ("q4_k", (1, 256), llmc.quantize(rng.normal(size=(1, 256)).astype(np.float32), "q4_k"))}, alignment=64)
_gguf("llama.gguf", {"general.architecture": "llama", "llama.block_count": 1, "llama.context_length": 16,
                     "llama.embedding_length": 32, "llama.feed_forward_length": 64, "llama.attention.head_count": 2,
                     "llama.attention.head_count_kv": 1, "llama.rope.freq_base": 10000.0,
                     "llama.attention.layer_norm_rms_epsilon": 1e-5, "tokenizer.ggml.model": "gpt2",
                     "tokenizer.ggml.pre": "qwen2", "tokenizer.ggml.tokens": ["a", "b", "ab", "<s>"],
                     "tokenizer.ggml.token_type": np.array([1, 1, 1, 3], np.int32),
                     "tokenizer.ggml.merges": ["a b"]},
      {"token_embd.weight": rng.normal(size=(4, 32)).astype(np.float32),
       "blk.0.attn_q.weight": rng.normal(size=(32, 32)).astype(np.float32),
       "rope_freqs.weight": np.ones(8, np.float32)})

print("corpus:", ", ".join(f"{d.name} {len(list(d.iterdir()))}" for d in sorted(C.iterdir())))
