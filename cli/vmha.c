/* vmha, the operator's tool: one entry point, one function per command. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_private.h"

static const struct {
    const char *name, *args, *help;
    int (*run)(int argc, char **argv, const struct cli_opts *o);
} commands[] = {
    {"status", "[GUEST...]", "where every guest runs, its role, NVRAM and install state",
     cmd_status},
    {"paths", "[GUEST...]", "where guests may run under the migration policy, and why", cmd_paths},
    {"migrate", "GUEST HOST", "move a guest after checking the policy, with progress", cmd_migrate},
    {"failover", "GUEST", "move a guest to the best other host (asks first)", cmd_failover},
    {"check", "GUEST", "on every host, whether the guest could start there", cmd_check},
    {"nvram", "SUB GUEST", "UEFI variables: show, history, export, import", cmd_nvram},
    {"boot", "GUEST", "install state and boot artifacts, checked per host", cmd_boot},
};

static void usage(FILE *out)
{
    fputs("usage: vmha [--json] [--timeout SECONDS] COMMAND [ARGS]\n\ncommands:\n", out);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-8s %-10s %s\n", commands[i].name, commands[i].args, commands[i].help);
    fputs("\noptions:\n"
          "  --json             machine-readable output\n"
          "  --timeout SECONDS  give up on the cluster after this long (default 10)\n"
          "  -h, --help         this text; 'vmha COMMAND --help' for one command\n"
          "  --version\n\nSee vmha(8).\n",
          out);
}

void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
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
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[optind], commands[i].name) == 0)
            return commands[i].run(argc - optind, argv + optind, &o);
    fprintf(stderr, "vmha: unknown command '%s'\n", argv[optind]);
    usage(stderr);
    return VMHA_EXIT_USAGE;
}
