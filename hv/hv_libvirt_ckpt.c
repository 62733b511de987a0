/* Checkpoints of a libvirt-managed QEMU guest, for remus/.
 *
 * libvirt has no checkpoint-and-keep-running operation, so the epoch runs through QEMU's
 * monitor, by libvirt's passthrough (virDomainQemuMonitorCommand; libvirt marks the guest
 * "custom-monitor"): a migration into a file descriptor vmha hands over, which QEMU
 * finishes by pausing the guest, exactly at the checkpoint. The guest's RAM is a shared
 * named file (QEMU 8.1 and later skip no other kind) and the migration runs with x-ignore-shared,
 * so the stream is the device state (and the small ROM blocks): the replicator reads the RAM itself
 * through ckpt_memory and sends only what changed. The stream is prefixed with libvirt's save-image
 * header and the guest's XML; remus/image.c puts the RAM back in, so the backup restores with
 * virDomainRestoreFlags: after failover the guest is an ordinary libvirt guest again. Output is
 * held by QEMU's filter-buffer on each NIC's backend, in the guest-to-network direction, flushed
 * only once a checkpoint is safe on the backup. docs/remus-design.md explains the choice. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "hv_libvirt_private.h"
#include "vmha/cleanup.h"

VMHA_DEFINE_CLEANUP(xmlDocPtr, xmlFreeDoc)
VMHA_DEFINE_CLEANUP(xmlXPathContextPtr, xmlXPathFreeContext)
VMHA_DEFINE_CLEANUP(xmlXPathObjectPtr, xmlXPathFreeObject)

/* QEMU pauses the guest for the last round once it expects the rest to take this long. */
#define CKPT_DOWNTIME_MS 50
/* No cap on the copy: the stream is the only thing on the replication link. */
#define CKPT_BANDWIDTH_BPS (100ull << 30)
/* filter-buffer flushes on its own every interval (µs, a uint32): make that as rare as
 * QEMU allows; vmha flushes at each committed checkpoint. */
#define BUFFER_INTERVAL_US 4294967295u

/* libvirt's QEMU save-image header (src/qemu/qemu_saveimage.h, version 2). */
/* 92 bytes, host byte order. */
struct save_header {
    char magic[16];
    uint32_t version;
    uint32_t data_len;
    uint32_t was_running;
    uint32_t format; /* 0: raw */
    uint32_t cookie_offset;
    uint32_t unused[14];
};

int hv_libvirt_save_header(const char *xml, unsigned char **ret, size_t *len)
{
    size_t xml_len = strlen(xml) + 1;
    /* Round the XML up to 4 KiB, as libvirt leaves room after it too. */
    size_t data_len = (xml_len + 4095) & ~(size_t)4095;
    if (data_len > UINT32_MAX)
        return -EFBIG;
    size_t total = sizeof(struct save_header) + data_len;
    unsigned char *buf = calloc(1, total);
    if (!buf)
        return -ENOMEM;
    struct save_header h = {.version = 2, .data_len = (uint32_t)data_len, .was_running = 1};
    memcpy(h.magic, "LibvirtQemudSave", 16);
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), xml, xml_len);
    *ret = buf;
    *len = total;
    return 0;
}

static int qmp(virDomainPtr d, const char *cmd, char **reply, struct vmha_err *err)
{
    char *out = NULL;
    if (virDomainQemuMonitorCommand(d, cmd, &out, 0) < 0)
        return hv_libvirt_err(err, -EIO, "QEMU's monitor refused a checkpoint command");
    if (strstr(out, "\"error\"")) {
        int r = vmha_err_set(err, -EIO, "QEMU: %s (for %s)", out, cmd);
        free(out);
        return r;
    }
    if (reply)
        *reply = out;
    else
        free(out);
    return 0;
}

/* The value of the first "key" in a compact JSON reply: a string's text or a number's
 * digits, in buf; NULL when absent. Enough for query-migrate's flat answers. */
