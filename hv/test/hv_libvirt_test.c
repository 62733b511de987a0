/* Unit tests of the libvirt backend's pure parts: domain XML, capabilities, state mapping. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libvirt/libvirt.h>

#include "hv_libvirt_private.h"

static char *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), SRCDIR "/data/%s", name);
    char *text = NULL;
    assert_int_equal(vmha_read_file(path, 1 << 20, &text, NULL), 0);
    return text;
}

static void parse_direct_boot(void **state)
{
    char *xml = load("direct-boot.xml");
    struct hv_guest_config c = {0};
    assert_int_equal(hv_libvirt_config_parse(xml, &c, NULL), 0);
    assert_string_equal(c.name, "web1");
    assert_string_equal(c.uuid, "0e6f1b52-5c3d-4a8e-9a43-1f0d2b7c9e11");
    assert_string_equal(c.virt_type, "qemu");
    assert_string_equal(c.machine, "pc-i440fx-7.2");
    assert_string_equal(c.arch, "x86_64");
    assert_string_equal(c.kernel, "/srv/cluster/boot/vmlinuz");
    assert_string_equal(c.initrd, "/srv/cluster/boot/initrd.img");
    assert_string_equal(c.cmdline, "console=ttyS0 quiet");
    assert_null(c.nvram);
    assert_null(c.loader);
    assert_int_equal(c.memory, 96ull << 20);
    hv_guest_config_clear(&c);
    assert_null(c.name);
    free(xml);
}

static void parse_uefi(void **state)
{
    char *xml = load("uefi.xml");
    struct hv_guest_config c = {0};
    assert_int_equal(hv_libvirt_config_parse(xml, &c, NULL), 0);
    /* UUIDs without dashes and in upper case are canonicalised. */
    assert_string_equal(c.uuid, "5d4c2f6a-0e1b-4c8d-a7f0-123456789abc");
    assert_string_equal(c.loader, "/usr/share/OVMF/OVMF_CODE_4M.fd");
    assert_string_equal(c.nvram, "/var/lib/libvirt/qemu/nvram/uefi1_VARS.fd");
    assert_string_equal(c.nvram_template, "/usr/share/OVMF/OVMF_VARS_4M.fd");
    assert_null(c.kernel);
    hv_guest_config_clear(&c);
    free(xml);
}

static void parse_minimal(void **state)
{
    char *xml = load("small.xml");
    struct hv_guest_config c = {0};
    assert_int_equal(hv_libvirt_config_parse(xml, &c, NULL), 0);
    assert_string_equal(c.name, "small");
    assert_string_equal(c.uuid, "");
    assert_null(c.machine);
    assert_false(c.writable_disks);
    hv_guest_config_clear(&c);
    free(xml);
}

