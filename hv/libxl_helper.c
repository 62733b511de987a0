/* vmha-libxl-helper: the remote half of the libxl backend's live migration.
 *   vmha-libxl-helper migrate-receive [--timeout-ms N]
 *       run by the source over ssh: takes a live migration on stdin/stdout (see
 *       hv_libxl_migrate.c); exit 0 when the guest runs here.
 * (Xen's Remus runs in vmha-replicator, remus/xen.c.) */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hv_libxl_private.h"

static int usage(const char *me)
{
    fprintf(stderr, "usage: %s migrate-receive [--timeout-ms N]\n", me);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "migrate-receive") != 0)
        return usage(argv[0]);
    uint64_t timeout_ms = 600000;
    static const struct option opts[] = {{"timeout-ms", required_argument, NULL, 't'}, {0}};
    optind = 2;
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (o != 't')
            return usage(argv[0]);
        if (vmha_parse_uint(optarg, UINT64_MAX / 2, &timeout_ms) < 0 || timeout_ms == 0) {
            fprintf(stderr, "%s: %s is not a positive number\n", argv[0], optarg);
            return 2;
        }
    }
    if (optind != argc)
        return usage(argv[0]);
    struct vmha_err e = {0};
    struct vmha_deadline dl = vmha_deadline_in(timeout_ms);
    if (hv_libxl_receive(STDIN_FILENO, STDOUT_FILENO, &dl, &e) < 0) {
        fprintf(stderr, "vmha-libxl-helper: %s\n", vmha_err_msg(&e));
        return 1;
    }
    return 0;
}
