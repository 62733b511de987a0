/* What the files of the OCF agent share: parameters, exit codes, the action table. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmha/common.h"
#include "vmha/hv.h"

/* OCF exit codes (OCF resource agent API 1.1), kept apart from -errno as Pacemaker keeps
 * pcmk_rc apart from OCF codes: what answers Pacemaker (the actions and the lifecycle steps
 * they are made of) returns an enum ocf_rc; what works below returns 0 or -errno with a
 * struct vmha_err; ocf_rc_for_config_error and ocf_rc_for_state map one to the other. */
enum ocf_rc {
    OCF_SUCCESS = 0,
    OCF_ERR_GENERIC = 1,
    OCF_ERR_ARGS = 2,
    OCF_ERR_UNIMPLEMENTED = 3,
    OCF_ERR_PERM = 4,
    OCF_ERR_INSTALLED = 5,
    OCF_ERR_CONFIGURED = 6,
    OCF_NOT_RUNNING = 7,
    OCF_RUNNING_PROMOTED = 8,
    OCF_FAILED_PROMOTED = 9,
    OCF_DEGRADED_PROMOTED = 191,
};

enum ocf_ptype { OCF_PT_STRING, OCF_PT_BOOLEAN, OCF_PT_INTEGER, OCF_PT_SECOND, OCF_PT_SELECT };

struct ocf_param_desc {
    const char *name;
    enum ocf_ptype type;
    const char *def;
    bool required, unique, reloadable;
    const char *shortdesc;
    const char *longdesc;
    const char *const *options; /* for OCF_PT_SELECT, NULL-terminated */
    /* Where its value goes in struct ocf_params: a char * (STRING, SELECT), a bool (BOOLEAN)
     * or a uint64_t (INTEGER; SECOND in ms). */
    size_t offset;
    /* A check beyond the type, or NULL. */
    int (*check)(const struct ocf_param_desc *d, const char *value, struct vmha_err *err);
};

extern const struct ocf_param_desc ocf_param_table[];
extern const size_t ocf_param_count;

/* Everything the agent was told, parsed once from the environment. */
struct ocf_params {
    char *config;
    char *name;
    char *hypervisor;
    char *migration_transport;
    char *migrate_target;         /* libvirt URI template of the target, %n = node name */
    char *migrateuri;             /* data-plane URI template, "" = hypervisor default */
    uint64_t migration_speed;     /* MiB/s, 0 = unlimited */
    uint64_t migration_downtime;  /* ms, 0 = hypervisor default */
    uint64_t shutdown_timeout_ms; /* 0 = as long as the stop timeout allows */
    char *shutdown_mode;
    bool force_stop;
    char *state_dir;       /* "" = no state store, no migration policy */
    bool migration_policy; /* with state_dir */
    uint64_t migration_window;
    uint64_t nvram_keep;
    char *install_config; /* one-off XML file, or the shorthand below ("" = none) */
    char *install_kernel, *install_initrd, *install_cmdline, *install_media;
    char *kernel_sha256, *initrd_sha256; /* pinned artifact digests, "" = recorded */
    char *artifact_key;                  /* file with the cluster key for the digests' HMAC */
    char *rundir;                        /* VMHA_RUNDIR: per-node scratch state */
    bool replicate; /* fault-tolerant: a promotable clone with checkpoint replication */
    uint64_t checkpoint_interval_ms, checkpoint_timeout_ms;
    char *replication_address; /* template, %n = node */
    uint64_t replication_port;
    bool replication_tls;
    bool replication_insecure;
    char *replication_key; /* "" = REMUS_KEY_DEFAULT */
    /* From Pacemaker's meta attributes. */
    uint64_t timeout_ms; /* 0 when Pacemaker did not say */
    uint64_t interval_ms;
    char *migrate_target_node;
    char *migrate_source_node;
    char *on_node;  /* the node Pacemaker runs us on, NULL by hand */
    char *instance; /* OCF_RESOURCE_INSTANCE without a clone suffix, NULL by hand */
    char *notify_type, *notify_operation, *notify_promote_uname; /* notify only */
    bool run_by_cluster;
};

