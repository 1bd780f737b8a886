/*  skick_redis - Redis URLs, the key layout and the JSON <-> string mapping

    The layout is the Python original's (SEED-SPEC.md §11): one Redis
    string per key, named "<table>:<key>", so that a Python shard and a C
    shard on the same Redis see each other's tables. Python stored what
    redis-py accepts (str, int, float) as their text, and read back str;
    the mapping below keeps that text for strings and numbers and adds
    JSON text for what Python could not store. Reading is the strict JSON
    reader of every process boundary (skick_json.c), so a value read from
    Redis is exactly what a client could have sent.

    A string that would read back as something else ("5", "true", "{}",
    "\"x\"", " 7 ") is stored as its JSON text, quoted, and reads back as
    the same string; every other string is stored as it is. "null" is
    stored as it is and reads back as the string "null": a null is not
    storable, so the text "null" is never a null.
*/
#include "skick_redis.h"

#include "skick_json.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* URLs                                                                       */

static int s_fail(char *err, size_t errlen, const char *url, const char *why)
{
    snprintf(err, errlen, "bad Redis URL '%.200s': %s (expected redis://[user:password@]HOST"
             ":PORT[/DB] or unix:///PATH[?db=N])", url, why);
    return -1;
}

static int s_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*  Percent-decode s[0..n) into out (cap bytes with the NUL); -1 when bad. */
static int s_unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char) s[i];
        if (c == '%') {
            int hi = i + 2 < n ? s_hex((unsigned char) s[i + 1]) : -1;
            int lo = i + 2 < n ? s_hex((unsigned char) s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char) c;
    }
    out[o] = '\0';
    return 0;
}

/*  A decimal number from s[0..n) within [min, max]; -1 when not. */
static int s_int(const char *s, size_t n, long min, long max, int *out)
{
    if (n == 0 || n > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = (int) v;
    return 0;
}

static int s_parse_unix(const char *url, const char *p, skick_redis_url_t *u, char *err,
                        size_t errlen)
{
    u->unix_socket = true;
    const char *q = strchr(p, '?');
    size_t n = q ? (size_t) (q - p) : strlen(p);
    if (n == 0 || p[0] != '/')
        return s_fail(err, errlen, url, "a unix socket needs an absolute path");
    if (n >= sizeof u->path)
        return s_fail(err, errlen, url, "the socket path is too long");
    memcpy(u->path, p, n);
    u->path[n] = '\0';
    if (q) {
        if (strncmp(q, "?db=", 4) != 0 ||
            s_int(q + 4, strlen(q + 4), 0, SKICK_REDIS_DB_MAX, &u->db) != 0)
            return s_fail(err, errlen, url, "the only query is ?db=N (a number)");
    }
    return 0;
}

/*  [[user]:password@] at p up to at; fills u. */
static int s_parse_login(const char *url, const char *p, const char *at, skick_redis_url_t *u,
                         char *err, size_t errlen)
{
    const char *colon = memchr(p, ':', (size_t) (at - p));
    if (!colon)
        return s_fail(err, errlen, url, "a user needs a password (user:password@)");
    if (s_unescape(p, (size_t) (colon - p), u->user, sizeof u->user) != 0 ||
        s_unescape(colon + 1, (size_t) (at - colon - 1), u->password, sizeof u->password) != 0)
        return s_fail(err, errlen, url, "bad user or password (percent-encode reserved "
                      "characters)");
    if (!u->password[0])
        return s_fail(err, errlen, url, "an empty password");
    u->has_password = true;
    return 0;
}

static int s_parse_tcp(const char *url, const char *p, skick_redis_url_t *u, char *err,
                       size_t errlen)
{
    const char *slash = strchr(p, '/');
    const char *end = slash ? slash : p + strlen(p);
    const char *at = NULL;
    for (const char *s = p; s < end; s++)
        if (*s == '@')
            at = s; /* the last one: a password may hold an unescaped '@' */
    if (at) {
        if (s_parse_login(url, p, at, u, err, errlen) != 0)
            return -1;
        p = at + 1;
    }
    const char *host = p, *hend, *portp;
    if (*p == '[') {
        hend = memchr(p, ']', (size_t) (end - p));
        if (!hend)
            return s_fail(err, errlen, url, "an IPv6 address needs its closing ']'");
        host = p + 1;
        portp = hend + 1;
    } else {
        hend = memchr(p, ':', (size_t) (end - p));
        if (!hend)
            hend = end;
        portp = hend;
    }
    size_t hn = (size_t) (hend - host);
    if (hn == 0 || hn >= sizeof u->host)
        return s_fail(err, errlen, url, hn ? "the host name is too long" : "no host");
    for (size_t i = 0; i < hn; i++) {
        unsigned char c = (unsigned char) host[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':'))
            return s_fail(err, errlen, url, "bad character in the host");
    }
    memcpy(u->host, host, hn);
    u->host[hn] = '\0';
    u->port = SKICK_REDIS_PORT;
    if (portp < end) {
        if (*portp != ':' ||
            s_int(portp + 1, (size_t) (end - portp - 1), 1, 65535, &u->port) != 0)
            return s_fail(err, errlen, url, "the port must be a number from 1 to 65535");
    }
    if (slash && slash[1] &&
        s_int(slash + 1, strlen(slash + 1), 0, SKICK_REDIS_DB_MAX, &u->db) != 0)
        return s_fail(err, errlen, url, "the database must be a number (/DB)");
    return 0;
}

