/*  skick_schema - JSON Schema (draft 7 subset) and shorthand message validation  */

/*
 * A schema is compiled once from a json-c document into an immutable tree and then used to
 * validate many messages. Two input languages are accepted (see docs/schema.md):
 *
 *   - full JSON Schema, draft 7 subset: skick_schema_compile();
 *   - the Skick shorthand, {"key": "type name" | subschema, "optional?": ...}, which compiles to
 *     a strict object schema and optionally pins the "action" key: skick_schema_compile_shorthand()
 *     and skick_schema_parse().
 *
 * Ownership: documents passed to the compile functions are borrowed and never kept; the returned
 * skick_schema_t belongs to the caller and is released with skick_schema_destroy(). Values passed
 * to the validators are borrowed and never modified.
 *
 * Thread-safety: compilation touches no global state. A compiled schema is immutable, so any
 * number of threads may validate against it concurrently. Destroying it while another thread
 * validates is the caller's bug.
 *
 * Errors: compile errors are one-line strings "reason (at /schema/pointer)". Validation
 * reasons have the form "/json/pointer: reason" and never echo more than
 * SKICK_SCHEMA_ECHO_MAX bytes of data taken from the validated value; non-printable bytes are
 * written as \xNN.
 */

#ifndef SKICK_SCHEMA_H_INCLUDED
#define SKICK_SCHEMA_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Maximum subschema nesting accepted by compile, and maximum value nesting walked by validation */
#define SKICK_SCHEMA_MAX_DEPTH 64

/* Maximum number of bytes of validated (client) data a validation reason may echo */
#define SKICK_SCHEMA_ECHO_MAX 32

typedef struct skick_schema skick_schema_t;               /* opaque, immutable after compile */

/*
 * Compile a full JSON Schema (draft 7 subset) document. doc is borrowed and not kept; it must be
 * a JSON object or a boolean. Unknown keywords are a compile error (a typo must not silently
 * weaken a schema); annotations ($schema, $id, $comment, title, description, default, examples,
 * readOnly, writeOnly) and the "definitions" container are accepted and ignored. Keywords of
 * JSON Schema that this module does not implement ($ref, format, content*, ...) fail with
 * "unsupported keyword NAME".
 * Returns a schema owned by the caller, or NULL with a one-line reason in err (NUL-terminated,
 * truncated to errlen; err may be NULL when errlen is 0).
 */
skick_schema_t *skick_schema_compile(json_object *doc, char *err, size_t errlen);

/*
 * Compile the shorthand describing the message of action `action` (NULL: no action key added).
 * doc (borrowed) is an object mapping each key to a type name ("integer", "number", "string",
 * "boolean", "array", "object", "null", "any") or to a full subschema (object or boolean,
 * compiled with skick_schema_compile rules). Type names are strict: "integer" accepts only JSON
 * integers (not 1.0, not booleans). A key written "name?" is optional. The result accepts only
 * objects holding every required key and no unlisted key. When action != NULL an "action" key is
 * added, required and equal to action; a doc may itself list "action" (or "action?") only as
 * "string" or as a subschema whose "const" equals action, and it stays required and constant.
 * A doc holding "$schema" is compiled as a full schema instead (and action is not added).
 * Returns a schema owned by the caller, or NULL with a one-line reason in err.
 */
skick_schema_t *skick_schema_compile_shorthand(json_object *doc, const char *action,
                                               char *err, size_t errlen);

/*
 * Parse text (strict JSON, NUL-terminated, borrowed) and compile it with
 * skick_schema_compile_shorthand() rules; convenience for C callers writing schema literals.
 * Returns a schema owned by the caller, or NULL with a one-line reason in err on parse or
 * compile error.
 */
skick_schema_t *skick_schema_parse(const char *text, const char *action,
                                   char *err, size_t errlen);

/*
 * Return true when value (borrowed, may be hostile, NULL means JSON null) conforms to schema
 * (which must not be NULL: asserted). Allocation-free except for "pattern"/"patternProperties"
 * (the C library's regexec) and "propertyNames" (one temporary string per key). Safe for
 * concurrent callers.
 */
bool skick_schema_valid(const skick_schema_t *schema, json_object *value);

/*
 * Validate value (borrowed) like skick_schema_valid(). On failure write a short reason with a
 * JSON pointer to the offending value into why (NUL-terminated, truncated to whylen; why may be
 * NULL when whylen is 0), e.g. "/number: expected integer, got string" or
 * "/: missing key \"number\"". The reason echoes at most SKICK_SCHEMA_ECHO_MAX bytes of the
 * value's data, escaped. On success why is set to "". Returns 0 when valid, -1 when invalid.
 */
