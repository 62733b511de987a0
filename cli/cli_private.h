/* What the commands of vmha share. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "vmha/cluster.h"
#include "vmha/common.h"

#define CLI_GUEST_AGENT "ocf:vmha:guest"

struct cli_opts;

/* A guest the cluster manages, with what its parameters and config say. */
struct cli_guest {
    const struct cluster_rsc *rsc;
    char name[256];
    const char *state_dir; /* NULL when not set */
    bool policy;           /* the migration policy applies (state_dir, migration_policy) */
    char config_machine[64], family[16];
    char problem[600]; /* why its config could not be read, "" when it could */
};

void cli_guest_load(const struct cluster_rsc *rsc, struct cli_guest *g);
struct hv_guest_config;
/* The guest's config as its backend parses it, read on this host. */
int cli_guest_config(const struct cli_guest *g, struct hv_guest_config *ret, struct vmha_err *err);
/* By guest name or resource id; -ENOENT when the cluster has no such guest. */
int cli_guest_find(const struct cluster_view *v, const char *arg, struct cli_guest *g);
/* Reads the cluster (giving up after o->timeout_ms), saying on stderr, as "vmha CMD: ...",
 * why it cannot. */
int cli_read_cluster(const char *cmd, const struct cli_opts *o, struct cluster_view *v);
/* cli_read_cluster, then the guest named arg, or a sentence on stderr. */
int cli_open_guest(const char *cmd, const char *arg, const struct cli_opts *o,
                   struct cluster_view *v, struct cli_guest *g);

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
int cmd_nvram(int argc, char **argv, const struct cli_opts *o);
int cmd_boot(int argc, char **argv, const struct cli_opts *o);
int cmd_status(int argc, char **argv, const struct cli_opts *o);
int cmd_check(int argc, char **argv, const struct cli_opts *o);
int cmd_migrate(int argc, char **argv, const struct cli_opts *o);
int cmd_failover(int argc, char **argv, const struct cli_opts *o);

/* The commands (commands.c): what main dispatches on, with their usage text. */
struct cli_command {
    const char *name, *args, *help;
    int (*run)(int argc, char **argv, const struct cli_opts *o);
    const char *usage; /* the synopsis, a blank line, the description */
};
extern const struct cli_command cli_commands[]; /* ends with a NULL name */
const struct cli_command *cli_command_find(const char *name);
/* The command's usage: all of it (full) or its synopsis; returns VMHA_EXIT_OK when out is
 * stdout (asked for), VMHA_EXIT_USAGE otherwise (a usage error). */
int cli_usage(const char *name, FILE *out, bool full);
/* Whether the command's arguments ask for --help (-h). */
bool cli_wants_help(int argc, char **argv);

/* JSON output (out.c): open an object or list (key NULL inside a list or at the top), add
 * members, close it with '}' or ']'; the document ends with a newline. */
struct cli_json {
    FILE *f;
    int depth;
    bool first[16];
};
void json_open(struct cli_json *j, const char *key);
void json_open_list(struct cli_json *j, const char *key);
void json_close(struct cli_json *j, char c);
void json_string(struct cli_json *j, const char *key, const char *v); /* NULL: null */
void json_uint(struct cli_json *j, const char *key, unsigned long long v);
void json_bool(struct cli_json *j, const char *key, bool v);
void json_null(struct cli_json *j, const char *key);
/* Prints s as a JSON string, quotes included. */
void json_str(FILE *out, const char *s);
