/* regex.c: a regex engine for pre-tokenizer patterns (see regex.h for the subset).
 *
 * Pattern -> syntax tree (parse_*) -> program of a few instruction kinds (compile_node) -> Pike VM (llmc_regex_find).
 * The VM keeps one list of threads (program counter + match start) per input position, in priority order; a
 * thread that reaches MATCH ends every thread of lower priority, which gives exactly the leftmost-first match of a
 * backtracking engine, in time linear in the input (each program counter is in a list at most once per position).
 * Character classes are unions of atoms (a code point range, a set of general categories, White_Space), each
 * possibly negated, with the whole class possibly negated; ASCII membership is precomputed into a 128-bit map. */
#include <stdio.h>
#include <string.h>

#include "regex.h"
#include "unicode.h"

#define END_CP 0xFFFFFFFFu /* "no character": past the end of the text */
#define MAX_PROG 200000    /* instructions (counted repetitions copy their operand) */
#define MAX_DEPTH 200      /* nesting of groups */

/* ---------------------------------------------------------------- character classes */
enum { A_RANGE, A_CATS, A_WS, A_WORD };
typedef struct {
    uint8_t kind, neg;
    uint32_t mask;   /* A_CATS: bit (1 << LLMC_UC_*) per category; A_WORD: W_* bits */
    uint32_t lo, hi; /* A_RANGE: inclusive */
} atom;

typedef struct {
    uint64_t ascii[2]; /* final membership of code points 0..127 */
    uint32_t first, n; /* atoms[first .. first + n) */
    uint8_t neg;
} cclass;

#define CATS_L ((1u << LLMC_UC_LU) | (1u << LLMC_UC_LL) | (1u << LLMC_UC_LT) | (1u << LLMC_UC_LM) | (1u << LLMC_UC_LO))
#define CATS_M ((1u << LLMC_UC_MN) | (1u << LLMC_UC_MC) | (1u << LLMC_UC_ME))
#define CATS_N ((1u << LLMC_UC_ND) | (1u << LLMC_UC_NL) | (1u << LLMC_UC_NO))
#define CATS_P                                                                                                     \
    ((1u << LLMC_UC_PC) | (1u << LLMC_UC_PD) | (1u << LLMC_UC_PS) | (1u << LLMC_UC_PE) | (1u << LLMC_UC_PI) |      \
     (1u << LLMC_UC_PF) | (1u << LLMC_UC_PO))
#define CATS_S ((1u << LLMC_UC_SM) | (1u << LLMC_UC_SC) | (1u << LLMC_UC_SK) | (1u << LLMC_UC_SO))
#define CATS_Z ((1u << LLMC_UC_ZS) | (1u << LLMC_UC_ZL) | (1u << LLMC_UC_ZP))
#define CATS_C                                                                                                     \
    ((1u << LLMC_UC_CC) | (1u << LLMC_UC_CF) | (1u << LLMC_UC_CS) | (1u << LLMC_UC_CO) | (1u << LLMC_UC_CN))
/* \w, probed code point by code point against both engines: letters, marks, decimal and letter numbers, connector
 * punctuation and the circled and squared Latin letters (Other_Alphabetic symbols) in word_extra. Oniguruma: a bare
 * \w (outside brackets) also takes the Latin-1 superscripts and fractions (\u00b2 \u00b3 \u00b9 \u00bc-\u00be)
 * while [\w] does not (a quirk, reproduced). The regex crate (UTS #18): also the join controls U+200C, U+200D. */
#define CATS_W (CATS_L | CATS_M | (1u << LLMC_UC_ND) | (1u << LLMC_UC_NL) | (1u << LLMC_UC_PC))
enum { W_ONIG_BARE = 1, W_RUST = 2 }; /* A_WORD atom mask bits */
static const uint32_t word_extra[][2] = {{0x24B6, 0x24E9}, {0x1F130, 0x1F149}, {0x1F150, 0x1F169},
                                         {0x1F170, 0x1F189}};