static const char *json_field(const char *json, const char *key, char *buf, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == ':')
        p++;
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"' && n + 1 < size; p++)
            buf[n++] = *p;
    } else {
        for (; (*p >= '0' && *p <= '9') && n + 1 < size; p++)
            buf[n++] = *p;
    }
    buf[n] = '\0';
    return buf;
}

static uint64_t json_u64(const char *json, const char *key)
{
    char buf[32];
    const char *v = json_field(json, key, buf, sizeof(buf));
    return v ? strtoull(v, NULL, 10) : 0;
}

/* The aliases of the guest's network interfaces ("net0", ...), NULL-terminated. */
static int nic_aliases(virDomainPtr d, char ***ret, struct vmha_err *err)
{
    _cleanup_free_ char *xml = virDomainGetXMLDesc(d, 0);
    if (!xml)
        return hv_libvirt_err(err, -EIO, "cannot read the guest's live XML");
    _cleanup_(xmlFreeDocp) xmlDocPtr doc =
        xmlReadMemory(xml, (int)strlen(xml), "live.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
    _cleanup_(xmlXPathFreeContextp) xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
    _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr obj =
        ctx ? xmlXPathEvalExpression((const xmlChar *)"/domain/devices/interface/alias/@name", ctx)
            : NULL;
    if (!obj)
        return vmha_err_set(err, -EIO, "cannot read the guest's network interfaces");
    int n = obj->nodesetval ? obj->nodesetval->nodeNr : 0;
    char **v = calloc((size_t)n + 1, sizeof(char *));
    if (!v)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        xmlChar *s = xmlNodeGetContent(obj->nodesetval->nodeTab[i]);
        v[i] = strdup(s ? (const char *)s : "");
        xmlFree(s);
        if (!v[i]) {
            for (int j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return vmha_err_set(err, -ENOMEM, "out of memory");
        }
    }
    *ret = v;
    return 0;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

enum nic_op { NIC_HOLD, NIC_OFF, NIC_ON, NIC_REMOVE };

static void nic_command(enum nic_op op, const char *nic, char *cmd, size_t size)
{
    switch (op) {
    case NIC_HOLD:
        /* libvirt names the backend of NIC alias netN "hostnetN"; queue=rx is what the
         * backend receives from the guest: the guest's output. */
        snprintf(cmd, size,
                 "{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"filter-buffer\","
                 "\"id\":\"vmha-buf-%s\",\"netdev\":\"host%s\",\"queue\":\"rx\","
                 "\"interval\":%u}}",
                 nic, nic, BUFFER_INTERVAL_US);
        break;
    case NIC_OFF:
    case NIC_ON:
        snprintf(cmd, size,
                 "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/objects/vmha-buf-%s\","
                 "\"property\":\"status\",\"value\":\"%s\"}}",
                 nic, op == NIC_ON ? "on" : "off");
        break;
    case NIC_REMOVE:
        snprintf(cmd, size, "{\"execute\":\"object-del\",\"arguments\":{\"id\":\"vmha-buf-%s\"}}",
                 nic);
        break;
    }
}

/* Applies op to the output buffer of each of the guest's NICs. With tolerant, a buffer
 * already there (hold) or not there (off, remove) is fine. */
static int each_nic(struct hv_conn *c, const char *name, enum nic_op op, bool tolerant,
                    struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    char **nics = NULL;
    if (r < 0 || (r = nic_aliases(d, &nics, err)) < 0)
        return r;
    for (size_t i = 0; nics[i] && r == 0; i++) {
        char cmd[512];
        nic_command(op, nics[i], cmd, sizeof(cmd));
        struct vmha_err e = {0};
        r = qmp(d, cmd, NULL, &e);
        if (r < 0 && tolerant &&
            (strstr(e.msg, "not found") || strstr(e.msg, "uplicate") ||
             strstr(e.msg, "already exists")))
            r = 0;
        else if (r < 0)
            vmha_err_set(err, r, "network interface %s of %s: %s", nics[i], name, e.msg);
    }
    strv_free(nics);
    return r;
}

int hv_libvirt_ckpt_hold(struct hv_conn *c, const char *name, struct vmha_err *err)
{
    return each_nic(c, name, NIC_HOLD, true, err);
}

int hv_libvirt_ckpt_release(struct hv_conn *c, const char *name, bool stop, struct vmha_err *err)
{
    /* Switching a filter-buffer off sends what it holds (filter_buffer_status_changed);
     * deleting it would drop that instead. */
    int r = each_nic(c, name, NIC_OFF, stop, err);
    if (r < 0)
        return r;
    return each_nic(c, name, stop ? NIC_REMOVE : NIC_ON, stop, err);
}

static int ignore_shared(virDomainPtr d, bool on, struct vmha_err *err)
{
    char cmd[200];
    snprintf(cmd, sizeof(cmd),
             "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":"
             "[{\"capability\":\"x-ignore-shared\",\"state\":%s}]}}",
             on ? "true" : "false");
    return qmp(d, cmd, NULL, err);
}

static int wait_migration(virDomainPtr d, size_t hdr_len, uint64_t t0,
                          const struct vmha_deadline *dl, struct hv_ckpt_stats *ret,
                          struct vmha_err *err);

int hv_libvirt_ckpt_take(struct hv_conn *c, const char *name, int fd,
                         const struct vmha_deadline *dl, struct hv_ckpt_stats *ret,
                         struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    uint64_t t0 = vmha_now_ms();
    _cleanup_free_ char *xml =
        virDomainGetXMLDesc(d, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE);
    if (!xml)
        return hv_libvirt_err(err, -EIO, "cannot read the guest's XML for its checkpoint");
    _cleanup_free_ unsigned char *hdr = NULL;
    size_t hdr_len = 0;
    if ((r = hv_libvirt_save_header(xml, &hdr, &hdr_len)) < 0)
        return vmha_err_set(err, r, "cannot build the checkpoint's header");
    if ((r = vmha_write_all(fd, hdr, hdr_len)) < 0)
        return vmha_err_set(err, r, "cannot send the checkpoint's header: %s", strerror(-r));

    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"downtime-limit\":%d,"
             "\"max-bandwidth\":%llu}}",
             CKPT_DOWNTIME_MS, CKPT_BANDWIDTH_BPS);
    if ((r = qmp(d, cmd, NULL, err)) < 0)
        return r;
    char *out = NULL;
    int fds[1] = {fd};
    if (virDomainQemuMonitorCommandWithFiles(
            d, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"vmha-ckpt\"}}", 1, fds, NULL,
            NULL, &out, 0) < 0)
        return hv_libvirt_err(err, -EIO, "cannot hand the checkpoint stream to QEMU");
    free(out);
    /* Only for this stream: a migration libvirt starts must carry the RAM. */
    if ((r = ignore_shared(d, true, err)) < 0)
        return r;
    r = qmp(d, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:vmha-ckpt\"}}", NULL, err);
    if (r == 0)
        r = wait_migration(d, hdr_len, t0, dl, ret, err);
    struct vmha_err e = {0};
    if (ignore_shared(d, false, &e) < 0 && r == 0)
        r = vmha_err_set(err, e.code, "%s", e.msg);
    return r;
}

/* Polls the checkpoint's migration until it is over. */
static int wait_migration(virDomainPtr d, size_t hdr_len, uint64_t t0,
                          const struct vmha_deadline *dl, struct hv_ckpt_stats *ret,
                          struct vmha_err *err)
{
    int r;

    /* The stream runs inside QEMU; ask how it goes until it is over. */
    /* The guest is paused from the moment QEMU completes until vmha notices: ask often
     * while a checkpoint of device state alone should be over (tens of ms), then less. */
    uint64_t sleep_us = 250;
    for (;;) {
        _cleanup_free_ char *q = NULL;
        if ((r = qmp(d, "{\"execute\":\"query-migrate\"}", &q, err)) < 0)
            return r;
        char status[32];
        if (!json_field(q, "status", status, sizeof(status)))
            status[0] = '\0';
        if (strcmp(status, "completed") == 0) {
            *ret = (struct hv_ckpt_stats){.bytes = json_u64(q, "transferred") + hdr_len,
                                          .paused_ms = json_u64(q, "downtime"),
                                          .total_ms = vmha_now_ms() - t0};
            return 0;
        }
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
            char why[256];
            if (!json_field(q, "error-desc", why, sizeof(why)))
                snprintf(why, sizeof(why), "%s", status);
            return vmha_err_set(err, -EIO, "the checkpoint stream failed: %s", why);
        }
        if (vmha_deadline_passed(dl)) {
            qmp(d, "{\"execute\":\"migrate_cancel\"}", NULL, &(struct vmha_err){0});
            return vmha_err_set(err, -ETIMEDOUT,
                                "the checkpoint did not complete in time "
                                "(status %s): cancelled",
                                status[0] ? status : "unknown");
        }
        usleep((useconds_t)sleep_us);
        if (vmha_now_ms() - t0 > 200 && sleep_us < 5000)
            sleep_us += 250;
    }
}

