/* What the libxl backend's files share with each other and with the unit tests. */
#pragma once

#include <stdbool.h>

#include "hv_backend.h"
#include "hv_libxl_compat.h"

struct hv_xl_logger;

/* The names a guest's stand-ins carry on a host: arriving by migration or replication, kept
 * as a Remus replica, left behind by a migration. They share the guest's UUID. */
#define HV_XL_INCOMING "--incoming"
#define HV_XL_REPLICA "--replica"
#define HV_XL_AWAY "--migratedaway"

struct hv_conn {
    libxl_ctx *ctx;
    struct hv_xl_logger *log; /* keeps libxenlight's last error for our messages */
    char defdir[256];         /* where define() keeps configurations: defdir/<name>.cfg */
};

/* The last error libxenlight logged on c, "" if none. */
const char *hv_libxl_last_error(struct hv_conn *c);
/* Records what failed, with libxenlight's own last words; returns code. */
int hv_libxl_err(struct hv_conn *c, struct vmha_err *err, int code, const char *what);

/* Pure: an xl.cfg text (the documented subset) as the cluster sees it. */
int hv_libxl_config_parse(const char *text, struct hv_guest_config *ret, struct vmha_err *err);
/* Pure: an xl.cfg text as libxenlight's domain configuration, for libxl_domain_create_new. */
int hv_libxl_domain_config(const char *text, libxl_domain_config *ret, struct vmha_err *err);
/* A running domain's configuration as the cluster sees it. */
int hv_libxl_config_from_domain(const libxl_domain_config *d, struct hv_guest_config *ret);

/* Maps a domain's info to the cluster's view; powered_off when it ended by powering off. */
enum hv_state hv_libxl_state(const libxl_dominfo *d, bool *powered_off);
/* Xen's version as the migration policy counts it: major*1000000 + minor*1000 + micro, where
 * micro is the leading number of extra (".5", ".5-pre"), 0 without one. */
uint64_t hv_libxl_version(int major, int minor, const char *extra);

/* The domain named name; -ENOENT when this host runs no such domain. */
int hv_libxl_domid(struct hv_conn *c, const char *name, uint32_t *ret, struct vmha_err *err);

/* Live migration (hv_libxl_migrate.c). */
int hv_libxl_migrate(struct hv_conn *c, const char *name, const struct hv_migrate_params *p,
                     struct vmha_err *err);
/* The migration protocol's pieces, shared with Remus (hv_libxl_remus.c). */
int hv_libxl_read_line(int fd, char *buf, size_t size, const struct vmha_deadline *dl);
int hv_libxl_send_config(struct hv_conn *c, uint32_t domid, int fd, uint64_t *memkb,
                         struct vmha_err *err);
int hv_libxl_receive_config(struct hv_conn *c, int in, libxl_domain_config *d,
                            const struct vmha_deadline *dl, struct vmha_err *err);
/* Refuses a guest that runs here already; names the newcomer NAME--incoming. */
int hv_libxl_prepare_incoming(struct hv_conn *c, libxl_domain_config *d, struct vmha_err *err);
/* Pure: splits "ssh://[user@]host[:port]" into ssh's argv words; refuses a user or host
 * that begins with '-'. */
int hv_libxl_ssh_target(const char *uri, char *dest, size_t dest_size, char *port, size_t port_size,
                        struct vmha_err *err);
/* Pure: ssh's argv that runs helper's migration receiver on uri's host ("--" before the
 * destination). argv points into ret. */
struct hv_libxl_ssh_cmd {
    char dest[256], port[8], timeout[24];
    const char *argv[20];
};
int hv_libxl_ssh_command(const char *uri, const char *helper, unsigned long long timeout_ms,
                         struct hv_libxl_ssh_cmd *ret, struct vmha_err *err);

/* The backup's replica (hv_libxl_remus.c): run it as NAME; remove it. */
/* Xen's Remus (hv.h's hv_remus_*, hv_replica_*). */
int hv_libxl_remus_send(struct hv_conn *c, const char *name, int fd, uint64_t interval_ms,
                        const struct vmha_deadline *dl, struct vmha_err *err);
int hv_libxl_remus_receive(struct hv_conn *c, int fd, const char *config_text,
                           const struct vmha_deadline *dl, char *ret_name, size_t size,
                           struct vmha_err *err);
int hv_libxl_remus_suspended(struct hv_conn *c, const char *name, uint32_t *domid);
int hv_libxl_remus_promote(struct hv_conn *c, const char *name, struct vmha_err *err);
int hv_libxl_remus_discard(struct hv_conn *c, const char *name, struct vmha_err *err);

/* The target side of a live migration (vmha-libxl-helper): speaks the migration protocol on
 * in/out (ssh's stdin and stdout) and leaves the guest running here, or nothing at all. */
int hv_libxl_receive(int in, int out, const struct vmha_deadline *dl, struct vmha_err *err);
