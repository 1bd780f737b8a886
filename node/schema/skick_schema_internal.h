/*  skick_schema_internal.h - the compiled schema tree, shared by the two
    halves of the schema module (skick_schema.c compiles, skick_schema_check.c
    validates). Private to libskick: applications see skick_schema_t as opaque.
*/
#ifndef SKICK_SCHEMA_INTERNAL_H_INCLUDED
#define SKICK_SCHEMA_INTERNAL_H_INCLUDED

#include "skick/schema.h"
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

/* Short names used inside the two schema files. */
typedef skick_schema_node_t s_node_t;
typedef skick_schema_regex_t s_regex_t;
typedef skick_schema_prop_t s_prop_t;
typedef skick_schema_dep_t s_dep_t;
typedef skick_schema_list_t s_list_t;
typedef skick_schema_sb_t s_sb_t;

#endif
