/* What the commands of vmha share. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "vmha/common.h"

/* Exit codes of vmha (documented in vmha(8)). */
enum {
    VMHA_EXIT_OK = 0,
    VMHA_EXIT_FAILED = 1, /* the command could not do or find out what was asked */
    VMHA_EXIT_USAGE = 2,
};

struct cli_opts {
    bool json;
    uint64_t timeout_ms;
};

int cmd_paths(int argc, char **argv, const struct cli_opts *o);

/* Prints s as a JSON string, quotes included. */
void json_str(FILE *out, const char *s);
