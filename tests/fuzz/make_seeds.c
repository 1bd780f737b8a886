/*  make_seeds - write the seed corpora of tests/fuzz/corpus/<target>/

    Usage: fuzz_make_seeds CORPUS_DIR [SCHEMA_SUITE_DIR]
    Seeds are small inputs each target starts from: real messages, envelopes
    made by the real encoder (skick_envelope_encode_header), schemas from
    examples/ and the JSON-Schema-Test-Suite (draft 7, one seed per test
    group: the schema and up to 7 of its instances). The files are checked
    in; run this again when a target's input format changes. Names are
    <target>/seed-<n>; existing seeds are overwritten, others left alone.
*/
#include <dirent.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "skick_envelope.h"

static const char *s_dir;

/*  A growing byte buffer for one seed. */
typedef struct {
    uint8_t data[8192];
    size_t len;
} s_buf_t;

static void s_put(s_buf_t *b, const void *p, size_t n)
{
    if (b->len + n > sizeof b->data) {
        fprintf(stderr, "make_seeds: a seed is too long\n");
        exit(1);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void s_puts(s_buf_t *b, const char *s)
{
    s_put(b, s, strlen(s));
}

static void s_byte(s_buf_t *b, uint8_t x)
{
    s_put(b, &x, 1);
}

static void s_u16(s_buf_t *b, size_t n)
{
    s_byte(b, (uint8_t) (n >> 8));
    s_byte(b, (uint8_t) n);
}

static void s_write(const char *target, int n, const s_buf_t *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s_dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/seed-%03d", s_dir, target, n);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s\n", path);
        exit(1);
    }
}

/* ---- json ------------------------------------------------------------------ */

static const char *const s_docs[] = {
    "{}",
    "[]",
    "0",
    "-0",
    "1.5",
    "1.50",
    "-1.5E-3",
    "1e-400",
    "\"x\"",
    "true",
    "false",
    "null",
    "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\"}",
    " [ 1 , 2 ] ",
    "\t\r\n1\n",
    "{\"\\uD83D\\uDE00\":1}",
    "\"\\ud83d\\ude00\"",
    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
    "\"\\u0000a\"",
    "{\"k\\u0000x\":1}",
    "\"\\ud800\"",
    "\"\\ud800\\u0041\"",
    "\"\\ud837\\ude00\"",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "{\"a\":1,\"a\":2}",
    "1.7976931348623157e308",
    "4.9e-324",
    "[0.1,0.2,0.30000000000000004]",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
    "]]"
    "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "{\"action\":\"echo\",\"text\":\"hi\",\"cid\":\"3f2a\",\"sender\":\"00000001:00000002\"}",
    "{\"session_type\":\"hello\"}",
    "{\"action\":\"query_reply\",\"query_id\":\"0123456789abcdef0123456789abcdef\",\"message\":7}",
    "{\"peer\":\"shard\",\"pid\":1234,\"host\":\"name\",\"version\":\"0.1.0\",\"roles\":[\"front\","
    "\"back\"],\"ws\":\"ws://127.0.0.1:8000\",\"apps\":[\"hello.so\"]}",
    "{\"op\":\"hash\",\"id\":3,\"cmd\":\"set\",\"table\":\"t\",\"key\":\"k\",\"value\":{\"x\":[1e3]"
    "}}",
    "[1,]",
    "[01]",
    "1.",
    "NaN",
    "1e999",
    "\"\\x\"",
    "{\"a\" 1}",
    "[1 2]",
    "{} {}",
    "\"\xc3\"",
    "\"\xed\xa0\x80\"",
    "\xef\xbb\xbf{}",
};

static void s_json(void)
{
    for (size_t i = 0; i < sizeof s_docs / sizeof s_docs[0]; i++) {
        s_buf_t b = {.len = 0};
        s_puts(&b, s_docs[i]);
        s_write("json", (int) i, &b);
    }
}

/* ---- schema ---------------------------------------------------------------- */

/*  mode, schema, then instances, separated by 0x1e. */
static void s_schema_seed(int n, int mode, const char *schema, const char *const *inst)
{
    s_buf_t b = {.len = 0};
    s_byte(&b, (uint8_t) mode);
    s_puts(&b, schema);
    for (; inst && *inst; inst++) {
        s_byte(&b, 0x1e);
        s_puts(&b, *inst);
    }
    s_write("schema", n, &b);
}

static int s_schema_suite(const char *dir, int n)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "make_seeds: no schema suite at %s (skipped)\n", dir);
        return n;
    }
    struct dirent *ent;
    char **names = NULL;
    size_t count = 0;
    while ((ent = readdir(d))) {
        size_t l = strlen(ent->d_name);
        if (l > 5 && strcmp(ent->d_name + l - 5, ".json") == 0) {
            names = realloc(names, (count + 1) * sizeof *names);
            names[count++] = strdup(ent->d_name);
        }
    }
    closedir(d);
    qsort(names, count, sizeof *names, (int (*)(const void *, const void *)) strcmp);
    for (size_t f = 0; f < count; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        json_object *groups = json_object_from_file(path);
        for (size_t g = 0; g < json_object_array_length(groups); g++) {
            json_object *group = json_object_array_get_idx(groups, g);
            json_object *tests = json_object_object_get(group, "tests");
            s_buf_t b = {.len = 0};
            s_byte(&b, 0);
            s_puts(&b, json_object_to_json_string_ext(json_object_object_get(group, "schema"),
                                                      JSON_C_TO_STRING_PLAIN));
            for (size_t t = 0; t < json_object_array_length(tests) && t < 7; t++) {
                json_object *data =
                    json_object_object_get(json_object_array_get_idx(tests, t), "data");
                const char *text = json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN);
                if (b.len + strlen(text) + 1 > 3000)
                    break;
                s_byte(&b, 0x1e);
                s_puts(&b, text);
            }
            if (b.len < 3000)
                s_write("schema", n++, &b);
        }
        json_object_put(groups);
        free(names[f]);
    }
    free(names);
    return n;
}

