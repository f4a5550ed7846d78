/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One VM's commands, in front of the backend. ingestd validated each descriptor's form, but only this
 * process knows which handles the VM holds and how large each allocation is, so every handle is looked up
 * here and every range is checked against the real allocation and the data area, overflow-safe, before
 * the backend sees it. Launches live in executor-launch.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor-internal.h"
#include "log.h"
#include "proto/proto-validate.h"

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

int executor_init(Executor *e, uint32_t vm_id, const char *pool, uint64_t quota, const BackendOps *ops,
                  Backend *backend, uint8_t *data, uint64_t data_size)
{
        int r;

        *e = (Executor){.vm_id = vm_id, .pool = pool, .quota = quota, .ops = ops, .backend = backend,
                        .data = data, .data_size = data_size};
        e->builtin_functions = calloc(builtin_count() ? builtin_count() : 1, sizeof(uint64_t));
        if (!e->builtin_functions)
                return -ENOMEM;
        r = handle_table_new(0, 0, &e->handles);
        if (r < 0) {
                e->builtin_functions = mfree(e->builtin_functions);
                return r;
        }
        return 0;
}

void executor_done(Executor *e)
{
        HandleKind kind;
        void *object;

        while ((object = handle_table_pop(e->handles, &kind))) {
                if (kind == HANDLE_MEMORY) {
                        ExecMemory *m = object;

                        e->ops->mem_free(e->backend, m->object, m->size);
                        e->mem_used -= m->size;
                }
                free(object); /* modules and functions: the backend's objects go with its done() */
        }
        e->handles = handle_table_free(e->handles);
        e->builtin_functions = mfree(e->builtin_functions);
}

/* A refusal the VM caused: logged (the first EXECUTOR_REFUSALS_LOGGED, so a guest cannot flood the
 * journal), counted in STATS' errors by the caller. */
VgpuStatus executor_refuse(Executor *e, VgpuOpcode op, VgpuStatus s, const char *reason)
{
        if (e->refusals_logged < EXECUTOR_REFUSALS_LOGGED) {
                e->refusals_logged++;
                log_vm(LOG_NOTICE, e->vm_id, e->pool, NULL, "%s refused (%s): %s%s", strempty(vgpu_opcode_to_string(op)),
                       strempty(vgpu_status_to_string(s)), reason,
                       e->refusals_logged == EXECUTOR_REFUSALS_LOGGED ? " (further refusals are not logged)" : "");
        }
        return s;
}

uint8_t *executor_data_range(const Executor *e, uint64_t offset, uint64_t length)
{
        return vgpu_range_fits(offset, length, e->data_size) ? e->data + offset : NULL;
}

static VgpuStatus errno_to_status(int r)
{
        return r == -ENOMEM ? VGPU_STATUS_OUT_OF_MEMORY : VGPU_STATUS_DEVICE_ERROR;
}

static VgpuStatus op_mem_alloc(Executor *e, uint64_t size, uint64_t *ret)
{
        _cleanup_free_ ExecMemory *m = NULL;
        int r;

        /* Written as a subtraction so that nothing can overflow: mem_used <= quota holds throughout. */
        if (e->quota != 0 && size > e->quota - e->mem_used)
                return executor_refuse(e, VGPU_OP_MEM_ALLOC, VGPU_STATUS_QUOTA_EXCEEDED, "the VM's memory quota has no room");
        m = calloc(1, sizeof(*m));
        if (!m)
                return VGPU_STATUS_OUT_OF_MEMORY;
        r = e->ops->mem_alloc(e->backend, size, &m->object);
        if (r < 0)
                return executor_refuse(e, VGPU_OP_MEM_ALLOC, errno_to_status(r), "the backend could not allocate");
        m->size = size;
        r = handle_issue(e->handles, HANDLE_MEMORY, m, ret);
        if (r < 0) {
                e->ops->mem_free(e->backend, m->object, m->size);
                return executor_refuse(e, VGPU_OP_MEM_ALLOC, VGPU_STATUS_OUT_OF_MEMORY, "the handle table is full");
        }
        e->mem_used += size;
        TAKE_PTR(m);
        return VGPU_STATUS_OK;
}

