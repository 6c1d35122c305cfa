"""Generate csrc/unicode_tables.c: per-code-point class flags used by llmc's pre-tokenizers (and NFC tables).

Run from the project root:  python scripts/gen_unicode_tables.py
Two Unicode versions, each the one its reference uses (the tests walk every category run against them):
- the regex classes (\p{L}, \p{N}, \p{M}, case classes, White_Space) come from `unicodedata2` (pip install
  unicodedata2==16.0.0): Unicode 16.0, what tiktoken's regex crate and HF tokenizers' Oniguruma use;
- punctuation (HF's Punctuation and BertPreTokenizer) is probed through `tokenizers.pre_tokenizers.Punctuation`;
- NFC/NFD data, lower-casing and BERT's classes (control, Mn) come from Python 3.11's `unicodedata`
  (Unicode 14.0), minus what HF's NFC does not know: tokenizers normalises with an older copy of the Unicode data
  (its unicode-normalization-alignments crate), so each combining class and decomposition is probed through
  `tokenizers.normalizers` and dropped when HF ignores it (e.g. U+07FD is not reordered, U+11938 not decomposed).
Both versions are written into the generated file's header.
- NFKC/NFKD: compatibility decompositions from the same `unicodedata`, each probed through
  `tokenizers.normalizers.NFKD` and kept only when HF decomposes the code point the same way;
- grapheme clusters (HF's Precompiled normalizer walks extended grapheme clusters): Grapheme_Cluster_Break,
  Extended_Pictographic and Indic_Conjunct_Break from the `regex` module's property tables, restricted to the code
  points Unicode 16.0 assigns (HF's unicode-segmentation crate's version).
White_Space is not exposed by unicodedata, so its (stable, 25-code-point) list from PropList.txt is spelled out here.
"""
import sys
import unicodedata

try:
    import unicodedata2 as ucd_regex
except ImportError:
    sys.exit("pip install unicodedata2==16.0.0 (the Unicode version of the regex classes)")
from pathlib import Path

BLOCK = 256  # two-stage table: stage1[cp >> 8] selects a 256-entry block of stage2

# flag bits, mirrored in csrc/unicode.h
F_L, F_N, F_M, F_UP, F_LO, F_WS, F_P, F_C, F_MN = 1, 2, 4, 8, 16, 32, 64, 128, 256

# White_Space=yes in PropList.txt (what \s means in Rust's regex crate and in Oniguruma's Unicode mode)
WHITE_SPACE = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}
WHITE_SPACE |= set(range(0x2000, 0x200B))


def flags(cp: int) -> int:
    cat = ucd_regex.category(chr(cp))
    f = 0
    if cat[0] == "L":
        f |= F_L
    if cat[0] == "N":
        f |= F_N
    if cat[0] == "M":
        f |= F_M
    if cat in ("Lu", "Lt", "Lm", "Lo") or cat[0] == "M":  # o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
        f |= F_UP
    if cat in ("Ll", "Lm", "Lo") or cat[0] == "M":  # o200k's [\p{Ll}\p{Lm}\p{Lo}\p{M}]
        f |= F_LO
    if cp in WHITE_SPACE:
        f |= F_WS
    cat = unicodedata.category(chr(cp))  # BERT's classes: the older tables
    if cp in HF_PUNCT:
        f |= F_P
    if cat in ("Cc", "Cf", "Co"):  # HF BertNormalizer's is_control: Cc, Cf, Co (unassigned code points stay)
        f |= F_C
    if cat == "Mn":  # accents removed by BERT's strip_accents
        f |= F_MN
    return f


# general categories in the order of csrc/unicode.h's llmc_ucat values (a 32-bit mask holds any set of them)
CATS = ["Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po",
        "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"]


def hf_punctuation() -> set[int]:
    """The characters HF's Punctuation / BertPreTokenizer isolate (ASCII punctuation and the P* categories of the
    unicode_categories crate's old tables), probed through tokenizers.pre_tokenizers.Punctuation."""
    from tokenizers.pre_tokenizers import Punctuation

    split = Punctuation("removed").pre_tokenize_str
    out = set()
    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    for k in range(0, len(cps), 4096):
        chunk = cps[k:k + 4096]
        kept = set("".join(p for p, _ in split("".join(chr(c) for c in chunk))))
        out |= {c for c in chunk if chr(c) not in kept}
    return out