static void s_schema(const char *suite)
{
    static const char *const msgs[] = {"{\"action\":\"act\",\"number\":5}",
                                       "{\"action\":\"act\",\"number\":\"5\"}",
                                       "{\"action\":\"act\",\"number\":1.0,\"note\":\"x\"}",
                                       "{\"action\":\"other\"}",
                                       "{\"number\":5}",
                                       "[1]",
                                       NULL};
    int n = 0;
    s_schema_seed(n++, 1, "{\"number\": \"integer\", \"note?\": \"string\"}", msgs);
    s_schema_seed(n++, 2, "{\"number\": \"integer\", \"note?\": \"string\"}", msgs);
    s_schema_seed(
        n++, 1, "{\"text\": \"string\"}",
        (const char *const[]){"{\"action\":\"act\",\"text\":\"hi\"}", "{\"text\":\"hi\"}", NULL});
    s_schema_seed(n++, 1, "{\"x\": \"number\"}", msgs);
    s_schema_seed(n++, 1, "{\"action\": \"string\", \"a\": \"any\", \"b?\": \"null\"}", msgs);
    s_schema_seed(n++, 1, "{\"action\": {\"const\": \"act\"}, \"l\": \"array\", \"o\": \"object\"}",
                  msgs);
    s_schema_seed(n++, 1, "{\"name?\": {\"type\": \"string\", \"pattern\": \"^[a-z]{1,8}$\"}}",
                  (const char *const[]){"{\"action\":\"act\",\"name\":\"ada\"}",
                                        "{\"action\":\"act\",\"name\":\"Ada\"}", NULL});
    s_schema_seed(n++, 2,
                  "{\"$schema\": \"http://json-schema.org/draft-07/schema#\", "
                  "\"type\": \"integer\", \"maximum\": 10}",
                  (const char *const[]){"10", "11", "1.0", NULL});
    s_schema_seed(n++, 0,
                  "{\"type\": \"object\", \"required\": [\"action\", \"xs\"], "
                  "\"additionalProperties\": false, \"properties\": {\"action\": {\"const\":"
                  " \"sum\"}, \"xs\": {\"type\": \"array\", \"items\": {\"type\": "
                  "\"integer\"}, \"maxItems\": 16, \"uniqueItems\": true}}}",
                  (const char *const[]){"{\"action\":\"sum\",\"xs\":[1,2,3]}",
                                        "{\"action\":\"sum\",\"xs\":[1,1]}", NULL});
    s_schema_seed(
        n++, 0,
        "{\"propertyNames\": {\"maxLength\": 3}, \"patternProperties\": "
        "{\"^x\\\\d+$\": {\"multipleOf\": 0.01}}}",
        (const char *const[]){"{\"x1\": 19.99}", "{\"long\": 1}", "{\"x2\": 0.001}", NULL});
    static const char *const patterns[] = {
        "^\\d+$", "[a-z\\]-]+", "(?:ab)*?c", "\\u00e9.",     "\\x41{2,3}", "[^\\s]",
        "a{",     "(?=a)",      "\\1",       "caf\xc3\xa9+", "^$",         "[]]",
    };
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++)
        s_schema_seed(n++, 3, patterns[i],
                      (const char *const[]){"\"123\"", "\"abc\"", "\"caf\xc3\xa9\xc3\xa9\"", NULL});
    s_schema_suite(suite, n);
}

