/* Reading crm_mon's XML answer (cluster_resource_states_parse): the project's own sample, in
 * the schema Pacemaker 2.1 and 3.0 both publish. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmha/cluster.h"
#include "vmha/common.h"

static void reads_every_instance(void **state)
{
    char *xml = NULL;
    struct vmha_err e = {0};
    assert_int_equal(vmha_read_file(SRCDIR "/data/crm_mon.xml", 1 << 20, &xml, &e), 0);
    struct cluster_rsc_state *s = NULL;
    size_t n = 0;
    assert_int_equal(cluster_resource_states_parse(xml, strlen(xml), &s, &n, &e), 0);
    free(xml);
    assert_int_equal(n, 6);
    assert_string_equal(s[0].id, "fence");
    assert_string_equal(s[0].agent, "stonith:fence_vmha_lab");
    assert_string_equal(s[1].id, "g1");
    assert_true(s[1].failed);
    assert_false(s[1].managed);
    assert_string_equal(s[1].nodes[0], "node2");
    assert_string_equal(s[1].nodes[1], "node3");
    assert_null(s[1].nodes[2]);
    assert_string_equal(s[2].id, "ft1");
    assert_string_equal(s[2].role, "Promoted");
    assert_string_equal(s[2].nodes[0], "node1");
    assert_string_equal(s[3].role, "Unpromoted");
    assert_string_equal(s[3].nodes[0], "node2");
    assert_string_equal(s[4].role, "Stopped");
    assert_null(s[4].nodes[0]);
    assert_string_equal(s[5].id, "web-ip");
    assert_true(s[5].managed);
    assert_false(s[5].failed);
    cluster_resource_states_free(s, n);
}

static void refuses_what_is_not_its_answer(void **state)
{
    struct cluster_rsc_state *s = NULL;
    size_t n = 0;
    struct vmha_err e = {0};
    const char *bad[] = {"", "<pacemaker-result>", "<cib><resources/></cib>",
                         "<pacemaker-result><status code='0'/></pacemaker-result>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cluster_resource_states_parse(bad[i], strlen(bad[i]), &s, &n, &e),
                         -EPROTO);
        assert_non_null(strstr(e.msg, "crm_mon"));
    }
    const char *empty = "<pacemaker-result><resources/></pacemaker-result>";
    assert_int_equal(cluster_resource_states_parse(empty, strlen(empty), &s, &n, &e), 0);
    assert_int_equal(n, 0);
    cluster_resource_states_free(s, n);
}

/* Who is online, as node_state says it before Pacemaker 2.1.7 ("online", "true") and since
 * (the time it joined, "0" when down). */
static void node_states_of_both_releases(void **state)
{
    char path[] = "/tmp/vmha-cib-XXXXXX", cmd[512];
    assert_true(mkstemp(path) >= 0);
    snprintf(cmd, sizeof(cmd), "cp %s/data/cib-nodes.xml %s", SRCDIR, path);
    assert_int_equal(system(cmd), 0);
    setenv("CIB_file", path, 1);
    struct cluster_view v = {0};
    struct vmha_err e = {0};
    struct vmha_deadline dl = vmha_deadline_in(10000);
    int r = cluster_read(&dl, &v, &e);
    unlink(path);
    if (r < 0)
        fail_msg("cluster_read: %s", e.msg);
    const char *online[] = {"old-online", "new-online"};
    const char *offline[] = {"old-offline", "new-offline", "left-membership", "never-seen"};
    for (size_t i = 0; i < 2; i++) {
        assert_non_null(cluster_node_find(&v, online[i]));
        assert_true(cluster_node_find(&v, online[i])->online);
    }
    for (size_t i = 0; i < 4; i++) {
        assert_non_null(cluster_node_find(&v, offline[i]));
        assert_false(cluster_node_find(&v, offline[i])->online);
    }
    cluster_view_clear(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_every_instance),
        cmocka_unit_test(refuses_what_is_not_its_answer),
        cmocka_unit_test(node_states_of_both_releases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
