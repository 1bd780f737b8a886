/*  node_json - small JSON conveniences for application code

    skick_json builds a value from a printf-style literal, the way tests and
    handlers most often need one; the getters read a member with a default
    instead of making every caller check presence and type.
*/
#include "node_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

json_object *skick_json(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "skick_json: out of memory\n");
        abort();
    }
    enum json_tokener_error jerr;
    json_object *v = json_tokener_parse_verbose(text, &jerr);
    if (!v && jerr != json_tokener_success) {
        fprintf(stderr, "skick_json: malformed JSON literal (%s): %.200s\n",
                json_tokener_error_desc(jerr), text);
        abort();
    }
    free(text);
    return v;
}

static json_object *s_member(json_object *obj, const char *key, json_type type)
{
    json_object *v;
    if (!obj || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
        return NULL;
    return v;
}

int64_t skick_get_int(json_object *obj, const char *key, int64_t dflt)
{
    json_object *v = s_member(obj, key, json_type_int);
    return v ? json_object_get_int64(v) : dflt;
}

double skick_get_double(json_object *obj, const char *key, double dflt)
{
    json_object *v = s_member(obj, key, json_type_double);
    if (!v)
        v = s_member(obj, key, json_type_int);
    return v ? json_object_get_double(v) : dflt;
}

const char *skick_get_string(json_object *obj, const char *key, const char *dflt)
{
    json_object *v = s_member(obj, key, json_type_string);
    return v ? json_object_get_string(v) : dflt;
}

bool skick_get_bool(json_object *obj, const char *key, bool dflt)
{
    json_object *v = s_member(obj, key, json_type_boolean);
    return v ? json_object_get_boolean(v) : dflt;
}