/* The QEMU process behind the guest: the owner of its vCPU threads. */
static int qemu_pid(virDomainPtr d, struct vmha_err *err)
{
    _cleanup_free_ char *q = NULL;
    int r = qmp(d, "{\"execute\":\"query-cpus-fast\"}", &q, err);
    if (r < 0)
        return r;
    uint64_t tid = json_u64(q, "thread-id");
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%llu/status", (unsigned long long)tid);
    FILE *f = tid ? fopen(path, "re") : NULL;
    int pid = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Tgid: %d", &pid) == 1)
            break;
    if (f)
        fclose(f);
    if (pid <= 0)
        return vmha_err_set(err, -ESRCH,
                            "the guest's QEMU does not run on this host (vCPU "
                            "thread %llu not found): replication runs where the guest runs",
                            (unsigned long long)tid);
    return pid;
}

/* Among process pid's open files, the one shared file of exactly size bytes: its RAM. A memfd,
 * or a file QEMU made in a directory and unlinked, is no named file: QEMU 8.1 and later
 * would copy it whole into every checkpoint. The descriptor, or -errno with err set. */
static int ram_file(int pid, const char *name, uint64_t size, char *where, size_t wsize,
                    struct vmha_err *err)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
    DIR *dp = opendir(dir);
    if (!dp)
        return vmha_err_set(err, -errno, "cannot look into %s: %s", dir, strerror(errno));
    int found = -1, count = 0, memfds = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        char path[384], target[256];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n <= 0 || target[0] != '/')
            continue;
        target[n] = '\0';
        int m = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (m < 0 || fstat(m, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
            if (m >= 0)
                close(m);
            continue;
        }
        if (strncmp(target, "/memfd:", 7) == 0 || st.st_nlink == 0) {
            memfds++;
            close(m);
            continue;
        }
        if (found >= 0)
            close(found);
        found = m;
        count++;
        snprintf(where, wsize, "%s", target);
    }
    closedir(dp);
    if (count == 1)
        return found;
    if (found >= 0)
        close(found);
    if (count)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "guest %s has several shared files of its "
                            "memory's size open: which is its RAM?",
                            name);
    return vmha_err_set(err, -EOPNOTSUPP,
                        "guest %s's memory is not a shared named file%s "
                        "(<memoryBacking><source type='file'/><access mode='shared'/>"
                        "</memoryBacking>, with qemu.conf's memory_backing_dir on a tmpfs)",
                        name,
                        memfds ? " but a memfd or an unlinked file, which QEMU 8.1 "
                                 "and later copy whole into every checkpoint"
                               : "");
}