def hf_unknown() -> set[int]:
    """Code points whose combining class or canonical decomposition HF tokenizers' NFD does not apply."""
    from tokenizers.normalizers import NFD

    nfd = NFD().normalize_str
    out = set()
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        d, k = unicodedata.decomposition(c), unicodedata.combining(c)
        if d and not d.startswith("<"):
            if nfd(c) != unicodedata.normalize("NFD", c):
                out.add(cp)
        elif k > 1:  # a mark of class > 1 moves after U+0334 (class 1)
            if nfd("!" + c + "\u0334") != "!\u0334" + c:
                out.add(cp)
        elif k == 1:  # class 1 moves before U+0301 (class 230)
            if nfd("!\u0301" + c) != "!" + c + "\u0301":
                out.add(cp)
    return out


# Grapheme_Cluster_Break values in the order of csrc/unicode.h's LLMC_GCB_* (Other = 0)
GCB = ["Other", "CR", "LF", "Control", "Extend", "ZWJ", "Regional_Indicator", "Prepend", "SpacingMark", "L", "V", "T",
       "LV", "LVT"]
INCB = ["None", "Linker", "Consonant", "Extend"]


def grapheme_props() -> list[int]:
    """Per code point: GCB index | Extended_Pictographic << 4 | InCB index << 5 (0 for code points Unicode 16
    leaves unassigned: the crate HF uses does not know them)."""
    import regex

    out = [0] * 0x110000
    for k, name in enumerate(GCB[1:], 1):
        r = regex.compile(r"\p{Grapheme_Cluster_Break=%s}" % name)
        for cp in range(0x110000):
            if r.match(chr(cp)):
                out[cp] |= k
    ep = regex.compile(r"\p{Extended_Pictographic}")
    for cp in range(0x110000):
        if ep.match(chr(cp)):
            out[cp] |= 16
    for k, name in enumerate(INCB[1:], 1):
        r = regex.compile(r"\p{Indic_Conjunct_Break=%s}" % name)
        for cp in range(0x110000):
            if r.match(chr(cp)):
                out[cp] |= k << 5
    for cp in range(0x110000):
        if ucd_regex.category(chr(cp)) == "Cn" and not (0xE0000 <= cp <= 0xE0FFF):
            out[cp] = 0  # newer than Unicode 16 (E0000.. are default-ignorable Control/Extend even when unassigned)
    return out


def compat_decompositions(unknown: set[int]) -> list[tuple[int, list[int]]]:
    """(code point, its full NFKD) for each code point whose NFKD differs from its NFD, where HF's NFKD agrees."""
    from tokenizers.normalizers import NFKD

    nfkd = NFKD().normalize_str
    out, skipped = [], 0
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or 0xAC00 <= cp <= 0xD7A3:
            continue
        c = chr(cp)
        k = unicodedata.normalize("NFKD", c)
        if k == unicodedata.normalize("NFD", c):
            continue
        if nfkd(c) != k:
            skipped += 1
            continue
        out.append((cp, [ord(x) for x in k]))
    print(f"compatibility decompositions: {len(out)} (skipped {skipped} HF does not apply)")
    return out