/* ---- envelopes ------------------------------------------------------------- */

static void s_header(s_buf_t *b, int kind, uint64_t seq, uint64_t fs, uint64_t fa, uint64_t ts,
                     uint64_t ta)
{
    skick_envelope_t e = {.kind = (uint8_t) kind,
                          .seq = seq,
                          .gen = kind == SKICK_KIND_CLIENT,
                          .from_shard = fs,
                          .from_id = fa,
                          .to_shard = ts,
                          .to_id = ta};
    uint8_t h[SKICK_ENVELOPE_HEADER];
    skick_envelope_encode_header(&e, h);
    s_put(b, h, sizeof h);
}

static void s_envelope(void)
{
    static const char *const bodies[] = {
        "{\"action\":\"add\",\"number\":2}",
        "",
        "{}",
        "null",
        "[1,2,3]",
        "{\"bad\":",
        "{\"peer\":\"shard\",\"roles\":[\"back\"]}",
        "{\"delivered\":10}",
        "{\"op\":\"stats\",\"id\":1}",
        "{\"shard\":\"1111111111111111\",\"reason\":\"left\"}",
    };
    int n = 0;
    for (int kind = 1; kind < SKICK_KIND_COUNT_; kind++) {
        for (int mode = 0; mode < 4; mode++) {
            const char *body = bodies[(kind + mode) % (sizeof bodies / sizeof bodies[0])];
            s_buf_t b = {.len = 0};
            static const uint8_t flags[] = {0, 1, 3, 5};
            s_byte(&b, flags[mode]);
            s_byte(&b, mode == 3 ? 4 : 255); /* routing id capacity (4: too short) */
            s_u16(&b, SKICK_ENVELOPE_HEADER);
            s_header(&b, kind, 1 + (uint64_t) mode, 0x11, 0x12, kind == 5 ? 0 : 0x21, 0x22);
            s_u16(&b, strlen(body));
            s_puts(&b, body);
            s_write("envelope", n++, &b);
        }
    }
    /* three frames, one frame, a short header */
    s_buf_t b = {.len = 0};
    s_byte(&b, 1);
    s_byte(&b, 255);
    s_u16(&b, SKICK_ENVELOPE_HEADER);
    s_header(&b, SKICK_KIND_ACTOR, 9, 1, 2, 3, 4);
    s_u16(&b, 2);
    s_puts(&b, "{}");
    s_u16(&b, 3);
    s_puts(&b, "xyz");
    s_write("envelope", n++, &b);
    b.len = 0;
    s_byte(&b, 3);
    s_byte(&b, 255);
    s_u16(&b, 10);
    s_puts(&b, "\xaa\x51\x01\x01short");
    s_write("envelope", n++, &b);
}

/* ---- broker ---------------------------------------------------------------- */

enum { A = 0, B = 1, C = 2, NOBODY = 3, SWAP = 4, FRAMES = 8 };
#define ID_A 0x1111111111111111ULL
#define ID_B 0x2222222222222222ULL
#define ID_C 0x3333333333333333ULL

static void s_rec(s_buf_t *b, int sel, int kind, uint64_t seq, uint64_t fs, uint64_t fa,
                  uint64_t ts, uint64_t ta, const char *body)
{
    s_byte(b, (uint8_t) sel);
    s_byte(b, SKICK_ENVELOPE_HEADER);
    s_header(b, kind, seq, fs, fa, ts, ta);
    s_u16(b, strlen(body));
    s_puts(b, body);
}

