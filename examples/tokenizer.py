"""llmc.Tokenizer tour: tiktoken's encodings (shipped) and Hugging Face tokenizers, encode/decode, special tokens,
train and save.

    python examples/tokenizer.py            (the Llama tokenizer.json part runs when ../shared or $LLMC_SHARED has them)
"""
import os
import tempfile
from pathlib import Path

import llmc

enc = llmc.get_encoding("cl100k_base")  # shipped with llmc, loaded offline, token-identical to tiktoken
text = "Hello world! Tokens are what an LLM sees. 12345 🙂"
ids = enc.encode(text)
print(enc, ids)
print("pieces:", enc.pieces(text))
print("tokens:", [enc.token_bytes(i) for i in ids])
assert enc.decode(ids) == text
print("count:", enc.count(text))
print("with a special token:", enc.encode("hi<|endoftext|>", allowed_special="all"))
try:
    enc.encode("hi<|endoftext|>")
except ValueError as e:
    print("disallowed special ->", type(e).__name__)
print("gpt-4o uses", llmc.encoding_for_model("gpt-4o").name)

SHARED = Path(os.environ.get("LLMC_SHARED", "../shared"))  # Hugging Face tokenizer.json files are not shipped
if (SHARED / "tokenizers" / "hf").is_dir():
    llama3 = llmc.Tokenizer.from_file(SHARED / "tokenizers" / "hf" / "llama3" / "tokenizer.json")
    print("llama3:", llama3.encode("Hello world!"), llama3.n_vocab)
    llama2 = llmc.Tokenizer.from_file(SHARED / "tokenizers" / "hf" / "llama2" / "tokenizer.json")
    print("llama2 with <s>:", llama2.encode("Hello world!", add_special_tokens=True))
    print("batch:", llama3.encode_batch(["one", "two three"], num_threads=2))

corpus = ["the quick brown fox jumps over the lazy dog"] * 50 + ["aaabdaaabac"]
tok = llmc.Tokenizer.train(corpus, vocab_size=300, special_tokens=["<|endoftext|>"], progress=False)
print("trained:", tok, tok.encode("the lazy fox<|endoftext|>"))
with tempfile.TemporaryDirectory() as tmp:
    tok.save(Path(tmp) / "tokenizer.json")  # loads in HF tokenizers with identical encodings
    tok.save(Path(tmp) / "tok.tiktoken")
    again = llmc.Tokenizer.from_file(Path(tmp) / "tokenizer.json")
    assert again.encode("the lazy fox") == tok.encode("the lazy fox")
