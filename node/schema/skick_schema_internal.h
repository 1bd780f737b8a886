/*  skick_schema_internal - the JSON Schema library: its design, its tree, its shared helpers  */

/*
 * DESIGN
 *
 * What this module owns. node/schema/ is the JSON Schema (draft 7 subset) compiler and
 * validator, and the Skick shorthand for message schemas; its public API is
 * include/skick/schema.h and its manual docs/schema.md. It owns the compiled tree
 * (skick_schema_node_t, below: immutable once compiled), the text of compile errors and
 * validation reasons (escaped, bounded), the ECMA-262 -> POSIX regex translation, and the JSON
 * number and equality helpers the keywords need.
 *
 * What it may call. The C library (malloc, stdio, string, POSIX <regex.h>) and json-c, nothing
 * else: nothing of the shard (the headers of node/, actors, the reactor, skick_log), nothing of
 * proto/. It has no global state, no threads and no logging: errors are returned as text to
 * the caller. A folder only uses the folders below it; this one has none.
 *
 * How to use it without a shard. Link the CMake object library `skick_schema`
 * (node/schema/CMakeLists.txt) next to json-c, or compile the .c files of node/schema/ with
 * `pkg-config --cflags --libs json-c`; include <skick/schema.h>. libskick links the same
 * objects and exports the same API. tests/schema/ links nothing else, which keeps it that way:
 *
 *     char err[128], why[128];
 *     skick_schema_t *s = skick_schema_parse("{\"n\": \"integer\"}", NULL, err, sizeof err);
 *     json_object *v = json_tokener_parse("{\"n\": 1}");
 *     if (skick_schema_check(s, v, why, sizeof why) != 0) ... why says where and what
 *     json_object_put(v);
 *     skick_schema_destroy(&s);
 *
 * The files, in reading order:
 *   skick_schema.c            the compiler's driver: one node per subschema, the compile
 *                             context (first error, schema pointer), freeing trees
 *   skick_schema_keywords.c   one compiler per keyword, by family, and the keyword table
 *   skick_schema_shorthand.c  the shorthand {"key": "type", "opt?": ...} and
 *                             skick_schema_parse
 *   skick_schema_check.c      the validator, and its reasons "/pointer: what"
 *   skick_schema_regex.c      ECMA-262 -> POSIX extended regex translation
 *   skick_schema_value.c      exact number comparison, JSON equality, UTF-8 length
 *   skick_schema_text.c       the bounded, escaped string builder and the type names
 *
 * Ownership: compile borrows the document and returns a tree the caller owns
 * (skick_schema_destroy); a node owns everything it points to. Validation borrows both the tree
 * and the value and writes only into the caller's buffer.
 *
 * Thread-safety: compiling touches no shared state; a compiled tree is read-only, so any number
 * of threads may validate against it at once.
 *
 * Names: `s_` functions are static to their file. Helpers shared between the files are
 * `skick__schema_*` and hidden from libskick's exported symbols (SKICK__HIDDEN). The older
 * shared helpers named `skick_schema_*` below (sb_*, type names, prop_cmp, is_integral) are
 * exported by libskick as they always were; they are not part of skick/schema.h.
 */
#ifndef SKICK_SCHEMA_INTERNAL_H_INCLUDED
#define SKICK_SCHEMA_INTERNAL_H_INCLUDED

#include "skick/schema.h"
#include <regex.h>
#include <stdint.h>

#ifndef SKICK__HIDDEN
#define SKICK__HIDDEN __attribute__((visibility("hidden")))
#endif

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

/* ------------------------------------------------------------------------------------------ */
/*  Older shared helpers, exported (skick_schema_text.c, skick_schema_value.c, skick_schema.c)  */

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

/* ------------------------------------------------------------------------------------------ */
/*  The compile context and the tree's life (skick_schema.c)                                  */

typedef struct {
    char *err;                  /* caller's error buffer (may be NULL) */
    size_t errlen;              /* size of err */
    char path[256];             /* schema pointer of the keyword being compiled */
    size_t path_len;            /* bytes used in path */
} skick_schema_cctx_t;