int hv_libvirt_ckpt_memory(struct hv_conn *c, const char *name, int *fd, int *qemu,
                           struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    virDomainInfo info;
    if (virDomainGetInfo(d, &info) < 0)
        return hv_libvirt_err(err, -EIO, "cannot read the guest's memory size");
    /* A replicator killed inside a checkpoint leaves x-ignore-shared on, and a live
     * migration would then leave the memory behind: the next replicator switches it off. */
    int pid = ignore_shared(d, false, err);
    if (pid < 0 || (pid = qemu_pid(d, err)) < 0)
        return pid;
    char where[256] = "";
    int found = ram_file(pid, name, info.maxMem * 1024ull, where, sizeof(where), err);
    if (found < 0)
        return found;
    /* Memory in a file on disk would be written back to it, every checkpoint's pages. */
    struct statfs sf;
    if (fstatfs(found, &sf) < 0 || (sf.f_type != TMPFS_MAGIC && sf.f_type != HUGETLBFS_MAGIC)) {
        close(found);
        return vmha_err_set(err, -EOPNOTSUPP,
                            "guest %s's memory file %s is not on a tmpfs or "
                            "hugetlbfs: set memory_backing_dir in qemu.conf to one (for "
                            "example /dev/shm/libvirt-ram)",
                            name, where);
    }
    *fd = found;
    *qemu = pid;
    return 0;
}

