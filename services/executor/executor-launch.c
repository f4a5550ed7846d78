/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Modules, functions and launches. vgpu.builtin is served here, by the core, for every backend: it is
 * "loaded" with the reserved PTX text "vgpu.builtin" and its functions are the built-in table, so a guest
 * names it the same way on the CPU and on a GPU. Everything a launch reads from the data area (the
 * parameter array, by-value structs) is copied into private memory once, then checked, then resolved. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "executor-internal.h"
#include "log.h"

bool executor_image_is_builtin(const uint8_t *image, uint64_t length)
{
        size_t n = strlen(EXECUTOR_BUILTIN_MODULE);

        /* The text, with or without the NUL that PTX text carries; nothing else. */
        if (length != n && !(length == n + 1 && image[n] == 0))
                return false;
        return memcmp(image, EXECUTOR_BUILTIN_MODULE, n) == 0;
}

static VgpuStatus builtin_module_handle(Executor *e, uint64_t *ret)
{
        ExecModule *m;

        /* One handle for the VM's lifetime: there is no MODULE_UNLOAD, so loading it again must not grow
         * the table. */
        if (e->builtin_module != 0) {
                *ret = e->builtin_module;
                return VGPU_STATUS_OK;
        }
        m = calloc(1, sizeof(*m));
        if (!m)
                return VGPU_STATUS_OUT_OF_MEMORY;
        m->builtin = true;
        if (handle_issue(e->handles, HANDLE_MODULE, m, &e->builtin_module) < 0) {
                free(m);
                return executor_refuse(e, VGPU_OP_MODULE_LOAD, VGPU_STATUS_OUT_OF_MEMORY, "the handle table is full");
        }
        *ret = e->builtin_module;
        return VGPU_STATUS_OK;
}

/* A refused module's reason (with a GPU backend: the JIT compiler's log) goes back to the guest over the
 * image it sent, NUL-terminated and cut to the image's length (docs/gpu.md): the completion has no room for
 * text, and those bytes are the guest's own, sent for this command. */
static void module_log_return(Executor *e, const VgpuRequest *q, const char *reason)
{
        uint8_t *shared = executor_data_range(e, q->u.module_load.image.offset, q->u.module_load.image.length);
        size_t n = strlen(strempty(reason));

        if (!shared || q->u.module_load.image.length == 0)
                return;
        if (n > q->u.module_load.image.length - 1)
                n = (size_t)q->u.module_load.image.length - 1;
        memcpy(shared, strempty(reason), n);
        shared[n] = 0;
}

VgpuStatus executor_module_load(Executor *e, const VgpuRequest *q, uint64_t *ret)
{
        const uint8_t *shared = executor_data_range(e, q->u.module_load.image.offset, q->u.module_load.image.length);
        uint64_t length = q->u.module_load.image.length;
        _cleanup_free_ uint8_t *image = NULL;
        _cleanup_free_ ExecModule *m = NULL;
        const char *reason = NULL;
        VgpuStatus s;

        if (!shared)
                return executor_refuse(e, q->opcode, VGPU_STATUS_OUT_OF_BOUNDS, "the image passes the end of the data area");
        /* One private copy: the guest may rewrite the data area while we look at it. */
        image = malloc(length);
        m = calloc(1, sizeof(*m));
        if (!image || !m)
                return VGPU_STATUS_OUT_OF_MEMORY;
        memcpy(image, shared, length);
        if (q->u.module_load.format == VGPU_MODULE_PTX && executor_image_is_builtin(image, length))
                return builtin_module_handle(e, ret);
        /* A shared pool's executors are MPS clients of one server: a guest kernel's fault there ends every
         * client's contexts, its neighbours' in-flight work included (measured), so only the built-ins run
         * in one, whatever the backend. */
        if (e->builtin_only) {
                module_log_return(e, q, EXECUTOR_SHARED_POOL_REFUSAL);
                return executor_refuse(e, q->opcode, VGPU_STATUS_NOT_SUPPORTED, EXECUTOR_SHARED_POOL_REFUSAL);
        }

        s = e->ops->module_load(e->backend, q->u.module_load.format, image, length, &m->object, &reason);
        if (s != VGPU_STATUS_OK) {
                module_log_return(e, q, reason);
                return executor_refuse(e, q->opcode, s, strempty(reason));
        }
        if (handle_issue(e->handles, HANDLE_MODULE, m, ret) < 0)
                /* The backend's module stays loaded until the executor ends: there is no unload op yet. */
                return executor_refuse(e, q->opcode, VGPU_STATUS_OUT_OF_MEMORY, "the handle table is full");
        TAKE_PTR(m);
        return VGPU_STATUS_OK;
}

