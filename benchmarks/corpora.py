"""Seeded synthetic corpora for the tokenizer benchmarks, beside the shipped KJV text (no download needed).

- ``chinese(n_bytes)``: Chinese prose statistics: sentences of common two- and one-character words (Zipf-weighted)
  with full-width punctuation, occasional Arabic numerals and Latin names. Under cl100k/o200k each run of Han
  characters between punctuation marks is one pre-tokenizer piece, long and rarely repeated, so the BPE merge loop,
  not a cache, is what is measured (as on real Chinese text).
- ``web(n_bytes)``: mixed web-like text: HTML markup with attributes, URLs, JSON, code, numbers and dates, English
  sentences (KJV lines), emoji, CJK and Cyrillic phrases, whitespace runs.
Both are deterministic for a given size and seed.
"""
from __future__ import annotations

import random

# the most frequent Chinese characters and words (common-knowledge frequency lists), most frequent first
_CHARS = ("的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过"
          "家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从知使意动民长开"
          "现把点些力它本文代新手高已实最间机理物化表性气全等回情正体相月变数外通头百政队立身入问明重车少各电度给信内"
          "山业工向总间利比战由并水平其他展员路边解条走美反真西东南北门位风光样部克程论接白达接教结此指把候写关加深")
_WORDS = ("我们 他们 中国 时候 没有 什么 自己 一个 这个 可以 已经 因为 所以 但是 如果 现在 知道 问题 工作 发展 社会 经济 "
          "国家 人民 生活 时间 学生 老师 学校 朋友 城市 世界 历史 文化 科学 技术 研究 政府 市场 企业 公司 产品 服务 "
          "信息 网络 数据 系统 方法 结果 情况 关系 重要 需要 开始 认为 进行 表示 提高 加强 保护 环境 教育 医院 "
          "北京 上海 今天 明天 昨天 早上 晚上 东西 地方 事情 孩子 父母 家庭 电话 电脑 手机 音乐 电影 新闻 天气").split()
_PUNCT_MID = ["，", "，", "，", "、", "；", "："]
_PUNCT_END = ["。", "。", "。", "？", "！", "……"]
_LATIN = ["iPhone", "AI", "GDP", "CPU", "Python", "WiFi", "NBA", "APP", "5G", "CEO"]


_CUM: dict[int, list[float]] = {}


def _zipf_choice(rng: random.Random, seq, s: float = 1.0):
    """An item of seq, rank r (1-based) drawn with weight 1 / r^s."""
    cw = _CUM.get(id(seq))
    if cw is None:
        total, cw = 0.0, []
        for r in range(1, len(seq) + 1):
            total += 1.0 / r**s
            cw.append(total)
        _CUM[id(seq)] = cw
    return rng.choices(seq, cum_weights=cw)[0]


def chinese(n_bytes: int = 1 << 20, seed: int = 0) -> str:
    rng = random.Random(seed)
    out, size = [], 0
    while size < n_bytes:
        sent = []
        for _ in range(rng.randint(2, 4)):  # clauses
            for _ in range(rng.randint(3, 9)):  # words
                k = rng.random()
                if k < 0.55:
                    sent.append(_zipf_choice(rng, _WORDS))
                elif k < 0.97:
                    sent.append(_zipf_choice(rng, _CHARS))
                elif k < 0.985:
                    sent.append(str(rng.choice([rng.randint(1, 99), rng.randint(1900, 2030), rng.randint(100, 99999)])))
                else:
                    sent.append(rng.choice(_LATIN))
            sent.append(rng.choice(_PUNCT_MID))
        sent[-1] = rng.choice(_PUNCT_END)
        s = "".join(sent)
        if rng.random() < 0.12:
            s += "\n\n" if rng.random() < 0.5 else "\n"
        out.append(s)
        size += len(s.encode())
    return "".join(out)


_TAGS = ["div", "span", "p", "a", "li", "ul", "section", "article", "td", "tr", "h2", "button", "img", "script"]
_ATTRS = ["class", "id", "href", "src", "style", "data-id", "aria-label", "title", "rel", "type"]
_WORDS_EN = ("the of and to in is for on that with as by this be are from at or an it was which have not new more "
             "home page news about contact search login sign privacy policy terms cookies share comment reply menu "
             "product price cart order shipping free best review video photo download update version release").split()
_CODE = ["function(e){return e&&e.__esModule?e:{default:e}}", "if (x != null) { y += x * 2; }",
         "for (let i = 0; i < n; i++) {", "const data = await fetch(url).then(r => r.json());",
         "def main(argv=None):\n    return 0\n", "SELECT id, name FROM users WHERE age > 21;",
         "    std::vector<int> v{1, 2, 3};\n", "#include <stdio.h>\n", "x = np.zeros((3, 4), dtype=np.float32)"]
_OTHER = ["Привет, как дела? Всё хорошо.", "日本語のテキストです。", "한국어 문장입니다.", "¿Qué tal? Très bien, merci.",
          "Ελληνικά γράμματα", "中文网页内容，欢迎访问。", "😀👍🏽🎉", "🇺🇸 🇫🇷 ❤️", "→ © ® ™ € £ ¥ °C ±"]


def web(n_bytes: int = 1 << 20, seed: int = 0, english_lines: list[str] | None = None) -> str:
    rng = random.Random(seed)
    eng = english_lines or [" ".join(rng.choice(_WORDS_EN) for _ in range(rng.randint(5, 20))) for _ in range(500)]
    out, size = [], 0
    while size < n_bytes:
        k = rng.random()
        if k < 0.30:
            tag, attr = rng.choice(_TAGS), rng.choice(_ATTRS)
            val = rng.choice([f"{rng.choice(_WORDS_EN)}-{rng.choice(_WORDS_EN)}", f"/{rng.choice(_WORDS_EN)}/{rng.randint(1, 9999)}.html",
                              f"#{rng.randrange(16**6):06x}", f"item_{rng.randint(0, 10**6)}"])
            s = f'{" " * rng.choice([0, 2, 4, 8])}<{tag} {attr}="{val}">{rng.choice(eng)[:rng.randint(5, 80)]}</{tag}>\n'
        elif k < 0.42:
            s = (f"https://www.{rng.choice(_WORDS_EN)}{rng.choice(['.com', '.org', '.io', '.net', '.de'])}/"
                 f"{rng.choice(_WORDS_EN)}/{rng.randint(1, 10**5)}?q={rng.choice(_WORDS_EN)}&page={rng.randint(1, 50)} ")
        elif k < 0.52:
            s = ('{"id": %d, "name": "%s", "price": %.2f, "tags": ["%s", "%s"], "active": %s}\n'
                 % (rng.randint(1, 10**6), rng.choice(_WORDS_EN), rng.random() * 1000, rng.choice(_WORDS_EN),
                    rng.choice(_WORDS_EN), rng.choice(["true", "false"])))
        elif k < 0.62:
            s = rng.choice(_CODE) + "\n"
        elif k < 0.67:
            s = f"{rng.randint(2000, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} "
        elif k < 0.90:
            s = rng.choice(eng) + rng.choice([" ", "\n", "\n\n", ". "])
        else:
            s = rng.choice(_OTHER) + rng.choice([" ", "\n", "\t"])
        out.append(s)
        size += len(s.encode())
    return "".join(out)
