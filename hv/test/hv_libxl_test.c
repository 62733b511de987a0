/* The libxl backend: xl.cfg parsing, state and version mapping, the ssh target, and the
 * backend's calls against the TEST DOUBLE of libxenlight (libxl_test_double.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv_libxl_private.h"
#include "libxl_test_double.h"
#include "vmha/migrate.h"

static const char pvh_cfg[] =
    "# a PVH guest\n"
    "name = \"web1\"\n"
    "uuid = \"5E0B3A7C-6D4F-4B1E-9A2C-766D6861A001\"\n"
    "type = \"pvh\"\n"
    "memory = 256\n"
    "maxmem = 512\n"
    "vcpus = 2\n"
    "kernel = \"/srv/vm/vmlinuz\"\n"
    "ramdisk = \"/srv/vm/initrd.img\"\n"
    "root = \"/dev/xvda\"\n"
    "extra = \"console=hvc0 name=x\"\n"
    "disk = [ 'format=raw, vdev=xvda, access=ro, target=/srv/vm/root.img',\n"
    "         'format=raw, vdev=xvdb, access=ro, devtype=cdrom, target=/srv/vm/cd.iso' ]\n"
    "vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]\n"
    "on_reboot = \"destroy\"\n";

static void parse_pvh(void **state)
{
    struct hv_guest_config c;
    struct vmha_err e = {0};
    assert_int_equal(hv_libxl_config_parse(pvh_cfg, &c, &e), 0);
    assert_string_equal(c.name, "web1");
    assert_string_equal(c.uuid, "5e0b3a7c-6d4f-4b1e-9a2c-766d6861a001");
    assert_string_equal(c.virt_type, "xen");
    assert_string_equal(hv_family_of(&c), "xen");
    assert_string_equal(c.machine, "pvh");
    assert_string_equal(c.kernel, "/srv/vm/vmlinuz");
    assert_string_equal(c.initrd, "/srv/vm/initrd.img");
    assert_string_equal(c.cmdline, "root=/dev/xvda console=hvc0 name=x");
    assert_false(c.writable_disks);
    hv_guest_config_clear(&c);
}

static void parse_defaults(void **state)
{
    struct hv_guest_config c;
    struct vmha_err e = {0};
    assert_int_equal(hv_libxl_config_parse("name='a'\nkernel='/k'\ncmdline='x=1'\n"
                                           "disk=['/srv/a.img,raw,xvda,rw']\n",
                                           &c, &e),
                     0);
    assert_string_equal(c.machine, "pv"); /* as xl: no type is PV */
    assert_string_equal(c.uuid, "");
    assert_string_equal(c.cmdline, "x=1");
    assert_null(c.initrd);
    assert_true(c.writable_disks);
    hv_guest_config_clear(&c);
    assert_int_equal(hv_libxl_config_parse("name='h'\nbuilder='hvm'\n", &c, &e), 0);
    assert_string_equal(c.machine, "hvm");
    hv_guest_config_clear(&c);
}

static void expect_refused(const char *text, const char *words)
{
    struct hv_guest_config c = {0};
    struct vmha_err e = {0};
    assert_int_equal(hv_libxl_config_parse(text, &c, &e), -EINVAL);
    if (!strstr(e.msg, words))
        fail_msg("'%s' not in '%s'", words, e.msg);
    assert_null(c.name);
}