int skick_redis_url_parse(const char *url, skick_redis_url_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!url)
        return s_fail(err, errlen, "", "no URL");
    if (strncmp(url, "unix://", 7) == 0)
        return s_parse_unix(url, url + 7, out, err, errlen);
    if (strncmp(url, "redis://", 8) == 0)
        return s_parse_tcp(url, url + 8, out, err, errlen);
    if (strncmp(url, "rediss://", 9) == 0)
        return s_fail(err, errlen, url, "TLS (rediss://) is not supported by hiredis 0.14");
    return s_fail(err, errlen, url, "unknown scheme");
}

void skick_redis_url_format(const skick_redis_url_t *u, char *buf, size_t len)
{
    if (u->unix_socket) {
        if (u->db)
            snprintf(buf, len, "unix://%s?db=%d", u->path, u->db);
        else
            snprintf(buf, len, "unix://%s", u->path);
        return;
    }
    bool v6 = strchr(u->host, ':') != NULL;
    snprintf(buf, len, "redis://%s%s%s%s%s:%d/%d", u->user, u->has_password ? ":***@" : "",
             v6 ? "[" : "", u->host, v6 ? "]" : "", u->port, u->db);
}

/*  The file's text, without the white space around it. */
static int s_read_text(int fd, const char *path, char *buf, size_t len, char *err, size_t errlen)
{
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd, buf + n, len - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            return -1;
        }
        if (got == 0)
            break;
        n += (size_t) got;
        if (n == len) {
            snprintf(err, errlen, "%s is too long for a Redis URL (%zu bytes at most)", path,
                     len - 1);
            return -1;
        }
    }
    while (n && isspace((unsigned char) buf[n - 1]))
        n--;
    size_t start = 0;
    while (start < n && isspace((unsigned char) buf[start]))
        start++;
    memmove(buf, buf + start, n - start);
    n -= start;
    buf[n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "%s is empty: it should hold the Redis URL", path);
        return -1;
    }
    if (memchr(buf, '\0', n) || strpbrk(buf, "\r\n")) {
        snprintf(err, errlen, "%s holds more than one line: it should hold the Redis URL only",
                 path);
        return -1;
    }
    return 0;
}

int skick_redis_url_read(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0)
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(err, errlen, "%s is not a regular file", path);
    else if (st.st_mode & 077)
        snprintf(err, errlen, "permissions %04o for %s are too open: the file holds the Redis "
                 "password and must be readable by its owner only; chmod 600 %s",
                 (unsigned) (st.st_mode & 07777), path, path);
    else
        rc = s_read_text(fd, path, buf, len, err, errlen);
    close(fd);
    return rc;
}

