/*  skick_json - the one strict JSON reader of everything that crosses a
    process boundary (envelope bodies, websocket frames, skickctl arguments)

    One recursive-descent pass that either only checks (skick_json_valid:
    the broker, which forwards bodies without reading them) or also builds
    json-c objects (skick_json_parse_strict: shards and clients). Both run
    the same code, so what the broker lets through is exactly what a shard
    accepts.

    Why not json-c's tokener: on a receiving shard it was a third of the CPU
    per message (it switches the thread's locale on every call, and UTF-8 and
    finiteness needed passes of their own). The trees built here are the ones
    json-c builds for the same text: integers as int64 (saturating like
    json-c, uint64 above INT64_MAX), other numbers as doubles that keep their
    text, the last of duplicate keys wins, lone surrogate escapes become
    U+FFFD, "\u0000" stays inside a string (a key ends at it).
    tests/proto/test_envelope.c holds this reader to json-c on fixed and on
    randomly damaged documents.

    The rules (PROTOCOL.md "Envelopes"): RFC 8259 with whitespace limited to
    space, tab, LF and CR; UTF-8 without overlongs, surrogates or code points
    past U+10FFFF; no NaN or Infinity, nor numbers that overflow a double;
    numbers at most SKICK_JSON_NUMBER_MAX characters; values nested at most
    SKICK_JSON_DEPTH deep (the top value is 1 deep, the elements of a
    container one deeper than it: json-c's count, which refuses a scalar in
    64 nested arrays but not 64 empty ones); nothing but whitespace after
    the value.
    Recursion is bounded by the depth; nothing is allocated but the tree
    (and a buffer for a string with escapes longer than the stack one).
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strtod_l */
#endif
#include "skick_json.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *p; /* next byte */
    const unsigned char *end;
    bool build; /* make objects, or only check */
} s_cur_t;

/*  A scanned string: the bytes between the quotes, still escaped. */
typedef struct {
    const unsigned char *start;
    size_t len;
    bool escaped; /* contains a backslash */
} s_str_t;

bool skick_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        unsigned char d = s[i + 1];
        if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d > 0x9f) || (c == 0xf0 && d < 0x90) ||
            (c == 0xf4 && d > 0x8f))
            return false;
        i += k + 1;
    }
    return true;
}

