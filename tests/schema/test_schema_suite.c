/*  test_schema_suite - run the official JSON-Schema-Test-Suite (draft 7) against skick_schema  */

/*
 * Walks one draft7 file per claimed keyword (s_files below; optional/ is skipped). Each test
 * group's schema is compiled with skick_schema_compile(): a group whose schema fails only because
 * it uses a keyword this module does not claim ("unsupported keyword ...", e.g. $ref) is counted
 * as skipped, any other compile failure is a failure. Every test case of a compiled group must
 * give the suite's "valid" answer through both skick_schema_valid() and skick_schema_check().
 * One summary line per file goes to stderr. The suite directory comes from
 * SKICK_SCHEMA_SUITE_DIR (default: Debian's json-schema-test-suite package).
 */

#include <criterion/criterion.h>
#include <skick/schema.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#ifndef SKICK_SCHEMA_SUITE_DIR
#define SKICK_SCHEMA_SUITE_DIR "/usr/share/json-schema-test-suite/tests/draft7"
#endif

/* One file per claimed keyword; default.json and definitions.json cover the annotations */
static const char *const s_files[] = {
    "additionalItems.json", "additionalProperties.json", "allOf.json", "anyOf.json",
    "boolean_schema.json", "const.json", "contains.json", "default.json", "definitions.json",
    "dependencies.json", "enum.json", "exclusiveMaximum.json", "exclusiveMinimum.json",
    "if-then-else.json", "items.json", "maxItems.json", "maxLength.json", "maxProperties.json",
    "maximum.json", "minItems.json", "minLength.json", "minProperties.json", "minimum.json",
    "multipleOf.json", "not.json", "oneOf.json", "pattern.json", "patternProperties.json",
    "properties.json", "propertyNames.json", "required.json", "type.json", "uniqueItems.json",
};

typedef struct {
    int passed;                 /* test cases with the expected answer */
    int failed;                 /* test cases with the wrong answer, or groups failing compile */
    int skipped;                /* groups skipped for using an unclaimed keyword */
} s_tally_t;

/* Run every test case of one compiled group. */
static void s_run_group(const char *file, json_object *group, skick_schema_t *schema,
                        s_tally_t *tally)
{
    json_object *tests = json_object_object_get(group, "tests");
    const char *gdesc = json_object_get_string(json_object_object_get(group, "description"));
    for (size_t i = 0; i < json_object_array_length(tests); i++) {
        json_object *test = json_object_array_get_idx(tests, i);
        json_object *data = json_object_object_get(test, "data");
        bool expected = json_object_get_boolean(json_object_object_get(test, "valid"));
        char why[256];
        bool valid = skick_schema_valid(schema, data);
        int rc = skick_schema_check(schema, data, why, sizeof why);
        bool consistent = (rc == 0) == valid && (valid ? why[0] == '\0' : why[0] == '/');
        if (valid == expected && consistent) {
            tally->passed++;
            continue;
        }
        tally->failed++;
        fprintf(stderr, "FAIL %s: %s / %s: expected %s, got %s (%s)\n", file, gdesc,
                json_object_get_string(json_object_object_get(test, "description")),
                expected ? "valid" : "invalid", valid ? "valid" : "invalid", why);
    }
}

/* Run one suite file; returns its tally. */
static s_tally_t s_run_file(const char *file)
{
    s_tally_t tally = {0, 0, 0};
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", SKICK_SCHEMA_SUITE_DIR, file);
    json_object *groups = json_object_from_file(path);
    cr_assert_not_null(groups, "cannot read %s", path);
    for (size_t g = 0; g < json_object_array_length(groups); g++) {
        json_object *group = json_object_array_get_idx(groups, g);
        const char *gdesc = json_object_get_string(json_object_object_get(group, "description"));
        char err[256];
        skick_schema_t *schema =
            skick_schema_compile(json_object_object_get(group, "schema"), err, sizeof err);
        if (schema == NULL && strncmp(err, "unsupported keyword", 19) == 0) {
            tally.skipped++;
            fprintf(stderr, "skip %s: %s: %s\n", file, gdesc, err);
        } else if (schema == NULL) {
            tally.failed++;
            fprintf(stderr, "FAIL %s: %s: compile error: %s\n", file, gdesc, err);
        } else {
            s_run_group(file, group, schema, &tally);
            skick_schema_destroy(&schema);
            cr_assert_null(schema);
        }
    }
    json_object_put(groups);
    fprintf(stderr, "%s: %d passed, %d failed, %d skipped groups\n", file, tally.passed,
            tally.failed, tally.skipped);
    return tally;
}

Test(schema_suite, draft7)
{
    struct stat st;
    if (stat(SKICK_SCHEMA_SUITE_DIR, &st) != 0 || !S_ISDIR(st.st_mode))
        cr_assert_fail("JSON Schema test suite not found at %s: install the Debian package "
                       "json-schema-test-suite (apt-get install json-schema-test-suite) or "
                       "define SKICK_SCHEMA_SUITE_DIR", SKICK_SCHEMA_SUITE_DIR);
    s_tally_t total = {0, 0, 0};
    for (size_t i = 0; i < sizeof s_files / sizeof s_files[0]; i++) {
        s_tally_t t = s_run_file(s_files[i]);
        total.passed += t.passed;
        total.failed += t.failed;
        total.skipped += t.skipped;
    }
    fprintf(stderr, "total: %d passed, %d failed, %d skipped groups\n", total.passed,
            total.failed, total.skipped);
    cr_assert_gt(total.passed, 300, "suspiciously few test cases ran: %d", total.passed);
    cr_assert_eq(total.failed, 0, "%d JSON-Schema-Test-Suite cases failed", total.failed);
}
