/*  skick_hash_names - which table and key names a hash store accepts  */
#include "skick_hash_names.h"

bool skick_hash_table_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > 256)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

bool skick_hash_key_valid(const char *key, size_t len)
{
    if (!key || len == 0 || len > 1024)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) key[i] < 0x20 || key[i] == 0x7f)
            return false;
    return true;
}
