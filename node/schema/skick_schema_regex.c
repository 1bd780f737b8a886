/*  skick_schema_regex - translate ECMA-262 regular expressions to POSIX extended ones  */

/*
 * JSON Schema's "pattern" and "patternProperties" are ECMA-262 regexes; the C library only has
 * POSIX regcomp(). skick_schema_regex_translate() (skick/schema.h; the exact translation is in
 * docs/schema.md) rewrites the subset that has a POSIX equivalent and refuses the rest
 * (lookaround, backreferences, \b, ...) with a reason, so that a schema never means something
 * else than what its author wrote. It needs no schema tree and is fuzzed on its own
 * (tests/fuzz/fuzz_schema.c, mode 3).
 *
 * Ownership: writes only into the caller's buffers; allocates nothing.
 * Thread-safety: no global state. The only input from the environment is MB_CUR_MAX (how '.'
 * is translated), read once per call.
 */

#include "skick_schema_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* '.' for a single-byte locale: one UTF-8 encoded code point other than \n and \r */
#define S_DOT_BYTES "([^\n\r\x80-\xff]|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf][\x80-\xbf]" \
                    "|[\xf0-\xf4][\x80-\xbf][\x80-\xbf][\x80-\xbf])"
/* '.' for a multibyte locale, where regcomp already works on characters */
#define S_DOT_CHARS "[^\n\r]"

typedef struct {
    const char *src;            /* ECMA source being translated */
    size_t pos;                 /* read offset into src */
    char *out;                  /* output buffer */
    size_t cap;                 /* output capacity, including the NUL */
    size_t len;                 /* bytes written so far */
    char *err;                  /* caller's error buffer (may be NULL) */
    size_t errlen;              /* size of err */
    bool failed;                /* an error was recorded */
    bool after_quant;           /* previous token was a quantifier */
} s_rx_t;

typedef struct {
    bool rbracket;              /* set holds ']' */
    bool lbracket;              /* set holds '[' */
    bool caret;                 /* set holds '^' */
    bool dash;                  /* set holds '-' */
    char body[512];             /* other members, POSIX bracket syntax */
    size_t len;                 /* bytes used in body */
} s_set_t;

/* Record the first translation error ("... at offset N") and return -1. */
static int s_rx_fail(s_rx_t *rx, const char *what)
{
    if (!rx->failed && rx->err != NULL && rx->errlen > 0)
        snprintf(rx->err, rx->errlen, "%s at offset %zu", what, rx->pos);
    rx->failed = true;
    return -1;
}

/* Append text to the output; fails when it does not fit. */
static int s_rx_put(s_rx_t *rx, const char *text, size_t n)
{
    if (rx->len + n + 1 > rx->cap)
        return s_rx_fail(rx, "regex too long after translation");
    memcpy(rx->out + rx->len, text, n);
    rx->len += n;
    rx->out[rx->len] = '\0';
    return 0;
}

static int s_rx_puts(s_rx_t *rx, const char *text)
{
    return s_rx_put(rx, text, strlen(text));
}

