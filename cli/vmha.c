/* vmha, the operator's tool: one entry point, one function per command. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_private.h"

static void usage(FILE *out)
{
    fputs("usage: vmha [--json] [--timeout SECONDS] COMMAND [ARGS]\n\ncommands:\n", out);
    for (const struct cli_command *c = cli_commands; c->name; c++)
        fprintf(out, "  %-8s %-10s %s\n", c->name, c->args, c->help);
    fputs("\noptions:\n"
          "  --json             machine-readable output\n"
          "  --timeout SECONDS  give up on the cluster after this long (default 10)\n"
          "  -h, --help         this text; 'vmha COMMAND --help' for one command\n"
          "  --version\n\nSee vmha(8).\n",
          out);
}

int main(int argc, char **argv)
{
    struct cli_opts o = {.timeout_ms = 10000};
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    /* "+": options after the command belong to the command. */
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            o.json = true;
            break;
        case 't':
            if (vmha_parse_duration_ms(optarg, 1000, &o.timeout_ms) < 0 || !o.timeout_ms) {
                fprintf(stderr, "vmha: --timeout %s is not a duration\n", optarg);
                return VMHA_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return VMHA_EXIT_OK;
        case 'V':
            printf("vmha %s\n", VMHA_VERSION);
            return VMHA_EXIT_OK;
        default:
            usage(stderr);
            return VMHA_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return VMHA_EXIT_USAGE;
    }
    const struct cli_command *cmd = cli_command_find(argv[optind]);
    if (cmd)
        return cmd->run(argc - optind, argv + optind, &o);
    fprintf(stderr, "vmha: unknown command '%s'\n", argv[optind]);
    usage(stderr);
    return VMHA_EXIT_USAGE;
}