int hv_libvirt_replication_check(const struct hv_guest_config *cfg, bool tls, struct vmha_err *err)
{
    (void)tls; /* the replicator's own stream: TLS or the cluster's key, either works */
    if (strcmp(hv_family_of(cfg), "qemu") != 0)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "checkpoint replication runs on QEMU guests "
                            "through libvirt and on Xen guests through libxenlight "
                            "(hypervisor=libxl) only");
    if (!cfg->memory || cfg->memory % HV_LIBVIRT_PAGE)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "its XML must give its <memory> in whole pages: "
                            "the backup refuses checkpoints of any other size");
    if (!cfg->shared_file_memory)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "its memory must be a shared file, which the "
                            "replicator reads to send only what changed and which QEMU's "
                            "checkpoint then leaves out (add <memoryBacking><source "
                            "type='file'/><access mode='shared'/></memoryBacking> to its XML, "
                            "no NUMA cells, and keep qemu.conf's memory_backing_dir on a tmpfs "
                            "such as /dev/shm; a memfd is copied whole into every checkpoint "
                            "by QEMU 8.1 and later)");
    /* Output is held with QEMU's filter-buffer, which works only on a NIC QEMU itself
     * drives: with vhost-net the kernel sends the guest's packets past it, and QEMU refuses
     * the filter at the first checkpoint ("Vhost is not supported"). */
    if (cfg->vhost_nics)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "a virtio NIC of a kvm guest runs with vhost-net, whose output "
                            "QEMU cannot hold until a checkpoint is committed: add "
                            "<driver name='qemu'/> to each <interface> (packets then go "
                            "through QEMU, which costs throughput and CPU)");
    if (cfg->nic_queues > 1)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "a NIC has %u queues, and QEMU holds output on single-queue NICs "
                            "only: remove queues= from its <driver/>",
                            cfg->nic_queues);
    return 0;
}

int hv_libvirt_ckpt_restore(struct hv_conn *c, const char *dev_path, const char *ram_path,
                            const char *config_text, struct vmha_err *err)
{
    /* The checkpoint's bytes came over the network: its XML chooses nothing. libvirt
     * refuses a config that does not describe the machine the checkpoint was taken of. */
    if (!config_text)
        return vmha_err_set(err, -EINVAL,
                            "a checkpoint is restored only with the guest's "
                            "own configuration");
    /* The image libvirt restores from, beside the device state; gone once restored (it is
     * as big as the guest's memory). */
    char path[4200];
    if (snprintf(path, sizeof(path), "%s.image", dev_path) >= (int)sizeof(path))
        return vmha_err_set(err, -ENAMETOOLONG, "path too long: %s", dev_path);
    int r = hv_libvirt_ckpt_image_file(dev_path, ram_path, path, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *image_xml = virDomainSaveImageGetXMLDesc(c->conn, path, 0);
    _cleanup_free_ char *dxml = NULL;
    if (!image_xml)
        r = hv_libvirt_err(err, -EIO, "cannot read the checkpoint's header");
    else if ((r = hv_libvirt_restore_config(config_text, image_xml, &dxml, err)) == 0 &&
             virDomainRestoreFlags(c->conn, path, dxml, VIR_DOMAIN_SAVE_PAUSED) < 0)
        r = hv_libvirt_err(err, -EIO,
                           "cannot restore the guest from its checkpoint with its "
                           "configuration");
    unlink(path);
    return r;
}
