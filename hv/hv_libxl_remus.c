/* Xen's own checkpoint replication (libxenlight's Remus) on a socket vmha owns, with the two
 * ways `xl remus` fails silently taken away: the socket has keepalives (whoever opens it), so
 * a primary that vanishes ends the stream instead of leaving the backup waiting forever; and
 * the backup never fails over on its own. When the stream ends, the last complete checkpoint
 * becomes a paused domain NAME--replica; only a promotion (after fencing) runs it.
 *
 *   backup                                 primary
 *                                   <-     "config LEN" + the domain's libxl JSON
 *   "ready" (or "error WHY")        ->
 *                                   <->    libxenlight's Remus stream: a live migration, then
 *                                          a checkpoint every interval, acknowledged back */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv_libxl_private.h"
#include "vmha/cleanup.h"

static bool guest_has_nics(struct hv_conn *c, uint32_t domid)
{
    libxl_domain_config d;
    libxl_domain_config_init(&d);
    bool nics = hv_xl_retrieve_config(c->ctx, domid, &d) != 0 || d.num_nics > 0;
    libxl_domain_config_dispose(&d);
    return nics;
}

int hv_libxl_remus_send(struct hv_conn *c, const char *name, int fd, uint64_t interval_ms,
                        const struct vmha_deadline *dl, struct vmha_err *err)
{
    uint32_t domid;
    int r = hv_libxl_domid(c, name, &domid, err);
    if (r < 0)
        return r;
    uint64_t memkb;
    char line[600];
    if ((r = hv_libxl_send_config(c, domid, fd, &memkb, err)) < 0)
        return r;
    if ((r = hv_libxl_read_line(fd, line, sizeof(line), dl)) < 0 || strcmp(line, "ready") != 0)
        return vmha_err_set(err, -EIO, "the backup refused the replica: %s",
                            r < 0                             ? strerror(-r)
                            : strncmp(line, "error ", 6) == 0 ? line + 6
                                                              : line);
    libxl_domain_remus_info info;
    libxl_domain_remus_info_init(&info);
    info.interval = (int)interval_ms;
    /* Disk buffering needs DRBD: vmha refuses replicated guests with writable disks
     * instead. Network output is buffered when the guest has a NIC (sch_plug on its vif);
     * libxenlight calls a replication without disk buffering unsafe. */
    libxl_defbool_set(&info.allow_unsafe, true);
    libxl_defbool_set(&info.diskbuf, false);
    libxl_defbool_set(&info.netbuf, guest_has_nics(c, domid));
    libxl_defbool_set(&info.blackhole, false);
    libxl_defbool_set(&info.colo, false); /* Remus, not COLO */
    libxl_defbool_set(&info.userspace_colo_proxy, false);
    /* Returns only when replication failed: the guest is then suspended here. */
    r = libxl_domain_remus_start(c->ctx, &info, domid, fd, fd, NULL);
    libxl_domain_remus_info_dispose(&info);
    return hv_libxl_err(c, err, r == 0 ? -EPIPE : -EIO, "replication stopped");
}

/* The configuration the replica is made with: the guest's own (config_text), never the one
 * the stream carries, which must be of the same guest (name, and UUID when the config names
 * one; otherwise the running guest's UUID is taken from it). Checked before anything is
 * named after it: prepare_incoming clears NAME--incoming. */
static int own_config(const libxl_domain_config *stream, const char *config_text,
                      libxl_domain_config *d, struct vmha_err *err)
{
    struct hv_guest_config own = {0};
    int r = hv_libxl_config_parse(config_text, &own, err);
    if (r < 0)
        return r;
    const char *got = stream->c_info.name ? stream->c_info.name : "";
    libxl_uuid want;
    if (strcmp(got, own.name) != 0)
        r = vmha_err_set(err, -EPERM, "the stream is of guest '%.64s', not of %s", got, own.name);
    else if (own.uuid[0] && (libxl_uuid_from_string(&want, own.uuid) != 0 ||
                             libxl_uuid_compare(&want, (libxl_uuid *)&stream->c_info.uuid) != 0))
        r = vmha_err_set(err, -EPERM,
                         "the stream is of another guest named %s (its UUID is "
                         "not %s)",
                         own.name, own.uuid);
    hv_guest_config_clear(&own);
    if (r < 0 || (r = hv_libxl_domain_config(config_text, d, err)) < 0)
        return r;
    libxl_uuid_copy(NULL, &d->c_info.uuid, &stream->c_info.uuid);
    return 0;
}

