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


#ifdef __cplusplus
}
#endif

#endif /* SKICK_SCHEMA_H_INCLUDED */
