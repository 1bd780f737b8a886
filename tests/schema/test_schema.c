/*  test_schema - unit tests of skick_schema: shorthand, full schemas, reasons, hostile input  */

/*
 * The first test is a plain usage example. The others pin the shorthand's strict semantics,
 * compile errors, reason texts and paths, the echo cap, deep values and Unicode lengths. The
 * official JSON-Schema-Test-Suite runs separately (test_schema_suite.c). Both link the schema
 * library alone (node/schema/, no libskick: tests/CMakeLists.txt), which keeps it usable
 * without a shard. One file (over 600 lines) because it is one module's unit tests, grouped
 * by topic below; the suite runner is its own file.
 */

#include <criterion/criterion.h>
#include <skick/schema.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Parse and compile shorthand text, failing the test on error. */
static skick_schema_t *s_parse_ok(const char *text, const char *action)
{
    char err[256];
    skick_schema_t *schema = skick_schema_parse(text, action, err, sizeof err);
    cr_assert_not_null(schema, "schema %s did not compile: %s", text, err);
    return schema;
}

/* Compile a full JSON Schema given as text, failing the test on error. */
static skick_schema_t *s_full_ok(const char *text)
{
    char err[256];
    json_object *doc = json_tokener_parse(text);
    cr_assert_not_null(doc, "bad JSON in test: %s", text);
    skick_schema_t *schema = skick_schema_compile(doc, err, sizeof err);
    json_object_put(doc);
    cr_assert_not_null(schema, "schema %s did not compile: %s", text, err);
    return schema;
}

/* Expect compile of full schema text to fail with an error containing needle. */
static void s_full_fails(const char *text, const char *needle)
{
    char err[256] = "untouched";
    json_object *doc = json_tokener_parse(text);
    cr_assert_not_null(doc, "bad JSON in test: %s", text);
    skick_schema_t *schema = skick_schema_compile(doc, err, sizeof err);
    json_object_put(doc);
    cr_assert_null(schema, "schema %s compiled but should not", text);
    cr_assert_not_null(strstr(err, needle), "error for %s is \"%s\", expected \"%s\"", text, err,
                       needle);
}

/* Expect skick_schema_parse(text, action) to fail with an error containing needle. */
static void s_parse_fails(const char *text, const char *action, const char *needle)
{
    char err[256] = "untouched";
    skick_schema_t *schema = skick_schema_parse(text, action, err, sizeof err);
    cr_assert_null(schema, "schema %s compiled but should not", text);
    cr_assert_not_null(strstr(err, needle), "error for %s is \"%s\", expected \"%s\"", text, err,
                       needle);
}

/* Check value text against schema: NULL why_expected means valid, else the exact reason. */
static void s_expect(const skick_schema_t *schema, const char *value, const char *why_expected)
{
    json_object *v = json_tokener_parse(value);
    cr_assert(v != NULL || strcmp(value, "null") == 0, "bad JSON in test: %s", value);
    char why[256] = "untouched";
    bool valid = skick_schema_valid(schema, v);
    int rc = skick_schema_check(schema, v, why, sizeof why);
    json_object_put(v);
    cr_assert_eq(rc == 0, valid, "valid() and check() disagree on %s", value);
    if (why_expected == NULL) {
        cr_assert(valid, "%s rejected: %s", value, why);
        cr_assert_str_empty(why, "reason not cleared on success");
    } else {
        cr_assert_not(valid, "%s accepted", value);
        cr_assert_str_eq(why, why_expected, "reason for %s: \"%s\", expected \"%s\"", value,
                         why, why_expected);
    }
}

Test(schema, usage_example)
{
    char err[128];
    skick_schema_t *schema =
        skick_schema_parse("{\"number\": \"integer\", \"note?\": \"string\"}", "add", err,
                           sizeof err);
    cr_assert_not_null(schema, "compile failed: %s", err);

    json_object *msg = json_tokener_parse("{\"action\": \"add\", \"number\": 5}");
    cr_assert(skick_schema_valid(schema, msg));
    json_object_put(msg);

    char why[128];
    msg = json_tokener_parse("{\"action\": \"add\", \"number\": \"5\"}");
    cr_assert_eq(skick_schema_check(schema, msg, why, sizeof why), -1);
    cr_assert_str_eq(why, "/number: expected integer, got string");
    json_object_put(msg);

    skick_schema_destroy(&schema);
    cr_assert_null(schema);
    skick_schema_destroy(&schema);      /* NULL-safe */
    skick_schema_destroy(NULL);
}

