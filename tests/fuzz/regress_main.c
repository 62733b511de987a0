/* Runs a fuzz target without libFuzzer, so its seed corpus and its crash reproducers are tests
 * of the normal unit suite (under ASan and UBSan in CI, with any compiler):
 *   fuzz_X_regress [--known-open FILE] PATH...
 * calls LLVMFuzzerTestOneInput once on every file of each PATH (a file, or a directory:
 * its files in name order), each in a buffer of exactly its size, and reports one TAP test
 * point per file. A sanitizer's finding ends the process: the last "# running" line names
 * the input. Files listed in known-open.txt (see there) are skipped, with their finding. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

struct known {
    char path[PATH_MAX]; /* resolved */
    char what[512];
};

static struct known *known;
static size_t nknown, tests;

/* known-open.txt: "PATH SITE WHAT", PATH relative to the list's directory. */
static void read_known(const char *list)
{
    FILE *f = fopen(list, "re");
    if (!f) {
        printf("Bail out! cannot read %s: %s\n", list, strerror(errno));
        exit(1);
    }
    char base[PATH_MAX], line[1024];
    snprintf(base, sizeof(base), "%s", list);
    dirname(base);
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *p = line + strspn(line, " \t");
        if (!*p || *p == '#')
            continue;
        size_t plen = strcspn(p, " \t");
        char *rel = NULL;
        struct known *k = realloc(known, (nknown + 1) * sizeof(*k));
        if (!k || asprintf(&rel, "%s/%.*s", base, (int)plen, p) < 0)
            abort();
        known = k;
        k = &known[nknown];
        /* A reproducer that is gone cannot be skipped: it is simply not run. */
        bool found = realpath(rel, k->path) != NULL;
        free(rel);
        if (!found)
            continue;
        const char *what = p + plen;
        snprintf(k->what, sizeof(k->what), "%s", what + strspn(what, " \t"));
        nknown++;
    }
    fclose(f);
}

static const struct known *known_open(const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return NULL;
    for (size_t i = 0; i < nknown; i++)
        if (strcmp(known[i].path, real) == 0)
            return &known[i];
    return NULL;
}

static void run_file(const char *path)
{
    const struct known *k = known_open(path);
    if (k) {
        printf("ok %zu - %s # SKIP known open: %s\n", ++tests, path, k->what);
        return;
    }
    FILE *f = fopen(path, "re");
    struct stat st;
    if (!f || fstat(fileno(f), &st) < 0) {
        printf("not ok %zu - %s: %s\n", ++tests, path, strerror(errno));
        if (f)
            fclose(f);
        return;
    }
    size_t size = (size_t)st.st_size;
    /* Exactly the input's size, as libFuzzer hands it over: a read past it is caught. */
    uint8_t *data = malloc(size ? size : 1);
    if (!data || fread(data, 1, size, f) != size) {
        printf("not ok %zu - %s: cannot read it\n", ++tests, path);
        free(data);
        fclose(f);
        return;
    }
    fclose(f);
    printf("# running %s\n", path);
    fflush(stdout);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    printf("ok %zu - %s\n", ++tests, path);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int no_dots(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static void run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        /* A target without reproducers has no directory for them. */
        printf("# %s: %s\n", path, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(path);
        return;
    }
    struct dirent **names;
    int n = scandir(path, &names, no_dots, by_name);
    if (n < 0) {
        printf("not ok %zu - %s: %s\n", ++tests, path, strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        char file[PATH_MAX];
        snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
        run_file(file);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "--known-open") == 0) {
        read_known(argv[2]);
        i = 3;
    }
    for (; i < argc; i++)
        run_path(argv[i]);
    printf("1..%zu\n", tests);
    free(known);
    return 0;
}