int skick_redis_url_choose(const char *arg, const char *file, skick_redis_url_t *out, char *buf,
                           size_t len, char *err, size_t errlen)
{
    char why[900];
    const char *from = "--hash";
    if (arg && file) {
        snprintf(err, errlen, "give --hash or --hash-file, not both");
        return -1;
    }
    if (arg) {
        snprintf(buf, len, "%s", arg);
    } else if (file) {
        from = "--hash-file";
        if (skick_redis_url_read(file, buf, len, why, sizeof why) != 0) {
            snprintf(err, errlen, "--hash-file: %s", why);
            return -1;
        }
    } else {
        const char *env = getenv(SKICK_REDIS_URL_ENV);
        if (!env || !*env)
            return 0;
        from = SKICK_REDIS_URL_ENV;
        snprintf(buf, len, "%s", env);
    }
    if (skick_redis_url_parse(buf, out, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", from, why);
        return -1;
    }
    return 1;
}

/* ------------------------------------------------------------------------- */
/* Keys                                                                       */

static bool s_name_ok(const char *s)
{
    return s && *s && !strpbrk(s, "{}:");
}

int skick_redis_key(char *buf, size_t len, const char *table, const char *key)
{
    if (!s_name_ok(table) || !s_name_ok(key))
        return -1;
    int n = snprintf(buf, len, "%s:%s", table, key);
    return n < 0 || (size_t) n >= len ? -1 : n;
}

int skick_redis_match(char *buf, size_t len, const char *table)
{
    if (!s_name_ok(table))
        return -1;
    size_t o = 0;
    for (const char *s = table; *s; s++) {
        if (strchr("*?[]\\", *s)) {
            if (o + 1 >= len)
                return -1;
            buf[o++] = '\\';
        }
        if (o + 1 >= len)
            return -1;
        buf[o++] = *s;
    }
    if (o + 3 > len)
        return -1;
    buf[o++] = ':';
    buf[o++] = '*';
    buf[o] = '\0';
    return (int) o;
}

/* ------------------------------------------------------------------------- */
/* Values                                                                     */

static locale_t s_c_locale;
static pthread_once_t s_c_locale_once = PTHREAD_ONCE_INIT;

static void s_make_c_locale(void)
{
    s_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
}

/*  The shortest %.Ng text of d that strtod reads back as d, in the "C"
    locale, with ".0" when it would read back as an integer. */
static void s_double_text(double d, char *buf, size_t len)
{
    pthread_once(&s_c_locale_once, s_make_c_locale);
    locale_t saved = s_c_locale ? uselocale(s_c_locale) : (locale_t) 0;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (saved)
        uselocale(saved);
    if (!strpbrk(buf, ".eEn"))
        strncat(buf, ".0", len - strlen(buf) - 1);
}

static char *s_copy(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

/*  True when the integer text s[0..n) (JSON, maybe with spaces) is past
    what an int64 (or, positive, a uint64) holds: the reader clamps it. */
static bool s_int_overflows(const char *s, size_t n)
{
    char buf[SKICK_JSON_NUMBER_MAX + 1];
    while (n && strchr(" \t\r\n", s[0])) {
        s++;
        n--;
    }
    while (n && strchr(" \t\r\n", s[n - 1]))
        n--;
    if (n >= sizeof buf)
        return true;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    if (buf[0] == '-')
        (void) strtoll(buf, NULL, 10);
    else
        (void) strtoull(buf, NULL, 10);
    return errno == ERANGE;
}

/*  The value the Redis string s[0..n) stands for when it is JSON text:
    not null (the text "null" is a string) and not an integer the reader
    would clamp. NULL otherwise (the string itself). Caller owns. */
static json_object *s_json_value(const char *s, size_t n)
{
    json_object *v = NULL;
    if (skick_json_parse_strict(s, n, &v) != 0 || !v)
        return NULL;
    if (json_object_is_type(v, json_type_int) && s_int_overflows(s, n)) {
        json_object_put(v);
        return NULL;
    }
    return v;
}

/*  Would the Redis string s[0..n) read back as something other than the
    string itself? */
static bool s_reads_as_other(const char *s, size_t n)
{
    json_object *v = s_json_value(s, n);
    json_object_put(v);
    return v != NULL;
}

int skick_redis_encode(json_object *v, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    const char *text;
    size_t n;
    char num[40];
    switch (json_object_get_type(v)) {
    case json_type_null:
        return -1;
    case json_type_string:
        text = json_object_get_string(v);
        n = (size_t) json_object_get_string_len(v);
        if (!skick_utf8_valid((const unsigned char *) text, n))
            return -1;
        if (s_reads_as_other(text, n))
            text = json_object_to_json_string_length(
                v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
        break;
    case json_type_double: {
        double d = json_object_get_double(v);
        if (!isfinite(d))
            return -1;
        s_double_text(d, num, sizeof num);
        text = num;
        n = strlen(num);
        break;
    }
    default: /* int (its decimal text), boolean, object, array */
        text = json_object_to_json_string_length(
            v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
        if (!text || !skick_json_valid(text, n))
            return -1; /* a nested string that is not UTF-8, or a nested NaN */
        break;
    }
    *out = s_copy(text, n);
    if (!*out)
        return -1;
    *outlen = n;
    return 0;
}

int skick_redis_decode(const char *data, size_t len, json_object **out)
{
    *out = NULL;
    if (len > (size_t) 0x7fffffff || !skick_utf8_valid((const unsigned char *) data, len))
        return -1;
    *out = s_json_value(data, len);
    if (*out)
        return 0;
    *out = json_object_new_string_len(data, (int) len);
    return *out ? 0 : -1;
}