Test(schema, shorthand_integer_is_strict)
{
    skick_schema_t *s = s_parse_ok("{\"n\": \"integer\"}", NULL);
    s_expect(s, "{\"n\": 5}", NULL);
    s_expect(s, "{\"n\": -9223372036854775808}", NULL);
    s_expect(s, "{\"n\": 1.0}", "/n: expected integer, got number");
    s_expect(s, "{\"n\": true}", "/n: expected integer, got boolean");
    s_expect(s, "{\"n\": \"1\"}", "/n: expected integer, got string");
    s_expect(s, "{\"n\": null}", "/n: expected integer, got null");
    skick_schema_destroy(&s);
}

Test(schema, shorthand_type_names)
{
    skick_schema_t *s = s_parse_ok("{\"num\": \"number\", \"b\": \"boolean\", \"a\": \"array\","
                                   " \"o\": \"object\", \"z\": \"null\", \"s\": \"string\","
                                   " \"x\": \"any\"}", NULL);
    const char *base = "\"b\": false, \"a\": [], \"o\": {}, \"z\": null, \"s\": \"\"";
    char text[256];
    snprintf(text, sizeof text, "{\"num\": 1, %s, \"x\": [1, {}]}", base);
    s_expect(s, text, NULL);
    snprintf(text, sizeof text, "{\"num\": 1.5, %s, \"x\": null}", base);
    s_expect(s, text, NULL);
    snprintf(text, sizeof text, "{\"num\": true, %s, \"x\": 1}", base);
    s_expect(s, text, "/num: expected number, got boolean");
    snprintf(text, sizeof text, "{\"num\": 1, %s, \"x\": 1, \"b\": 0}", base);
    s_expect(s, text, "/b: expected boolean, got integer");
    snprintf(text, sizeof text, "{\"num\": 1, %s}", base);
    s_expect(s, text, "/: missing key \"x\"");
    skick_schema_destroy(&s);
}

Test(schema, shorthand_extra_and_missing_keys)
{
    skick_schema_t *s = s_parse_ok("{\"number\": \"integer\"}", NULL);
    s_expect(s, "{\"number\": 1}", NULL);
    s_expect(s, "{\"number\": 1, \"foo\": 2}", "/: unexpected key \"foo\"");
    s_expect(s, "{}", "/: missing key \"number\"");
    s_expect(s, "[1]", "/: expected object, got array");
    s_expect(s, "null", "/: expected object, got null");
    skick_schema_destroy(&s);
}

Test(schema, shorthand_optional_key)
{
    skick_schema_t *s = s_parse_ok("{\"name\": \"string\", \"age?\": \"integer\"}", NULL);
    s_expect(s, "{\"name\": \"x\"}", NULL);
    s_expect(s, "{\"name\": \"x\", \"age\": 3}", NULL);
    s_expect(s, "{\"name\": \"x\", \"age\": \"3\"}", "/age: expected integer, got string");
    s_expect(s, "{\"name\": \"x\", \"age?\": 3}", "/: unexpected key \"age?\"");
    s_expect(s, "{\"age\": 3}", "/: missing key \"name\"");
    skick_schema_destroy(&s);
    s_parse_fails("{\"a\": \"string\", \"a?\": \"string\"}", NULL, "duplicate key \"a\"");
}

