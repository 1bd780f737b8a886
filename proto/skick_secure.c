/*  skick_secure - secret key file permissions and endpoint locality

    See skick_secure.h. The key file rule is ssh's: a secret that others
    can read is no longer a secret, so it is refused rather than used with
    a warning. The locality rule is deliberately literal: only addresses
    that cannot be reached from another host count as local, so that a
    broker without CURVE never listens where others can connect.
*/
#include "skick_secure.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int skick_secret_file_check(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read the secret key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the secret key file %s is not a regular file", path);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "permissions %04o for the secret key file %s are too open: it must not be "
                 "readable by others; chmod 600 %s",
                 (unsigned) (st.st_mode & 07777), path, path);
        return -1;
    }
    return 0;
}

bool skick_endpoint_is_local(const char *ep)
{
    if (!ep)
        return false;
    if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0)
        return true;
    if (strncmp(ep, "tcp://", 6) != 0)
        return false;
    const char *host = ep + 6;
    const char *colon = strrchr(host, ':');
    if (!colon)
        return false;
    size_t len = (size_t) (colon - host);
    /* tcp://[::1]:P, and libzmq's own spelling without brackets for IPv6 */
    if ((len == 5 && strncmp(host, "[::1]", 5) == 0) || (len == 3 && strncmp(host, "::1", 3) == 0))
        return true;
    if (len == 9 && strncmp(host, "localhost", 9) == 0)
        return true;
    /* 127.0.0.0/8: four dotted numbers, the first 127 */
    if (len < 9 || strncmp(host, "127.", 4) != 0)
        return false;
    int dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (host[i] == '.')
            dots++;
        else if (host[i] < '0' || host[i] > '9')
            return false;
    }
    return dots == 3;
}