/* skick__schema_cctx_init starts a compile context that reports into err/errlen (err may be
   NULL) and empties err. */
SKICK__HIDDEN void skick__schema_cctx_init(skick_schema_cctx_t *cc, char *err, size_t errlen);

/* skick__schema_cerr records a compile error "message (at /schema/path)"; only the first one is
   kept. Returns -1. */
SKICK__HIDDEN int skick__schema_cerr(skick_schema_cctx_t *cc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* skick__schema_cpush appends "/seg" (escaped, truncated) to the schema path; returns the length
   to give skick__schema_cpop afterwards. */
SKICK__HIDDEN size_t skick__schema_cpush(skick_schema_cctx_t *cc, const char *seg);

/* skick__schema_cpop restores the schema path to the length saved by skick__schema_cpush. */
SKICK__HIDDEN void skick__schema_cpop(skick_schema_cctx_t *cc, size_t saved);

/* skick__schema_show escapes schema text s for an error message (first 40 bytes) into buf of
   size bytes; returns buf. */
SKICK__HIDDEN const char *skick__schema_show(const char *s, char *buf, size_t size);

/* skick__schema_strdup copies s with malloc; the caller owns the copy. NULL when out of
   memory. */
SKICK__HIDDEN char *skick__schema_strdup(const char *s);

/* skick__schema_node_new returns an empty node (no constraint; the max_* limits at SIZE_MAX),
   owned by the caller, or NULL when out of memory. */
SKICK__HIDDEN skick_schema_node_t *skick__schema_node_new(void);

/* skick__schema_node_free frees node n and everything it owns; NULL-safe. */
SKICK__HIDDEN void skick__schema_node_free(skick_schema_node_t *n);

/* skick__schema_finish_node computes n->kinds and marks the properties that are also required;
   called once all keywords of n are compiled. */
SKICK__HIDDEN void skick__schema_finish_node(skick_schema_node_t *n);

/* skick__schema_compile_node compiles the subschema doc (borrowed) found at nesting depth into a
   node owned by the caller; NULL with an error recorded in cc. */
SKICK__HIDDEN skick_schema_node_t *skick__schema_compile_node(skick_schema_cctx_t *cc,
                                                              json_object *doc, int depth);

/* skick__schema_wrap wraps a compiled root into the public handle, which takes it; root NULL
   (a failed compile) gives NULL. Out of memory frees root, records an error, returns NULL. */
SKICK__HIDDEN skick_schema_t *skick__schema_wrap(skick_schema_cctx_t *cc,
                                                 skick_schema_node_t *root);

/* ------------------------------------------------------------------------------------------ */
/*  Keywords (skick_schema_keywords.c)                                                        */

/* skick__schema_compile_keyword compiles keyword key with value v (borrowed) of a schema object
   at depth into node. Annotations are ignored; unknown and unsupported keywords are errors.
   0, or -1 with an error recorded in cc. */
SKICK__HIDDEN int skick__schema_compile_keyword(skick_schema_cctx_t *cc, skick_schema_node_t *node,
                                                const char *key, json_object *v, int depth);

/* skick__schema_type_bit maps a type name to its SKICK_SCHEMA_T_* bit, 0 when unknown. */
SKICK__HIDDEN uint8_t skick__schema_type_bit(const char *name);

/* skick__schema_regex_free frees a compiled regex and its source; NULL-safe. */
SKICK__HIDDEN void skick__schema_regex_free(skick_schema_regex_t *rx);

/* Short names used inside the schema files. */
typedef skick_schema_node_t s_node_t;
typedef skick_schema_regex_t s_regex_t;
typedef skick_schema_prop_t s_prop_t;
typedef skick_schema_dep_t s_dep_t;
typedef skick_schema_list_t s_list_t;
typedef skick_schema_sb_t s_sb_t;
typedef skick_schema_cctx_t s_cctx_t;

#endif