Test(schema, shorthand_action_forced)
{
    skick_schema_t *s = s_parse_ok("{\"number\": \"integer\"}", "add");
    s_expect(s, "{\"action\": \"add\", \"number\": 1}", NULL);
    s_expect(s, "{\"action\": \"sub\", \"number\": 1}", "/action: expected \"add\"");
    s_expect(s, "{\"action\": 7, \"number\": 1}", "/action: expected \"add\"");
    s_expect(s, "{\"number\": 1}", "/: missing key \"action\"");
    skick_schema_destroy(&s);

    /* listing "action" as "string", as its const, or as optional still forces the const */
    const char *docs[] = {"{\"action\": \"string\"}", "{\"action\": {\"const\": \"add\"}}",
                          "{\"action?\": \"string\"}"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        s = s_parse_ok(docs[i], "add");
        s_expect(s, "{\"action\": \"add\"}", NULL);
        s_expect(s, "{\"action\": \"mul\"}", "/action: expected \"add\"");
        s_expect(s, "{}", "/: missing key \"action\"");
        skick_schema_destroy(&s);
    }
    s_parse_fails("{\"action\": \"integer\"}", "add", "key \"action\" must be");
    s_parse_fails("{\"action\": {\"const\": \"sub\"}}", "add", "key \"action\" must be");

    /* without an action, "action" is an ordinary key */
    s = s_parse_ok("{\"action\": \"integer\"}", NULL);
    s_expect(s, "{\"action\": 3}", NULL);
    skick_schema_destroy(&s);
    s = s_parse_ok("{}", NULL);
    s_expect(s, "{}", NULL);
    s_expect(s, "{\"action\": \"add\"}", "/: unexpected key \"action\"");
    skick_schema_destroy(&s);
}

Test(schema, shorthand_dollar_schema_is_full_schema)
{
    skick_schema_t *s = s_parse_ok("{\"$schema\": \"http://json-schema.org/draft-07/schema#\","
                                   " \"type\": \"object\","
                                   " \"properties\": {\"n\": {\"type\": \"integer\"}}}", "add");
    s_expect(s, "{\"n\": 1.0}", NULL);                  /* draft 7: 1.0 is an integer */
    s_expect(s, "{\"n\": 1, \"other\": true}", NULL);   /* no strictness added */
    s_expect(s, "{}", NULL);                            /* no action added */
    s_expect(s, "{\"n\": 1.5}", "/n: expected integer, got number");
    s_expect(s, "3", "/: expected object, got integer");
    skick_schema_destroy(&s);
    s_parse_fails("{\"$schema\": \"x\", \"number\": \"integer\"}", NULL,
                  "unknown keyword \"number\"");
}

Test(schema, shorthand_nested_subschema)
{
    skick_schema_t *s = s_parse_ok(
        "{\"point\": {\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"integer\"},"
        " \"y\": {\"type\": \"integer\"}}, \"required\": [\"x\", \"y\"],"
        " \"additionalProperties\": false},"
        " \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\", \"minLength\": 1}},"
        " \"flag?\": true}", "move");
    s_expect(s, "{\"action\": \"move\", \"point\": {\"x\": 1, \"y\": 2.0}, \"tags\": []}", NULL);
    s_expect(s, "{\"action\": \"move\", \"point\": {\"x\": 1, \"y\": 2}, \"tags\": [\"a\"],"
             " \"flag\": {}}", NULL);
    s_expect(s, "{\"action\": \"move\", \"point\": {\"x\": \"1\", \"y\": 2}, \"tags\": []}",
             "/point/x: expected integer, got string");
    s_expect(s, "{\"action\": \"move\", \"point\": {\"x\": 1}, \"tags\": []}",
             "/point: missing key \"y\"");
    s_expect(s, "{\"action\": \"move\", \"point\": {\"x\": 1, \"y\": 1, \"z\": 1}, \"tags\": []}",
             "/point: unexpected key \"z\"");
    s_expect(s, "{\"action\": \"move\", \"point\": {\"x\": 1, \"y\": 1}, \"tags\": [\"a\", \"\"]}",
             "/tags/1: string shorter than 1 characters");
    skick_schema_destroy(&s);
}