int skick_schema_check(const skick_schema_t *schema, json_object *value,
                       char *why, size_t whylen);

/* Free the schema held by *schema_p and set *schema_p to NULL. NULL-safe at both levels. */
void skick_schema_destroy(skick_schema_t **schema_p);

/*
 * Helpers used by the validator, public because they are useful on their own and testable.
 */

/*
 * Translate an ECMA-262 regular expression (as used by JSON Schema "pattern") into a POSIX
 * extended regular expression for regcomp(REG_EXTENDED). See docs/schema.md for the exact
 * translation. Writes the NUL-terminated result into posix (posixlen bytes).
 * Returns 0 on success, or -1 with a one-line reason in err when the pattern uses a construct
 * that cannot be translated (lookaround, backreference, ...) or the result does not fit.
 */
int skick_schema_regex_translate(const char *ecma, char *posix, size_t posixlen,
                                 char *err, size_t errlen);

/*
 * Compare two JSON values (borrowed) for JSON Schema equality: numbers compare by mathematical
 * value (1 == 1.0), objects regardless of key order, booleans never equal numbers.
 * Recursion stops at max_depth nesting levels.
 * Returns 1 when equal, 0 when different, -1 when the values are nested deeper than max_depth.
 */
int skick_schema_json_equal(json_object *a, json_object *b, int max_depth);

/*
 * Exactly compare two JSON numbers (borrowed; int64, uint64 or double, mixed freely).
 * Returns -1, 0 or 1 as a <, ==, > b, and 2 when unordered (NaN, or either is not a number).
 */
int skick_schema_number_compare(json_object *a, json_object *b);

/* Return the number of Unicode code points in the UTF-8 text s of len bytes. Invalid input is
   counted leniently: a stray continuation byte or a 0xF8-0xFF byte counts as one code point,
   a truncated sequence counts as one. */
size_t skick_schema_utf8_length(const char *s, size_t len);

/* ------------------------------------------------------------------------------------------ */
#ifdef SKICK_SCHEMA_INTERNAL
/*
 * Private section, not part of the API: the compiled tree shared by node/skick_schema.c
 * (compiler) and node/skick_schema_check.c (validator). Visible only to files that define
 * SKICK_SCHEMA_INTERNAL before including this header; users see skick_schema_t as opaque.
 */
#include <regex.h>
#include <stdint.h>

#define SKICK_SCHEMA_T_NULL    0x01     /* type bits, in the order of skick_schema_type_names */
#define SKICK_SCHEMA_T_BOOLEAN 0x02
#define SKICK_SCHEMA_T_INTEGER 0x04
#define SKICK_SCHEMA_T_NUMBER  0x08
#define SKICK_SCHEMA_T_STRING  0x10
#define SKICK_SCHEMA_T_ARRAY   0x20
#define SKICK_SCHEMA_T_OBJECT  0x40
#define SKICK_SCHEMA_N_TYPES   7

#define SKICK_SCHEMA_K_NUMBER 0x01      /* node has numeric keywords */
#define SKICK_SCHEMA_K_STRING 0x02      /* node has string keywords */
#define SKICK_SCHEMA_K_ARRAY  0x04      /* node has array keywords */
#define SKICK_SCHEMA_K_OBJECT 0x08      /* node has object keywords */
#define SKICK_SCHEMA_K_VALUE  0x10      /* node has const or enum */
#define SKICK_SCHEMA_K_LOGIC  0x20      /* node has allOf/anyOf/oneOf/not/if */

typedef struct skick_schema_node skick_schema_node_t;

typedef struct {
    regex_t re;                 /* compiled POSIX translation */
    char *source;               /* original ECMA source (owned), for messages */
} skick_schema_regex_t;

typedef struct {
    char *name;                 /* property name (owned) */
    skick_schema_node_t *node;  /* its schema (owned) */
    bool required;              /* name is also listed in "required" */
} skick_schema_prop_t;

typedef struct {
    skick_schema_regex_t *re;   /* key pattern (owned) */
    skick_schema_node_t *node;  /* schema for matching keys (owned) */
} skick_schema_pprop_t;

typedef struct {
    char *name;                 /* trigger key (owned) */
    char **keys;                /* keys required when the trigger is present (owned) */
    size_t n_keys;              /* number of keys */
    skick_schema_node_t *node;  /* schema applied when the trigger is present, or NULL */
} skick_schema_dep_t;

typedef struct {
    skick_schema_node_t **v;    /* subschemas (owned) */
    size_t n;                   /* number of subschemas */
} skick_schema_list_t;