static const struct {
    const char *name;
    uint32_t mask;
} cat_names[] = {
    {"L", CATS_L}, {"Letter", CATS_L}, {"Lu", 1u << LLMC_UC_LU}, {"Uppercase_Letter", 1u << LLMC_UC_LU},
    {"Ll", 1u << LLMC_UC_LL}, {"Lowercase_Letter", 1u << LLMC_UC_LL}, {"Lt", 1u << LLMC_UC_LT},
    {"Titlecase_Letter", 1u << LLMC_UC_LT}, {"Lm", 1u << LLMC_UC_LM}, {"Modifier_Letter", 1u << LLMC_UC_LM},
    {"Lo", 1u << LLMC_UC_LO}, {"Other_Letter", 1u << LLMC_UC_LO}, {"M", CATS_M}, {"Mark", CATS_M},
    {"Mn", 1u << LLMC_UC_MN}, {"Nonspacing_Mark", 1u << LLMC_UC_MN}, {"Mc", 1u << LLMC_UC_MC},
    {"Spacing_Mark", 1u << LLMC_UC_MC}, {"Me", 1u << LLMC_UC_ME}, {"Enclosing_Mark", 1u << LLMC_UC_ME},
    {"N", CATS_N}, {"Number", CATS_N}, {"Nd", 1u << LLMC_UC_ND}, {"Decimal_Number", 1u << LLMC_UC_ND},
    {"Nl", 1u << LLMC_UC_NL}, {"Letter_Number", 1u << LLMC_UC_NL}, {"No", 1u << LLMC_UC_NO},
    {"Other_Number", 1u << LLMC_UC_NO}, {"P", CATS_P}, {"Punctuation", CATS_P}, {"Pc", 1u << LLMC_UC_PC},
    {"Connector_Punctuation", 1u << LLMC_UC_PC}, {"Pd", 1u << LLMC_UC_PD}, {"Dash_Punctuation", 1u << LLMC_UC_PD},
    {"Ps", 1u << LLMC_UC_PS}, {"Open_Punctuation", 1u << LLMC_UC_PS}, {"Pe", 1u << LLMC_UC_PE},
    {"Close_Punctuation", 1u << LLMC_UC_PE}, {"Pi", 1u << LLMC_UC_PI}, {"Initial_Punctuation", 1u << LLMC_UC_PI},
    {"Pf", 1u << LLMC_UC_PF}, {"Final_Punctuation", 1u << LLMC_UC_PF}, {"Po", 1u << LLMC_UC_PO},
    {"Other_Punctuation", 1u << LLMC_UC_PO}, {"S", CATS_S}, {"Symbol", CATS_S}, {"Sm", 1u << LLMC_UC_SM},
    {"Math_Symbol", 1u << LLMC_UC_SM}, {"Sc", 1u << LLMC_UC_SC}, {"Currency_Symbol", 1u << LLMC_UC_SC},
    {"Sk", 1u << LLMC_UC_SK}, {"Modifier_Symbol", 1u << LLMC_UC_SK}, {"So", 1u << LLMC_UC_SO},
    {"Other_Symbol", 1u << LLMC_UC_SO}, {"Z", CATS_Z}, {"Separator", CATS_Z}, {"Zs", 1u << LLMC_UC_ZS},
    {"Space_Separator", 1u << LLMC_UC_ZS}, {"Zl", 1u << LLMC_UC_ZL}, {"Line_Separator", 1u << LLMC_UC_ZL},
    {"Zp", 1u << LLMC_UC_ZP}, {"Paragraph_Separator", 1u << LLMC_UC_ZP}, {"C", CATS_C}, {"Other", CATS_C},
    {"Cc", 1u << LLMC_UC_CC}, {"Control", 1u << LLMC_UC_CC}, {"Cf", 1u << LLMC_UC_CF}, {"Format", 1u << LLMC_UC_CF},
    {"Cs", 1u << LLMC_UC_CS}, {"Surrogate", 1u << LLMC_UC_CS}, {"Co", 1u << LLMC_UC_CO},
    {"Private_Use", 1u << LLMC_UC_CO}, {"Cn", 1u << LLMC_UC_CN}, {"Unassigned", 1u << LLMC_UC_CN},
};

static inline int atom_has(const atom *a, uint32_t cp) {
    int in;
    if (a->kind == A_RANGE) in = cp >= a->lo && cp <= a->hi;
    else if (a->kind == A_CATS) in = (a->mask >> llmc_ucat(cp)) & 1;
    else if (a->kind == A_WS) in = (llmc_uflags(cp) & LLMC_U_WS) != 0;
    else {
        in = (CATS_W >> llmc_ucat(cp)) & 1;
        for (size_t k = 0; !in && k < sizeof word_extra / sizeof word_extra[0]; k++)
            in = cp >= word_extra[k][0] && cp <= word_extra[k][1];
        if (!in && (a->mask & W_ONIG_BARE)) in = cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || (cp >= 0xBC && cp <= 0xBE);
        if (!in && (a->mask & W_RUST)) in = cp == 0x200C || cp == 0x200D;
    }
    return in ^ a->neg;
}

int llmc_regex_is_word(uint32_t cp, int dialect) {
    atom a = {A_WORD, 0, dialect == LLMC_REGEX_RUST ? W_RUST : W_ONIG_BARE, 0, 0};
    return atom_has(&a, cp);
}

/* ---------------------------------------------------------------- program */
enum { I_CHAR, I_CLASS, I_ANY, I_SPLIT, I_JMP, I_ASSERT, I_MATCH };
enum { AS_BOL, AS_EOL, AS_BOT, AS_EOT, AS_EOT_NL, AS_LOOK, AS_NOT_LOOK };

typedef struct {
    uint8_t op, arg; /* arg: the assertion kind */
    uint32_t x, y;   /* CHAR: code point; CLASS / lookahead: class index; SPLIT: x preferred, y; JMP: x */
} inst;

struct llmc_regex {
    inst *prog;
    size_t n_prog, cap_prog;
    cclass *classes;
    size_t n_classes, cap_classes;
    atom *atoms;
    size_t n_atoms, cap_atoms;
};

static inline int class_has(const llmc_regex *re, uint32_t k, uint32_t cp) {
    const cclass *c = &re->classes[k];
    if (cp < 128) return (c->ascii[cp >> 6] >> (cp & 63)) & 1;
    if (cp == END_CP) return 0;
    int in = 0;
    for (uint32_t i = 0; i < c->n && !in; i++) in = atom_has(&re->atoms[c->first + i], cp);
    return in ^ c->neg;
}

/* ---------------------------------------------------------------- syntax tree */
enum { N_EMPTY, N_CHAR, N_CLASS, N_ANY, N_CAT, N_ALT, N_REPEAT, N_ASSERT };
typedef struct node node;
struct node {
    int kind;
    uint32_t cp;         /* N_CHAR; N_CLASS / lookahead N_ASSERT: class index */
    int assert_kind;     /* N_ASSERT */
    int min, max;        /* N_REPEAT (max -1: unbounded) */
    int greedy, possessive;
    node **kids;
    size_t n_kids, cap_kids;
};

typedef struct {
    const uint8_t *s;
    size_t n, i;
    llmc_regex *re;
    node **all; /* every node, for freeing */
    size_t n_all, cap_all;
    int depth;
    llmc_status st;
    int dialect; /* LLMC_REGEX_* */
} parser;