static VgpuStatus op_mem_free(Executor *e, uint64_t handle)
{
        ExecMemory *m = handle_release(e->handles, handle, HANDLE_MEMORY);

        if (!m)
                return executor_refuse(e, VGPU_OP_MEM_FREE, VGPU_STATUS_NO_SUCH_HANDLE, "not a live memory handle of this VM");
        e->ops->mem_free(e->backend, m->object, m->size); /* zeroes it */
        e->mem_used -= m->size;
        free(m);
        return VGPU_STATUS_OK;
}

/* A device range: a live allocation of this VM, and [offset, offset + length) inside it. */
VgpuStatus executor_memory_range(Executor *e, VgpuOpcode op, uint64_t handle, uint64_t offset, uint64_t length,
                                 ExecMemory **ret)
{
        ExecMemory *m = handle_lookup(e->handles, handle, HANDLE_MEMORY);

        if (!m)
                return executor_refuse(e, op, VGPU_STATUS_NO_SUCH_HANDLE, "not a live memory handle of this VM");
        if (!vgpu_range_fits(offset, length, m->size))
                return executor_refuse(e, op, VGPU_STATUS_OUT_OF_BOUNDS, "the range passes the end of the allocation");
        *ret = m;
        return VGPU_STATUS_OK;
}

static VgpuStatus op_copy_host(Executor *e, const VgpuRequest *q)
{
        ExecMemory *m;
        uint8_t *data;
        VgpuStatus s;
        int r;

        s = executor_memory_range(e, q->opcode, q->u.copy_host.handle, q->u.copy_host.offset,
                                  q->u.copy_host.data.length, &m);
        if (s != VGPU_STATUS_OK)
                return s;
        data = executor_data_range(e, q->u.copy_host.data.offset, q->u.copy_host.data.length);
        if (!data)
                return executor_refuse(e, q->opcode, VGPU_STATUS_OUT_OF_BOUNDS, "the range passes the end of the data area");
        if (q->opcode == VGPU_OP_COPY_H2D)
                r = e->ops->copy_h2d(e->backend, m->object, q->u.copy_host.offset, data, q->u.copy_host.data.length);
        else
                r = e->ops->copy_d2h(e->backend, data, m->object, q->u.copy_host.offset, q->u.copy_host.data.length);
        return r < 0 ? executor_refuse(e, q->opcode, errno_to_status(r), "the backend failed the copy") : VGPU_STATUS_OK;
}

static VgpuStatus op_copy_d2d(Executor *e, const VgpuRequest *q)
{
        ExecMemory *dst, *src;
        VgpuStatus s;
        int r;

        s = executor_memory_range(e, q->opcode, q->u.copy_d2d.dst_handle, q->u.copy_d2d.dst_offset,
                                  q->u.copy_d2d.length, &dst);
        if (s != VGPU_STATUS_OK)
                return s;
        s = executor_memory_range(e, q->opcode, q->u.copy_d2d.src_handle, q->u.copy_d2d.src_offset,
                                  q->u.copy_d2d.length, &src);
        if (s != VGPU_STATUS_OK)
                return s;
        r = e->ops->copy_d2d(e->backend, dst->object, q->u.copy_d2d.dst_offset, src->object, q->u.copy_d2d.src_offset,
                             q->u.copy_d2d.length);
        return r < 0 ? executor_refuse(e, q->opcode, errno_to_status(r), "the backend failed the copy") : VGPU_STATUS_OK;
}

static VgpuStatus op_memset(Executor *e, const VgpuRequest *q)
{
        uint8_t es = q->u.memset.element_size;
        ExecMemory *m;
        VgpuStatus s;
        int r;

        /* The validator checked this form; the backend's loop relies on it, so it is checked where it is used. */
        if ((es != 1 && es != 2 && es != 4) || q->u.memset.offset % es || q->u.memset.length % es)
                return executor_refuse(e, q->opcode, VGPU_STATUS_INVALID_ARGUMENT, "offset and length must be multiples of the element size");
        s = executor_memory_range(e, q->opcode, q->u.memset.handle, q->u.memset.offset, q->u.memset.length, &m);
        if (s != VGPU_STATUS_OK)
                return s;
        r = e->ops->memset(e->backend, m->object, q->u.memset.offset, q->u.memset.length, q->u.memset.value, es);
        return r < 0 ? executor_refuse(e, q->opcode, errno_to_status(r), "the backend failed the memset") : VGPU_STATUS_OK;
}