int ocf_params_parse(char *const *env, struct ocf_params *ret, struct vmha_err *err);
void ocf_params_clear(struct ocf_params *p);
/* The libvirt URI of the target node: migrate_target, or one derived from hypervisor and
 * migration_transport ("qemu:///system" + ssh -> "qemu+ssh://%n/system"), with %n expanded. */
int ocf_migration_dest_uri(const struct ocf_params *p, const char *node, char **ret,
                           struct vmha_err *err);
/* Expands %n (node) and %% in a template. */
int ocf_expand_template(const char *tmpl, const char *node, char **ret);

/* Maps a guest's state to the monitor's answer. */
enum ocf_rc ocf_rc_for_state(enum hv_state s);
/* Maps a failed configuration check to its OCF code: missing here 5, locally invalid 2,
 * wrong everywhere 6. */
enum ocf_rc ocf_rc_for_config_error(int code);

int ocf_metadata_print(FILE *out);

/* What the agent is doing right now, for the watchdog's exit reason. */
void ocf_step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Arms the watchdog: at fire_ms from now the process prints an exit reason and exits 1. */
void ocf_watchdog_arm(const char *action, uint64_t timeout_ms, uint64_t fire_ms);

struct ocf_action {
    const char *name;
    uint64_t default_timeout_ms;
    enum ocf_rc (*run)(const struct ocf_params *p, const struct vmha_deadline *dl,
                       struct vmha_err *why);
    bool needs_params;
};

/* The action of that name, as the plain guest's table has it (its timeout, whether it needs
 * parameters): NULL when there is none. */
const struct ocf_action *ocf_action_find(const char *name);
/* The action to run, chosen once the parameters are parsed: a replicated guest's from its
 * own table (ocf_remus.c), a plain guest's from ocf_actions.c's. */
const struct ocf_action *ocf_action_for(const struct ocf_action *a, const struct ocf_params *p);
extern const struct ocf_action ocf_plain_actions[];

/* The migration policy (ocf_paths.c); all no-ops without state_dir. check: 0 when the guest
 * may run on node, -EPERM with the policy's reason, another error when it cannot tell. */
int ocf_paths_check(const struct ocf_params *p, const struct hv_guest_config *cfg, const char *node,
                    const struct vmha_deadline *dl, struct vmha_err *why);
/* A probe: registers the guest in the store and publishes this node's verdict. */
void ocf_paths_probe(const struct ocf_params *p, const struct hv_guest_config *cfg,
                     const struct vmha_deadline *dl);
/* The guest runs here now: raise its floor, publish its verdicts on every node. */
void ocf_paths_landed(const struct ocf_params *p, struct hv *hv, const struct hv_guest_config *cfg,
                      const struct vmha_deadline *dl);

/* UEFI NVRAM (ocf_nvram.c); all no-ops without state_dir or NVRAM. restore runs between
 * define and start; a non-fatal problem (an older generation used) lands in warning. */
enum ocf_rc ocf_nvram_restore(const struct ocf_params *p, struct hv *hv, const char *name,
                              struct vmha_err *why, char *warning, size_t warning_size);
void ocf_nvram_capture(const struct ocf_params *p, struct hv *hv, const char *name,
                       const char *reason, const struct vmha_deadline *dl);
/* Captures at a monitor if the file changed since the last capture. */
void ocf_nvram_watch(const struct ocf_params *p, struct hv *hv, const char *name,
                     const struct vmha_deadline *dl);
/* On the target after a live migration, once QEMU wrote the flash back. */
void ocf_nvram_capture_arrived(const struct ocf_params *p, struct hv *hv, const char *name,
                               const struct vmha_deadline *dl);

/* Install boots and boot artifacts (ocf_install.c). */
bool ocf_install_configured(const struct ocf_params *p);
/* Checks the directly booted kernel/initrd/cmdline of cfg (recording them the first time
 * when record): OCF_ERR_INSTALLED on a mismatch here, so Pacemaker picks another host. */