static void s_ws(s_cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool s_lit(s_cur_t *c, const char *word, size_t n)
{
    if ((size_t) (c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    c->p += n;
    return true;
}

static int s_hexval(unsigned char x)
{
    if (x >= '0' && x <= '9')
        return x - '0';
    if (x >= 'a' && x <= 'f')
        return x - 'a' + 10;
    if (x >= 'A' && x <= 'F')
        return x - 'A' + 10;
    return -1;
}

/*  The four hex digits at p (known to be there and valid). */
static unsigned s_hex4(const unsigned char *p)
{
    return (unsigned) (s_hexval(p[0]) << 12 | s_hexval(p[1]) << 8 | s_hexval(p[2]) << 4 |
                       s_hexval(p[3]));
}

/*  Scan a string (c->p at its opening quote): escapes well formed, no raw
    control characters, UTF-8 valid. */
static bool s_string(s_cur_t *c, s_str_t *s)
{
    c->p++;
    s->start = c->p;
    s->escaped = false;
    unsigned char high = 0; /* OR of every byte: any non-ASCII? */
    while (c->p < c->end) {
        unsigned char x = *c->p++;
        if (x == '"') {
            s->len = (size_t) (c->p - 1 - s->start);
            return !(high & 0x80) || skick_utf8_valid(s->start, s->len);
        }
        high |= x;
        if (x < 0x20)
            return false;
        if (x != '\\')
            continue;
        s->escaped = true;
        if (c->p >= c->end)
            return false;
        x = *c->p++;
        if (x == 'u') {
            if (c->end - c->p < 4)
                return false;
            for (int i = 0; i < 4; i++)
                if (s_hexval(c->p[i]) < 0)
                    return false;
            c->p += 4;
        } else if (!x || !strchr("\"\\/bfnrt", x)) { /* strchr finds the NUL too */
            return false;
        }
    }
    return false;
}

static size_t s_put_utf8(unsigned char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (unsigned char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char) (0xc0 | cp >> 6);
        out[1] = (unsigned char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char) (0xe0 | cp >> 12);
        out[1] = (unsigned char) (0x80 | (cp >> 6 & 0x3f));
        out[2] = (unsigned char) (0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char) (0xf0 | cp >> 18);
    out[1] = (unsigned char) (0x80 | (cp >> 12 & 0x3f));
    out[2] = (unsigned char) (0x80 | (cp >> 6 & 0x3f));
    out[3] = (unsigned char) (0x80 | (cp & 0x3f));
    return 4;
}

/*  Unescape a scanned string into out (room for s->len bytes: unescaping
    never grows a string; a six-byte \u escape yields at most 3 bytes, a
    surrogate pair of two escapes 4). Returns the length. */
static size_t s_unescape(const s_str_t *s, unsigned char *out)
{
    const unsigned char *p = s->start, *end = s->start + s->len;
    size_t n = 0;
    while (p < end) {
        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        p++;
        unsigned char x = *p++;
        switch (x) {
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp = s_hex4(p);
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = s_hex4(p + 2);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp = 0xfffd; /* a lone surrogate, as json-c does */
            n += s_put_utf8(out + n, cp);
            break;
        }
        default: out[n++] = x; break; /* " \ / */
        }
    }
    return n;
}

/*  A string value or key as a NUL-terminated buffer: buf if it fits, else
    malloc'ed (*heap set, caller frees). NULL when out of memory. */
static char *s_text(const s_str_t *s, char *buf, size_t buflen, size_t *len, char **heap)
{
    char *out = buf;
    *heap = NULL;
    if (s->len + 1 > buflen) {
        out = *heap = malloc(s->len + 1);
        if (!out)
            return NULL;
    }
    if (s->escaped) {
        *len = s_unescape(s, (unsigned char *) out);
    } else {
        memcpy(out, s->start, s->len);
        *len = s->len;
    }
    out[*len] = '\0';
    return out;
}

static json_object *s_make_string(const s_str_t *s)
{
    if (!s->escaped)
        return json_object_new_string_len((const char *) s->start, (int) s->len);
    char buf[256], *heap;
    size_t len;
    char *text = s_text(s, buf, sizeof buf, &len, &heap);
    json_object *v = text ? json_object_new_string_len(text, (int) len) : NULL;
    free(heap);
    return v;
}

/*  strtod in the "C" locale whatever the process's locale is (an
    application module may call setlocale). */
static locale_t s_c_locale;
static pthread_once_t s_c_locale_once = PTHREAD_ONCE_INIT;

static void s_make_c_locale(void)
{
    s_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
}

static double s_strtod(const char *text)
{
    pthread_once(&s_c_locale_once, s_make_c_locale);
    return s_c_locale ? strtod_l(text, NULL, s_c_locale) : strtod(text, NULL);
}

static bool s_digits(s_cur_t *c)
{
    const unsigned char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start;
}

/*  A number (c->p at its first character). *out gets its object when
    building. */
static bool s_number(s_cur_t *c, json_object **out)
{
    const unsigned char *start = c->p;
    bool neg = *c->p == '-', integer = true;
    if (neg)
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!s_digits(c))
        return false;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!s_digits(c))
            return false;
        integer = false;
    }
    bool exponent = false;
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!s_digits(c))
            return false;
        integer = false;
        exponent = true;
    }
    size_t n = (size_t) (c->p - start);
    if (n > SKICK_JSON_NUMBER_MAX)
        return false; /* a number this long is not data */
    size_t ndigits = n - neg;
    if (integer && ndigits <= 18) { /* fits an int64 whatever the digits */
        if (!c->build)
            return true;
        int64_t v = 0;
        for (const unsigned char *q = start + neg; q < c->p; q++)
            v = v * 10 + (*q - '0');
        *out = json_object_new_int64(neg ? -v : v);
        return *out != NULL;
    }
    /* Only an exponent or many digits can leave a double's range. */
    if (!c->build && !exponent && (integer || n <= 300))
        return true;
    char buf[SKICK_JSON_NUMBER_MAX + 1];
    memcpy(buf, start, n);
    buf[n] = '\0';
    if (integer) { /* 19+ digits: saturate like json-c (strtoll / strtoull) */
        if (!c->build)
            return true;
        if (neg) {
            *out = json_object_new_int64(strtoll(buf, NULL, 10));
        } else {
            unsigned long long u = strtoull(buf, NULL, 10);
            *out = u <= INT64_MAX ? json_object_new_int64((int64_t) u)
                                  : json_object_new_uint64((uint64_t) u);
        }
        return *out != NULL;
    }
    double d = s_strtod(buf);
    if (!isfinite(d))
        return false;
    if (c->build) {
        *out = json_object_new_double_s(d, buf); /* keeps "1.50" as written */
        return *out != NULL;
    }
    return true;
}