Test(schema, compile_errors)
{
    s_full_fails("{\"typ\": \"string\"}", "unknown keyword \"typ\"");
    s_full_fails("{\"properties\": {\"a\": {\"maxLenght\": 3}}}",
                 "unknown keyword \"maxLenght\" (at /properties/a)");
    s_full_fails("{\"type\": \"integr\"}", "unknown type name \"integr\" (at /type)");
    s_full_fails("{\"type\": \"any\"}", "unknown type name \"any\"");
    s_full_fails("{\"type\": [\"string\", \"string\"]}", "duplicate type name");
    s_full_fails("{\"$ref\": \"#/definitions/a\"}", "unsupported keyword $ref");
    s_full_fails("{\"items\": {\"format\": \"email\"}}", "unsupported keyword format (at /items)");
    s_full_fails("{\"pattern\": \"(\"}", "invalid regex \"(\"");
    s_full_fails("{\"pattern\": \"a(?=b)\"}", "unsupported regex \"a(?=b)\": lookahead");
    s_full_fails("{\"patternProperties\": {\"\\\\1\": {}}}", "unsupported regex");
    s_full_fails("{\"minLength\": -1}", "expected a non-negative integer (at /minLength)");
    s_full_fails("{\"maxItems\": 1.5}", "expected a non-negative integer");
    s_full_fails("{\"minimum\": \"3\"}", "expected a finite number");
    s_full_fails("{\"multipleOf\": 0}", "multipleOf must be greater than 0");
    s_full_fails("{\"allOf\": []}", "must not be empty");
    s_full_fails("{\"required\": [\"a\", \"a\"]}", "duplicate name \"a\"");
    s_full_fails("{\"required\": \"a\"}", "expected an array of strings");
    s_full_fails("{\"not\": 3}", "schema must be an object or a boolean, got integer (at /not)");
    s_full_fails("[]", "schema must be an object or a boolean, got array");
    s_full_fails("{\"uniqueItems\": 1}", "uniqueItems must be a boolean");

    s_parse_fails("{\"n\": \"integr\"}", NULL, "unknown type name \"integr\" (at /n)");
    s_parse_fails("{\"n\": 3}", NULL, "expected a type name or a schema object, got integer");
    s_parse_fails("{\"n\": {\"$ref\": \"#\"}}", NULL, "unsupported keyword $ref (at /n)");
    s_parse_fails("[\"integer\"]", NULL, "shorthand must be a JSON object, got array");
    s_parse_fails("\"integer\"", NULL, "shorthand must be a JSON object, got string");
    s_parse_fails("{\"n\": \"integer\"", NULL, "JSON parse error");
    s_parse_fails("{\"n\": \"integer\"} x", NULL, "JSON parse error");
    s_parse_fails("", NULL, "JSON parse error");

    char err[256] = "untouched";
    cr_assert_null(skick_schema_compile_shorthand(NULL, "a", err, sizeof err));
    cr_assert_str_eq(err, "shorthand must be a JSON object, got null");
    cr_assert_null(skick_schema_parse(NULL, NULL, err, sizeof err));

    /* err may be NULL, and a short err is truncated but terminated */
    cr_assert_null(skick_schema_parse("{\"n\": 1}", NULL, NULL, 0));
    char small[8];
    cr_assert_null(skick_schema_parse("{\"n\": 1}", NULL, small, sizeof small));
    cr_assert_eq(strlen(small), sizeof small - 1);
}

Test(schema, annotations_accepted)
{
    skick_schema_t *s = s_full_ok(
        "{\"$schema\": \"http://json-schema.org/draft-07/schema#\", \"$id\": \"x\","
        " \"$comment\": \"c\", \"title\": \"t\", \"description\": \"d\", \"default\": 1,"
        " \"examples\": [1], \"readOnly\": true, \"writeOnly\": false,"
        " \"definitions\": {\"unused\": {\"$ref\": \"#\", \"nonsense\": 1}},"
        " \"type\": \"integer\"}");
    s_expect(s, "1", NULL);
    s_expect(s, "\"1\"", "/: expected integer, got string");
    skick_schema_destroy(&s);
}

