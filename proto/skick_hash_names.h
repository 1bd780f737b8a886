/*  skick_hash_names - which table and key names a hash store accepts

    One rule for every backend and both sides of the wire (node_hash.c
    checks before any backend sees a name; the broker checks what arrives
    in a CONTROL "hash" op): a table is 1-256 bytes of [A-Za-z0-9_.-], a key
    1-1024 bytes without control characters (PROTOCOL.md "The hash
    operation"), so each backend can map them into its own namespace.
    Pure functions; names are borrowed.
*/
#ifndef SKICK_HASH_NAMES_H_INCLUDED
#define SKICK_HASH_NAMES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/*  Whether name[0..len) is a valid table name. */
bool skick_hash_table_valid(const char *name, size_t len);

/*  Whether key[0..len) is a valid key. */
bool skick_hash_key_valid(const char *key, size_t len);

#endif