def two_stage(values: list[int]) -> tuple[list[int], list[tuple]]:
    blocks, index, stage1 = [], {}, []
    for b in range(0x110000 // BLOCK):
        blk = tuple(values[b * BLOCK:(b + 1) * BLOCK])
        if blk not in index:
            index[blk] = len(blocks)
            blocks.append(blk)
        stage1.append(index[blk])
    return stage1, blocks


def main() -> None:
    global HF_PUNCT
    HF_PUNCT = hf_punctuation()
    blocks, index, stage1 = [], {}, []
    for b in range(0x110000 // BLOCK):
        blk = tuple(flags(cp) for cp in range(b * BLOCK, (b + 1) * BLOCK))
        if blk not in index:
            index[blk] = len(blocks)
            blocks.append(blk)
        stage1.append(index[blk])

    # NFC: canonical decompositions (fully recursive), canonical combining classes, and primary compositions
    def full_decomp(cp):
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<"):
            return [cp]
        out = []
        for h in d.split():
            out += full_decomp(int(h, 16))
        return out

    cat_blocks, cat_index, cat_stage1 = [], {}, []
    for b in range(0x110000 // BLOCK):
        blk = tuple(CATS.index(ucd_regex.category(chr(cp))) for cp in range(b * BLOCK, (b + 1) * BLOCK))
        if blk not in cat_index:
            cat_index[blk] = len(cat_blocks)
            cat_blocks.append(blk)
        cat_stage1.append(cat_index[blk])
    unknown = hf_unknown()
    decomp, ccc, comp = [], [], []
    for cp in range(0x110000):
        if 0xAC00 <= cp <= 0xD7A3 or 0xD800 <= cp <= 0xDFFF or cp in unknown:
            continue  # Hangul syllables are algorithmic; surrogates never occur in UTF-8
        c = unicodedata.combining(chr(cp))
        if c:
            ccc.append((cp, c))
        d = unicodedata.decomposition(chr(cp))
        if d and not d.startswith("<"):
            decomp.append((cp, full_decomp(cp)))
            parts = [int(h, 16) for h in d.split()]
            # a primary composite: a two-part canonical decomposition that NFC recomposes (not excluded)
            if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(cp):
                comp.append((parts[0], parts[1], cp))
    comp.sort()
    # full lowercase mapping of single characters (what Rust's char::to_lowercase gives; no context rules)
    lower = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        lo = chr(cp).lower()
        if lo != chr(cp):
            lower.append((cp, [ord(x) for x in lo]))
    pool = []
    dec_entries = []
    for cp, seq in decomp:
        dec_entries.append((cp, len(pool), len(seq)))
        pool += seq

    out = []
    w = out.append
    w("/* unicode_tables.c: GENERATED by scripts/gen_unicode_tables.py -- do not edit.\n")
    w(f" * Unicode version {ucd_regex.unidata_version} for the regex classes (unicodedata2), {unicodedata.unidata_version} for"
      f" NFC (minus {len(unknown)} code points HF tokenizers does not normalise), lower case and BERT's classes"
      f" (Python {sys.version.split()[0]} unicodedata).\n")
    w(" * llmc_uflags: a two-stage table of per-code-point class flags (see unicode.h).\n")
    w(" * NFC data: canonical combining classes, full canonical decompositions, primary compositions (sorted);\n"
      " * single-character lower-case mappings. */\n")
    w('#include "unicode.h"\n\n')
    w(f"const char llmc_unicode_version[] = \"{ucd_regex.unidata_version}\";\n\n")
    w(f"const uint16_t llmc_uflags_stage1[{len(stage1)}] = {{\n")
    for i in range(0, len(stage1), 16):
        w("    " + ", ".join(str(x) for x in stage1[i:i + 16]) + ",\n")
    w("};\n\n")
    w(f"const uint16_t llmc_uflags_stage2[{len(blocks) * BLOCK}] = {{\n")
    for blk in blocks:
        for i in range(0, BLOCK, 32):
            w("    " + ",".join(str(x) for x in blk[i:i + 32]) + ",\n")
    w("};\n\n")
    w(f"/* general category (llmc_ucat order: {' '.join(CATS)}) of each code point, Unicode {ucd_regex.unidata_version} */\n")
    w(f"const uint16_t llmc_ucat_stage1[{len(cat_stage1)}] = {{\n")
    for i in range(0, len(cat_stage1), 16):
        w("    " + ", ".join(str(x) for x in cat_stage1[i:i + 16]) + ",\n")
    w("};\n\n")
    w(f"const uint8_t llmc_ucat_stage2[{len(cat_blocks) * BLOCK}] = {{\n")
    for blk in cat_blocks:
        for i in range(0, BLOCK, 32):
            w("    " + ",".join(str(x) for x in blk[i:i + 32]) + ",\n")
    w("};\n\n")
    w(f"const size_t llmc_ccc_count = {len(ccc)};\n")
    w(f"const uint32_t llmc_ccc_table[{len(ccc)}][2] = {{\n")
    for i in range(0, len(ccc), 8):
        w("    " + ", ".join(f"{{0x{a:X}, {b}}}" for a, b in ccc[i:i + 8]) + ",\n")
    w("};\n\n")
    w(f"const size_t llmc_decomp_count = {len(dec_entries)};\n")
    w(f"const uint32_t llmc_decomp_table[{len(dec_entries)}][3] = {{ /* code point, pool offset, length */\n")
    for i in range(0, len(dec_entries), 6):
        w("    " + ", ".join(f"{{0x{a:X}, {b}, {c}}}" for a, b, c in dec_entries[i:i + 6]) + ",\n")
    w("};\n\n")
    w(f"const uint32_t llmc_decomp_pool[{len(pool)}] = {{\n")
    for i in range(0, len(pool), 12):
        w("    " + ", ".join(f"0x{x:X}" for x in pool[i:i + 12]) + ",\n")
    w("};\n\n")
    w(f"const size_t llmc_comp_count = {len(comp)};\n")
    w(f"const uint32_t llmc_comp_table[{len(comp)}][3] = {{ /* first, second, composite */\n")
    for i in range(0, len(comp), 6):
        w("    " + ", ".join(f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}" for a, b, c in comp[i:i + 6]) + ",\n")
    w("};\n")
    compat = compat_decompositions(unknown)
    cpool, centries = [], []
    for cp, seq in compat:
        centries.append((cp, len(cpool), len(seq)))
        cpool += seq
    w(f"\n/* full compatibility decompositions (NFKD) of the code points whose NFKD differs from their NFD */\n")
    w(f"const size_t llmc_kdecomp_count = {len(centries)};\n")
    w(f"const uint32_t llmc_kdecomp_table[{len(centries)}][3] = {{ /* code point, pool offset, length */\n")
    for i in range(0, len(centries), 6):
        w("    " + ", ".join(f"{{0x{a:X}, {b}, {c}}}" for a, b, c in centries[i:i + 6]) + ",\n")
    w("};\n\n")
    w(f"const uint32_t llmc_kdecomp_pool[{len(cpool)}] = {{\n")
    for i in range(0, len(cpool), 12):
        w("    " + ", ".join(f"0x{x:X}" for x in cpool[i:i + 12]) + ",\n")
    w("};\n")
    g1, gblocks = two_stage(grapheme_props())
    w(f"\n/* grapheme properties: Grapheme_Cluster_Break ({' '.join(GCB)}) | Extended_Pictographic << 4 |"
      f" Indic_Conjunct_Break ({' '.join(INCB)}) << 5 */\n")
    w(f"const uint16_t llmc_gprop_stage1[{len(g1)}] = {{\n")
    for i in range(0, len(g1), 16):
        w("    " + ", ".join(str(x) for x in g1[i:i + 16]) + ",\n")
    w("};\n\n")
    w(f"const uint8_t llmc_gprop_stage2[{len(gblocks) * BLOCK}] = {{\n")
    for blk in gblocks:
        for i in range(0, BLOCK, 32):
            w("    " + ",".join(str(x) for x in blk[i:i + 32]) + ",\n")
    w("};\n")
    w(f"\nconst size_t llmc_lower_count = {len(lower)};\n")
    w(f"const uint32_t llmc_lower_table[{len(lower)}][4] = {{ /* code point, up to 3 lower-case code points (0 = none) */\n")
    for i in range(0, len(lower), 4):
        w("    " + ", ".join("{0x%X, %s}" % (a, ", ".join("0x%X" % x for x in (b + [0, 0, 0])[:3])) for a, b in lower[i:i + 4]) + ",\n")
    w("};\n")
    Path("csrc/unicode_tables.c").write_text("".join(out))
    print(f"unicode {ucd_regex.unidata_version} / {unicodedata.unidata_version} (minus {len(unknown)} unknown to HF): {len(blocks)} flag blocks, {len(ccc)} ccc, "
          f"{len(dec_entries)} decompositions, {len(comp)} compositions")


if __name__ == "__main__":
    main()
