/* The output layer of vmha's commands, as Pacemaker's pcmk__output_t keeps formats apart: a
 * command has one function per message and format (its text, its JSON), and the JSON ones
 * say what they found through the calls below; commas, quoting and nesting are this file's
 * business. The JSON is compact (no spaces), one document per command. */
#include <stdio.h>

#include "cli_private.h"

void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* A member's key (inside an object) or a comma (between list items). */
static void member(struct cli_json *j, const char *key)
{
    if (j->depth > 0 && !j->first[j->depth - 1])
        fputc(',', j->f);
    if (j->depth > 0)
        j->first[j->depth - 1] = false;
    if (key) {
        json_str(j->f, key);
        fputc(':', j->f);
    }
}

static void open_(struct cli_json *j, const char *key, char c)
{
    member(j, key);
    fputc(c, j->f);
    if (j->depth < (int)(sizeof(j->first) / sizeof(j->first[0])))
        j->first[j->depth] = true;
    j->depth++;
}

void json_open(struct cli_json *j, const char *key)
{
    open_(j, key, '{');
}

void json_open_list(struct cli_json *j, const char *key)
{
    open_(j, key, '[');
}

void json_close(struct cli_json *j, char c)
{
    fputc(c, j->f);
    if (j->depth > 0)
        j->depth--;
    if (j->depth == 0)
        fputc('\n', j->f);
}

void json_string(struct cli_json *j, const char *key, const char *v)
{
    member(j, key);
    if (v)
        json_str(j->f, v);
    else
        fputs("null", j->f);
}

void json_uint(struct cli_json *j, const char *key, unsigned long long v)
{
    member(j, key);
    fprintf(j->f, "%llu", v);
}

void json_bool(struct cli_json *j, const char *key, bool v)
{
    member(j, key);
    fputs(v ? "true" : "false", j->f);
}

void json_null(struct cli_json *j, const char *key)
{
    member(j, key);
    fputs("null", j->f);
}
