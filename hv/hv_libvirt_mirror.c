/* A replicated guest's disks mirrored, write by write, to the replicator (libvirt's block
 * copy with synchronous writes, into the replicator's NBD export on a unix socket): a write
 * completes for the guest only once the replicator has it, so a checkpoint taken with the
 * guest paused covers exactly the writes the guest saw complete. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hv_libvirt_private.h"
#include "vmha/cleanup.h"

/* XML names and paths are the replicator's own (its directory, the guest's target names):
 * still, nothing in them may break out of an attribute. */
static bool attr_safe(const char *s)
{
    return s[0] && !strpbrk(s, "<>&'\"");
}

int hv_libvirt_mirror_start(struct hv_conn *c, const char *name, const char *target,
                            const char *socket, struct vmha_err *err)
{
    if (!attr_safe(target) || !attr_safe(socket))
        return vmha_err_set(err, -EINVAL, "cannot mirror disk '%s' to '%s'", target, socket);
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    char xml[1024];
    snprintf(xml, sizeof(xml),
             "<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
             "<source protocol='nbd' name='%s'><host transport='unix' socket='%s'/></source>"
             "</disk>",
             target, socket);
    /* REUSE_EXT: the export exists (libvirt cannot create it); TRANSIENT_JOB: the guest may
     * be persistent, and the copy does not outlive this QEMU. */
    unsigned flags = VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB |
                     VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES;
    if (virDomainBlockCopy(d, target, xml, NULL, 0, flags) < 0)
        return hv_libvirt_err(err, -EIO, "cannot mirror the disk to the replicator");
    return 0;
}

int hv_libvirt_mirror_ready(struct hv_conn *c, const char *name, const char *target,
                            struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    virDomainBlockJobInfo info;
    r = virDomainGetBlockJobInfo(d, target, &info, 0);
    if (r < 0)
        return hv_libvirt_err(err, -EIO, "cannot read the disk mirror's state");
    if (r == 0 || info.type != VIR_DOMAIN_BLOCK_JOB_TYPE_COPY)
        return vmha_err_set(err, -ENOENT, "the mirror of disk %s has ended", target);
    /* libvirt shows the copy's phase in the domain's XML: ready once the whole disk has been
     * copied and every write goes to both. */
    _cleanup_free_ char *xml = virDomainGetXMLDesc(d, 0);
    if (!xml)
        return hv_libvirt_err(err, -EIO, "cannot read the guest's XML");
    return hv_libvirt_mirror_ready_in(xml, target);
}

int hv_libvirt_mirror_stop(struct hv_conn *c, const char *name, const char *target,
                           struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r == -ENOENT ? 0 : r;
    virDomainBlockJobInfo info;
    r = virDomainGetBlockJobInfo(d, target, &info, 0);
    if (r == 0)
        return 0;
    /* Without PIVOT: the guest stays on its own disk, the copy is dropped. */
    if (r < 0 || virDomainBlockJobAbort(d, target, 0) < 0)
        return hv_libvirt_err(err, -EIO, "cannot end the disk mirror");
    return 0;
}