static void parse_rejects(void **state)
{
    expect_refused("name='a'\nkernel='/k'\npci=['01:00.0']\n", "'pci' is not supported");
    expect_refused("name='a'\nbootloader='pygrub'\n", "'bootloader' is not supported");
    expect_refused("kernel='/k'\n", "names no guest");
    expect_refused("name='a'\ntype='pvh'\n", "needs kernel=");
    expect_refused("name='a'\ntype='kvm'\nkernel='/k'\n", "type=\"kvm\"");
    expect_refused("name='a'\nkernel='/k'\nmemory='lots'\n", "memory=lots");
    expect_refused("name='a'\nkernel='/k'\nmemory=256\nmaxmem=128\n", "maxmem=128");
    expect_refused("name='a'\nkernel='/k'\nuuid='nope'\n", "not a UUID");
    expect_refused("name='a'\nkernel='/k'\ncmdline='x'\nextra='y'\n", "cannot be combined");
    expect_refused("name='a'\nkernel='/k'\ndisk=['format=qcow9,vdev=xvda,target=/x']\n",
                   "does not parse");
    expect_refused("name = 'a\n", "does not parse");
    expect_refused("\n <domain type='kvm'><name>a</name></domain>\n", "this is XML");
    /* Keys libxlutil reads however they are written (issue 15, finding 9): after a ';' on one
     * line, after a string with an escaped quote, after a list, with '+=', on a line of its
     * own after a comment. The key is named, never silently ignored. */
    expect_refused("name=\"x\"; pci=[\"01:00.0\"]\nkernel='/k'\n", "'pci' is not supported");
    expect_refused("name='a'\nkernel='/k'\nextra=\"a\\\"b\"\npci = [ \"01:00.0\" ]\n",
                   "'pci' is not supported");
    expect_refused("name='a'\nkernel='/k'\nextra='it\\'s'\nbootloader='pygrub'\n",
                   "'bootloader' is not supported");
    expect_refused("name='a';kernel='/k';vif=['bridge=b'];device_model_args=['-x']\n",
                   "'device_model_args' is not supported");
    expect_refused("name='a'\nkernel='/k'\npci+=['01:00.0']\n", "'pci' is not supported");
    expect_refused("# comment\nname='a' # pci=['x']\nkernel='/k'\nbootloader='b'\npci=['x']\n",
                   "'bootloader' is not supported");
    /* Keys inside quotes and lists are values, not keys. */
    struct hv_guest_config c;
    struct vmha_err e = {0};
    assert_int_equal(hv_libxl_config_parse("name='a' # pci=1\nkernel='/k'\n"
                                           "extra='pci=1 bootloader=x'\nvif=[\n 'bridge=b'\n]\n",
                                           &c, &e),
                     0);
    hv_guest_config_clear(&c);
}

