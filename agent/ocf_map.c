/* How guest states and configuration errors become OCF exit codes. */
#include <errno.h>

#include "agent_private.h"

enum ocf_rc ocf_rc_for_state(enum hv_state s)
{
    switch (s) {
    case HV_STATE_ABSENT:
    case HV_STATE_SHUTOFF:
        return OCF_NOT_RUNNING;
    case HV_STATE_RUNNING:
    case HV_STATE_PAUSED:
    case HV_STATE_SHUTDOWN:
    case HV_STATE_PMSUSPENDED:
        /* It still holds memory and may still write to its disks: it runs here. */
        return OCF_SUCCESS;
    case HV_STATE_CRASHED:
    case HV_STATE_INVALID:
        break;
    }
    return OCF_ERR_GENERIC;
}

enum ocf_rc ocf_rc_for_config_error(int code)
{
    switch (code) {
    case -ENOENT:
    case -ENOTDIR:
    case -EOPNOTSUPP:
        return OCF_ERR_INSTALLED;
    case -EACCES:
    case -EPERM:
    case -EIO:
    case -EFBIG:
        return OCF_ERR_ARGS;
    case -ENOMEM:
        return OCF_ERR_GENERIC;
    default:
        return OCF_ERR_CONFIGURED;
    }
}