Test(schema, schema_depth_limit)
{
    char text[4096] = "";
    size_t len = 0;
    for (int i = 0; i < SKICK_SCHEMA_MAX_DEPTH; i++)
        len += (size_t) snprintf(text + len, sizeof text - len, "{\"items\": ");
    len += (size_t) snprintf(text + len, sizeof text - len, "{\"type\": \"integer\"}");
    for (int i = 0; i < SKICK_SCHEMA_MAX_DEPTH; i++)
        len += (size_t) snprintf(text + len, sizeof text - len, "}");
    /* 64 levels of subschema below the root compile... */
    json_tokener *tok = json_tokener_new_ex(1000);
    json_object *doc = json_tokener_parse_ex(tok, text, (int) len);
    json_tokener_free(tok);
    cr_assert_not_null(doc);
    char err[256];
    skick_schema_t *s = skick_schema_compile(doc, err, sizeof err);
    cr_assert_not_null(s, "64 levels rejected: %s", err);
    skick_schema_destroy(&s);
    /* ...65 do not */
    json_object *deeper = json_object_new_object();
    json_object_object_add(deeper, "items", doc);
    s = skick_schema_compile(deeper, err, sizeof err);
    cr_assert_null(s);
    cr_assert_not_null(strstr(err, "schema nested deeper than 64 levels"), "error: %s", err);
    json_object_put(deeper);

    /* a deep "const" value is refused before it is copied */
    json_object *value = json_object_new_array();
    for (int i = 0; i < 100; i++) {
        json_object *outer = json_object_new_array();
        json_object_array_add(outer, value);
        value = outer;
    }
    json_object *c = json_object_new_object();
    json_object_object_add(c, "const", value);
    cr_assert_null(skick_schema_compile(c, err, sizeof err));
    cr_assert_str_eq(err, "value nested deeper than 64 levels (at /const)");
    json_object_put(c);
}

Test(schema, reason_paths_and_escaping)
{
    skick_schema_t *s = s_full_ok("{\"additionalProperties\": {\"type\": \"array\","
                                  " \"items\": {\"type\": \"integer\"}}}");
    s_expect(s, "{\"a\": [1, 2, \"x\"]}", "/a/2: expected integer, got string");
    s_expect(s, "{\"a/b~c\": [true]}", "/a~1b~0c/0: expected integer, got boolean");
    s_expect(s, "{\"q\\\"\\u0001\\u00e9\": 5}",
             "/q\\\"\\x01\\xc3\\xa9: expected array, got integer");
    skick_schema_destroy(&s);

    s = s_parse_ok("{\"k\": \"string\"}", NULL);
    s_expect(s, "{\"k\": \"\", \"bad\\nkey\": 1}", "/: unexpected key \"bad\\x0akey\"");
    /* small buffers are truncated and terminated; NULL reason buffers are fine */
    json_object *v = json_tokener_parse("{\"k\": 1}");
    char why[10];
    cr_assert_eq(skick_schema_check(s, v, why, sizeof why), -1);
    cr_assert_str_eq(why, "/k: expec");
    cr_assert_eq(skick_schema_check(s, v, NULL, 0), -1);
    json_object_put(v);
    skick_schema_destroy(&s);
}