static void domain_config(void **state)
{
    libxl_domain_config d;
    struct vmha_err e = {0};
    assert_int_equal(hv_libxl_domain_config(pvh_cfg, &d, &e), 0);
    assert_string_equal(d.c_info.name, "web1");
    assert_int_equal(d.c_info.type, LIBXL_DOMAIN_TYPE_PVH);
    assert_int_equal(d.b_info.target_memkb, 256 * 1024);
    assert_int_equal(d.b_info.max_memkb, 512 * 1024);
    assert_int_equal(d.b_info.max_vcpus, 2);
    assert_true(libxl_bitmap_test(&d.b_info.avail_vcpus, 1));
    assert_string_equal(d.b_info.cmdline, "root=/dev/xvda console=hvc0 name=x");
    assert_int_equal(d.num_disks, 2);
    assert_int_equal(d.disks[1].is_cdrom, 1);
    assert_int_equal(d.num_nics, 1);
    assert_string_equal(d.nics[0].bridge, "xenbr0");
    assert_int_equal(d.nics[0].mac[5], 1);
    assert_int_equal(d.on_reboot, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
    assert_int_equal(d.on_poweroff, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
    libxl_domain_config_dispose(&d);
    assert_int_equal(hv_libxl_domain_config("name='a'\nkernel='/k'\nvif=['rate=1Mb/s']\n", &d, &e),
                     -EINVAL);
    assert_non_null(strstr(e.msg, "'rate' is not supported"));
    assert_int_equal(hv_libxl_domain_config("name='a'\nkernel='/k'\nvif=['mac=1:2']\n", &d, &e),
                     -EINVAL);
    assert_int_equal(hv_libxl_domain_config("name='a'\nkernel='/k'\non_crash='explode'\n", &d, &e),
                     -EINVAL);
}

static void states_and_versions(void **state)
{
    libxl_dominfo d = {.running = true};
    bool off;
    assert_int_equal(hv_libxl_state(&d, &off), HV_STATE_RUNNING);
    d = (libxl_dominfo){.blocked = true};
    assert_int_equal(hv_libxl_state(&d, &off), HV_STATE_RUNNING);
    d = (libxl_dominfo){.paused = true};
    assert_int_equal(hv_libxl_state(&d, &off), HV_STATE_PAUSED);
    d = (libxl_dominfo){.shutdown = true, .shutdown_reason = LIBXL_SHUTDOWN_REASON_POWEROFF};
    assert_int_equal(hv_libxl_state(&d, &off), HV_STATE_SHUTOFF);
    assert_true(off);
    d = (libxl_dominfo){.shutdown = true, .shutdown_reason = LIBXL_SHUTDOWN_REASON_CRASH};
    assert_int_equal(hv_libxl_state(&d, &off), HV_STATE_CRASHED);
    assert_false(off);
    d = (libxl_dominfo){.shutdown = true, .shutdown_reason = LIBXL_SHUTDOWN_REASON_SUSPEND};
    assert_int_equal(hv_libxl_state(&d, &off), HV_STATE_PAUSED);
    d = (libxl_dominfo){.dying = true, .shutdown = true};
    assert_int_equal(hv_libxl_state(&d, &off), HV_STATE_SHUTDOWN);
    assert_int_equal(hv_libxl_version(4, 17, ".5"), 4017005);
    assert_int_equal(hv_libxl_version(4, 17, ".5-pre"), 4017005);
    assert_int_equal(hv_libxl_version(4, 18, "-unstable"), 4018000);
    assert_int_equal(hv_libxl_version(4, 14, NULL), 4014000);
}

static void ssh_targets(void **state)
{
    char host[64], port[8];
    struct vmha_err e = {0};
    assert_int_equal(
        hv_libxl_ssh_target("ssh://root@xen2", host, sizeof(host), port, sizeof(port), &e), 0);
    assert_string_equal(host, "root@xen2");
    assert_string_equal(port, "");
    assert_int_equal(
        hv_libxl_ssh_target("ssh://xen2:2222/", host, sizeof(host), port, sizeof(port), &e), 0);
    assert_string_equal(host, "xen2");
    assert_string_equal(port, "2222");
    assert_int_equal(
        hv_libxl_ssh_target("tcp://xen2:1", host, sizeof(host), port, sizeof(port), &e), -EINVAL);
    assert_non_null(strstr(e.msg, "over ssh"));
    assert_int_equal(
        hv_libxl_ssh_target("ssh://xen2:x", host, sizeof(host), port, sizeof(port), &e), -EINVAL);
    assert_int_equal(hv_libxl_ssh_target("ssh://", host, sizeof(host), port, sizeof(port), &e),
                     -EINVAL);
    assert_int_equal(
        hv_libxl_ssh_target("ssh://h/path", host, sizeof(host), port, sizeof(port), &e), -EINVAL);
}

/* A destination from migrate_target never reaches ssh as an option (issue 15, finding 11). */
static void ssh_option_injection(void **state)
{
    static const char *const bad[] = {"ssh://-oProxyCommand=touch /tmp/pwned",
                                      "ssh://-x",
                                      "ssh://-oProxyCommand=id@xen2",
                                      "ssh://root@-oProxyCommand=id",
                                      "ssh://-F/tmp/cfg:22",
                                      "ssh://a@b@-oProxyCommand=id"};
    struct hv_libxl_ssh_cmd cmd;
    struct vmha_err e = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(hv_libxl_ssh_command(bad[i], "/helper", 1000, &cmd, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "begins with '-'"));
    }
    /* A good one: "--" comes right before the destination, the options all before it. */
    assert_int_equal(hv_libxl_ssh_command("ssh://root@xen2-mig:2222", "/helper", 1500, &cmd, &e),
                     0);
    size_t i = 0, dashes = 0;
    for (; cmd.argv[i]; i++)
        if (strcmp(cmd.argv[i], "--") == 0 && !dashes)
            dashes = i;
    assert_true(dashes > 0);
    assert_string_equal(cmd.argv[dashes + 1], "root@xen2-mig");
    assert_string_equal(cmd.argv[dashes + 2], "/helper");
    assert_string_equal(cmd.argv[dashes + 3], "migrate-receive");
    assert_string_equal(cmd.argv[i - 1], "1500");
    for (size_t k = 0; k < dashes; k++)
        if (strcmp(cmd.argv[k], "-p") == 0)
            assert_string_equal(cmd.argv[k + 1], "2222");
    /* A hyphen inside a name is fine. */
    assert_int_equal(hv_libxl_ssh_command("ssh://xen-2", "/helper", 1, &cmd, &e), 0);
}

/* ---- the backend's calls against the test double ---- */

static char defdir[64];

static int double_setup(void **state)
{
    memset(&xl_double, 0, sizeof(xl_double));
    xl_double.cap_hvm = true;
    snprintf(defdir, sizeof(defdir), "/tmp/vmha-xl-test-XXXXXX");
    assert_non_null(mkdtemp(defdir));
    setenv("VMHA_LIBXL_DEFDIR", defdir, 1);
    return 0;
}

static int double_teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", defdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static struct hv *open_double(void)
{
    struct hv *c = NULL;
    struct vmha_err e = {0};
    assert_int_equal(hv_open("libxl", &(struct vmha_deadline){0}, &c, &e), 0);
    return c;
}

static void lifecycle(void **state)
{
    struct hv *c = open_double();
    struct vmha_err e = {0};
    struct hv_guest_info gi;
    assert_int_equal(hv_lookup(c, "web1", &gi, &e), -ENOENT);
    assert_int_equal(hv_start(c, "web1", NULL, &e), -ENOENT); /* not defined */
    assert_int_equal(hv_define(c, pvh_cfg, &e), 0);
    assert_int_equal(hv_lookup(c, "web1", &gi, &e), 0);
    assert_int_equal(gi.state, HV_STATE_SHUTOFF);
    assert_true(gi.persistent);
    assert_int_equal(hv_start(c, "web1", NULL, &e), 0);
    assert_int_equal(hv_lookup(c, "web1", &gi, &e), 0);
    assert_int_equal(gi.state, HV_STATE_RUNNING);
    assert_int_equal(hv_lookup(c, "5e0b3a7c-6d4f-4b1e-9a2c-766d6861a001", &gi, &e), 0);
    assert_string_equal(gi.name, "web1");
    /* A second start must not make a second domain. */
    assert_int_equal(hv_start(c, "web1", NULL, &e), -EEXIST);
    assert_int_equal(xl_double.creates, 1);
    struct hv_guest_config live;
    assert_int_equal(hv_current_config(c, "web1", &live, &e), 0);
    assert_string_equal(live.machine, "pvh");
    assert_string_equal(live.kernel, "/srv/vm/vmlinuz");
    hv_guest_config_clear(&live);
    assert_int_equal(hv_shutdown(c, "web1", NULL, &e), 0);
    assert_int_equal(hv_lookup(c, "web1", &gi, &e), 0);
    assert_int_equal(gi.state, HV_STATE_SHUTOFF);
    assert_true(gi.powered_off);
    /* The shell a powered-off guest leaves is cleared by the next start. */
    assert_int_equal(hv_start(c, "web1", NULL, &e), 0);
    assert_int_equal(xl_double.destroys, 1);
    assert_int_equal(hv_shutdown(c, "web1", NULL, &e), 0);
    /* Stopping leaves no trace: the powered-off shell goes with the definition. */
    assert_int_equal(hv_undefine(c, "web1", &e), 0);
    assert_int_equal(xl_double.destroys, 2);
    assert_int_equal(hv_lookup(c, "web1", &gi, &e), -ENOENT);
    assert_int_equal(hv_destroy(c, "web1", &e), -ENOENT);
    hv_close(c);
}

static void shutdown_modes(void **state)
{
    struct hv *c = open_double();
    struct vmha_err e = {0};
    assert_int_equal(hv_define(c, pvh_cfg, &e), 0);
    assert_int_equal(hv_start(c, "web1", NULL, &e), 0);
    xl_double.dom[0].no_pv_drivers = true;
    assert_int_equal(hv_shutdown(c, "web1", NULL, &e), 0); /* falls back to the button */
    assert_int_equal(xl_double.dom[0].power_buttons, 1);
    assert_int_equal(hv_shutdown(c, "web1", "", &e), 0); /* the parameter's default */
    assert_int_equal(xl_double.dom[0].power_buttons, 2);
    assert_int_equal(hv_shutdown(c, "web1", "paravirt", &e), -EIO);
    assert_int_equal(hv_shutdown(c, "web1", "acpi", &e), 0);
    assert_int_equal(xl_double.dom[0].power_buttons, 3);
    assert_int_equal(hv_shutdown(c, "web1", "agent", &e), -EINVAL);
    assert_int_equal(hv_shutdown(c, "nope", NULL, &e), -ENOENT);
    hv_close(c);
}

static void failures_carry_libxl_words(void **state)
{
    struct hv *c = open_double();
    struct vmha_err e = {0};
    assert_int_equal(hv_define(c, pvh_cfg, &e), 0);
    xl_double.fail_create = true;
    assert_int_equal(hv_start(c, "web1", NULL, &e), -EIO);
    assert_non_null(strstr(e.msg, "kernel image too large"));
    assert_int_equal(hv_define(c, "name='bad'\n", &e), -EINVAL);
    assert_int_equal(hv_start(c, "web1", "oneoff", &e), -EOPNOTSUPP);
    hv_close(c);
    xl_double.no_xenstore = true;
    assert_int_equal(hv_open("libxl", &(struct vmha_deadline){0}, &c, &e), -EIO);
    assert_non_null(strstr(e.msg, "xenstore"));
    assert_int_equal(hv_open("libxl://x", &(struct vmha_deadline){0}, &c, &e), -EINVAL);
}

static void capabilities(void **state)
{
    struct hv *c = open_double();
    struct hv_caps caps;
    struct vmha_err e = {0};
    assert_int_equal(hv_capabilities(c, &caps, &e), 0);
    assert_string_equal(caps.family, "xen");
    assert_int_equal(caps.hv_version, 4017005);
    assert_string_equal(caps.machine_types[0], "pv");
    assert_string_equal(caps.machine_types[1], "pvh");
    assert_string_equal(caps.machine_types[2], "hvm");
    assert_null(caps.machine_types[3]);
    /* What the migration policy makes of it: Xen's level, counted in minors. */
    struct mig_level level;
    char text[48];
    assert_int_equal(mig_level_from_caps(&caps, &level, &e), 0);
    mig_level_format(&level, text, sizeof(text));
    assert_string_equal(text, "xen 4.17.5");
    hv_caps_clear(&caps);
    xl_double.cap_hvm = false; /* no hardware virtualisation: PV only */
    assert_int_equal(hv_capabilities(c, &caps, &e), 0);
    assert_string_equal(caps.machine_types[0], "pv");
    assert_null(caps.machine_types[1]);
    hv_caps_clear(&caps);
    hv_close(c);
}

static void remus_promote(void **state)
{
    struct hv *c = open_double();
    struct vmha_err e = {0};
    struct hv_guest_info gi;
    assert_int_equal(hv_replica_promote(c, "g1", &e), -ENOENT);
    assert_non_null(strstr(e.msg, "no replica of g1"));
    struct xl_double_dom *replica = xl_double_add("g1--replica", true);
    struct xl_double_dom *other = xl_double_add("g1", false);
    /* Never two copies: a running g1 keeps the replica paused. */
    assert_int_equal(hv_replica_promote(c, "g1", &e), -EEXIST);
    assert_true(replica->info.paused);
    other->used = false;
    /* The replica shares the guest's UUID, but a lookup by UUID is not fooled by it. */
    replica->info.uuid = (libxl_uuid){{0}};
    libxl_uuid_from_string(&replica->info.uuid, "5e0b3a7c-6d4f-4b1e-9a2c-766d6861a001");
    assert_int_equal(hv_lookup(c, "5e0b3a7c-6d4f-4b1e-9a2c-766d6861a001", &gi, &e), -ENOENT);
    assert_int_equal(hv_replica_promote(c, "g1", &e), 0);
    assert_int_equal(hv_lookup(c, "5e0b3a7c-6d4f-4b1e-9a2c-766d6861a001", &gi, &e), 0);
    assert_string_equal(gi.name, "g1");
    assert_int_equal(hv_lookup(c, "g1", &gi, &e), 0);
    assert_int_equal(gi.state, HV_STATE_RUNNING);
    assert_int_equal(hv_lookup(c, "g1--replica", &gi, &e), -ENOENT);
    hv_close(c);
}

static void remus_discard(void **state)
{
    struct hv *c = open_double();
    struct vmha_err e = {0};
    struct hv_guest_info gi;
    /* Nothing to discard is no error; the guest itself is never touched. */
    assert_int_equal(hv_replica_discard(c, "g1", &e), 0);
    assert_int_equal(xl_double.destroys, 0);
    xl_double_add("g1", false);
    xl_double_add("g1--replica", true);
    assert_int_equal(hv_replica_discard(c, "g1", &e), 0);
    assert_int_equal(xl_double.destroys, 1);
    assert_int_equal(hv_lookup(c, "g1--replica", &gi, &e), -ENOENT);
    assert_int_equal(hv_lookup(c, "g1", &gi, &e), 0);
    assert_int_equal(hv_replica_promote(c, "g1", &e), -ENOENT);
    hv_close(c);
}

/* Xen's backup takes only a stream of the guest it replicates (its own xl.cfg's): another
 * guest's name or UUID is refused before anything is named after it (an earlier receiver's
 * NAME--incoming, here another guest's, stays). */
static void remus_receive_other_guest(void **state)
{
    static const struct {
        const char *json, *needle;
    } cases[] = {
        {"{\"c_info\":{\"name\":\"db1\",\"uuid\":\"5e0b3a7c-6d4f-4b1e-9a2c-766d6861a001\"}}",
         "is of guest 'db1', not of g1"},
        {"{\"c_info\":{\"name\":\"g1\",\"uuid\":\"00000000-6d4f-4b1e-9a2c-766d6861a001\"}}",
         "its UUID is not"},
    };
    /* The backup's own xl.cfg, which its replica would be made with. */
    const char *own = "name = \"g1\"\nuuid = \"5e0b3a7c-6d4f-4b1e-9a2c-766d6861a001\"\n"
                      "type = \"pvh\"\nkernel = \"/boot/vmlinuz\"\nmemory = 128\n";
    struct hv *c = open_double();
    xl_double_add("db1--incoming", true);
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        int sp[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
        dprintf(sp[1], "config %zu\n%s", strlen(cases[i].json), cases[i].json);
        struct vmha_err e = {0};
        struct vmha_deadline dl = vmha_deadline_in(5000);
        char replica[64];
        assert_int_equal(hv_remus_receive(c, sp[0], own, &dl, replica, sizeof(replica), &e),
                         -EPERM);
        assert_non_null(strstr(e.msg, cases[i].needle));
        char answer[300] = "";
        assert_true(read(sp[1], answer, sizeof(answer) - 1) > 0);
        assert_true(strncmp(answer, "error ", 6) == 0);
        close(sp[0]);
        close(sp[1]);
    }
    assert_int_equal(xl_double.destroys, 0);
    assert_int_equal(xl_double.creates, 0);
    hv_close(c);
}

static void resume_after_suspend(void **state)
{
    struct hv *c = open_double();
    struct vmha_err e = {0};
    struct xl_double_dom *d = xl_double_add("g1", true);
    assert_int_equal(hv_resume(c, "g1", &e), 0); /* paused: unpaused */
    assert_false(d->info.paused);
    d->info.shutdown = true; /* suspended by a failed migration: resumed cooperatively */
    d->info.shutdown_reason = LIBXL_SHUTDOWN_REASON_SUSPEND;
    assert_int_equal(hv_resume(c, "g1", &e), 0);
    assert_int_equal(xl_double.resumes, 1);
    assert_false(d->info.shutdown);
    hv_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_pvh),
        cmocka_unit_test(parse_defaults),
        cmocka_unit_test(parse_rejects),
        cmocka_unit_test(domain_config),
        cmocka_unit_test(states_and_versions),
        cmocka_unit_test(ssh_targets),
        cmocka_unit_test(ssh_option_injection),
        cmocka_unit_test_setup_teardown(lifecycle, double_setup, double_teardown),
        cmocka_unit_test_setup_teardown(shutdown_modes, double_setup, double_teardown),
        cmocka_unit_test_setup_teardown(failures_carry_libxl_words, double_setup, double_teardown),
        cmocka_unit_test_setup_teardown(capabilities, double_setup, double_teardown),
        cmocka_unit_test_setup_teardown(remus_promote, double_setup, double_teardown),
        cmocka_unit_test_setup_teardown(remus_discard, double_setup, double_teardown),
        cmocka_unit_test_setup_teardown(resume_after_suspend, double_setup, double_teardown),
        cmocka_unit_test_setup_teardown(remus_receive_other_guest, double_setup, double_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
