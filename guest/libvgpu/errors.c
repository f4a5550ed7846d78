/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Errors: negative errnos and host statuses in one int space, their sentences, and the per-thread detail
 * of the last failure (vgpu_last_error()). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client-internal.h"

/* Room for a JIT log: a refused module's reason comes back in it. */
static _Thread_local char last_error[2560];

void client_set_error(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(last_error, sizeof(last_error), fmt, ap);
        va_end(ap);
}

void client_clear_error(void)
{
        last_error[0] = '\0';
}

VGPU_API const char *vgpu_last_error(void)
{
        return last_error;
}

/* A status the host sent; one this library does not know still maps to a distinct error, but a value
 * far outside any status is a host talking nonsense. */
int error_from_status(uint32_t status)
{
        if (status == VGPU_STATUS_OK)
                return 0;
        if (status >= 1024)
                return -EPROTO;
        return VGPU_ERROR_STATUS(status);
}

VGPU_API int vgpu_error_status(int err)
{
        if (err <= -VGPU_ERROR_STATUS_BASE && err > -VGPU_ERROR_STATUS_BASE - 1024)
                return -err - VGPU_ERROR_STATUS_BASE;
        return -1;
}

static const char *const status_sentences[_VGPU_STATUS_MAX] = {
        [VGPU_STATUS_OK] = "success",
        [VGPU_STATUS_INVALID_ARGUMENT] = "the host refused an argument as invalid",
        [VGPU_STATUS_UNKNOWN_OPCODE] = "the host does not know this request",
        [VGPU_STATUS_NO_SUCH_HANDLE] = "no such handle (freed, never issued, or of the wrong kind)",
        [VGPU_STATUS_OUT_OF_MEMORY] = "the device is out of memory",
        [VGPU_STATUS_QUOTA_EXCEEDED] = "this VM's memory quota is exhausted",
        [VGPU_STATUS_OUT_OF_BOUNDS] = "a range lies past the end of an allocation or of the data area",
        [VGPU_STATUS_VERSION_MISMATCH] = "the host speaks no protocol version this library speaks",
        [VGPU_STATUS_BUSY] = "the host is busy, try again later",
        [VGPU_STATUS_DEVICE_ERROR] = "the device failed the command",
        [VGPU_STATUS_CHANNEL_CLOSED] = "the host closed the channel",
        [VGPU_STATUS_VM_MOVED] = "the VM moved to another pool: its device memory and modules are gone",
        [VGPU_STATUS_NOT_SUPPORTED] = "the host cannot serve this (e.g. no GPU for PTX)",
        [VGPU_STATUS_NOT_NEGOTIATED] = "a request before the protocol version was negotiated",
        [VGPU_STATUS_PROTOCOL_VIOLATION] = "the host found this client breaking the protocol",
        [VGPU_STATUS_STATE_LOST] = "the VM's executor ended: its device memory and modules are gone",
        [VGPU_STATUS_UNAVAILABLE] = "the VM's executor failed too often: the host stopped restarting it for a "
                                    "while",
};

VGPU_API const char *vgpu_strerror(int err)
{
        int s = vgpu_error_status(err);

        if (err == 0)
                return "success";
        if (s > 0)
                return s < _VGPU_STATUS_MAX ? status_sentences[s] : "unknown host status";
        switch (err) {
        case -ECONNRESET:
                return "the host hung up";
        case -EPROTO:
                return "the host broke the protocol";
        case -EMSGSIZE:
                return "a payload larger than the channel's data area";
        default:
                break;
        }
        if (err < 0 && err > -4096) {
                const char *d = strerrordesc_np(-err);

                return d ? d : "unknown error";
        }
        return "unknown error";
}

static const char *const op_names[_VGPU_OP_MAX] = {
        [VGPU_OP_HELLO] = "HELLO",
        [VGPU_OP_MEM_ALLOC] = "MEM_ALLOC",
        [VGPU_OP_MEM_FREE] = "MEM_FREE",
        [VGPU_OP_COPY_H2D] = "COPY_H2D",
        [VGPU_OP_COPY_D2H] = "COPY_D2H",
        [VGPU_OP_COPY_D2D] = "COPY_D2D",
        [VGPU_OP_MEMSET] = "MEMSET",
        [VGPU_OP_MODULE_LOAD] = "MODULE_LOAD",
        [VGPU_OP_GET_FUNCTION] = "GET_FUNCTION",
        [VGPU_OP_LAUNCH] = "LAUNCH",
        [VGPU_OP_SYNC] = "SYNC",
        [VGPU_OP_STATS] = "STATS",
};

const char *client_op_name(uint16_t opcode)
{
        if (opcode == 0 || opcode >= _VGPU_OP_MAX)
                return "unknown opcode";
        return op_names[opcode];
}
