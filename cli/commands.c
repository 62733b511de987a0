/* vmha's commands: the table main dispatches on, with each command's usage text, so that
 * `vmha --help`, `vmha COMMAND --help` and a usage error all say the same thing. */
#include <stdio.h>
#include <string.h>

#include "cli_private.h"

const struct cli_command cli_commands[] = {
    {"status", "[GUEST...]", "where every guest runs, its role, NVRAM and install state",
     cmd_status,
     "usage: vmha [--json] status [--watch[=SECONDS]] [GUEST...]\n\n"
     "Every guest under ocf:vmha:guest: its state and host as the cluster\n"
     "computes them, its role (primary/backup for replicated guests), replication\n"
     "lag, newest NVRAM generation, install state and migration floor; then the\n"
     "hosts with the level they publish. --watch redraws every 2 s (or SECONDS)\n"
     "until interrupted.\n"},
    {"paths", "[GUEST...]", "where guests may run under the migration policy, and why", cmd_paths,
     "usage: vmha [--json] paths [GUEST...]\n\n"
     "For every ocf:vmha:guest resource (or the GUESTs named, by guest or resource\n"
     "name): its migration floor, and on which hosts the policy lets it run, with\n"
     "the reason for every refusal. Hosts are listed with the level they publish.\n"},
    {"migrate", "GUEST HOST", "move a guest after checking the policy, with progress", cmd_migrate,
     "usage: vmha migrate GUEST HOST [--keep-constraint] [--wait=SECONDS]\n"
     "       vmha migrate --no-cluster GUEST HOST [--uri=URI] [--target-uri=URI]\n\n"
     "Checks the migration policy and explains a refusal; asks Pacemaker to move\n"
     "the guest (a live migration when the resource allows it); shows the\n"
     "hypervisor's progress; waits (300 s by default) until the guest runs on HOST;\n"
     "then clears the move constraint, unless --keep-constraint.\n\n"
     "With --no-cluster (the cluster is down): live-migrates the guest running at\n"
     "--uri (qemu:///system) to --target-uri (qemu+ssh://HOST/system) directly,\n"
     "with --migrateuri for the data; refused if Pacemaker runs and manages it.\n"},
    {"failover", "GUEST", "move a guest to the best other host (asks first)", cmd_failover,
     "usage: vmha failover GUEST [--planned] [--yes] [--wait=SECONDS]\n"
     "                     [--keep-constraint]\n"
     "       vmha failover --no-cluster GUEST [--uri=URI] [--yes]\n\n"
     "For a replicated guest: --planned switches over to the backup (a final\n"
     "checkpoint, nothing lost); without it, when the primary's host is down but\n"
     "not fenced, confirms it down so that the backup is promoted from its last\n"
     "checkpoint (refused while that host is online). For a plain guest: moves\n"
     "it to the best other host the policy allows (as vmha migrate).\n"
     "With --no-cluster (the cluster is down), on a replicated guest's backup host:\n"
     "resumes the guest from the checkpoint this host holds (refused while\n"
     "Pacemaker runs and manages the guest).\n"
     "Says what it will do and asks first, unless --yes.\n"},
    {"check", "GUEST", "on every host, whether the guest could start there", cmd_check,
     "usage: vmha [--json] check GUEST\n\n"
     "On every host, whether the guest could start there: its config readable,\n"
     "the migration policy allows the host, its kernel and initrd match the\n"
     "recorded digests, its NVRAM can be restored. Exit status 0 when at least\n"
     "one host could start it, 1 otherwise.\n"},
    {"nvram", "SUB GUEST", "UEFI variables: show, history, export, import", cmd_nvram,
     "usage: vmha [--json] nvram show GUEST|FILE [--generation N]\n"
     "       vmha [--json] nvram history GUEST\n"
     "       vmha nvram export GUEST FILE [--generation N]\n"
     "       vmha nvram import GUEST FILE\n\n"
     "show     the boot order, boot entries and variables of the guest's newest\n"
     "         intact NVRAM generation (or of generation N, or of a VARS file)\n"
     "history  the generations in the state store: when, where and why each was\n"
     "         captured, whether it is intact, and the one the guest booted with\n"
     "export   writes a generation to FILE (mode 0600: it holds boot secrets)\n"
     "import   validates FILE and stores it as the newest generation; the guest\n"
     "         boots with it at its next start (stop the guest first, or its next\n"
     "         capture supersedes the import)\n"},
    {"boot", "GUEST", "install state and boot artifacts, checked per host", cmd_boot,
     "usage: vmha [--json] boot [--record] GUEST\n\n"
     "The guest's install state (not-started, running, done: where and after how\n"
     "many install boots) and its recorded boot artifacts (kernel, initrd), with\n"
     "whether each host's copies match them.\n\n"
     "--record  measures the guest's kernel, initrd and command line on this host\n"
     "          and records them as the ones every host must boot, signed with\n"
     "          artifact_key when it is set (with a key, a start never records by\n"
     "          itself). Check the files first: what is there now is what is signed.\n"},
    {NULL, NULL, NULL, NULL, NULL},
};

const struct cli_command *cli_command_find(const char *name)
{
    for (const struct cli_command *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int cli_usage(const char *name, FILE *out, bool full)
{
    const struct cli_command *c = cli_command_find(name);
    if (!c)
        return VMHA_EXIT_USAGE;
    const char *end = strstr(c->usage, "\n\n");
    if (full || !end)
        fputs(c->usage, out);
    else
        fprintf(out, "%.*s\n", (int)(end - c->usage), c->usage);
    return out == stdout ? VMHA_EXIT_OK : VMHA_EXIT_USAGE;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}