static bool s_value(s_cur_t *c, int depth, json_object **out);

static bool s_array(s_cur_t *c, int depth, json_object **out)
{
    c->p++;
    json_object *a = NULL;
    if (c->build && !(a = *out = json_object_new_array()))
        return false;
    s_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return true;
    }
    for (;;) {
        json_object *v = NULL;
        if (!s_value(c, depth, &v)) {
            json_object_put(v); /* what it made before failing */
            return false;
        }
        if (a && json_object_array_add(a, v) != 0) {
            json_object_put(v);
            return false;
        }
        s_ws(c);
        if (c->p >= c->end)
            return false;
        if (*c->p == ']') {
            c->p++;
            return true;
        }
        if (*c->p++ != ',')
            return false;
    }
}

static bool s_object(s_cur_t *c, int depth, json_object **out)
{
    c->p++;
    json_object *o = NULL;
    if (c->build && !(o = *out = json_object_new_object()))
        return false;
    s_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return true;
    }
    for (;;) {
        s_str_t key;
        s_ws(c);
        if (c->p >= c->end || *c->p != '"' || !s_string(c, &key))
            return false;
        s_ws(c);
        if (c->p >= c->end || *c->p++ != ':')
            return false;
        json_object *v = NULL;
        if (!s_value(c, depth, &v)) {
            json_object_put(v); /* what it made before failing */
            return false;
        }
        if (o) {
            char buf[128], *heap;
            size_t len;
            char *k = s_text(&key, buf, sizeof buf, &len, &heap);
            /* json-c replaces the value of a key seen before: the last wins */
            int rc = k ? json_object_object_add(o, k, v) : -1;
            free(heap);
            if (rc != 0) {
                json_object_put(v);
                return false;
            }
        }
        s_ws(c);
        if (c->p >= c->end)
            return false;
        if (*c->p == '}') {
            c->p++;
            return true;
        }
        if (*c->p++ != ',')
            return false;
    }
}

/*  One value; when building, *out holds what was made so far even on
    failure (the caller frees it). */
static bool s_value(s_cur_t *c, int depth, json_object **out)
{
    s_ws(c);
    if (c->p >= c->end)
        return false;
    if (depth >= SKICK_JSON_DEPTH)
        return false;
    switch (*c->p) {
    case '{':
        return s_object(c, depth + 1, out);
    case '[':
        return s_array(c, depth + 1, out);
    case '"': {
        s_str_t s;
        if (!s_string(c, &s))
            return false;
        if (c->build && !(*out = s_make_string(&s)))
            return false;
        return true;
    }
    case 't':
        if (!s_lit(c, "true", 4))
            return false;
        return !c->build || (*out = json_object_new_boolean(1)) != NULL;
    case 'f':
        if (!s_lit(c, "false", 5))
            return false;
        return !c->build || (*out = json_object_new_boolean(0)) != NULL;
    case 'n':
        return s_lit(c, "null", 4); /* NULL is json-c's null */
    default:
        return (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) && s_number(c, out);
    }
}

static bool s_read(const char *data, size_t len, bool build, json_object **out)
{
    if (!data)
        return false;
    s_cur_t c = {(const unsigned char *) data, (const unsigned char *) data + len, build};
    if (!s_value(&c, 0, out))
        return false;
    s_ws(&c);
    return c.p == c.end;
}

bool skick_json_valid(const char *data, size_t len)
{
    return s_read(data, len, false, NULL);
}

int skick_json_parse_strict(const char *data, size_t len, json_object **out)
{
    json_object *v = NULL;
    if (len > INT32_MAX || !s_read(data, len, true, &v)) {
        json_object_put(v);
        *out = NULL;
        return -1;
    }
    *out = v;
    return 0;
}