static void s_joins(s_buf_t *b)
{
    s_rec(b, A, SKICK_KIND_HELLO, 1, ID_A, ID_A, 0, 0,
          "{\"peer\":\"shard\",\"pid\":1,\"host\":\"h\",\"roles\":[\"back\"],\"ws\":null}");
    s_rec(b, B, SKICK_KIND_HELLO, 1, ID_B, ID_B, 0, 0,
          "{\"peer\":\"shard\",\"roles\":[\"front\"]}");
    s_rec(b, C, SKICK_KIND_HELLO, 1, ID_C, 1, 0, 0, "{\"peer\":\"client\"}");
}

static void s_broker(void)
{
    int n = 0;
    s_buf_t b = {.len = 0};
    s_joins(&b);
    s_rec(&b, A, SKICK_KIND_ACTOR, 2, ID_A, 5, ID_B, 6, "{\"action\":\"add\",\"cid\":\"x\"}");
    s_rec(&b, B, SKICK_KIND_DEAD_LETTER, 2, ID_A, 5, ID_B, 6, "{\"code\":\"EDEAD\"}");
    s_rec(&b, B, SKICK_KIND_REPLY, 3, ID_B, 6, ID_A, 5, "{\"ok\":true}");
    s_rec(&b, A, SKICK_KIND_CLIENT, 3, ID_A, 7, ID_B, 8, "{\"action\":\"echo\"}");
    s_rec(&b, A, SKICK_KIND_HEARTBEAT, 4, ID_A, ID_A, 0, 0, "{\"delivered\":10}");
    s_rec(&b, A, SKICK_KIND_HEARTBEAT, 4, ID_A, ID_A, 0, 0, "{\"delivered\":10}"); /* dup */
    s_rec(&b, A, SKICK_KIND_ACTOR, 9, ID_A, 5, 0x99, 6, "{\"action\":\"gap\"}");
    s_write("broker", n++, &b);
    b.len = 0;
    s_joins(&b);
    static const char *const ops[] = {
        "{\"op\":\"ps\",\"id\":1}",
        "{\"op\":\"directory\",\"id\":2}",
        "{\"op\":\"services\",\"id\":3,\"name\":\"x\"}",
        "{\"op\":\"stats\",\"id\":4}",
        "{\"op\":\"hash\",\"id\":5,\"cmd\":\"set\",\"table\":\"t\",\"key\":\"k\",\"value\":[1]}",
        "{\"op\":\"hash\",\"id\":6,\"cmd\":\"get\",\"table\":\"t\",\"key\":\"k\"}",
        "{\"op\":\"hash\",\"id\":7,\"cmd\":\"contains\",\"table\":\"t\",\"key\":\"k\"}",
        "{\"op\":\"hash\",\"id\":8,\"cmd\":\"delete\",\"table\":\"t\",\"key\":\"k\"}",
        "{\"op\":\"nope\",\"id\":9}",
        "[\"not an object\"]",
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        s_rec(&b, C, SKICK_KIND_CONTROL, 2 + i, ID_C, 1, 0, 0, ops[i]);
    s_rec(&b, C, SKICK_KIND_CONTROL, 20, ID_C, 1, ID_A, ID_A, "{\"op\":\"actors\",\"id\":10}");
    s_write("broker", n++, &b);
    b.len = 0;
    /* strangers, a lost shard coming back, refusals */
    s_rec(&b, NOBODY, SKICK_KIND_ACTOR, 1, 0x44, 1, ID_A, 2, "{\"action\":\"x\",\"cid\":\"c\"}");
    s_rec(&b, A, SKICK_KIND_CONTROL, 1, 0, 0, 0, 0, "{\"op\":\"ps\",\"id\":1}");
    s_joins(&b);
    s_rec(&b, A, SKICK_KIND_LOST, 2, ID_A, ID_A, 0, 0, "{\"shard\":\"1111111111111111\"}");
    s_rec(&b, A, SKICK_KIND_HELLO, 1, ID_A, ID_A, 0, 0, "{\"peer\":\"shard\"}");
    s_rec(&b, B, SKICK_KIND_LOST, 2, ID_B, ID_B, 0, 0, "{\"shard\":\"1111111111111111\"}");
    s_rec(&b, B, SKICK_KIND_DIRECTORY, 3, ID_B, ID_B, 0, 0, "{\"shard\":\"2222222222222222\"}");
    s_rec(&b, B | SWAP, SKICK_KIND_HELLO, 1, ID_B, ID_B, 0, 0, "{\"peer\":\"shard\"}");
    s_rec(&b, C, SKICK_KIND_HELLO, 5, ID_B, 1, 0, 0, "{\"peer\":\"client\"}");
    s_rec(&b, B | FRAMES, SKICK_KIND_ACTOR, 4, ID_B, 1, ID_A, 1, "{}");
    s_rec(&b, B, SKICK_KIND_ACTOR, 5, ID_A, 1, ID_B, 1, "{\"action\":\"forged\"}");
    s_rec(&b, C, SKICK_KIND_LOST, 2, ID_C, 1, 0, 0, "{\"shard\":\"3333333333333333\"}");
    s_write("broker", n++, &b);
}

/* ---- session --------------------------------------------------------------- */

static void s_session_seed(int n, const char *const *pieces)
{
    s_buf_t b = {.len = 0};
    for (size_t i = 0; pieces[i]; i++) {
        if (i)
            s_byte(&b, 0x1e);
        s_puts(&b, pieces[i]);
    }
    s_write("session", n, &b);
}

static void s_session(void)
{
    int n = 0;
    s_session_seed(n++,
                   (const char *const[]){
                       "{\"session_type\": \"fz\"}", "{\"action\": \"echo\", \"text\": \"hi\"}",
                       "{\"action\": \"echo\", \"text\": \"caf\xc3\xa9\", \"note\": \"n\"}",
                       "{\"action\": \"sum\", \"xs\": [1, 2, 3]}", "{bad", "[1]",
                       "{\"action\": \"nope\"}", "{\"action\": 5}", "{\"x\": 1}",
                       "{\"action\": \"echo\", \"text\": 1}", NULL});
    s_session_seed(n++,
                   (const char *const[]){
                       "{\"session_type\": \"fz\"}", "{\"action\": \"ask\", \"schema\": \"small\"}",
                       "{\"action\": \"query_reply\", \"query_id\": \"$Q\", \"message\": 11}",
                       "{\"action\": \"query_reply\", \"query_id\": \"$Q\", \"message\": 3}",
                       "{\"action\": \"query_reply\", \"query_id\": \"$Q\", \"message\": 3}",
                       "{\"action\": \"ask\", \"schema\": \"list\"}",
                       "\x1f"
                       "a\x40",
                       "{\"action\": \"query_reply\", \"query_id\": \"x\", \"message\": 1}", NULL});
    s_session_seed(n++, (const char *const[]){
                            "{\"action\": \"echo\"}", "\x1fo",
                            "{\"session_type\": \"named\", "
                            "\"name\": \"ada\"}",
                            "{\"action\": \"become\"}", "{\"action\": \"echo\", \"text\": \"old\"}",
                            "{\"action\": \"ping\"}", "{\"action\": \"quit\"}", "\x1fo",
                            "{\"session_type\": \"fz\"}", "{\"action\": \"fail\"}", "\x1fo",
                            "{\"session_type\": \"fz\"}",
                            "\x1f"
                            "d",
                            NULL});
    s_session_seed(n++, (const char *const[]){"{\"session_type\": \"named\", \"name\": \"Ada\"}",
                                              "\x1fo", "{\"session_type\": \"fz:other\"}", "\x1fo",
                                              "{\"session_type\": \"fz\"}", "{\"action\": \"ask\"}",
                                              "\x1f"
                                              "a\xff",
                                              "{\"action\": \"ask\", \"schema\": \"int\"}",
                                              "\x1f"
                                              "d",
                                              NULL});
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR [SCHEMA_SUITE_DIR]\n");
        return 2;
    }
    s_dir = argv[1];
    mkdir(s_dir, 0755);
    s_json();
    s_schema(argc > 2 ? argv[2] : "/usr/share/json-schema-test-suite/tests/draft7");
    s_envelope();
    s_broker();
    s_session();
    return 0;
}