Test(schema, reason_texts)
{
    struct {
        const char *schema;     /* full schema */
        const char *value;      /* invalid value */
        const char *why;        /* expected reason */
    } cases[] = {
        {"{\"minimum\": 5}", "4", "/: value less than minimum 5"},
        {"{\"maximum\": 1.5}", "2", "/: value greater than maximum 1.5"},
        {"{\"exclusiveMinimum\": 0}", "0", "/: value not greater than exclusiveMinimum 0"},
        {"{\"exclusiveMaximum\": 0}", "0.0", "/: value not less than exclusiveMaximum 0"},
        {"{\"multipleOf\": 3}", "7", "/: value not a multiple of 3"},
        {"{\"maxLength\": 1}", "\"ab\"", "/: string longer than 1 characters"},
        {"{\"pattern\": \"^\\\\d+$\"}", "\"12a\"", "/: string does not match pattern \"^\\\\d+$\""},
        {"{\"minItems\": 2}", "[1]", "/: array has fewer than 2 items"},
        {"{\"items\": [{}], \"additionalItems\": false}", "[1, 2]",
         "/: array has more than 1 items"},
        {"{\"contains\": {\"const\": 1}}", "[2]", "/: no array item matches \"contains\""},
        {"{\"uniqueItems\": true}", "[1, 2, 1.0]", "/: array items 0 and 2 are equal"},
        {"{\"maxProperties\": 0}", "{\"a\": 1}", "/: object has more than 0 keys"},
        {"{\"propertyNames\": {\"maxLength\": 2}}", "{\"abc\": 1}",
         "/: key \"abc\" does not match propertyNames"},
        {"{\"dependencies\": {\"a\": [\"b\"]}}", "{\"a\": 1}",
         "/: missing key \"b\" (dependency)"},
        {"{\"enum\": [1, \"a\"]}", "2", "/: value not in enum"},
        {"{\"const\": {\"a\": 1}}", "{\"a\": 2}", "/: value does not equal const"},
        {"{\"anyOf\": [{\"type\": \"string\"}, {\"minimum\": 3}]}", "1",
         "/: value matches no subschema of anyOf"},
        {"{\"oneOf\": [{\"minimum\": 0}, {\"maximum\": 9}]}", "5",
         "/: value matches more than one subschema of oneOf"},
        {"{\"not\": {\"type\": \"null\"}}", "null", "/: value matches the \"not\" subschema"},
        {"{\"if\": {\"minimum\": 0}, \"then\": {\"multipleOf\": 2}}", "3",
         "/: value not a multiple of 2"},
        {"{\"properties\": {\"a\": false}}", "{\"a\": 1}",
         "/a: value not allowed here (schema false)"},
        {"{\"type\": [\"string\", \"null\"]}", "1.5", "/: expected null or string, got number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        skick_schema_t *s = s_full_ok(cases[i].schema);
        s_expect(s, cases[i].value, cases[i].why);
        skick_schema_destroy(&s);
    }
}

/* Count the bytes of why that came from the runs of 'A' and 'B' planted in client data. */
static size_t s_count_client(const char *why)
{
    size_t n = 0;
    for (const char *p = why; *p; p++)
        n += *p == 'A' || *p == 'B';
    return n;
}

Test(schema, echo_capped_at_32_bytes)
{
    char key_a[201], key_b[201], text[600], why[512];
    memset(key_a, 'A', 200);
    memset(key_b, 'B', 200);
    key_a[200] = key_b[200] = '\0';

    /* an unexpected key */
    skick_schema_t *s = s_parse_ok("{\"k?\": {\"type\": \"object\", \"additionalProperties\":"
                                   " {\"type\": \"integer\"}}}", NULL);
    snprintf(text, sizeof text, "{\"%s\": 1}", key_a);
    json_object *v = json_tokener_parse(text);
    cr_assert_eq(skick_schema_check(s, v, why, sizeof why), -1);
    json_object_put(v);
    cr_assert_eq(s_count_client(why), SKICK_SCHEMA_ECHO_MAX, "reason: %s", why);
    cr_assert_not_null(strstr(why, "...\""), "truncation not marked: %s", why);

    /* a long key in the path plus nothing else */
    snprintf(text, sizeof text, "{\"k\": {\"%s\": \"x\"}}", key_b);
    v = json_tokener_parse(text);
    cr_assert_eq(skick_schema_check(s, v, why, sizeof why), -1);
    json_object_put(v);
    cr_assert_leq(s_count_client(why), SKICK_SCHEMA_ECHO_MAX, "reason: %s", why);
    cr_assert_not_null(strstr(why, "expected integer, got string"), "reason: %s", why);
    skick_schema_destroy(&s);

    /* a long key in the path and a long unexpected key share one budget */
    s = s_full_ok("{\"additionalProperties\": {\"additionalProperties\": false}}");
    snprintf(text, sizeof text, "{\"%.20s\": {\"%s\": 1}}", key_a, key_b);
    v = json_tokener_parse(text);
    cr_assert_eq(skick_schema_check(s, v, why, sizeof why), -1);
    json_object_put(v);
    cr_assert_eq(s_count_client(why), SKICK_SCHEMA_ECHO_MAX, "reason: %s", why);
    cr_assert_not_null(strstr(why, "/AAAAAAAAAAAAAAAAAAAA: unexpected key \"BBBBBBBBBBBB...\""),
                       "reason: %s", why);
    skick_schema_destroy(&s);

    /* escaped bytes count once each, never more than 32 source bytes */
    s = s_parse_ok("{}", NULL);
    char ctl[40 * 6 + 8];
    size_t n = (size_t) snprintf(ctl, sizeof ctl, "{\"");
    for (int i = 0; i < 40; i++)
        n += (size_t) snprintf(ctl + n, sizeof ctl - n, "\\u0001");
    snprintf(ctl + n, sizeof ctl - n, "\": 1}");
    v = json_tokener_parse(ctl);
    cr_assert_eq(skick_schema_check(s, v, why, sizeof why), -1);
    json_object_put(v);
    size_t escapes = 0;
    for (const char *p = why; (p = strstr(p, "\\x01")) != NULL; p++)
        escapes++;
    cr_assert_eq(escapes, SKICK_SCHEMA_ECHO_MAX, "reason: %s", why);
    skick_schema_destroy(&s);
}

/* Build [[[...[]...]]] nested depth levels. */
static json_object *s_deep_array(int depth)
{
    json_object *v = json_object_new_array();
    for (int i = 1; i < depth; i++) {
        json_object *outer = json_object_new_array();
        json_object_array_add(outer, v);
        v = outer;
    }
    return v;
}

Test(schema, deep_values_are_harmless)
{
    json_object *deep = s_deep_array(10000);
    char why[256];

    skick_schema_t *s = s_full_ok("{\"items\": {\"items\": {\"type\": \"array\"}}}");
    cr_assert_eq(skick_schema_check(s, deep, why, sizeof why), 0, "%s", why);
    skick_schema_destroy(&s);

    s = s_full_ok("{\"items\": {\"items\": {\"type\": \"integer\"}}}");
    cr_assert_eq(skick_schema_check(s, deep, why, sizeof why), -1);
    cr_assert_str_eq(why, "/0/0: expected integer, got array");
    skick_schema_destroy(&s);

    s = s_full_ok("{\"const\": [[[1]]], \"items\": {\"contains\": {\"enum\": [[[2]]]}}}");
    cr_assert_not(skick_schema_valid(s, deep));
    skick_schema_destroy(&s);

    s = s_full_ok("true");
    cr_assert(skick_schema_valid(s, deep));
    skick_schema_destroy(&s);

    /* two equal 10000-deep items: equality gives up cleanly instead of recursing */
    json_object *pair = json_object_new_array();
    json_object_array_add(pair, deep);
    json_object_array_add(pair, s_deep_array(10000));
    s = s_full_ok("{\"uniqueItems\": true}");
    cr_assert_eq(skick_schema_check(s, pair, why, sizeof why), -1);
    cr_assert_str_eq(why, "/: array items nested deeper than 64 levels");
    skick_schema_destroy(&s);
    json_object_put(pair);
}

Test(schema, unicode_length)
{
    skick_schema_t *s = s_full_ok("{\"minLength\": 2, \"maxLength\": 2}");
    s_expect(s, "\"\\u00e9\\u20ac\"", NULL);                    /* 2 code points, 5 bytes */
    s_expect(s, "\"\\ud83d\\udca9\\ud83d\\udca9\"", NULL);      /* 2 code points, 8 bytes */
    s_expect(s, "\"\\u00e9\\u00e9\\u00e9\"", "/: string longer than 2 characters");
    s_expect(s, "\"\\ud83d\\udca9\"", "/: string shorter than 2 characters");
    skick_schema_destroy(&s);
    cr_assert_eq(skick_schema_utf8_length("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x92\xa9", 10), 4);
    cr_assert_eq(skick_schema_utf8_length("\x80\x80\xff", 3), 3);   /* invalid bytes count */
}

Test(schema, patterns)
{
    skick_schema_t *s =
        s_full_ok("{\"patternProperties\": {\"^x_\\\\w+$\": {\"type\": \"integer\"}},"
                  " \"additionalProperties\": false,"
                  " \"properties\": {\"code\": {\"pattern\": \"^[A-Z]{2}\\\\d\"}}}");
    s_expect(s, "{\"x_a1\": 1, \"code\": \"AB1 and more\"}", NULL);
    s_expect(s, "{\"x_a1\": \"1\"}", "/x_a1: expected integer, got string");
    s_expect(s, "{\"x_\": 1}", "/: unexpected key \"x_\"");
    s_expect(s, "{\"code\": \"ab1\"}", "/code: string does not match pattern \"^[A-Z]{2}\\\\d\"");
    skick_schema_destroy(&s);

    /* '.' is one code point, not one byte; an embedded NUL does not end the string */
    s = s_full_ok("{\"pattern\": \"^.b$\"}");
    s_expect(s, "\"\\u00e9b\"", NULL);
    s_expect(s, "\"\\nb\"", "/: string does not match pattern \"^.b$\"");
    skick_schema_destroy(&s);
    s = s_full_ok("{\"pattern\": \"z$\"}");
    s_expect(s, "\"a\\u0000z\"", NULL);
    skick_schema_destroy(&s);

    char out[256], err[128];
    cr_assert_eq(skick_schema_regex_translate("^\\d+(?:\\.\\d*)?$", out, sizeof out, err,
                                              sizeof err), 0, "%s", err);
    cr_assert_str_eq(out, "^[0-9]+(\\.[0-9]*)?$");
    cr_assert_eq(skick_schema_regex_translate("[\\w\\-]+?", out, sizeof out, err, sizeof err), 0);
    cr_assert_str_eq(out, "[A-Za-z0-9_-]+");
    cr_assert_eq(skick_schema_regex_translate("(?<=a)b", out, sizeof out, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "lookahead/lookbehind"), "%s", err);
    cr_assert_eq(skick_schema_regex_translate("abcdef", out, 4, err, sizeof err), -1);
}

Test(schema, numbers_exact)
{
    skick_schema_t *s = s_full_ok("{\"maximum\": 9007199254740992}");
    s_expect(s, "9007199254740992", NULL);
    s_expect(s, "9007199254740993", "/: value greater than maximum 9007199254740992");
    s_expect(s, "18446744073709551615", "/: value greater than maximum 9007199254740992");
    s_expect(s, "9007199254740992.0", NULL);
    skick_schema_destroy(&s);

    s = s_full_ok("{\"multipleOf\": 0.01, \"minimum\": -1e300}");
    s_expect(s, "19.99", NULL);
    s_expect(s, "0.015", "/: value not a multiple of 0.01");
    skick_schema_destroy(&s);

    s = s_full_ok("{\"multipleOf\": 4611686018427387904}");
    s_expect(s, "-9223372036854775808", NULL);
    s_expect(s, "9223372036854775808", NULL);
    s_expect(s, "9223372036854775807", "/: value not a multiple of 4611686018427387904");
    skick_schema_destroy(&s);

    /* non-finite doubles (json-c parses them leniently) are never numbers */
    s = s_full_ok("{\"type\": \"number\"}");
    json_object *inf = json_object_new_double(1.0 / 0.0);
    char why[128];
    cr_assert_eq(skick_schema_check(s, inf, why, sizeof why), -1);
    cr_assert_str_eq(why, "/: expected number, got non-finite number");
    json_object_put(inf);
    skick_schema_destroy(&s);

    json_object *a = json_object_new_int64(1), *b = json_object_new_double(1.0);
    json_object *c = json_object_new_boolean(1);
    cr_assert_eq(skick_schema_json_equal(a, b, 8), 1);
    cr_assert_eq(skick_schema_json_equal(a, c, 8), 0);
    cr_assert_eq(skick_schema_number_compare(a, b), 0);
    cr_assert_eq(skick_schema_number_compare(a, c), 2);
    json_object_put(a);
    json_object_put(b);
    json_object_put(c);
}

typedef struct {
    const skick_schema_t *schema;   /* shared compiled schema */
    int mismatches;                 /* wrong answers seen by this thread */
} s_worker_t;

static void *s_worker(void *arg)
{
    s_worker_t *w = arg;
    json_object *good = json_tokener_parse("{\"action\": \"add\", \"id\": \"ab12\", \"n\": 5}");
    json_object *bad = json_tokener_parse("{\"action\": \"add\", \"id\": \"AB12\", \"n\": 5}");
    char why[128];
    for (int i = 0; i < 20000; i++) {
        w->mismatches += !skick_schema_valid(w->schema, good);
        w->mismatches += skick_schema_check(w->schema, bad, why, sizeof why) != -1;
        w->mismatches += strcmp(why, "/id: string does not match pattern \"^[a-z]+\\\\d+$\"") != 0;
    }
    json_object_put(good);
    json_object_put(bad);
    return NULL;
}

Test(schema, concurrent_readers)
{
    skick_schema_t *s =
        s_parse_ok("{\"id\": {\"type\": \"string\", \"pattern\": \"^[a-z]+\\\\d+$\"},"
                   " \"n\": \"integer\"}", "add");
    pthread_t threads[4];
    s_worker_t workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (s_worker_t) {s, 0};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_worker, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(workers[i].mismatches, 0, "thread %d saw %d wrong answers", i,
                     workers[i].mismatches);
    }
    skick_schema_destroy(&s);
}