static VgpuStatus builtin_function_handle(Executor *e, const char *name, size_t length, uint64_t *ret)
{
        const BuiltinKernel *k = builtin_find(name, length);
        ExecFunction *f;
        size_t i;

        if (!k)
                return executor_refuse(e, VGPU_OP_GET_FUNCTION, VGPU_STATUS_INVALID_ARGUMENT, "vgpu.builtin has no such kernel");
        for (i = 0; builtin_get(i) != k; i++)
                ;
        if (e->builtin_functions[i] == 0) {
                f = calloc(1, sizeof(*f));
                if (!f)
                        return VGPU_STATUS_OUT_OF_MEMORY;
                f->builtin = k;
                if (handle_issue(e->handles, HANDLE_FUNCTION, f, &e->builtin_functions[i]) < 0) {
                        free(f);
                        return executor_refuse(e, VGPU_OP_GET_FUNCTION, VGPU_STATUS_OUT_OF_MEMORY, "the handle table is full");
                }
        }
        *ret = e->builtin_functions[i];
        return VGPU_STATUS_OK;
}

VgpuStatus executor_get_function(Executor *e, const VgpuRequest *q, uint64_t *ret)
{
        const uint8_t *shared = executor_data_range(e, q->u.get_function.name.offset, q->u.get_function.name.length);
        ExecModule *m = handle_lookup(e->handles, q->u.get_function.module, HANDLE_MODULE);
        char name[VGPU_FUNCTION_NAME_MAX + 1];
        size_t length = (size_t)q->u.get_function.name.length;
        _cleanup_free_ ExecFunction *f = NULL;
        const char *reason = NULL;
        VgpuStatus s;

        if (!m)
                return executor_refuse(e, q->opcode, VGPU_STATUS_NO_SUCH_HANDLE, "not a live module handle of this VM");
        if (!shared || length > VGPU_FUNCTION_NAME_MAX)
                return executor_refuse(e, q->opcode, VGPU_STATUS_OUT_OF_BOUNDS, "the name passes the end of the data area");
        memcpy(name, shared, length);
        name[length] = 0;
        if (m->builtin)
                return builtin_function_handle(e, name, length, ret);

        f = calloc(1, sizeof(*f));
        if (!f)
                return VGPU_STATUS_OUT_OF_MEMORY;
        s = e->ops->get_function(e->backend, m->object, name, length, &f->object, &reason);
        if (s != VGPU_STATUS_OK)
                return executor_refuse(e, q->opcode, s, strempty(reason));
        if (handle_issue(e->handles, HANDLE_FUNCTION, f, ret) < 0)
                return executor_refuse(e, q->opcode, VGPU_STATUS_OUT_OF_MEMORY, "the handle table is full");
        TAKE_PTR(f);
        return VGPU_STATUS_OK;
}

/* A BUFFER parameter: a live allocation of this VM and an offset inside it (the end is allowed: a kernel
 * may take an end pointer; the built-ins then see 0 bytes and refuse what they would touch). */
static VgpuStatus resolve_buffer(Executor *e, const VgpuKernelParam *p, BackendArg *a)
{
        ExecMemory *m;
        VgpuStatus s = executor_memory_range(e, VGPU_OP_LAUNCH, p->value, p->offset, 0, &m);

        if (s != VGPU_STATUS_OK)
                return s;
        *a = (BackendArg){.kind = VGPU_PARAM_BUFFER, .size = 8, .memory = m->object, .offset = p->offset,
                          .extent = m->size - p->offset};
        return VGPU_STATUS_OK;
}

/* Built-ins: the parameters must match the signature letter for letter ('b' a buffer, 'u'/'i'/'f' a
 * 4-byte value), so a backend never has to guess what a parameter is. */
static VgpuStatus resolve_builtin(Executor *e, const BuiltinKernel *k, const VgpuKernelParam *p, uint16_t n,
                                  BackendArg *args)
{
        if (strlen(k->signature) != n)
                return executor_refuse(e, VGPU_OP_LAUNCH, VGPU_STATUS_INVALID_ARGUMENT, "the parameter count does not match the built-in's signature");
        for (uint16_t i = 0; i < n; i++) {
                if (k->signature[i] == 'b') {
                        VgpuStatus s;

                        if (p[i].kind != VGPU_PARAM_BUFFER)
                                return executor_refuse(e, VGPU_OP_LAUNCH, VGPU_STATUS_INVALID_ARGUMENT, "a buffer parameter is not a BUFFER");
                        s = resolve_buffer(e, &p[i], &args[i]);
                        if (s != VGPU_STATUS_OK)
                                return s;
                } else {
                        if (p[i].kind != VGPU_PARAM_VALUE || p[i].size != 4)
                                return executor_refuse(e, VGPU_OP_LAUNCH, VGPU_STATUS_INVALID_ARGUMENT, "a scalar parameter is not a 4-byte VALUE");
                        args[i] = (BackendArg){.kind = VGPU_PARAM_VALUE, .size = 4, .value = p[i].value};
                }
        }
        return VGPU_STATUS_OK;
}

