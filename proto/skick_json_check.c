/*  skick_json_check - is this buffer one strict JSON value? (no tree built)

    For the broker, which forwards bodies without using them: it must still
    refuse what a shard would refuse (PROTOCOL.md "Envelopes": UTF-8, no
    NaN/Infinity, nesting at most 64, nothing after the value), but parsing
    every body into json-c objects only to serialise them again cost half its
    CPU. One pass, no allocation; recursion bounded by SKICK_JSON_DEPTH.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skick_envelope.h"

#define SKICK_JSON_DEPTH 64

typedef struct {
    const unsigned char *p; /* next byte */
    const unsigned char *end;
} s_cur_t;

static void s_ws(s_cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool s_lit(s_cur_t *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t) (c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool s_hex(unsigned char x)
{
    return (x >= '0' && x <= '9') || (x >= 'a' && x <= 'f') || (x >= 'A' && x <= 'F');
}

static bool s_string(s_cur_t *c)
{
    c->p++; /* the opening quote */
    while (c->p < c->end) {
        unsigned char x = *c->p++;
        if (x == '"')
            return true;
        if (x < 0x20)
            return false;
        if (x != '\\')
            continue;
        if (c->p >= c->end)
            return false;
        x = *c->p++;
        if (x == 'u') {
            if (c->end - c->p < 4)
                return false;
            for (int i = 0; i < 4; i++)
                if (!s_hex(c->p[i]))
                    return false;
            c->p += 4;
        } else if (!strchr("\"\\/bfnrt", x)) {
            return false;
        }
    }
    return false;
}

static bool s_digits(s_cur_t *c)
{
    const unsigned char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start;
}

static bool s_number(s_cur_t *c)
{
    const unsigned char *start = c->p;
    bool wide = false; /* might not fit a finite double: ask strtod */
    if (*c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!s_digits(c))
        return false;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!s_digits(c))
            return false;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!s_digits(c))
            return false;
        wide = true;
    }
    size_t n = (size_t) (c->p - start);
    if (n > 300)
        wide = true;
    if (!wide)
        return true;
    char buf[512];
    if (n >= sizeof buf)
        return false; /* a number this long is not data */
    memcpy(buf, start, n);
    buf[n] = '\0';
    return isfinite(strtod(buf, NULL));
}

static bool s_value(s_cur_t *c, int depth);

static bool s_array(s_cur_t *c, int depth)
{
    c->p++;
    s_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return true;
    }
    for (;;) {
        if (!s_value(c, depth))
            return false;
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

static bool s_object(s_cur_t *c, int depth)
{
    c->p++;
    s_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return true;
    }
    for (;;) {
        s_ws(c);
        if (c->p >= c->end || *c->p != '"' || !s_string(c))
            return false;
        s_ws(c);
        if (c->p >= c->end || *c->p++ != ':')
            return false;
        if (!s_value(c, depth))
            return false;
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

static bool s_value(s_cur_t *c, int depth)
{
    s_ws(c);
    if (c->p >= c->end)
        return false;
    switch (*c->p) {
    case '{':
        return depth < SKICK_JSON_DEPTH && s_object(c, depth + 1);
    case '[':
        return depth < SKICK_JSON_DEPTH && s_array(c, depth + 1);
    case '"':
        return s_string(c);
    case 't':
        return s_lit(c, "true");
    case 'f':
        return s_lit(c, "false");
    case 'n':
        return s_lit(c, "null");
    default:
        return (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) && s_number(c);
    }
}

bool skick_json_valid(const char *data, size_t len)
{
    if (!data || !skick_utf8_valid((const unsigned char *) data, len))
        return false;
    s_cur_t c = {(const unsigned char *) data, (const unsigned char *) data + len};
    if (!s_value(&c, 0))
        return false;
    s_ws(&c);
    return c.p == c.end;
}