static int s_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Read n hex digits at src[at]; return the value or -1. */
static long s_hex(const char *src, size_t at, int n)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        int h = s_hexval((unsigned char) src[at + (size_t) i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Encode code point cp as UTF-8 into buf (>= 4 bytes); return the length. */
static size_t s_utf8_encode(long cp, char *buf)
{
    if (cp < 0x80) {
        buf[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char) (0xC0 | (cp >> 6));
        buf[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char) (0xE0 | (cp >> 12));
        buf[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char) (0xF0 | (cp >> 18));
    buf[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Decode the escape at rx->pos (pointing after the backslash) that denotes one literal code
 * point: \n \r \t \f \v, \xHH, \uHHHH (with surrogate pairs), \b when in_set (backspace), or
 * an escaped punctuation character. Advances rx->pos. Returns the code point, -1 when the
 * escape is not a literal (class, assertion, ...), -2 on a malformed escape.
 */
static long s_rx_escape_literal(s_rx_t *rx, bool in_set)
{
    static const char letters[] = "nrtfv";
    static const char controls[] = "\n\r\t\f\v";
    const char *s = rx->src;
    unsigned char c = (unsigned char) s[rx->pos];
    const char *hit = c != '\0' ? strchr(letters, c) : NULL;
    long cp;
    if (hit != NULL || (c == 'b' && in_set)) {
        rx->pos++;
        return hit != NULL ? controls[hit - letters] : '\b';
    }
    switch (c) {
    case 'x':
        cp = s_hex(s, rx->pos + 1, 2);
        if (cp < 0)
            return -2;
        rx->pos += 3;
        return cp;
    case 'u':
        cp = s_hex(s, rx->pos + 1, 4);
        if (cp < 0)
            return -2;
        rx->pos += 5;
        if (cp >= 0xD800 && cp <= 0xDBFF && s[rx->pos] == '\\' && s[rx->pos + 1] == 'u') {
            long lo = s_hex(s, rx->pos + 2, 4);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                rx->pos += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
        }
        return (cp >= 0xD800 && cp <= 0xDFFF) ? -2 : cp;
    default:
        if (c == '\0' || isalnum(c) || c >= 0x80)
            return -1;
        rx->pos++;
        return c;
    }
}

/* Emit a literal code point outside brackets (escaped, or grouped when multi-byte). */
static int s_rx_emit_literal(s_rx_t *rx, long cp)
{
    char buf[8];
    if (cp == 0)
        return s_rx_fail(rx, "NUL character in regex not supported");
    if (cp < 0x80) {
        bool special = strchr(".[]()*+?{}|^$\\", (int) cp) != NULL;
        buf[0] = '\\';
        buf[1] = (char) cp;
        return special ? s_rx_put(rx, buf, 2) : s_rx_put(rx, buf + 1, 1);
    }
    size_t n = s_utf8_encode(cp, buf + 1);
    buf[0] = '(';
    buf[n + 1] = ')';
    return s_rx_put(rx, buf, n + 2);
}

/* Add text to a bracket set body. */
static int s_set_add(s_rx_t *rx, s_set_t *set, const char *text, size_t n)
{
    if (set->len + n >= sizeof set->body)
        return s_rx_fail(rx, "character class too long");
    memcpy(set->body + set->len, text, n);
    set->len += n;
    return 0;
}

/* Add one code point (or range endpoint) to the set body, quoting bracket-special characters. */
static int s_set_add_char(s_rx_t *rx, s_set_t *set, long cp, bool endpoint)
{
    char c = (char) cp;
    if (cp == 0 || cp >= 0x80)
        return s_rx_fail(rx, "non-ASCII or NUL character in a character class not supported");
    if (!endpoint && (c == ']' || c == '[' || c == '^' || c == '-')) {
        set->rbracket |= c == ']';
        set->lbracket |= c == '[';
        set->caret |= c == '^';
        set->dash |= c == '-';
        return 0;
    }
    if (endpoint && (c == ']' || c == '[' || c == '^' || c == '-')) {
        char sym[] = {'[', '.', c, '.', ']'};
        return s_set_add(rx, set, sym, sizeof sym);
    }
    return s_set_add(rx, set, &c, 1);
}

/*
 * Read one class atom at rx->pos inside brackets. Returns a code point >= 0, -1 when the atom
 * was a class escape already added to set (\d \w \s), or -2 on error.
 */
static long s_set_atom(s_rx_t *rx, s_set_t *set)
{
    unsigned char c = (unsigned char) rx->src[rx->pos];
    if (c != '\\') {
        if (c >= 0x80)
            return s_rx_fail(rx, "non-ASCII character in a character class not supported") - 1;
        rx->pos++;
        return c;
    }
    rx->pos++;
    c = (unsigned char) rx->src[rx->pos];
    const char *cls = c == 'd' ? "0-9" : c == 'w' ? "A-Za-z0-9_" : c == 's' ? "[:space:]" : NULL;
    if (cls != NULL) {
        rx->pos++;
        return s_set_add(rx, set, cls, strlen(cls)) < 0 ? -2 : -1;
    }
    if (c == 'D' || c == 'W' || c == 'S')
        return s_rx_fail(rx, "negated class escape inside a character class not supported") - 1;
    long cp = s_rx_escape_literal(rx, true);
    if (cp < 0)
        return s_rx_fail(rx, "unsupported escape in character class") - 1;
    return cp;
}

/* Write the collected set as a POSIX bracket expression. */
static int s_set_emit(s_rx_t *rx, const s_set_t *set, bool negated)
{
    if (!negated && !set->rbracket && set->len == 0 && !set->lbracket && !set->dash)
        return set->caret ? s_rx_puts(rx, "\\^") : s_rx_fail(rx, "empty character class");
    if (s_rx_puts(rx, negated ? "[^" : "[") < 0 || (set->rbracket && s_rx_puts(rx, "]") < 0))
        return -1;
    if (s_rx_put(rx, set->body, set->len) < 0)
        return -1;
    if (set->lbracket && s_rx_puts(rx, "[") < 0)
        return -1;
    /* '^' may not come first: when it would (then '-' is in the set, see above), put '-' first */
    bool caret_first = !negated && !set->rbracket && set->len == 0 && !set->lbracket;
    if (caret_first && set->caret)
        return s_rx_puts(rx, "-^]");
    if (set->caret && s_rx_puts(rx, "^") < 0)
        return -1;
    if (set->dash && s_rx_puts(rx, "-") < 0)
        return -1;
    return s_rx_puts(rx, "]");
}

/* Translate the bracket expression starting at rx->pos (just after '['). */
static int s_rx_bracket(s_rx_t *rx)
{
    s_set_t set;
    memset(&set, 0, sizeof set);
    bool negated = rx->src[rx->pos] == '^';
    if (negated)
        rx->pos++;
    if (rx->src[rx->pos] == ']')
        return s_rx_fail(rx, negated ? "[^] not supported" : "empty character class");
    while (rx->src[rx->pos] != ']') {
        if (rx->src[rx->pos] == '\0')
            return s_rx_fail(rx, "unterminated character class");
        long lo = s_set_atom(rx, &set);
        if (lo == -2)
            return -1;
        bool range = lo >= 0 && rx->src[rx->pos] == '-' && rx->src[rx->pos + 1] != ']'
                     && rx->src[rx->pos + 1] != '\0';
        if (!range) {
            if (lo >= 0 && s_set_add_char(rx, &set, lo, false) < 0)
                return -1;
            continue;
        }
        rx->pos++;
        long hi = s_set_atom(rx, &set);
        if (hi == -2)
            return -1;
        if (hi == -1)
            return s_rx_fail(rx, "class escape as range end not supported");
        if (hi < lo)
            return s_rx_fail(rx, "character class range out of order");
        if (s_set_add_char(rx, &set, lo, true) < 0 || s_set_add(rx, &set, "-", 1) < 0
            || s_set_add_char(rx, &set, hi, true) < 0)
            return -1;
    }
    rx->pos++;
    return s_set_emit(rx, &set, negated);
}

/* Translate the escape at rx->pos (just after the backslash) outside brackets. */
static int s_rx_escape(s_rx_t *rx)
{
    static const char *const classes[][2] = {
        {"d", "[0-9]"}, {"D", "[^0-9]"}, {"w", "[A-Za-z0-9_]"}, {"W", "[^A-Za-z0-9_]"},
        {"s", "[[:space:]]"}, {"S", "[^[:space:]]"},
    };
    char c = rx->src[rx->pos];
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        if (c == classes[i][0][0]) {
            rx->pos++;
            return s_rx_puts(rx, classes[i][1]);
        }
    }
    if (c == 'b' || c == 'B')
        return s_rx_fail(rx, "word boundary \\b/\\B not supported");
    if (c >= '0' && c <= '9')
        return s_rx_fail(rx, "backreference or \\0 not supported");
    if (c == '\0')
        return s_rx_fail(rx, "trailing backslash");
    long cp = s_rx_escape_literal(rx, false);
    if (cp == -2)
        return s_rx_fail(rx, "malformed \\x or \\u escape");
    if (cp < 0)
        return s_rx_fail(rx, "unsupported escape (\\c, \\k, \\p or unknown letter)");
    return s_rx_emit_literal(rx, cp);
}

/* Length of a valid "{n}", "{n,}" or "{n,m}" quantifier at s, or 0 if it is not one. */
static size_t s_quantifier_len(const char *s)
{
    size_t i = 1;
    if (!isdigit((unsigned char) s[i]))
        return 0;
    while (isdigit((unsigned char) s[i]))
        i++;
    if (s[i] == ',') {
        i++;
        while (isdigit((unsigned char) s[i]))
            i++;
    }
    return s[i] == '}' ? i + 1 : 0;
}

/* Translate "(" and its possible "(?" group prefix at rx->pos (pointing at '('). */
static int s_rx_group(s_rx_t *rx)
{
    const char *s = rx->src + rx->pos;
    if (s[1] != '?') {
        rx->pos++;
        return s_rx_puts(rx, "(");
    }
    if (s[2] == ':') {
        rx->pos += 3;
        return s_rx_puts(rx, "(");
    }
    if (s[2] == '<' && (isalpha((unsigned char) s[3]) || s[3] == '_' || s[3] == '$')) {
        const char *end = strchr(s + 3, '>');
        if (end == NULL)
            return s_rx_fail(rx, "unterminated group name");
        rx->pos += (size_t) (end - s) + 1;
        return s_rx_puts(rx, "(");
    }
    return s_rx_fail(rx, "lookahead/lookbehind group not supported");
}

/* Translate one token at rx->pos outside brackets. */
static int s_rx_token(s_rx_t *rx, const char *dot)
{
    const char *s = rx->src + rx->pos;
    unsigned char c = (unsigned char) *s;
    size_t qlen = c == '{' ? s_quantifier_len(s) : (c == '*' || c == '+' || c == '?') ? 1 : 0;
    bool after_quant = rx->after_quant;
    rx->after_quant = qlen > 0;
    if (qlen > 0) {
        if (after_quant)
            return s_rx_fail(rx, "quantifier without operand");
        rx->pos += qlen;
        if (rx->src[rx->pos] == '?')
            rx->pos++;  /* lazy quantifier: same match/no-match answer as greedy */
        return s_rx_put(rx, s, qlen);
    }
    rx->pos++;
    switch (c) {
    case '\\': return s_rx_escape(rx);
    case '[': return s_rx_bracket(rx);
    case '(': rx->pos--; return s_rx_group(rx);
    case '.': return s_rx_puts(rx, dot);
    case '{':
    case '}': return s_rx_emit_literal(rx, c);
    default: break;
    }
    if (c >= 0x80) {
        size_t n = 1;
        while (n < 4 && ((unsigned char) s[n] & 0xC0) == 0x80)
            n++;
        rx->pos += n - 1;
        return s_rx_puts(rx, "(") < 0 || s_rx_put(rx, s, n) < 0 ? -1 : s_rx_puts(rx, ")");
    }
    return s_rx_put(rx, s, 1);
}

int skick_schema_regex_translate(const char *ecma, char *posix, size_t posixlen,
                                 char *err, size_t errlen)
{
    s_rx_t rx = {ecma, 0, posix, posixlen, 0, err, errlen, false, false};
    const char *dot = MB_CUR_MAX == 1 ? S_DOT_BYTES : S_DOT_CHARS;
    if (ecma == NULL || posix == NULL || posixlen == 0)
        return s_rx_fail(&rx, "no pattern or output buffer");
    posix[0] = '\0';
    while (ecma[rx.pos] != '\0') {
        if (s_rx_token(&rx, dot) < 0)
            return -1;
    }
    return 0;
}