struct skick_schema_node {
    uint8_t types;              /* allowed SKICK_SCHEMA_T_* types, 0 when "type" is absent */
    uint8_t kinds;              /* SKICK_SCHEMA_K_* groups present, computed after compile */
    bool is_false;              /* boolean schema false */
    bool strict_int;            /* shorthand "integer": only json_type_int is an integer */
    bool unique_items;          /* uniqueItems: true */
    bool has_const;             /* "const" present (const_v may be NULL for JSON null) */
    bool has_tuple;             /* "items" is an array: tuple holds it */
    size_t min_len;             /* minLength in code points */
    size_t max_len;             /* maxLength in code points, SIZE_MAX when absent */
    size_t min_items;           /* minItems */
    size_t max_items;           /* maxItems, SIZE_MAX when absent */
    size_t min_props;           /* minProperties */
    size_t max_props;           /* maxProperties, SIZE_MAX when absent */
    json_object *minimum;       /* owned number or NULL */
    json_object *maximum;       /* owned number or NULL */
    json_object *ex_min;        /* exclusiveMinimum, owned number or NULL */
    json_object *ex_max;        /* exclusiveMaximum, owned number or NULL */
    json_object *multiple_of;   /* owned positive number or NULL */
    json_object *const_v;       /* owned copy of "const" */
    json_object *enum_v;        /* owned copy of "enum" (array) or NULL */
    skick_schema_regex_t *pattern;          /* "pattern" or NULL */
    skick_schema_prop_t *props;             /* "properties", sorted by name */
    size_t n_props;                         /* number of props */
    size_t n_req_props;                     /* required names that are also in props */
    skick_schema_pprop_t *pprops;           /* "patternProperties" */
    size_t n_pprops;                        /* number of pprops */
    skick_schema_node_t *additional_props;  /* "additionalProperties" or NULL */
    skick_schema_node_t *property_names;    /* "propertyNames" or NULL */
    char **required;                        /* "required" names (owned) */
    size_t n_required;                      /* number of required names */
    skick_schema_dep_t *deps;               /* "dependencies" */
    size_t n_deps;                          /* number of deps */
    skick_schema_node_t *items;             /* "items" as one schema, or NULL */
    skick_schema_list_t tuple;              /* "items" as an array of schemas */
    skick_schema_node_t *additional_items;  /* "additionalItems" or NULL */
    skick_schema_node_t *contains;          /* "contains" or NULL */
    skick_schema_list_t all_of;             /* "allOf" */
    skick_schema_list_t any_of;             /* "anyOf" */
    skick_schema_list_t one_of;             /* "oneOf" */
    skick_schema_node_t *not_s;             /* "not" or NULL */
    skick_schema_node_t *if_s;              /* "if" or NULL */
    skick_schema_node_t *then_s;            /* "then" or NULL */
    skick_schema_node_t *else_s;            /* "else" or NULL */
};

struct skick_schema {
    skick_schema_node_t *root;  /* compiled tree (owned) */
};

typedef struct {
    char *buf;                  /* destination, may be NULL when cap is 0 */
    size_t cap;                 /* destination size */
    size_t len;                 /* bytes written, excluding the NUL */
    size_t budget;              /* bytes of untrusted data still allowed to be echoed */
} skick_schema_sb_t;

/* Type names indexed by bit position of SKICK_SCHEMA_T_* */
extern const char *const skick_schema_type_names[SKICK_SCHEMA_N_TYPES];

/* Name of a json-c type as used in messages ("integer" for int, "number" for double). */
const char *skick_schema_json_type_name(json_type t);

/* qsort/bsearch comparator ordering skick_schema_prop_t by name. */
int skick_schema_prop_cmp(const void *a, const void *b);

/* True when d is finite and has no fractional part (computed without libm). */
bool skick_schema_is_integral(double d);

/* Start an empty builder on buf/cap that may echo budget bytes of untrusted data. */
void skick_schema_sb_init(skick_schema_sb_t *sb, char *buf, size_t cap, size_t budget);

/* Append trusted printf-formatted text; silently truncates at the end of the buffer. */
void skick_schema_sb_fmt(skick_schema_sb_t *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append n untrusted bytes escaped (\" \\ \xNN, and ~0 ~1 when pointer) within the budget;
   "..." marks data cut by the budget. */
void skick_schema_sb_echo(skick_schema_sb_t *sb, const char *data, size_t n, bool pointer);

#endif /* SKICK_SCHEMA_INTERNAL */

#ifdef __cplusplus
}
#endif

#endif /* SKICK_SCHEMA_H_INCLUDED */
