/* The error context every module fills and only agent/ and cli/ print. */
#include <stdio.h>
#include <string.h>

#include "vmha/common.h"

int vmha_err_set(struct vmha_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

const char *vmha_err_msg(const struct vmha_err *err)
{
    if (err->msg[0])
        return err->msg;
    return strerror(err->code < 0 ? -err->code : err->code);
}
