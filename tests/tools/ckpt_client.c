/* A primary's side of one epoch, for tests/agent/replica.sh: connects to a backup's
 * replicator, authenticates as the primary would (the key file, or "-" for none), sends the
 * header line, and once the backup says GO the bytes of BODY (the body and the trailer, as
 * the test built them); prints each line the backup answers. With a key that is not the
 * cluster's it shows what a stranger gets. "x509:DIR" authenticates with the certificates
 * in DIR, laid out as /etc/pki, as replication_tls does.
 *   ckpt_client HOST:PORT GUEST KEYFILE|-|x509:DIR HEADER BODYFILE */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remus_private.h"

volatile sig_atomic_t remus_stop_requested, remus_demote_requested;

/* The backup's next line, without its newline (what came of it when the backup closed
 * before its end); "" when there is none. */
static const char *line(struct chan *ch, char *buf, size_t size, const struct vmha_deadline *dl)
{
    chan_read_line(ch, buf, size, dl);
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: ckpt_client HOST:PORT GUEST KEYFILE|-|x509:DIR HEADER BODYFILE\n");
        return 2;
    }
    struct remus_ctx x = {.guest = argv[2], .timeout_ms = 5000};
    struct vmha_err err = {0};
    x.auth = strcmp(argv[3], "-") == 0           ? REMUS_AUTH_NONE
             : strncmp(argv[3], "x509:", 5) == 0 ? REMUS_AUTH_X509
                                                 : REMUS_AUTH_KEY;
    if (x.auth == REMUS_AUTH_X509)
        x.pki = argv[3] + 5;
    if (x.auth == REMUS_AUTH_KEY && chan_load_key(&x, argv[3], &err) < 0) {
        printf("no key: %s\n", err.msg);
        return 1;
    }
    uint8_t *body = NULL;
    size_t len = 0;
    if (vmha_read_blob(argv[5], 1u << 30, &body, &len, &err) < 0) {
        printf("%s\n", err.msg);
        return 1;
    }
    struct vmha_deadline dl = vmha_deadline_in(10000);
    struct chan ch = {.fd = remus_connect(argv[1], &dl, &err)};
    char answer[600];
    if (ch.fd < 0 || chan_client(&ch, &x, argv[1], &dl, &err) < 0) {
        printf("refused: %s\n", err.msg);
        chan_close(&ch);
        free(body);
        return 0;
    }
    char hdr[300];
    int n = snprintf(hdr, sizeof(hdr), "%s\n", argv[4]);
    if (chan_write_all(&ch, hdr, (size_t)n, &dl) < 0 ||
        !line(&ch, answer, sizeof(answer), &dl)[0]) {
        printf("closed before GO\n");
        chan_close(&ch);
        free(body);
        return 0;
    }
    if (strcmp(answer, "GO") != 0) {
        printf("%s\n", answer);
        chan_close(&ch);
        free(body);
        return 0;
    }
    if (chan_write_all(&ch, body, len, &dl) < 0) {
        printf("closed while sending\n");
        chan_close(&ch);
        free(body);
        return 0;
    }
    chan_shutdown_wr(&ch);
    printf("%s\n", line(&ch, answer, sizeof(answer), &dl)[0] ? answer : "closed without an answer");
    chan_close(&ch);
    free(body);
    return 0;
}
