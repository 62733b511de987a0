/* The digests the state store's records carry (see include/vmha/state.h), with GnuTLS, the
 * project's one crypto library. */
#include <stdio.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "vmha/state.h"

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

void state_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, d) < 0) {
        /* Only a library without SHA-256: a digest no record can match. */
        memset(out, 'x', 64);
        out[64] = '\0';
        return;
    }
    hex(d, sizeof(d), out);
}

void state_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                           char out[65])
{
    unsigned char d[32];
    if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, key_len, data, len, d) < 0) {
        memset(out, 'x', 64);
        out[64] = '\0';
        return;
    }
    hex(d, sizeof(d), out);
}
