/*  skick_schema_text - the text of compile errors and validation reasons  */

/*
 * A small string builder over a fixed buffer (skick_schema_sb_t) that truncates silently and
 * echoes untrusted bytes escaped, within a byte budget, so that a reason never carries more
 * than SKICK_SCHEMA_ECHO_MAX bytes of client data nor a control character; and the type names
 * used in messages. Used by the compiler for schema pointers and by the validator for reasons.
 *
 * Ownership: writes only into the caller's buffer; allocates nothing.
 * Thread-safety: no global state; the name tables are const.
 */

#include "skick_schema_internal.h"

#include <stdarg.h>
#include <stdio.h>

void skick_schema_sb_init(s_sb_t *sb, char *buf, size_t cap, size_t budget)
{
    *sb = (s_sb_t) {buf, cap, 0, budget};
    if (cap > 0)
        buf[0] = '\0';
}

void skick_schema_sb_fmt(s_sb_t *sb, const char *fmt, ...)
{
    if (sb->len + 1 >= sb->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb->len = sb->len + (size_t) n < sb->cap ? sb->len + (size_t) n : sb->cap - 1;
}

void skick_schema_sb_echo(s_sb_t *sb, const char *data, size_t n, bool pointer)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) data[i];
        if (sb->budget == 0) {
            skick_schema_sb_fmt(sb, "...");
            return;
        }
        sb->budget--;
        if (pointer && (c == '~' || c == '/'))
            skick_schema_sb_fmt(sb, "~%c", c == '~' ? '0' : '1');
        else if (c == '"' || c == '\\')
            skick_schema_sb_fmt(sb, "\\%c", c);
        else if (c >= 0x20 && c < 0x7F)
            skick_schema_sb_fmt(sb, "%c", c);
        else
            skick_schema_sb_fmt(sb, "\\x%02x", c);
    }
}

const char *const skick_schema_type_names[SKICK_SCHEMA_N_TYPES] = {
    "null", "boolean", "integer", "number", "string", "array", "object",
};

const char *skick_schema_json_type_name(json_type t)
{
    static const char *const names[] = {
        [json_type_null] = "null", [json_type_boolean] = "boolean",
        [json_type_double] = "number", [json_type_int] = "integer",
        [json_type_object] = "object", [json_type_array] = "array",
        [json_type_string] = "string",
    };
    return (size_t) t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}