static llmc_status unsup(parser *P, const char *what) {
    if (!P->st)
        P->st = llmc_fail(LLMC_ERR_UNSUPPORTED,
                          "regex construct %s at offset %zu is not supported by llmc's pre-tokenizer engine (pattern "
                          "'%.200s')",
                          what, P->i, (const char *)P->s);
    return P->st;
}

static llmc_status bad(parser *P, const char *what) {
    if (!P->st)
        P->st = llmc_fail(LLMC_ERR_INVALID, "invalid regex: %s at offset %zu (pattern '%.200s')", what, P->i,
                          (const char *)P->s);
    return P->st;
}

static node *new_node(parser *P, int kind) {
    if (llmc_grow((void **)&P->all, &P->cap_all, P->n_all + 1, sizeof(node *), "regex")) {
        P->st = LLMC_ERR_NOMEM;
        return NULL;
    }
    node *nd = llmc_calloc(1, sizeof *nd, "regex");
    if (!nd) {
        P->st = LLMC_ERR_NOMEM;
        return NULL;
    }
    nd->kind = kind;
    P->all[P->n_all++] = nd;
    return nd;
}

static int add_kid(parser *P, node *p, node *k) {
    if (llmc_grow((void **)&p->kids, &p->cap_kids, p->n_kids + 1, sizeof(node *), "regex")) {
        P->st = LLMC_ERR_NOMEM;
        return -1;
    }
    p->kids[p->n_kids++] = k;
    return 0;
}

static int push_atom(parser *P, int kind, int neg, uint32_t mask, uint32_t lo, uint32_t hi) {
    llmc_regex *re = P->re;
    if (llmc_grow((void **)&re->atoms, &re->cap_atoms, re->n_atoms + 1, sizeof(atom), "regex")) {
        P->st = LLMC_ERR_NOMEM;
        return -1;
    }
    re->atoms[re->n_atoms++] = (atom){(uint8_t)kind, (uint8_t)neg, mask, lo, hi};
    return 0;
}

/* A new class from atoms[first..) with negation; ASCII membership precomputed (ci: fold ASCII letters). */
static long finish_class(parser *P, uint32_t first, int neg, int ci) {
    llmc_regex *re = P->re;
    if (llmc_grow((void **)&re->classes, &re->cap_classes, re->n_classes + 1, sizeof(cclass), "regex")) {
        P->st = LLMC_ERR_NOMEM;
        return -1;
    }
    cclass *c = &re->classes[re->n_classes];
    memset(c, 0, sizeof *c);
    c->first = first;
    c->n = (uint32_t)(re->n_atoms - first);
    c->neg = (uint8_t)neg;
    uint8_t pos[128];
    for (uint32_t cp = 0; cp < 128; cp++) {
        int in = 0;
        for (uint32_t i = 0; i < c->n && !in; i++) in = atom_has(&re->atoms[first + i], cp);
        pos[cp] = (uint8_t)in;
    }
    if (ci) {
        for (uint32_t cp = 'a'; cp <= 'z'; cp++) pos[cp] = pos[cp - 32] = pos[cp] | pos[cp - 32];
        /* the two non-ASCII letters whose simple case folding is ASCII: U+017F long s, U+212A Kelvin sign */
        if (pos['s'] && push_atom(P, A_RANGE, 0, 0, 0x17F, 0x17F)) return -1;
        if (pos['k'] && push_atom(P, A_RANGE, 0, 0, 0x212A, 0x212A)) return -1;
        c = &re->classes[re->n_classes];
        c->n = (uint32_t)(re->n_atoms - first);
    }
    for (uint32_t cp = 0; cp < 128; cp++)
        if (pos[cp] ^ neg) c->ascii[cp >> 6] |= 1ull << (cp & 63);
    return (long)re->n_classes++;
}

static inline int peek(parser *P) { return P->i < P->n ? P->s[P->i] : -1; }