/* Replication refuses guests that write to disks: the parser must tell them apart. */
static void writable_disks(void **state)
{
    static const struct {
        const char *devices;
        bool writable;
    } cases[] = {
        {"", false},
        {"<disk type='file' device='cdrom'><source file='/i.iso'/><target dev='hdc'/></disk>",
         false},
        {"<disk type='file'><source file='/a.img'/><readonly/><target dev='vda'/></disk>", false},
        {"<disk type='file'><source file='/a.img'/><target dev='vda'/></disk>", true},
        {"<disk type='block' device='lun'><source dev='/dev/sdb'/><target dev='sda'/></disk>",
         true},
        {"<disk type='file' device='disk'><source file='/a.img'/><target dev='vda'/></disk>"
         "<disk type='file' device='cdrom'><target dev='hdc'/></disk>",
         true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char xml[1024];
        snprintf(xml, sizeof(xml),
                 "<domain type='qemu'><name>d</name><devices>%s</devices>"
                 "</domain>",
                 cases[i].devices);
        struct hv_guest_config c = {0};
        assert_int_equal(hv_libvirt_config_parse(xml, &c, NULL), 0);
        if (c.writable_disks != cases[i].writable)
            fail_msg("case %zu: writable_disks=%d", i, c.writable_disks);
        hv_guest_config_clear(&c);
    }
}

/* Each writable disk with what replication decides on: its name, where it lives, its format. */
static void disk_list(void **state)
{
    (void)state;
    const char *xml =
        "<domain type='qemu'><name>d</name><devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        "<source file='/var/lib/a.img'/><target dev='vda'/></disk>"
        "<disk type='file' device='cdrom'><source file='/i.iso'/><target dev='hdc'/></disk>"
        "<disk type='block'><source dev='/dev/vg/b'/><target dev='vdb'/><shareable/></disk>"
        "<disk type='network'><driver type='qcow2'/><source protocol='nbd'/>"
        "<target dev='vdc'/></disk></devices></domain>";
    struct hv_guest_config c = {0};
    assert_int_equal(hv_libvirt_config_parse(xml, &c, NULL), 0);
    assert_int_equal(c.ndisks, 3);
    assert_string_equal(c.disks[0].target, "vda");
    assert_string_equal(c.disks[0].source, "/var/lib/a.img");
    assert_string_equal(c.disks[0].format, "raw");
    assert_false(c.disks[0].block || c.disks[0].shareable);
    assert_string_equal(c.disks[1].source, "/dev/vg/b");
    assert_true(c.disks[1].block && c.disks[1].shareable);
    assert_null(c.disks[1].format);
    assert_null(c.disks[2].source);
    assert_string_equal(c.disks[2].format, "qcow2");
    hv_guest_config_clear(&c);
}

/* A block copy's phase as libvirt shows it in the running domain's XML. */
static void mirror_ready(void **state)
{
    (void)state;
#define MIRROR_XML(m)                                                                              \
    "<domain type='qemu'><name>d</name><devices>"                                                  \
    "<disk type='file'><source file='/a.img'/><target dev='vda'/>" m "</disk>"                     \
    "<disk type='file'><source file='/b.img'/><target dev='vdb'/></disk></devices></domain>"
    const char *ready =
        MIRROR_XML("<mirror type='network' job='copy' ready='yes'><format type='raw'/></mirror>");
    assert_int_equal(hv_libvirt_mirror_ready_in(ready, "vda"), 1);
    assert_int_equal(hv_libvirt_mirror_ready_in(ready, "vdb"), -ENOENT);
    assert_int_equal(hv_libvirt_mirror_ready_in(ready, "vd'a"), -EINVAL);
    assert_int_equal(
        hv_libvirt_mirror_ready_in(MIRROR_XML("<mirror type='network' job='copy'/>"), "vda"), 0);
    assert_int_equal(hv_libvirt_mirror_ready_in(
                         MIRROR_XML("<mirror type='network' job='copy' ready='abort'/>"), "vda"),
                     0);
    assert_int_equal(hv_libvirt_mirror_ready_in("<domain", "vda"), -EINVAL);
}

/* vhost-net only where libvirt would give it (kvm, virtio, no driver name='qemu'); the most
 * queues any NIC asks for. */
static void nic_facts(void **state)
{
    (void)state;
    static const struct {
        const char *type, *nic;
        bool vhost;
        unsigned queues;
    } cases[] = {
        {"kvm", "<model type='virtio'/>", true, 0},
        {"qemu", "<model type='virtio'/>", false, 0},
        {"kvm", "<model type='virtio'/><driver name='qemu'/>", false, 0},
        {"kvm", "<model type='e1000'/>", false, 0},
        {"kvm", "<model type='virtio'/><driver name='vhost' queues='4'/>", true, 4},
        {"qemu", "<model type='virtio'/><driver name='qemu' queues='x'/>", false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char xml[1024];
        snprintf(xml, sizeof(xml),
                 "<domain type='%s'><name>d</name><devices><interface type='network'>"
                 "<source network='default'/>%s</interface></devices></domain>",
                 cases[i].type, cases[i].nic);
        struct hv_guest_config c = {0};
        assert_int_equal(hv_libvirt_config_parse(xml, &c, NULL), 0);
        if (c.vhost_nics != cases[i].vhost || c.nic_queues != cases[i].queues)
            fail_msg("case %zu: vhost=%d queues=%u", i, c.vhost_nics, c.nic_queues);
        hv_guest_config_clear(&c);
    }
}

/* The guest's memory in bytes, whatever unit <memory> is written in: the backup refuses a
 * checkpoint of any other size. */
static void parse_memory_units(void **state)
{
    static const struct {
        const char *mem;
        uint64_t bytes;
    } cases[] = {
        {"<memory>131072</memory>", 128ull << 20},
        {"<memory unit='KiB'>131072</memory>", 128ull << 20},
        {"<memory unit='MiB'>128</memory>", 128ull << 20},
        {"<memory unit='M'>128</memory>", 128ull << 20},
        {"<memory unit='G'>4</memory>", 4ull << 30},
        {"<memory unit='MB'>100</memory>", 100000000},
        {"<memory unit='b'>4096</memory>", 4096},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char xml[256];
        snprintf(xml, sizeof(xml), "<domain type='qemu'><name>m</name>%s</domain>", cases[i].mem);
        struct hv_guest_config c = {0};
        assert_int_equal(hv_libvirt_config_parse(xml, &c, NULL), 0);
        if (c.memory != cases[i].bytes)
            fail_msg("%s: %llu bytes", cases[i].mem, (unsigned long long)c.memory);
        hv_guest_config_clear(&c);
    }
}

/* A promotion restores a checkpoint with the guest's own config, never the XML the stream
 * carried: a planted disk stays out, another guest's checkpoint is refused. */
static void restore_config(void **state)
{
    const char *config = "<domain type='qemu'><name>ft1</name><memory unit='MiB'>96</memory>"
                         "<devices/></domain>";
    const char *image = "<domain type='qemu'><name>ft1</name>"
                        "<uuid>7a1c4d2e-0b3f-4c5d-8e9f-a0b1c2d3e4f5</uuid>"
                        "<memory unit='MiB'>96</memory><devices><disk type='block'>"
                        "<source dev='/dev/sda'/><target dev='vda'/></disk></devices></domain>";
    char *out = NULL;
    struct vmha_err e = {0};
    assert_int_equal(hv_libvirt_restore_config(config, image, &out, &e), 0);
    struct hv_guest_config c = {0};
    assert_int_equal(hv_libvirt_config_parse(out, &c, NULL), 0);
    assert_string_equal(c.uuid, "7a1c4d2e-0b3f-4c5d-8e9f-a0b1c2d3e4f5"); /* the running one's */
    assert_false(c.writable_disks);
    assert_null(strstr(out, "/dev/sda"));
    hv_guest_config_clear(&c);
    free(out);
    out = NULL;
    const char *other = "<domain type='qemu'><name>db1</name>"
                        "<uuid>7a1c4d2e-0b3f-4c5d-8e9f-a0b1c2d3e4f5</uuid></domain>";
    assert_int_equal(hv_libvirt_restore_config(config, other, &out, &e), -EPERM);
    assert_non_null(strstr(e.msg, "is of guest 'db1'"));
    const char *pinned = "<domain type='qemu'><name>ft1</name>"
                         "<uuid>00000000-0b3f-4c5d-8e9f-a0b1c2d3e4f5</uuid></domain>";
    assert_int_equal(hv_libvirt_restore_config(pinned, image, &out, &e), -EPERM);
    assert_non_null(strstr(e.msg, "another guest"));
    assert_null(out);
}

static void parse_rejects(void **state)
{
    static const struct {
        const char *xml, *needle;
    } bad[] = {
        {"", "not well-formed"},
        {"<domain type='qemu'><name>x</name>", "not well-formed"},
        {"<network><name>x</name></network>", "no <domain> root"},
        {"<domain type='qemu'><memory>1</memory></domain>", "no <name>"},
        {"<domain type='qemu'><name>x</name><uuid>1234</uuid></domain>", "invalid <uuid>"},
        {"<domain type='qemu'><name>x</name><uuid>zz4c2f6a0e1b4c8da7f0123456789abc</uuid>"
         "</domain>",
         "invalid <uuid>"},
        {"<domain type='qemu'><name>x</name><memory unit='parsec'>1</memory></domain>",
         "is not a size"},
        {"<domain type='qemu'><name>x</name><memory>-1</memory></domain>", "is not a size"},
        {"<domain type='qemu'><name>x</name><memory unit='TiB'>99999999</memory></domain>",
         "is not a size"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct hv_guest_config c = {0};
        struct vmha_err e = {0};
        assert_int_equal(hv_libvirt_config_parse(bad[i].xml, &c, &e), -EINVAL);
        assert_non_null(strstr(e.msg, bad[i].needle));
        assert_null(c.name);
    }
}

static bool has(char **v, const char *s)
{
    for (; *v; v++)
        if (strcmp(*v, s) == 0)
            return true;
    return false;
}

static void machines(void **state)
{
    char *xml = load("capabilities.xml");
    char **m = NULL;
    assert_int_equal(hv_libvirt_machines_from_caps(xml, NULL, &m, NULL), 0);
    size_t n = 0;
    while (m[n])
        n++;
    /* pc-i440fx-7.2 appears three times in the document but only once in the list. */
    assert_int_equal(n, 5);
    assert_true(has(m, "pc"));
    assert_true(has(m, "q35"));
    assert_true(has(m, "pc-q35-7.2"));
    assert_true(has(m, "pc-i440fx-7.1"));
    assert_false(has(m, "pc-i440fx-6.0")); /* i686 only */
    for (size_t i = 0; i < n; i++)
        free(m[i]);
    free(m);
    assert_int_equal(hv_libvirt_machines_from_caps(xml, "i686", &m, NULL), 0);
    assert_string_equal(m[0], "pc-i440fx-6.0");
    assert_null(m[1]);
    free(m[0]);
    free(m);
    free(xml);
}

static void states(void **state)
{
    assert_int_equal(hv_libvirt_state(VIR_DOMAIN_RUNNING, true), HV_STATE_RUNNING);
    assert_int_equal(hv_libvirt_state(VIR_DOMAIN_BLOCKED, true), HV_STATE_RUNNING);
    assert_int_equal(hv_libvirt_state(VIR_DOMAIN_PAUSED, true), HV_STATE_PAUSED);
    assert_int_equal(hv_libvirt_state(VIR_DOMAIN_SHUTDOWN, true), HV_STATE_SHUTDOWN);
    assert_int_equal(hv_libvirt_state(VIR_DOMAIN_SHUTOFF, false), HV_STATE_SHUTOFF);
    assert_int_equal(hv_libvirt_state(VIR_DOMAIN_CRASHED, false), HV_STATE_CRASHED);
    assert_int_equal(hv_libvirt_state(VIR_DOMAIN_PMSUSPENDED, true), HV_STATE_PMSUSPENDED);
    assert_int_equal(hv_libvirt_state(VIR_DOMAIN_NOSTATE, true), HV_STATE_RUNNING);
    assert_int_equal(hv_libvirt_state(VIR_DOMAIN_NOSTATE, false), HV_STATE_SHUTOFF);
    assert_int_equal(hv_libvirt_state(42, true), HV_STATE_INVALID);
    assert_string_equal(hv_state_to_string(HV_STATE_INVALID), "invalid");
    assert_string_equal(hv_state_to_string(HV_STATE_PAUSED), "paused");
}

static void save_header(void **state)
{
    unsigned char *h = NULL;
    size_t len = 0;
    assert_int_equal(hv_libvirt_save_header("<domain/>", &h, &len), 0);
    /* libvirt's layout: 16-byte magic, five uint32, 14 unused: 92 bytes, then the XML. */
    assert_int_equal(len, 92 + 4096);
    assert_memory_equal(h, "LibvirtQemudSave", 16);
    uint32_t v[5];
    memcpy(v, h + 16, sizeof(v));
    assert_int_equal(v[0], 2);    /* version */
    assert_int_equal(v[1], 4096); /* data_len: the XML with room after it */
    assert_int_equal(v[2], 1);    /* was_running */
    assert_int_equal(v[3], 0);    /* raw */
    assert_int_equal(v[4], 0);    /* no cookie */
    assert_string_equal((const char *)h + 92, "<domain/>");
    free(h);
}

static void backend_selection(void **state)
{
    const struct hv_backend *b = NULL;
    struct vmha_err e = {0};
    assert_int_equal(hv_backend_for_uri("qemu:///system", &b, &e), 0);
    assert_string_equal(hv_backend_name(b), "libvirt");
    /* What each backend can do follows from what it implements. */
    assert_true(hv_backend_can(b, HV_FEAT_CKPT));
    assert_true(hv_backend_can(b, HV_FEAT_NVRAM));
    assert_true(hv_backend_can(b, HV_FEAT_INSTALL_BOOT));
    assert_false(hv_backend_can(b, HV_FEAT_NATIVE_REMUS));
    char tmpl[256];
    assert_int_equal(hv_migrate_target_template(b, "qemu:///system", "ssh", tmpl, sizeof(tmpl), &e),
                     0);
    assert_string_equal(tmpl, "qemu+ssh://%n/system");
    assert_int_equal(hv_migrate_target_template(b, "test", "ssh", tmpl, sizeof(tmpl), &e), -EINVAL);
    b = NULL;
    int r = hv_backend_for_uri("libxl", &b, &e);
    if (r == 0) { /* a build with the libxl backend */
        assert_string_equal(hv_backend_name(b), "libxl");
        assert_true(hv_backend_can(b, HV_FEAT_NATIVE_REMUS));
        assert_false(hv_backend_can(b, HV_FEAT_NVRAM));
        /* Operations a backend lacks say so instead of succeeding. */
        assert_int_equal(hv_oneoff_config(b, "name='a'\n", &(struct hv_boot_override){0}, "",
                                          &(char *){NULL}, &e),
                         -EOPNOTSUPP);
        assert_non_null(strstr(e.msg, "libxl backend does not support install boots"));
        assert_int_equal(hv_migrate_target_check(b, "qemu+tls://n/system", &e), -EINVAL);
        assert_int_equal(hv_migrate_target_check(b, "ssh://n", &e), 0);
    } else {
        assert_int_equal(r, -EOPNOTSUPP);
        assert_null(b);
        assert_non_null(strstr(e.msg, "libxl backend"));
    }
}

static void overlay_golden(const char *base, const struct hv_boot_override *o, const char *golden)
{
    char *xml = load(base), *want = load(golden), *out = NULL;
    struct vmha_err e = {0};
    assert_int_equal(
        hv_libvirt_oneoff_config(xml, o, "7a1c4d2e-0b3f-4c5d-8e9f-a0b1c2d3e4f5", &out, &e), 0);
    assert_string_equal(out, want);
    /* The result is a guest the parser reads back with the install settings. */
    struct hv_guest_config c = {0};
    assert_int_equal(hv_libvirt_config_parse(out, &c, &e), 0);
    assert_string_equal(c.uuid, "7a1c4d2e-0b3f-4c5d-8e9f-a0b1c2d3e4f5");
    if (o->kernel)
        assert_string_equal(c.kernel, o->kernel);
    hv_guest_config_clear(&c);
    free(out);
    free(want);
    free(xml);
}

static void install_overlay(void **state)
{
    struct hv_boot_override k = {.kernel = "/srv/cluster/boot/installer-vmlinuz",
                                 .initrd = "/srv/cluster/boot/installer-initrd.img",
                                 .cmdline =
                                     "console=ttyS0 auto=true url=http://10.0.0.1/preseed.cfg"};
    struct hv_boot_override m = {.media = "/srv/cluster/iso/debian-12.iso"};
    overlay_golden("installed.xml", &k, "installed.kernel.golden.xml");
    overlay_golden("installed.xml", &m, "installed.media.golden.xml");
    overlay_golden("direct-boot.xml", &k, "direct-boot.kernel.golden.xml");
    char *out = NULL;
    struct vmha_err e = {0};
    assert_int_equal(
        hv_libvirt_oneoff_config("<domain><name>x</name></domain>", &k, NULL, &out, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "<os>"));
    assert_int_equal(hv_libvirt_oneoff_config("<domain", &k, NULL, &out, &e), -EINVAL);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_direct_boot),  cmocka_unit_test(parse_uefi),
        cmocka_unit_test(parse_minimal),      cmocka_unit_test(writable_disks),
        cmocka_unit_test(disk_list),          cmocka_unit_test(nic_facts),
        cmocka_unit_test(mirror_ready),       cmocka_unit_test(parse_rejects),
        cmocka_unit_test(parse_memory_units), cmocka_unit_test(restore_config),
        cmocka_unit_test(machines),           cmocka_unit_test(states),
        cmocka_unit_test(backend_selection),  cmocka_unit_test(save_header),
        cmocka_unit_test(install_overlay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
