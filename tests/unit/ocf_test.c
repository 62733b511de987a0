/* Unit tests of the agent's pure parts: parameters, URIs, exit-code mapping, meta-data. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_private.h"

static int parse(char **env, struct ocf_params *p, struct vmha_err *e)
{
    *p = (struct ocf_params){0};
    *e = (struct vmha_err){0};
    return ocf_params_parse(env, p, e);
}

static void defaults(void **state)
{
    char *env[] = {"OCF_RESKEY_config=/srv/web1.xml", NULL};
    struct ocf_params p;
    struct vmha_err e;
    assert_int_equal(parse(env, &p, &e), 0);
    assert_string_equal(p.config, "/srv/web1.xml");
    assert_string_equal(p.name, "");
    assert_string_equal(p.hypervisor, "qemu:///system");
    assert_string_equal(p.migration_transport, "ssh");
    assert_string_equal(p.shutdown_mode, ""); /* "default": leave it to the hypervisor */
    assert_int_equal(p.migration_speed, 0);
    assert_int_equal(p.shutdown_timeout_ms, 0);
    assert_false(p.force_stop);
    assert_int_equal(p.timeout_ms, 0);
    assert_false(p.run_by_cluster);
    assert_false(p.replicate);
    assert_int_equal(p.checkpoint_interval_ms, 500);
    assert_int_equal(p.checkpoint_timeout_ms, 5000);
    assert_string_equal(p.replication_address, "%n");
    assert_int_equal(p.replication_port, 7790);
    assert_null(p.instance);
    ocf_params_clear(&p);
}

/* What a promotable clone's instance is told: its resource without the clone suffix, and
 * in a notify, who is being promoted. */
static void clone_meta(void **state)
{
    char *env[] = {"OCF_RESKEY_config=/srv/ft1.xml",
                   "OCF_RESKEY_replicate=true",
                   "OCF_RESOURCE_INSTANCE=ft1:1",
                   "OCF_RESKEY_CRM_meta_notify_type=pre",
                   "OCF_RESKEY_CRM_meta_notify_operation=demote",
                   "OCF_RESKEY_CRM_meta_notify_promote_uname= ",
                   NULL};
    struct ocf_params p;
    struct vmha_err e;
    assert_int_equal(parse(env, &p, &e), 0);
    assert_true(p.replicate);
    assert_string_equal(p.instance, "ft1");
    assert_string_equal(p.notify_type, "pre");
    assert_string_equal(p.notify_operation, "demote");
    assert_string_equal(p.notify_promote_uname, " ");
    ocf_params_clear(&p);
}

static void values_and_meta(void **state)
{
    char *env[] = {"OCF_RESKEY_config=/srv/web1.xml",
                   "OCF_RESKEY_name=web1",
                   "OCF_RESKEY_hypervisor=qemu+tcp://localhost/system",
                   "OCF_RESKEY_migration_speed=100",
                   "OCF_RESKEY_migration_downtime=250",
                   "OCF_RESKEY_shutdown_timeout=2min",
                   "OCF_RESKEY_shutdown_mode=acpi",
                   "OCF_RESKEY_force_stop=yes",
                   "OCF_RESKEY_CRM_meta_timeout=20000",
                   "OCF_RESKEY_CRM_meta_interval=10000",
                   "OCF_RESKEY_CRM_meta_migrate_target=node2",
                   "OCF_RESKEY_crm_feature_set=3.16.2",
                   "OCF_RESKEY_unrelated=ignored",
                   NULL};
    struct ocf_params p;
    struct vmha_err e;
    assert_int_equal(parse(env, &p, &e), 0);
    assert_string_equal(p.name, "web1");
    assert_int_equal(p.migration_speed, 100);
    assert_int_equal(p.migration_downtime, 250);
    assert_int_equal(p.shutdown_timeout_ms, 120000);
    assert_string_equal(p.shutdown_mode, "acpi");
    assert_true(p.force_stop);
    assert_int_equal(p.timeout_ms, 20000);
    assert_int_equal(p.interval_ms, 10000);
    assert_string_equal(p.migrate_target_node, "node2");
    assert_true(p.run_by_cluster);
    ocf_params_clear(&p);
}

