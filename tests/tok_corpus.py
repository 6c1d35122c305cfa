"""Seeded adversarial strings for the tokenizer tests (shared by the tiktoken and HF comparisons)."""
import random
import unicodedata

_POOLS = {
    "ascii": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "digits": "0123456789",
    "space": [" ", "  ", "   ", "\t", "\n", "\r", "\r\n", "\n\n", " \n", "\x0b", "\x0c", "\x85", "\xa0", "\u2028",
              "\u3000", "\u2003", "\u200b", "\u1680", " \t \n "],
    "contr": ["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'lL", "'d",
              "'D", "'", "''", "'x", "n't", "N'T", "'ſ"],
    "punct": list("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~") + ["...", "--", "//", "\u2014", "\u00bf", "\u00ab", "\u201c"],
    "emoji": ["\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F468\u200d\U0001F469\u200d\U0001F467", "\u2764\ufe0f",
              "\U0001F1FA\U0001F1F8", "\U0001F9D1\u200d\U0001F4BB"],
    "marks": ["e\u0301", "a\u0308", "\u0301", "\u0308\u0301", "o\u0302\u0323", "\u20dd", "\u0e31", "\u093f",
              "\u0915\u094d\u0937", "n\u0303"],
    "cjk": list("中文字符日本語漢字한국어カタカナひらがな") + ["\u3001", "\u3002", "\uff01"],
    "scripts": list("Здравствуйтемирαβγδεζηθ ΑΒΓשלוםمرحباनमस्तेสวัสดีქართულიԱԲԳ") + ["\u01c5", "\u01c8", "\u02b0",
               "\u02b1", "\u1d2c", "\u00aa", "\u2160", "\u00bd", "\u00b2", "\u0660", "\u0966", "\uff11"],
    "control": [chr(c) for c in range(0, 32)] + ["\x7f", "\u200e", "\ufeff", "\u00ad"],
}


def _random_assigned(rng: random.Random) -> str:
    while True:
        cp = rng.choice([rng.randrange(0x20, 0x3000), rng.randrange(0x3000, 0xFFFF), rng.randrange(0x10000, 0x1FAFF)])
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        if unicodedata.category(c) not in ("Cn", "Co", "Cs"):
            return c


def random_text(rng: random.Random, n_parts: int) -> str:
    out = []
    keys = list(_POOLS)
    for _ in range(n_parts):
        k = rng.random()
        if k < 0.1:
            out.append(_random_assigned(rng))
            continue
        pool = _POOLS[rng.choice(keys)]
        piece = "".join(rng.choice(pool) for _ in range(rng.choice([1, 1, 2, 3, 5, 8])))
        if rng.random() < 0.3:
            piece = piece.upper() if rng.random() < 0.5 else piece.title()
        out.append(piece)
    return "".join(out)


def adversarial(seed: int = 1234, n: int = 2000) -> list[str]:
    rng = random.Random(seed)
    texts = [random_text(rng, rng.randrange(1, 40)) for _ in range(n)]
    texts += ["", " ", "\n", "a", "  a", "a  ", " \n a", "\r\n\r\n  x", "1234567", "x" * 10, "'s" * 5, "I'M HE'LL",
              "hello   world  \n\n  foo", "\t\tx", "a\u0301b\u0308", "ABCdefGHI", "ǅemal", "ʰAʰa", "e\u0301\u0301'S",
              "12,345.6789", "🙂🙂🙂 ok", "x\u3000\u3000y", "a/b//c\n/", "{\n\t\"k\": [1, 2]\n}"]
    return texts


def long_inputs() -> list[str]:
    """100 KB single words and runs: the quadratic-BPE traps."""
    return ["a" * 100_000, "ab" * 50_000, " " * 100_000, "1" * 100_000, "\U0001F600" * 25_000,
            "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(30_000)), "x" + "\u0301" * 50_000]