static VgpuStatus op_stats(Executor *e, const VgpuRequest *q)
{
        uint8_t *out = executor_data_range(e, q->u.stats.out.offset, q->u.stats.out.length);
        VgpuStats st = {
                .mem_used = e->mem_used,
                .mem_quota = e->quota,
                .requests = e->requests,
                .errors = e->errors,
                .queue_wait_ns = e->queue_wait_ns,
                .exec_ns = e->exec_ns,
                .priority = e->priority,
        };

        if (!out || q->u.stats.out.length < sizeof(st))
                return executor_refuse(e, q->opcode, VGPU_STATUS_OUT_OF_BOUNDS, "the stats do not fit the given range");
        memcpy(out, &st, sizeof(st));
        return VGPU_STATUS_OK;
}

static VgpuStatus op_hello(_unused_ Executor *e, const VgpuRequest *q, VgpuCompletionDesc *c)
{
        uint16_t version = 0;
        VgpuStatus s = vgpu_hello_negotiate(q->u.hello.version_min, q->u.hello.version_max, &version);

        c->u.hello.version = version;
        c->u.hello.version_min = VGPU_PROTOCOL_VERSION_MIN;
        c->u.hello.features = 0; /* none defined in version 1 */
        return s;
}

static VgpuStatus dispatch(Executor *e, const VgpuRequest *q, VgpuCompletionDesc *c)
{
        switch (q->opcode) {
        case VGPU_OP_HELLO:
                return op_hello(e, q, c);
        case VGPU_OP_MEM_ALLOC:
                return op_mem_alloc(e, q->u.mem_alloc.size, &c->u.handle);
        case VGPU_OP_MEM_FREE:
                return op_mem_free(e, q->u.mem_free.handle);
        case VGPU_OP_COPY_H2D:
        case VGPU_OP_COPY_D2H:
                return op_copy_host(e, q);
        case VGPU_OP_COPY_D2D:
                return op_copy_d2d(e, q);
        case VGPU_OP_MEMSET:
                return op_memset(e, q);
        case VGPU_OP_MODULE_LOAD:
                return executor_module_load(e, q, &c->u.handle);
        case VGPU_OP_GET_FUNCTION:
                return executor_get_function(e, q, &c->u.handle);
        case VGPU_OP_LAUNCH:
                return executor_launch(e, q);
        case VGPU_OP_SYNC:
                return e->ops->sync(e->backend) < 0 ? VGPU_STATUS_DEVICE_ERROR : VGPU_STATUS_OK;
        case VGPU_OP_STATS:
                return op_stats(e, q);
        default:
                return VGPU_STATUS_UNKNOWN_OPCODE;
        }
}

void executor_execute(Executor *e, const VgpuHostRequest *hr, VgpuHostCompletion *ret)
{
        uint64_t start = now_ns();
        VgpuRequest q;
        VgpuStatus s;

        *ret = (VgpuHostCompletion){
                .cpl = {.seq = hr->req.seq, .opcode = hr->req.opcode},
                .vm_id = hr->vm_id,
                .tag = hr->tag,
                .generation = hr->generation,
        };
        if (hr->ingest_ns != 0 && hr->ingest_ns <= start)
                e->queue_wait_ns += start - hr->ingest_ns;
        e->priority = hr->priority;

        if (hr->vm_id != e->vm_id) {
                /* The scheduler is trusted, so this is its bug, not the guest's: refuse, loudly. */
                log_vm(LOG_ERR, e->vm_id, e->pool, NULL, "Refusing a request stamped for VM %u.", hr->vm_id);
                s = VGPU_STATUS_INVALID_ARGUMENT;
        } else {
                /* Validated again here, against the data area this process mapped: the one place a
                 * descriptor becomes a plain struct (proto-validate.h), whoever checked it before. */
                s = vgpu_request_validate(&hr->req, e->data_size, &q);
                if (s == VGPU_STATUS_OK)
                        s = dispatch(e, &q, &ret->cpl);
        }
        if (s != VGPU_STATUS_OK) {
                if (hr->req.opcode != VGPU_OP_HELLO)
                        ret->cpl.u.raw[0] = ret->cpl.u.raw[1] = 0;
                e->errors++;
        }
        ret->cpl.status = s;
        if (s != VGPU_STATUS_OK && e->ops->failed && e->ops->failed(e->backend))
                e->backend_failed = true;
        e->requests++;
        ret->exec_ns = now_ns() - start;
        e->exec_ns += ret->exec_ns;
}
