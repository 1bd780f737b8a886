/*  node_sslshim - make Debian's civetweb 1.15 load OpenSSL 3

    civetweb dlopens "libssl.so" and looks up SSL_get_peer_certificate, which
    OpenSSL 3 provides only as a macro over SSL_get1_peer_certificate. This
    library has the SONAME "libssl.so" and defines that one function; loaded
    by path with RTLD_GLOBAL before civetweb initialises TLS (node_ws.c), it
    satisfies civetweb's dlopen, and every other symbol resolves in the real
    libssl.so.3 it depends on. Nothing else uses it.
*/
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

X509 *SSL_get_peer_certificate(const SSL *s);

X509 *SSL_get_peer_certificate(const SSL *s)
{
    return SSL_get1_peer_certificate(s);
}