static uint32_t next_cp(parser *P) {
    size_t l;
    uint32_t cp = llmc_utf8_next(P->s + P->i, P->n - P->i, &l);
    if (cp == LLMC_BAD_CP) bad(P, "invalid UTF-8");
    P->i += l;
    return cp;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* \p{Name} / \P{Name} / \pL after the 'p' or 'P': the category mask, 0 on error. */
static uint32_t parse_prop(parser *P) {
    char name[64];
    size_t k = 0;
    if (peek(P) == '{') {
        P->i++;
        int neg = 0;
        if (peek(P) == '^') { /* \p{^L}: Oniguruma's negation */
            neg = 1;
            P->i++;
        }
        while (P->i < P->n && P->s[P->i] != '}' && k < sizeof name - 1) name[k++] = (char)P->s[P->i++];
        if (peek(P) != '}') {
            bad(P, "unterminated \\p{");
            return 0;
        }
        P->i++;
        if (neg) {
            unsup(P, "\\p{^...}");
            return 0;
        }
    } else if (P->i < P->n) {
        name[k++] = (char)P->s[P->i++];
    }
    name[k] = 0;
    const char *nm = name;
    if (!strncmp(nm, "gc=", 3)) nm += 3;
    else if (!strncmp(nm, "General_Category=", 17)) nm += 17;
    for (size_t q = 0; q < sizeof cat_names / sizeof cat_names[0]; q++)
        if (!strcmp(cat_names[q].name, nm)) return cat_names[q].mask;
    char what[96];
    snprintf(what, sizeof what, "\\p{%s} (only general categories)", name);
    unsup(P, what);
    return 0;
}

/* An escape after '\\' that stands for a set (\s \d \w \p ...): pushes an atom, returns 1; a single character:
 * *cp, returns 0; an anchor or error: returns -1 (P->st set for errors, *anchor for anchors). */
static int parse_escape(parser *P, uint32_t *cp, int *anchor, int in_class) {
    if (P->i >= P->n) {
        bad(P, "trailing backslash");
        return -1;
    }
    int c = P->s[P->i++];
    switch (c) {
    case 's': case 'S': return push_atom(P, A_WS, c == 'S', 0, 0, 0) ? -1 : 1;
    case 'd': case 'D': return push_atom(P, A_CATS, c == 'D', 1u << LLMC_UC_ND, 0, 0) ? -1 : 1;
    case 'w': case 'W':
        return push_atom(P, A_WORD, c == 'W', P->dialect == LLMC_REGEX_RUST ? W_RUST : in_class ? 0 : W_ONIG_BARE, 0,
                         0) ? -1 : 1;
    case 'p': case 'P': {
        uint32_t m = parse_prop(P);
        if (!m) return -1;
        return push_atom(P, A_CATS, c == 'P', m, 0, 0) ? -1 : 1;
    }
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'v': *cp = '\v'; return 0;
    case 'a': *cp = 7; return 0;
    case 'e': *cp = 27; return 0;
    case 'x': case 'u': {
        uint32_t v = 0;
        int digits = 0;
        if (c == 'x' && peek(P) == '{') {
            P->i++;
            while (P->i < P->n && hexval(P->s[P->i]) >= 0 && digits < 8) v = v * 16 + (uint32_t)hexval(P->s[P->i++]), digits++;
            if (peek(P) != '}' || !digits) {
                bad(P, "bad \\x{...}");
                return -1;
            }
            P->i++;
        } else {
            int want = c == 'x' ? 2 : 4;
            while (digits < want && P->i < P->n && hexval(P->s[P->i]) >= 0) v = v * 16 + (uint32_t)hexval(P->s[P->i++]), digits++;
            if (digits != want) {
                bad(P, c == 'x' ? "bad \\xHH" : "bad \\uHHHH");
                return -1;
            }
        }
        if (v > 0x10FFFF) {
            bad(P, "code point above U+10FFFF");
            return -1;
        }
        *cp = v;
        return 0;
    }
    case 'A': case 'z': case 'Z':
        if (in_class) break;
        *anchor = c == 'A' ? AS_BOT : c == 'z' ? AS_EOT : AS_EOT_NL;
        return -1;
    default:
        if (c < 0x80 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            *cp = (uint32_t)c; /* escaped punctuation or space: itself */
            return 0;
        }
        break;
    }
    char what[16];
    snprintf(what, sizeof what, "\\%c", c < 0x80 ? c : '?');
    P->i--;
    unsup(P, what);
    return -1;
}

/* [...] after the '[' */
static node *parse_class(parser *P, int ci) {
    int neg = 0;
    if (peek(P) == '^') {
        neg = 1;
        P->i++;
    }
    uint32_t first = (uint32_t)P->re->n_atoms;
    int first_item = 1;
    for (;;) {
        int c = peek(P);
        if (c < 0) {
            bad(P, "unterminated [");
            return NULL;
        }
        if (c == ']' && !first_item) {
            P->i++;
            break;
        }
        first_item = 0;
        if (c == '[') {
            if (P->i + 1 < P->n && P->s[P->i + 1] == ':') unsup(P, "POSIX class [:...:]");
            else unsup(P, "nested class or class set operation");
            return NULL;
        }
        if (c == '&' && P->i + 1 < P->n && P->s[P->i + 1] == '&') {
            unsup(P, "class intersection &&");
            return NULL;
        }
        uint32_t lo;
        int anchor = -1;
        if (c == '\\') {
            P->i++;
            int r = parse_escape(P, &lo, &anchor, 1);
            if (r < 0) return NULL;
            if (r == 1) continue; /* a set atom was pushed */
        } else {
            lo = next_cp(P);
            if (P->st) return NULL;
        }
        uint32_t hi = lo;
        if (peek(P) == '-' && P->i + 1 < P->n && P->s[P->i + 1] != ']') {
            P->i++;
            if (peek(P) == '\\') {
                P->i++;
                int r = parse_escape(P, &hi, &anchor, 1);
                if (r != 0) {
                    if (!P->st) bad(P, "a set as a range end");
                    return NULL;
                }
            } else {
                hi = next_cp(P);
                if (P->st) return NULL;
            }
            if (hi < lo) {
                bad(P, "range out of order");
                return NULL;
            }
        }
        if (push_atom(P, A_RANGE, 0, 0, lo, hi)) return NULL;
    }
    long k = finish_class(P, first, neg, ci);
    if (k < 0) return NULL;
    node *nd = new_node(P, N_CLASS);
    if (nd) nd->cp = (uint32_t)k;
    return nd;
}

static node *parse_alt(parser *P, int ci);

/* A single-item class for a set escape just parsed (atoms[first..)). */
static node *set_node(parser *P, uint32_t first, int ci) {
    long k = finish_class(P, first, 0, ci);
    if (k < 0) return NULL;
    node *nd = new_node(P, N_CLASS);
    if (nd) nd->cp = (uint32_t)k;
    return nd;
}

/* The simple lower-case mapping of cp (itself when it has none or maps to several characters). */
static uint32_t lower1(uint32_t cp) {
    size_t lo = 0, hi = llmc_lower_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (llmc_lower_table[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < llmc_lower_count && llmc_lower_table[lo][0] == cp && !llmc_lower_table[lo][2]) return llmc_lower_table[lo][1];
    return cp;
}

static node *char_node(parser *P, uint32_t cp, int ci) {
    if (ci && cp < 128 && ((cp | 32) >= 'a' && (cp | 32) <= 'z')) { /* ASCII letter under (?i): a two-letter class */
        uint32_t first = (uint32_t)P->re->n_atoms;
        if (push_atom(P, A_RANGE, 0, 0, cp, cp)) return NULL;
        return set_node(P, first, 1);
    }
    if (ci && cp >= 128) { /* under (?i): every character with the same simple lower case (U+017F ~ s, U+212A ~ k) */
        uint32_t lc = cp == 0x17F ? 's' : cp == 0x212A ? 'k' : lower1(cp), first = (uint32_t)P->re->n_atoms;
        if (push_atom(P, A_RANGE, 0, 0, cp, cp) || push_atom(P, A_RANGE, 0, 0, lc, lc)) return NULL;
        for (size_t k = 0; k < llmc_lower_count; k++)
            if (llmc_lower_table[k][1] == lc && !llmc_lower_table[k][2] &&
                push_atom(P, A_RANGE, 0, 0, llmc_lower_table[k][0], llmc_lower_table[k][0]))
                return NULL;
        return set_node(P, first, 1);
    }
    node *nd = new_node(P, N_CHAR);
    if (nd) nd->cp = cp;
    return nd;
}

/* An atom: a character, a class, a group, an anchor. *ci may change (inline (?i) applies to the rest). */
static node *parse_atom(parser *P, int *ci) {
    int c = peek(P);
    if (c == '(') {
        P->i++;
        if (++P->depth > MAX_DEPTH) {
            unsup(P, "groups nested this deep");
            return NULL;
        }
        int gci = *ci;
        if (peek(P) == '?') {
            P->i++;
            int q = peek(P);
            if (q == ':') {
                P->i++;
            } else if (q == '!' || q == '=') { /* one-character lookahead */
                P->i++;
                int lci = *ci;
                uint32_t first = (uint32_t)P->re->n_atoms;
                node *inner = parse_atom(P, &lci);
                if (!inner) return NULL;
                long k;
                if (inner->kind == N_CLASS) k = inner->cp;
                else if (inner->kind == N_CHAR) {
                    if (push_atom(P, A_RANGE, 0, 0, inner->cp, inner->cp)) return NULL;
                    k = finish_class(P, (uint32_t)P->re->n_atoms - 1, 0, 0);
                } else if (inner->kind == N_ANY) {
                    if (push_atom(P, A_RANGE, 0, 0, '\n', '\n')) return NULL;
                    k = finish_class(P, (uint32_t)P->re->n_atoms - 1, 1, 0);
                } else {
                    unsup(P, "lookahead over more than one character");
                    return NULL;
                }
                (void)first;
                if (k < 0) return NULL;
                if (peek(P) != ')') {
                    unsup(P, "lookahead over more than one character");
                    return NULL;
                }
                P->i++;
                P->depth--;
                node *nd = new_node(P, N_ASSERT);
                if (nd) {
                    nd->assert_kind = q == '!' ? AS_NOT_LOOK : AS_LOOK;
                    nd->cp = (uint32_t)k;
                }
                return nd;
            } else if (q == '<' && P->i + 1 < P->n && (P->s[P->i + 1] == '=' || P->s[P->i + 1] == '!')) {
                unsup(P, "lookbehind (?<=...) / (?<!...)");
                return NULL;
            } else if (q == '>') {
                unsup(P, "atomic group (?>...)");
                return NULL;
            } else if (q == '<' || q == 'P' || q == '\'') {
                /* named group: skip the name */
                if (q == 'P') P->i++;
                int close = peek(P) == '\'' ? '\'' : '>';
                P->i++;
                while (P->i < P->n && P->s[P->i] != close) P->i++;
                if (peek(P) != close) {
                    bad(P, "unterminated group name");
                    return NULL;
                }
                P->i++;
            } else { /* flags: (?i) (?i:...) (?-i:...) */
                int on = 1, any = 0;
                while (P->i < P->n && P->s[P->i] != ':' && P->s[P->i] != ')') {
                    int f = P->s[P->i++];
                    if (f == '-') on = 0;
                    else if (f == 'i') gci = on, any = 1;
                    else if (f == 'x' || f == 's' || f == 'm' || f == 'u') {
                        unsup(P, "inline flags other than i");
                        return NULL;
                    } else {
                        bad(P, "unknown group syntax");
                        return NULL;
                    }
                }
                if (!any) {
                    bad(P, "empty flag group");
                    return NULL;
                }
                if (peek(P) == ')') { /* (?i): the rest of the enclosing group */
                    P->i++;
                    P->depth--;
                    *ci = gci;
                    return new_node(P, N_EMPTY);
                }
                P->i++; /* ':' */
            }
        }
        node *inner = parse_alt(P, gci);
        if (!inner) return NULL;
        if (peek(P) != ')') {
            bad(P, "missing )");
            return NULL;
        }
        P->i++;
        P->depth--;
        return inner;
    }
    if (c == '[') {
        P->i++;
        return parse_class(P, *ci);
    }
    if (c == '.') {
        P->i++;
        return new_node(P, N_ANY);
    }
    if (c == '^' || c == '$') {
        P->i++;
        node *nd = new_node(P, N_ASSERT);
        if (nd) nd->assert_kind = c == '^' ? AS_BOL : AS_EOL;
        return nd;
    }
    if (c == '\\') {
        P->i++;
        uint32_t cp;
        int anchor = -1;
        uint32_t first = (uint32_t)P->re->n_atoms;
        int r = parse_escape(P, &cp, &anchor, 0);
        if (r == 1) return set_node(P, first, *ci);
        if (r == 0) return char_node(P, cp, *ci);
        if (anchor >= 0 && !P->st) {
            node *nd = new_node(P, N_ASSERT);
            if (nd) nd->assert_kind = anchor;
            return nd;
        }
        return NULL;
    }
    if (c == '*' || c == '+' || c == '?') {
        bad(P, "a quantifier with nothing to repeat");
        return NULL;
    }
    uint32_t cp = next_cp(P);
    if (P->st) return NULL;
    return char_node(P, cp, *ci);
}

/* Parse {n}, {n,}, {n,m} after '{'; 0 when it is not a quantifier (then '{' is a literal, as in Oniguruma). */
static int parse_braces(parser *P, int *mn, int *mx) {
    size_t j = P->i + 1;
    long a = 0, b = -1;
    int da = 0;
    while (j < P->n && P->s[j] >= '0' && P->s[j] <= '9' && da < 7) a = a * 10 + (P->s[j++] - '0'), da++;
    if (j < P->n && P->s[j] == '}' && da) {
        b = a;
    } else if (j < P->n && P->s[j] == ',') {
        j++;
        int db = 0;
        long v = 0;
        while (j < P->n && P->s[j] >= '0' && P->s[j] <= '9' && db < 7) v = v * 10 + (P->s[j++] - '0'), db++;
        if (j >= P->n || P->s[j] != '}' || (!da && !db)) return 0;
        b = db ? v : -1;
    } else {
        return 0;
    }
    *mn = (int)a;
    *mx = (int)b;
    P->i = j + 1;
    return 1;
}

static node *parse_seq(parser *P, int ci) {
    node *seq = new_node(P, N_CAT);
    if (!seq) return NULL;
    while (P->i < P->n && P->s[P->i] != '|' && P->s[P->i] != ')') {
        node *a = parse_atom(P, &ci);
        if (!a) return NULL;
        for (;;) { /* quantifiers (a repeated quantifier repeats the repetition, as the engines do) */
            int c = peek(P), mn, mx;
            if (c == '*') mn = 0, mx = -1, P->i++;
            else if (c == '+') mn = 1, mx = -1, P->i++;
            else if (c == '?') mn = 0, mx = 1, P->i++;
            else if (c == '{' && parse_braces(P, &mn, &mx)) {
            } else break;
            if (mx >= 0 && mx < mn) {
                bad(P, "{n,m} with m < n");
                return NULL;
            }
            if (a->kind == N_ASSERT || a->kind == N_EMPTY) {
                unsup(P, "a quantified anchor or lookahead");
                return NULL;
            }
            node *r = new_node(P, N_REPEAT);
            if (!r || add_kid(P, r, a)) return NULL;
            r->min = mn;
            r->max = mx;
            r->greedy = 1;
            if (peek(P) == '?') {
                r->greedy = 0;
                P->i++;
            } else if (peek(P) == '+') {
                P->i++;
                if (!(a->kind == N_CHAR || a->kind == N_CLASS || a->kind == N_ANY) || (mx >= 0 && mx != 1) ||
                    (mx == 1 && mn != 0)) {
                    unsup(P, "a possessive quantifier other than *+, ++, ?+ on one character or class");
                    return NULL;
                }
                r->possessive = 1;
            }
            a = r;
        }
        if (add_kid(P, seq, a)) return NULL;
    }
    return seq;
}

static node *parse_alt(parser *P, int ci) {
    node *first = parse_seq(P, ci);
    if (!first || peek(P) != '|') return first;
    node *alt = new_node(P, N_ALT);
    if (!alt || add_kid(P, alt, first)) return NULL;
    while (peek(P) == '|') {
        P->i++;
        node *b = parse_seq(P, ci);
        if (!b || add_kid(P, alt, b)) return NULL;
    }
    return alt;
}

/* ---------------------------------------------------------------- compiling */
static long emit(parser *P, int op, uint32_t x, uint32_t y, int arg) {
    llmc_regex *re = P->re;
    if (re->n_prog >= MAX_PROG) {
        unsup(P, "a pattern this large (over 200000 instructions after expanding counted repetitions)");
        return -1;
    }
    if (llmc_grow((void **)&re->prog, &re->cap_prog, re->n_prog + 1, sizeof(inst), "regex")) {
        P->st = LLMC_ERR_NOMEM;
        return -1;
    }
    re->prog[re->n_prog] = (inst){(uint8_t)op, (uint8_t)arg, x, y};
    return (long)re->n_prog++;
}

/* The class index a single-character node matches (for possessive exits). */
static long atom_class(parser *P, const node *a) {
    if (a->kind == N_CLASS) return a->cp;
    uint32_t first = (uint32_t)P->re->n_atoms;
    if (a->kind == N_CHAR) {
        if (push_atom(P, A_RANGE, 0, 0, a->cp, a->cp)) return -1;
        return finish_class(P, first, 0, 0);
    }
    if (push_atom(P, A_RANGE, 0, 0, '\n', '\n')) return -1; /* N_ANY */
    return finish_class(P, first, 1, 0);
}

static int compile_node(parser *P, const node *nd) {
    llmc_regex *re = P->re;
    switch (nd->kind) {
    case N_EMPTY: return 0;
    case N_CHAR: return emit(P, I_CHAR, nd->cp, 0, 0) < 0 ? -1 : 0;
    case N_CLASS: return emit(P, I_CLASS, nd->cp, 0, 0) < 0 ? -1 : 0;
    case N_ANY: return emit(P, I_ANY, 0, 0, 0) < 0 ? -1 : 0;
    case N_ASSERT: return emit(P, I_ASSERT, nd->cp, 0, nd->assert_kind) < 0 ? -1 : 0;
    case N_CAT:
        for (size_t k = 0; k < nd->n_kids; k++)
            if (compile_node(P, nd->kids[k])) return -1;
        return 0;
    case N_ALT: {
        /* SPLIT a, next; a; JMP end; next: SPLIT b, next2; b; JMP end; ... last */
        long jumps[4096];
        size_t nj = 0;
        if (nd->n_kids > 4096) {
            unsup(P, "an alternation of more than 4096 branches");
            return -1;
        }
        for (size_t k = 0; k < nd->n_kids; k++) {
            long sp = -1;
            if (k + 1 < nd->n_kids && (sp = emit(P, I_SPLIT, 0, 0, 0)) < 0) return -1;
            if (sp >= 0) re->prog[sp].x = (uint32_t)re->n_prog;
            if (compile_node(P, nd->kids[k])) return -1;
            if (k + 1 < nd->n_kids) {
                if ((jumps[nj++] = emit(P, I_JMP, 0, 0, 0)) < 0) return -1;
                re->prog[sp].y = (uint32_t)re->n_prog;
            }
        }
        for (size_t j = 0; j < nj; j++) re->prog[jumps[j]].x = (uint32_t)re->n_prog;
        return 0;
    }
    case N_REPEAT: {
        const node *a = nd->kids[0];
        long cls = nd->possessive ? atom_class(P, a) : -1;
        if (nd->possessive && cls < 0) return -1;
        for (int k = 0; k < nd->min; k++)
            if (compile_node(P, a)) return -1;
        if (nd->max < 0) { /* L: SPLIT body, out; body; JMP L; out: */
            long L = emit(P, I_SPLIT, 0, 0, 0);
            if (L < 0 || compile_node(P, a)) return -1;
            if (emit(P, I_JMP, (uint32_t)L, 0, 0) < 0) return -1;
            long out = (long)re->n_prog;
            re->prog[L].x = nd->greedy ? (uint32_t)L + 1 : (uint32_t)out;
            re->prog[L].y = nd->greedy ? (uint32_t)out : (uint32_t)L + 1;
            /* possessive: leave the loop only where the next character cannot continue it */
            if (nd->possessive && emit(P, I_ASSERT, (uint32_t)cls, 0, AS_NOT_LOOK) < 0) return -1;
            return 0;
        }
        long splits[1024];
        int nopt = nd->max - nd->min;
        if (nopt > 1024) {
            unsup(P, "a counted repetition with more than 1024 optional copies");
            return -1;
        }
        for (int k = 0; k < nopt; k++) { /* SPLIT body, end; body; ... */
            if ((splits[k] = emit(P, I_SPLIT, 0, 0, 0)) < 0 || compile_node(P, a)) return -1;
        }
        long end = (long)re->n_prog;
        for (int k = 0; k < nopt; k++) {
            re->prog[splits[k]].x = nd->greedy ? (uint32_t)splits[k] + 1 : (uint32_t)end;
            re->prog[splits[k]].y = nd->greedy ? (uint32_t)end : (uint32_t)splits[k] + 1;
        }
        if (nd->possessive) { /* x?+: the skipping branch must not see an x next */
            long jmp = emit(P, I_JMP, 0, 0, 0);
            if (jmp < 0) return -1;
            long skip = (long)re->n_prog;
            if (emit(P, I_ASSERT, (uint32_t)cls, 0, AS_NOT_LOOK) < 0) return -1;
            re->prog[jmp].x = (uint32_t)re->n_prog;
            for (int k = 0; k < nopt; k++) re->prog[splits[k]].y = (uint32_t)skip;
        }
        return 0;
    }
    }
    return -1;
}

void llmc_regex_free(llmc_regex *re) {
    if (!re) return;
    llmc_free(re->prog);
    llmc_free(re->classes);
    llmc_free(re->atoms);
    llmc_free(re);
}

llmc_status llmc_regex_compile(const char *pat, size_t len, int dialect, llmc_regex **out) {
    *out = NULL;
    llmc_regex *re = llmc_calloc(1, sizeof *re, "regex");
    if (!re) return LLMC_ERR_NOMEM;
    parser P = {(const uint8_t *)pat, len, 0, re, NULL, 0, 0, 0, LLMC_OK, dialect};
    node *root = parse_alt(&P, 0);
    if (root && !P.st && P.i < P.n) bad(&P, "unbalanced )");
    if (root && !P.st && !compile_node(&P, root)) emit(&P, I_MATCH, 0, 0, 0);
    for (size_t k = 0; k < P.n_all; k++) {
        llmc_free(P.all[k]->kids);
        llmc_free(P.all[k]);
    }
    llmc_free(P.all);
    llmc_status st = P.st ? P.st : (root ? LLMC_OK : LLMC_ERR_INTERNAL);
    if (st) {
        llmc_regex_free(re);
        return st == LLMC_ERR_INTERNAL ? llmc_fail(st, "regex compile failed") : st;
    }
    *out = re;
    return LLMC_OK;
}

/* ---------------------------------------------------------------- the Pike VM */
void llmc_regex_scratch_free(llmc_regex_scratch *sc) {
    for (int k = 0; k < 2; k++) {
        llmc_free(sc->pcs[k]);
        llmc_free(sc->starts[k]);
        llmc_free(sc->sparse[k]);
    }
    llmc_free(sc->stack);
    memset(sc, 0, sizeof *sc);
}

static int scratch_reserve(llmc_regex_scratch *sc, size_t n) {
    if (sc->cap >= n) return 0;
    llmc_regex_scratch_free(sc);
    for (int k = 0; k < 2; k++) {
        sc->pcs[k] = llmc_malloc(n * sizeof(uint32_t), "regex threads");
        sc->starts[k] = llmc_malloc(n * sizeof(uint32_t), "regex threads");
        sc->sparse[k] = llmc_calloc(n, sizeof(uint32_t), "regex threads"); /* marks: 0 is older than any stamp */
        if (!sc->pcs[k] || !sc->starts[k] || !sc->sparse[k]) return -1;
    }
    if (!(sc->stack = llmc_malloc(n * sizeof(uint32_t), "regex threads"))) return -1;
    sc->cap = n;
    sc->gen = 1;
    return 0;
}

static inline uint32_t cp_at(const uint8_t *s, size_t n, size_t i, size_t *len) {
    if (i >= n) {
        *len = 0;
        return END_CP;
    }
    if (s[i] < 0x80) {
        *len = 1;
        return s[i];
    }
    return llmc_utf8_next(s + i, n - i, len);
}

static int assert_ok(const llmc_regex *re, const inst *in, const uint8_t *s, size_t n, size_t pos) {
    size_t l;
    switch (in->arg) {
    case AS_BOT: return pos == 0;
    case AS_EOT: return pos == n;
    case AS_EOT_NL: return pos == n || (pos + 1 == n && s[pos] == '\n');
    case AS_BOL: return pos == 0 || s[pos - 1] == '\n';
    case AS_EOL: return pos == n || s[pos] == '\n';
    case AS_LOOK: return class_has(re, in->x, cp_at(s, n, pos, &l));
    case AS_NOT_LOOK: return !class_has(re, in->x, cp_at(s, n, pos, &l));
    }
    return 0;
}

/* A thread list: dense (pc, start) in priority order; sparse[pc] indexes dense (a pc is in the list once). Only
 * character-consuming instructions and MATCH are kept in the dense part; `seen` marks every pc visited. */
typedef struct {
    uint32_t *pc, *start, *sparse;
    size_t n;    /* consuming threads */
    size_t seen; /* pcs marked (a prefix of the sparse-set's marks, kept in stack-independent array) */
} tlist;

/* Follow the epsilon closure of pc at position pos in priority order (depth first, preferred branch first),
 * appending the consuming instructions reached to L. mark: per-pc generation stamps live in L->sparse. */
static void add_thread(const llmc_regex *re, tlist *L, uint32_t *stack, uint32_t gen, uint32_t pc0, uint32_t start,
                       const uint8_t *s, size_t n, size_t pos) {
    size_t sp = 0;
    stack[sp++] = pc0;
    while (sp) {
        uint32_t pc = stack[--sp];
        if (L->sparse[pc] == gen) continue; /* reached already (by a thread of higher priority) */
        L->sparse[pc] = gen;
        const inst *in = &re->prog[pc];
        switch (in->op) {
        case I_JMP: stack[sp++] = in->x; break;
        case I_SPLIT:
            stack[sp++] = in->y; /* popped after everything x leads to */
            stack[sp++] = in->x;
            break;
        case I_ASSERT:
            if (assert_ok(re, in, s, n, pos)) stack[sp++] = pc + 1;
            break;
        default: /* CHAR, CLASS, ANY, MATCH */
            L->pc[L->n] = pc;
            L->start[L->n++] = start;
            break;
        }
    }
}

int llmc_regex_find(const llmc_regex *re, llmc_regex_scratch *sc, const uint8_t *s, size_t n, size_t from,
                    size_t *ms, size_t *me) {
    size_t np = re->n_prog;
    /* the stack holds at most one entry per pc plus the pending SPLIT alternatives: 2 * np is enough */
    if (scratch_reserve(sc, 2 * np + 2)) return -1;
    if (from > n) return 0;
    tlist A = {sc->pcs[0], sc->starts[0], sc->sparse[0], 0, 0}, B = {sc->pcs[1], sc->starts[1], sc->sparse[1], 0, 0};
    tlist *cur = &A, *nxt = &B;
    /* generation stamps: a fresh value per list per position, increasing across calls (so no clearing per call);
     * all marks are cleared when the counter would wrap */
    static const uint32_t GEN_LIMIT = 0xFFFFFFF0u;
    uint32_t gen = sc->gen;
    if (gen >= GEN_LIMIT) {
        for (size_t k = 0; k < sc->cap; k++) A.sparse[k] = B.sparse[k] = 0;
        gen = 1;
    }
    uint32_t gcur = gen++;
    int matched = 0;
    size_t pos = from;
    for (;;) {
        if (!matched) add_thread(re, cur, sc->stack, gcur, 0, (uint32_t)(pos - from), s, n, pos);
        size_t clen;
        uint32_t c = cp_at(s, n, pos, &clen);
        if (cur->n == 0) {
            if (matched || pos >= n) break;
            pos += clen; /* nothing alive: try a match starting at the next character */
            if (gen >= GEN_LIMIT) {
                for (size_t k = 0; k < sc->cap; k++) A.sparse[k] = B.sparse[k] = 0;
                gen = 1;
            }
            gcur = gen++;
            continue;
        }
        if (gen >= GEN_LIMIT) { /* rare: restart the stamps (cur's marks are not needed after this point) */
            for (size_t k = 0; k < sc->cap; k++) A.sparse[k] = B.sparse[k] = 0;
            gen = 1;
        }
        uint32_t gnext = gen++;
        nxt->n = 0;
        for (size_t t = 0; t < cur->n; t++) {
            uint32_t pc = cur->pc[t];
            const inst *in = &re->prog[pc];
            int ok;
            switch (in->op) {
            case I_MATCH:
                matched = 1;
                *ms = from + cur->start[t];
                *me = pos;
                t = cur->n; /* threads of lower priority end here */
                continue;
            case I_CHAR: ok = c == in->x; break;
            case I_CLASS: ok = class_has(re, in->x, c); break;
            default: ok = c != END_CP && c != '\n'; break; /* I_ANY */
            }
            if (ok) add_thread(re, nxt, sc->stack, gnext, pc + 1, cur->start[t], s, n, pos + clen);
        }
        if (pos >= n) break;
        tlist *tmp = cur;
        cur = nxt;
        nxt = tmp;
        gcur = gnext;
        pos += clen;
    }
    sc->gen = gen;
    return matched;
}