int hv_libxl_remus_receive(struct hv_conn *c, int fd, const char *config_text,
                           const struct vmha_deadline *dl, char *ret_name, size_t size,
                           struct vmha_err *err)
{
    libxl_domain_config stream, d;
    libxl_domain_config_init(&stream);
    libxl_domain_config_init(&d);
    int r = hv_libxl_receive_config(c, fd, &stream, dl, err);
    if (r == 0)
        r = own_config(&stream, config_text, &d, err);
    libxl_domain_config_dispose(&stream);
    const char *name = d.c_info.name ? d.c_info.name : "";
    _cleanup_free_ char *guest = strdup(name); /* prepare_incoming renames d */
    if (r == 0 && !guest)
        r = vmha_err_set(err, -ENOMEM, "out of memory");
    if (r == 0)
        r = hv_libxl_prepare_incoming(c, &d, err);
    if (r < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "error %s\n", err->msg);
        vmha_write_all(fd, msg, strlen(msg));
        libxl_domain_config_dispose(&d);
        return r;
    }
    vmha_write_all(fd, "ready\n", 6);
    _cleanup_free_ char *replica = NULL;
    if (asprintf(&replica, "%s" HV_XL_REPLICA, guest) < 0) {
        libxl_domain_config_dispose(&d);
        return vmha_err_set(err, -ENOMEM, "out of memory");
    }
    /* An older replica of the guest is superseded by this stream. */
    uint32_t old;
    if (hv_libxl_domid(c, replica, &old, NULL) == 0)
        hv_xl_destroy(c->ctx, old);
    libxl_domain_restore_params params;
    hv_xl_restore_params(&params, true);
    uint32_t domid = HV_XL_NO_DOMID;
    /* Blocks while checkpoints arrive; returns once the stream ends, with the domain made
     * from the last complete checkpoint (or an error when none was complete). */
    r = libxl_domain_create_restore(c->ctx, &d, &domid, fd, fd, &params, NULL, NULL);
    libxl_domain_restore_params_dispose(&params);
    libxl_domain_config_dispose(&d);
    if (r != 0) {
        if (domid != HV_XL_NO_DOMID)
            hv_xl_destroy(c->ctx, domid);
        return hv_libxl_err(c, err, -EIO, "the stream ended before a complete checkpoint");
    }
    /* It comes out paused (xl's failover unpauses it at once; vmha waits for a promotion).
     * Pauses by the toolstack are counted: pause only what runs. */
    libxl_dominfo di;
    libxl_dominfo_init(&di);
    if (libxl_domain_info(c->ctx, &di, domid) == 0 && !di.paused)
        libxl_domain_pause(c->ctx, domid, NULL);
    libxl_dominfo_dispose(&di);
    if (libxl_domain_rename(c->ctx, domid, NULL, replica) != 0) {
        hv_xl_destroy(c->ctx, domid);
        return hv_libxl_err(c, err, -EIO, "cannot keep the replica");
    }
    snprintf(ret_name, size, "%s", replica);
    return 0;
}

int hv_libxl_remus_promote(struct hv_conn *c, const char *name, struct vmha_err *err)
{
    _cleanup_free_ char *replica = NULL;
    if (asprintf(&replica, "%s" HV_XL_REPLICA, name) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    uint32_t domid, running;
    int r = hv_libxl_domid(c, replica, &domid, err);
    if (r < 0)
        return vmha_err_set(err, r, "no replica of %s on this host", name);
    if (hv_libxl_domid(c, name, &running, NULL) == 0)
        return vmha_err_set(err, -EEXIST,
                            "guest %s already runs on this host: its replica "
                            "stays paused",
                            name);
    if (libxl_domain_rename(c->ctx, domid, replica, name) != 0)
        return hv_libxl_err(c, err, -EIO, "cannot rename the replica");
    if (hv_xl_unpause(c->ctx, domid) != 0)
        return hv_libxl_err(c, err, -EIO, "cannot run the replica");
    return 0;
}

int hv_libxl_remus_suspended(struct hv_conn *c, const char *name, uint32_t *domid)
{
    if (*domid == HV_XL_NO_DOMID) {
        int r = hv_libxl_domid(c, name, domid, NULL);
        if (r < 0)
            return r;
    }
    libxl_dominfo di;
    libxl_dominfo_init(&di);
    int r = libxl_domain_info(c->ctx, &di, *domid);
    bool suspended = r == 0 && di.shutdown && di.shutdown_reason == LIBXL_SHUTDOWN_REASON_SUSPEND;
    libxl_dominfo_dispose(&di);
    return r != 0 ? -ENOENT : suspended;
}

int hv_libxl_remus_discard(struct hv_conn *c, const char *name, struct vmha_err *err)
{
    _cleanup_free_ char *replica = NULL;
    if (asprintf(&replica, "%s" HV_XL_REPLICA, name) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    uint32_t domid;
    if (hv_libxl_domid(c, replica, &domid, NULL) < 0)
        return 0;
    return hv_xl_destroy(c->ctx, domid) != 0
               ? hv_libxl_err(c, err, -EIO, "cannot discard the replica")
               : 0;
}