static void bad_values(void **state)
{
    static const struct {
        const char *var, *needle;
    } bad[] = {
        {"OCF_RESKEY_migration_speed=fast", "migration_speed=fast is not a whole number"},
        {"OCF_RESKEY_migration_downtime=-1", "migration_downtime=-1"},
        {"OCF_RESKEY_shutdown_timeout=soon", "shutdown_timeout=soon is not a duration"},
        {"OCF_RESKEY_force_stop=perhaps", "force_stop=perhaps is not a boolean"},
        {"OCF_RESKEY_migration_transport=rsh", "migration_transport=rsh"},
        {"OCF_RESKEY_shutdown_mode=halt", "shutdown_mode=halt"},
        {"OCF_RESKEY_CRM_meta_timeout=20s", "OCF_RESKEY_CRM_meta_timeout=20s"},
        {"OCF_RESKEY_replicate=maybe", "replicate=maybe is not a boolean"},
        {"OCF_RESKEY_replication_port=70000", "replication_port=70000 is not a TCP port"},
        {"OCF_RESKEY_checkpoint_interval=5", "checkpoint_interval must be at least 20 ms"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char *env[] = {"OCF_RESKEY_config=/srv/web1.xml", (char *)bad[i].var, NULL};
        struct ocf_params p;
        struct vmha_err e;
        assert_int_equal(parse(env, &p, &e), -EINVAL);
        if (!strstr(e.msg, bad[i].needle))
            fail_msg("'%s' gave '%s'", bad[i].var, e.msg);
        assert_null(p.config);
    }
}

static void config_required_and_absolute(void **state)
{
    struct ocf_params p;
    struct vmha_err e;
    char *none[] = {"OCF_RESKEY_name=web1", NULL};
    assert_int_equal(parse(none, &p, &e), -EINVAL);
    assert_string_equal(e.msg, "the required parameter config is not set");
    char *empty[] = {"OCF_RESKEY_config=", NULL};
    assert_int_equal(parse(empty, &p, &e), -EINVAL);
    char *relative[] = {"OCF_RESKEY_config=web1.xml", NULL};
    assert_int_equal(parse(relative, &p, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "not an absolute path"));
}

static void dest_uri(void **state)
{
    struct ocf_params p = {
        .hypervisor = "qemu:///system", .migration_transport = "ssh", .migrate_target = ""};
    char *uri = NULL;
    assert_int_equal(ocf_migration_dest_uri(&p, "node2", &uri, NULL), 0);
    assert_string_equal(uri, "qemu+ssh://node2/system");
    free(uri);
    p.hypervisor = "qemu+tcp://127.0.0.1/session?socket=/x";
    p.migration_transport = "tls";
    assert_int_equal(ocf_migration_dest_uri(&p, "n3", &uri, NULL), 0);
    assert_string_equal(uri, "qemu+tls://n3/session?socket=/x");
    free(uri);
    p.migrate_target = "qemu+tcp://%n-mig.lab/system";
    assert_int_equal(ocf_migration_dest_uri(&p, "n3", &uri, NULL), 0);
    assert_string_equal(uri, "qemu+tcp://n3-mig.lab/system");
    free(uri);
    p.migrate_target = "";
    p.hypervisor = "test";
    struct vmha_err e = {0};
    assert_int_equal(ocf_migration_dest_uri(&p, "n3", &uri, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "set migrate_target"));
}

static void templates(void **state)
{
    char *s = NULL;
    assert_int_equal(ocf_expand_template("%n:%n/%%n%", "ab", &s), 0);
    assert_string_equal(s, "ab:ab/%n%");
    free(s);
    assert_int_equal(ocf_expand_template("", "ab", &s), 0);
    assert_string_equal(s, "");
    free(s);
}

static void state_codes(void **state)
{
    assert_int_equal(ocf_rc_for_state(HV_STATE_ABSENT), OCF_NOT_RUNNING);
    assert_int_equal(ocf_rc_for_state(HV_STATE_SHUTOFF), OCF_NOT_RUNNING);
    assert_int_equal(ocf_rc_for_state(HV_STATE_RUNNING), OCF_SUCCESS);
    assert_int_equal(ocf_rc_for_state(HV_STATE_PAUSED), OCF_SUCCESS);
    assert_int_equal(ocf_rc_for_state(HV_STATE_SHUTDOWN), OCF_SUCCESS);
    assert_int_equal(ocf_rc_for_state(HV_STATE_PMSUSPENDED), OCF_SUCCESS);
    assert_int_equal(ocf_rc_for_state(HV_STATE_CRASHED), OCF_ERR_GENERIC);
    assert_int_equal(ocf_rc_for_state(HV_STATE_INVALID), OCF_ERR_GENERIC);
}

static void config_error_codes(void **state)
{
    assert_int_equal(ocf_rc_for_config_error(-ENOENT), OCF_ERR_INSTALLED);
    assert_int_equal(ocf_rc_for_config_error(-EOPNOTSUPP), OCF_ERR_INSTALLED);
    assert_int_equal(ocf_rc_for_config_error(-EACCES), OCF_ERR_ARGS);
    assert_int_equal(ocf_rc_for_config_error(-EFBIG), OCF_ERR_ARGS);
    assert_int_equal(ocf_rc_for_config_error(-EINVAL), OCF_ERR_CONFIGURED);
    assert_int_equal(ocf_rc_for_config_error(-ENOMEM), OCF_ERR_GENERIC);
}

static void metadata_lists_every_parameter(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(ocf_metadata_print(f), 0);
    fclose(f);
    for (size_t i = 0; i < ocf_param_count; i++) {
        char needle[128];
        snprintf(needle, sizeof(needle), "<parameter name=\"%s\"", ocf_param_table[i].name);
        assert_non_null(strstr(buf, needle));
        assert_non_null(ocf_param_table[i].shortdesc);
        assert_non_null(ocf_param_table[i].longdesc);
    }
    assert_non_null(strstr(buf, "<action name=\"migrate_to\""));
    assert_non_null(strstr(buf, "<action name=\"reload-agent\""));
    assert_non_null(strstr(buf, "reloadable=\"1\""));
    free(buf);
}

static void actions(void **state)
{
    const char *known[] = {"start",        "stop",         "monitor",  "migrate_to",
                           "migrate_from", "promote",      "demote",   "notify",
                           "validate-all", "reload-agent", "meta-data"};
    for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
        assert_non_null(ocf_action_find(known[i]));
    assert_null(ocf_action_find("reload"));
    assert_int_equal(ocf_action_find("stop")->default_timeout_ms, 90000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(values_and_meta),
        cmocka_unit_test(clone_meta),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(config_required_and_absolute),
        cmocka_unit_test(dest_uri),
        cmocka_unit_test(templates),
        cmocka_unit_test(state_codes),
        cmocka_unit_test(config_error_codes),
        cmocka_unit_test(metadata_lists_every_parameter),
        cmocka_unit_test(actions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