enum ocf_rc ocf_boot_check(const struct ocf_params *p, const struct hv_guest_config *cfg,
                           bool record, struct vmha_err *why);
/* After define, before a normal start: runs the install boot instead if the install is not
 * done. *started tells whether it did. */
enum ocf_rc ocf_install_start(const struct ocf_params *p, struct hv *hv, const char *name,
                              const char *config_text, bool *started, struct vmha_err *why);
/* At a monitor that finds the guest off: if its installer powered it off here, record the
 * install as done and boot the persistent config. Returns true when it handled the guest
 * (then *rc is the monitor's answer). */
bool ocf_install_finished(const struct ocf_params *p, struct hv *hv, const char *name,
                          const char *config_text, const struct vmha_deadline *dl, int *rc,
                          struct vmha_err *why);
/* migrate_from: an install boot that moved here is watched from here. */
void ocf_install_arrived(const struct ocf_params *p, const char *name);

/* A guest as the actions see it (ocf_actions.c), shared with ocf_remus.c. */
struct guest {
    const struct hv_backend *backend;
    struct hv *hv;     /* NULL until connected */
    char *config_text; /* NULL when config could not be read */
    struct hv_guest_config cfg;
    const char *name;
};

/* The lifecycle both kinds of guest are made of (guest.c). */
void ocf_guest_clear(struct guest *g);
/* Sets why to msg and returns rc. */
enum ocf_rc ocf_fail(struct vmha_err *why, int rc, const char *msg);
/* state_dir, when set, is one the store trusts (OCF_ERR_CONFIGURED otherwise). */
enum ocf_rc ocf_check_state_dir(const struct ocf_params *p, struct vmha_err *why);
/* validate-all's checks for any guest (g is loaded by it). */
enum ocf_rc ocf_guest_validate(const struct ocf_params *p, struct guest *g, struct vmha_err *why);
/* Polls the guest's state until want says yes or dl passes (*s: the last state seen). */
enum ocf_rc ocf_guest_wait(struct guest *g, bool (*want)(enum hv_state),
                           const struct vmha_deadline *dl, enum hv_state *s, struct vmha_err *why);
bool ocf_is_running(enum hv_state s);
bool ocf_is_off(enum hv_state s);
/* Reads and checks config; with strict false an unreadable config is tolerated when the name
 * parameter identifies the guest. */
enum ocf_rc ocf_guest_load(const struct ocf_params *p, struct guest *g, bool strict,
                           struct vmha_err *why);
enum ocf_rc ocf_guest_connect(const struct ocf_params *p, struct guest *g,
                              const struct vmha_deadline *dl, struct vmha_err *why);
/* The guest's state here; ABSENT when this host does not know it. */
enum ocf_rc ocf_guest_state(struct guest *g, enum hv_state *ret, struct vmha_err *why);
/* load + connect + state. */
enum ocf_rc ocf_guest_open(const struct ocf_params *p, struct guest *g, bool strict,
                           const struct vmha_deadline *dl, enum hv_state *state,
                           struct vmha_err *why);
/* Defines (NVRAM, install) and starts the guest, or resumes it when paused; returns once it
 * runs. */
enum ocf_rc ocf_guest_start(const struct ocf_params *p, struct guest *g, enum hv_state s,
                            const struct vmha_deadline *dl, struct vmha_err *why);
/* Graceful shutdown, destroy when it does not come in time. */
enum ocf_rc ocf_guest_stop(const struct ocf_params *p, struct guest *g, enum hv_state s,
                           const struct vmha_deadline *dl, struct vmha_err *why);
/* Live-migrates the running guest to node target (the migration policy and NVRAM capture
 * included); on failure it keeps running here. */
enum ocf_rc ocf_guest_migrate(const struct ocf_params *p, struct guest *g, const char *target,
                              const struct vmha_deadline *dl, struct vmha_err *why);

/* Replicated guests (ocf_remus.c): the actions of the promotable clone. */
extern const struct ocf_action ocf_remus_actions[];

/* Runs the agent server on rundir/agent.sock until idle or replaced (see ocf_server.c). */
int ocf_serve(const char *rundir, struct vmha_err *err);
