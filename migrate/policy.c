/* The migration-path policy (see include/vmha/migrate.h). Pure functions. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmha/migrate.h"

static bool known_family(const char *f)
{
    return strcmp(f, "qemu") == 0 || strcmp(f, "xen") == 0;
}

/* One decimal number of at most 5 digits, no sign, no leading junk. */
static const char *parse_part(const char *s, unsigned *ret)
{
    if (*s < '0' || *s > '9')
        return NULL;
    unsigned v = 0;
    int n = 0;
    for (; *s >= '0' && *s <= '9'; s++, n++) {
        if (n == 5)
            return NULL;
        v = v * 10 + (unsigned)(*s - '0');
    }
    *ret = v;
    return s;
}

int mig_level_parse(const char *text, const char *family_default, struct mig_level *ret,
                    struct vmha_err *err)
{
    memset(ret, 0, sizeof(*ret));
    if (!text)
        return vmha_err_set(err, -EINVAL, "no level given");
    const char *s = text;
    while (*s == ' ')
        s++;
    const char *space = strchr(s, ' ');
    const char *family = family_default;
    char fam[sizeof(ret->family)];
    if (space) {
        size_t n = (size_t)(space - s);
        if (n == 0 || n >= sizeof(fam))
            return vmha_err_set(err, -EINVAL, "level '%s': unknown hypervisor family", text);
        memcpy(fam, s, n);
        fam[n] = '\0';
        family = fam;
        s = space;
        while (*s == ' ')
            s++;
    }
    if (!family || !family[0])
        return vmha_err_set(
            err, -EINVAL, "level '%s' names no hypervisor family (write e.g. 'qemu 7.2.0')", text);
    if (!known_family(family))
        return vmha_err_set(err, -EINVAL,
                            "level '%s': unknown hypervisor family '%s' "
                            "(qemu or xen)",
                            text, family);
    unsigned part[3] = {0, 0, 0};
    int n = 0;
    for (;;) {
        const char *end = parse_part(s, &part[n]);
        if (!end)
            return vmha_err_set(err, -EINVAL,
                                "level '%s': the version must be "
                                "MAJOR.MINOR[.MICRO] in decimal",
                                text);
        n++;
        s = end;
        if (*s != '.' || n == 3)
            break;
        s++;
    }
    while (*s == ' ')
        s++;
    if (*s || n < 2)
        return vmha_err_set(err, -EINVAL,
                            "level '%s': the version must be MAJOR.MINOR[.MICRO] in decimal", text);
    snprintf(ret->family, sizeof(ret->family), "%s", family);
    ret->major = part[0];
    ret->minor = part[1];
    ret->micro = part[2];
    return 0;
}

void mig_level_format(const struct mig_level *l, char *buf, size_t size)
{
    if (!l->family[0])
        snprintf(buf, size, "%s", "");
    else
        snprintf(buf, size, "%s %u.%u.%u", l->family, l->major, l->minor, l->micro);
}

int mig_level_from_caps(const struct hv_caps *caps, struct mig_level *ret, struct vmha_err *err)
{
    memset(ret, 0, sizeof(*ret));
    if (!known_family(caps->family))
        return vmha_err_set(err, -EOPNOTSUPP, "no migration policy for hypervisor family '%s'",
                            caps->family);
    if (caps->hv_version == 0)
        return vmha_err_set(err, -EINVAL, "the %s hypervisor did not report its version",
                            caps->family);
    snprintf(ret->family, sizeof(ret->family), "%s", caps->family);
    ret->major = (unsigned)(caps->hv_version / 1000000);
    ret->minor = (unsigned)(caps->hv_version / 1000 % 1000);
    ret->micro = (unsigned)(caps->hv_version % 1000);
    return 0;
}

int mig_level_cmp(const struct mig_level *a, const struct mig_level *b)
{
    const unsigned x[3] = {a->major, a->minor, a->micro}, y[3] = {b->major, b->minor, b->micro};
    for (int i = 0; i < 3; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

unsigned mig_default_window(const char *family)
{
    (void)family;
    return 1;
}

const char *mig_window_unit(const char *family)
{
    return strcmp(family, "xen") == 0 ? "minor" : "major";
}

bool mig_list_has(const char *list, const char *word)
{
    size_t n = strlen(word);
    if (!list || n == 0)
        return false;
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

__attribute__((format(printf, 3, 4))) static bool deny(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return false;
}

/* The machine types the guest needs: the one it runs with and the one its config asks for. */
static bool machines_ok(const struct mig_need *need, const struct mig_host *host, const char *lv,
                        char *why, size_t size)
{
    const char *want[2] = {need->machine, need->config_machine};
    for (int i = 0; i < 2; i++) {
        if (!want[i] || !want[i][0])
            continue;
        if (!host->machines)
            return deny(why, size, "%s (%s) has not published its machine types", host->name, lv);
        if (!mig_list_has(host->machines, want[i]))
            return deny(why, size, "%s (%s) lacks machine type %s, which the guest %s", host->name,
                        lv, want[i], i == 0 ? "runs with" : "is configured for");
    }
    return true;
}

bool mig_allowed(const struct mig_need *need, const struct mig_host *host, char *why, size_t size)
{
    char lv[48], fl[48];
    mig_level_format(&host->level, lv, sizeof(lv));
    mig_level_format(&need->floor, fl, sizeof(fl));
    snprintf(why, size, "%s", "");
    const struct mig_level *h = &host->level, *f = &need->floor;
    if (!h->family[0])
        return deny(why, size, "%s has not published its level (is ocf:vmha:node running there?)",
                    host->name);
    const char *family = f->family[0] ? f->family : need->family;
    if (family && family[0] && strcmp(family, h->family) != 0)
        return deny(why, size, "%s runs %s, the guest needs %s", host->name, lv, family);
    if (!machines_ok(need, host, lv, why, size))
        return false;
    if (!f->family[0])
        return true; /* never ran anywhere: any host of its family */
    bool xen = strcmp(f->family, "xen") == 0;
    if (h->major == f->major && h->minor == f->minor)
        return true; /* one stable branch: both ways */
    if (mig_level_cmp(h, f) < 0)
        return deny(why, size,
                    "%s (%s) is below the guest's floor %s: a guest never moves to "
                    "an older release",
                    host->name, lv, fl);
    unsigned up;
    if (xen) {
        if (h->major != f->major)
            return deny(why, size,
                        "%s (%s) is a different Xen major release than the guest's "
                        "floor %s: no migration path crosses Xen major releases",
                        host->name, lv, fl);
        up = h->minor - f->minor;
    } else {
        up = h->major - f->major;
    }
    if (up > need->window)
        return deny(why, size,
                    "%s (%s) is %u %s release%s above the guest's floor %s, more than "
                    "migration_window=%u",
                    host->name, lv, up, mig_window_unit(f->family), up == 1 ? "" : "s", fl,
                    need->window);
    return true;
}