/* A guest module's kernel: buffers resolved, values passed on, by-value structs copied into bytes (which
 * holds VGPU_LAUNCH_PARAMS_TOTAL_MAX: the validator bounds their sum). */
static VgpuStatus resolve_raw(Executor *e, const VgpuKernelParam *p, uint16_t n, BackendArg *args, uint8_t *bytes)
{
        size_t used = 0;

        for (uint16_t i = 0; i < n; i++) {
                const uint8_t *shared;
                VgpuStatus s;

                switch (p[i].kind) {
                case VGPU_PARAM_BUFFER:
                        s = resolve_buffer(e, &p[i], &args[i]);
                        if (s != VGPU_STATUS_OK)
                                return s;
                        break;
                case VGPU_PARAM_BYTES:
                        shared = executor_data_range(e, p[i].bytes.offset, p[i].bytes.length);
                        if (!shared || p[i].bytes.length > VGPU_LAUNCH_PARAMS_TOTAL_MAX - used)
                                return executor_refuse(e, VGPU_OP_LAUNCH, VGPU_STATUS_OUT_OF_BOUNDS, "a by-value parameter does not fit");
                        memcpy(bytes + used, shared, (size_t)p[i].bytes.length);
                        args[i] = (BackendArg){.kind = VGPU_PARAM_BYTES, .size = p[i].size, .bytes = bytes + used};
                        used += (size_t)p[i].bytes.length;
                        break;
                default:
                        args[i] = (BackendArg){.kind = VGPU_PARAM_VALUE, .size = p[i].size, .value = p[i].value};
                }
        }
        return VGPU_STATUS_OK;
}

typedef struct LaunchScratch {
        VgpuLaunchParam wire[VGPU_LAUNCH_PARAMS_MAX];
        VgpuKernelParam params[VGPU_LAUNCH_PARAMS_MAX];
        BackendArg args[VGPU_LAUNCH_PARAMS_MAX];
        uint8_t bytes[VGPU_LAUNCH_PARAMS_TOTAL_MAX];
} LaunchScratch;

VgpuStatus executor_launch(Executor *e, const VgpuRequest *q)
{
        ExecFunction *f = handle_lookup(e->handles, q->u.launch.function, HANDLE_FUNCTION);
        uint16_t n = q->u.launch.param_count;
        _cleanup_free_ LaunchScratch *x = NULL;
        const char *reason = NULL;
        const uint8_t *shared;
        VgpuStatus s;

        if (!f)
                return executor_refuse(e, q->opcode, VGPU_STATUS_NO_SUCH_HANDLE, "not a live function handle of this VM");
        shared = executor_data_range(e, q->u.launch.params.offset, (uint64_t)n * sizeof(VgpuLaunchParam));
        if (n > VGPU_LAUNCH_PARAMS_MAX || (n > 0 && !shared))
                return executor_refuse(e, q->opcode, VGPU_STATUS_OUT_OF_BOUNDS, "the parameter array passes the end of the data area");
        x = malloc(sizeof(*x)); /* about 54 KiB: too much for the stack of a command */
        if (!x)
                return VGPU_STATUS_OUT_OF_MEMORY;
        if (n > 0)
                memcpy(x->wire, shared, n * sizeof(VgpuLaunchParam)); /* the one copy out of shared memory */
        s = vgpu_launch_params_validate(x->wire, n, e->data_size, x->params);
        if (s != VGPU_STATUS_OK)
                return executor_refuse(e, q->opcode, s, "a parameter is malformed");
        s = f->builtin ? resolve_builtin(e, f->builtin, x->params, n, x->args) : resolve_raw(e, x->params, n, x->args, x->bytes);
        if (s != VGPU_STATUS_OK)
                return s;

        BackendLaunch l = {.builtin = f->builtin, .function = f->object, .shared_mem = q->u.launch.shared_mem,
                           .args = x->args, .n_args = n, .priority = e->priority};
        memcpy(l.grid, q->u.launch.grid, sizeof(l.grid));
        memcpy(l.block, q->u.launch.block, sizeof(l.block));
        s = e->ops->launch(e->backend, &l, &reason);
        return s == VGPU_STATUS_OK ? s : executor_refuse(e, q->opcode, s, strempty(reason));
}
