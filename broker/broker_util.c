/*  broker_util - ids as text, random ids, rate-limited logging, JSON helpers

    Small helpers shared by the broker's modules. Nothing here keeps state of
    its own except what the caller passes in (a broker_ratelimit_t).
*/
#include "broker_util.h"
#include "skick/log.h"

#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void broker_id_hex(uint64_t id, char out[17])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[id & 0xf];
        id >>= 4;
    }
    out[16] = '\0';
}

int broker_id_parse(const char *text, uint64_t *id)
{
    if (!text || strlen(text) != 16)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = text[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return -1;
        v = (v << 4) | (uint64_t) d;
    }
    *id = v;
    return 0;
}

void *broker_alloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker", "out of memory (%zu bytes): exiting", n);
        abort();
    }
    return p;
}

uint64_t broker_random64(void)
{
    uint64_t v = 0;
    while (v == 0) {
        ssize_t n = getrandom(&v, sizeof v, 0);
        if (n != (ssize_t) sizeof v) {
            if (n < 0 && errno == EINTR)
                continue;
            /* getrandom cannot fail for 8 bytes once the pool is ready; fall
               back to the clock rather than give up */
            v = (uint64_t) zclock_time() * 6364136223846793005ULL + (uint64_t) getpid();
        }
    }
    return v;
}

void broker_log_limited(broker_ratelimit_t *rl, int level, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    skick_log_vlimited(rl, level, tag, fmt, ap);
    va_end(ap);
}

const char *broker_json_str(json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_is_type(obj, json_type_object) || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

json_object *broker_json_addr(uint64_t shard, uint64_t actor)
{
    char s[17], a[17], text[34];
    broker_id_hex(shard, s);
    broker_id_hex(actor, a);
    snprintf(text, sizeof text, "%s:%s", s, a);
    return json_object_new_string(text);
}
