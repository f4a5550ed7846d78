/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The public operations: each checks what it can before anything is sent, builds one descriptor (or a
 * chunk of them) and either waits for its answer or leaves it queued for vgpu_sync(). */
#include <errno.h>
#include <string.h>

#include "client-internal.h"
#include "vgpu-util.h"

_Static_assert(sizeof(VgpuParam) == sizeof(VgpuLaunchParam), "VgpuParam is the wire's VgpuLaunchParam");
_Static_assert(offsetof(VgpuParam, value) == offsetof(VgpuLaunchParam, value), "same layout");
_Static_assert(offsetof(VgpuParam, offset) == offsetof(VgpuLaunchParam, offset), "same layout");
_Static_assert(sizeof(VgpuStatsSnapshot) > 0 && sizeof(VgpuStats) == 64, "wire stats");

static int usable(VgpuClient *c)
{
        if (!c)
                return -EINVAL;
        client_clear_error();
        if (c->dead)
                client_set_error("%s", c->dead_message);
        return c->dead;
}

/* Sends d and waits for its answer; the answer's error names the request in vgpu_last_error(). */
static int call(VgpuClient *c, VgpuRequestDesc *d, SubmitSpec spec)
{
        int err = 0, r;
        int64_t seq;

        spec.ret_error = &err;
        seq = client_submit(c, d, &spec);
        if (seq < 0)
                return (int)seq;
        r = client_wait_seq(c, (uint64_t)seq);
        if (err == 0 && r < 0)
                err = r;
        if (err < 0 && !c->dead && c->host_reason_seq == (uint64_t)seq)
                client_set_error("%s (seq %lld) failed: %s: %s", client_op_name(d->opcode), (long long)seq,
                                 vgpu_strerror(err), c->host_reason);
        else if (err < 0 && !c->dead)
                client_set_error("%s (seq %lld) failed: %s", client_op_name(d->opcode), (long long)seq,
                                 vgpu_strerror(err));
        return err;
}

/* Queues d: its error, if any, comes back from vgpu_sync(). */
static int queue(VgpuClient *c, VgpuRequestDesc *d, const SubmitSpec *spec)
{
        int64_t seq = client_submit(c, d, spec);

        return seq < 0 ? (int)seq : 0;
}

VGPU_API int vgpu_mem_alloc(VgpuClient *c, uint64_t size, VgpuMemHandle *ret)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_MEM_ALLOC};
        int r = usable(c);

        if (r < 0)
                return r;
        if (!ret || size == 0 || size > VGPU_MEM_ALLOC_MAX)
                return -EINVAL;
        d.u.mem_alloc.size = size;
        return call(c, &d, (SubmitSpec){.ret_handle = ret});
}

VGPU_API int vgpu_mem_free(VgpuClient *c, VgpuMemHandle mem)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_MEM_FREE};
        int r = usable(c);

        if (r < 0)
                return r;
        if (mem == VGPU_HANDLE_NULL)
                return -EINVAL;
        d.u.mem_free.handle = mem;
        return queue(c, &d, &(SubmitSpec){});
}

/* Chunks of at most half the data area, so that one chunk is filled while the host copies the other. */
static uint64_t chunk_size(const VgpuClient *c, uint64_t left)
{
        uint64_t max = client_stage_max(c) / 2;

        if (max < 64)
                max = client_stage_max(c);
        return left < max ? left : max;
}

VGPU_API int vgpu_memcpy_htod(VgpuClient *c, VgpuMemHandle dst, uint64_t dst_offset, const void *src, size_t size)
{
        const uint8_t *p = src;
        int r = usable(c);

        if (r < 0)
                return r;
        if (dst == VGPU_HANDLE_NULL || !src || size == 0)
                return -EINVAL;
        for (uint64_t done = 0; done < size;) {
                uint64_t n = chunk_size(c, size - done);
                VgpuRequestDesc d = {.opcode = VGPU_OP_COPY_H2D};

                d.u.copy_host = (VgpuCopyHostArgs){.handle = dst, .offset = dst_offset + done, .length = n};
                r = queue(c, &d, &(SubmitSpec){.payload = p + done, .payload_size = n, .stage_size = n});
                if (r < 0)
                        return r;
                c->counters.chunks++;
                done += n;
        }
        return 0;
}

VGPU_API int vgpu_memcpy_dtoh(VgpuClient *c, void *dst, VgpuMemHandle src, uint64_t src_offset, size_t size)
{
        uint8_t *p = dst;
        int err = 0, r = usable(c);
        int64_t last = 0;

        if (r < 0)
                return r;
        if (src == VGPU_HANDLE_NULL || !dst || size == 0)
                return -EINVAL;
        /* Every chunk shares err; each is waited for before this returns, since they point at it. */
        for (uint64_t done = 0; done < size;) {
                uint64_t n = chunk_size(c, size - done);
                VgpuRequestDesc d = {.opcode = VGPU_OP_COPY_D2H};
                int64_t seq;

                d.u.copy_host = (VgpuCopyHostArgs){.handle = src, .offset = src_offset + done, .length = n};
                seq = client_submit(c, &d, &(SubmitSpec){.stage_size = n, .ret_error = &err, .copy_out = p + done});
                if (seq < 0) {
                        err = err ?: (int)seq;
                        break;
                }
                c->counters.chunks++;
                last = seq;
                done += n;
        }
        r = last > 0 ? client_wait_seq(c, (uint64_t)last) : 0;
        err = err ?: r;
        if (err < 0 && !c->dead)
                client_set_error("COPY_D2H failed: %s", vgpu_strerror(err));
        return err;
}

VGPU_API int vgpu_memcpy_dtod(VgpuClient *c, VgpuMemHandle dst, uint64_t dst_offset, VgpuMemHandle src,
                              uint64_t src_offset, uint64_t size)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_COPY_D2D};
        int r = usable(c);

        if (r < 0)
                return r;
        if (dst == VGPU_HANDLE_NULL || src == VGPU_HANDLE_NULL || size == 0)
                return -EINVAL;
        d.u.copy_d2d = (VgpuCopyD2DArgs){
                .dst_handle = dst, .dst_offset = dst_offset, .src_handle = src, .src_offset = src_offset, .length = size};
        return queue(c, &d, &(SubmitSpec){});
}

VGPU_API int vgpu_memset(VgpuClient *c, VgpuMemHandle mem, uint64_t offset, uint32_t value, uint8_t element_size,
                         uint64_t size)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_MEMSET};
        int r = usable(c);

        if (r < 0)
                return r;
        if (mem == VGPU_HANDLE_NULL || size == 0 || (element_size != 1 && element_size != 2 && element_size != 4) ||
            size % element_size != 0 || offset % element_size != 0)
                return -EINVAL;
        if (element_size < 4)
                value &= (UINT32_C(1) << (8 * element_size)) - 1; /* the wire wants the unused bytes 0 */
        d.u.memset = (VgpuMemsetArgs){
                .handle = mem, .offset = offset, .length = size, .value = value, .element_size = element_size};
        return queue(c, &d, &(SubmitSpec){});
}

VGPU_API int vgpu_module_load(VgpuClient *c, VgpuImageFormat format, const void *image, size_t size,
                              VgpuModuleHandle *ret)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_MODULE_LOAD};
        bool add_nul;
        int r = usable(c);

        if (r < 0)
                return r;
        if (!image || size == 0 || !ret || format < VGPU_IMAGE_PTX || format > VGPU_IMAGE_FATBIN)
                return -EINVAL;
        /* PTX is text, NUL-terminated within its length on the wire. */
        add_nul = format == VGPU_IMAGE_PTX && !memchr(image, '\0', size);
        if (size + add_nul > VGPU_MODULE_SIZE_MAX)
                return -EINVAL;
        if (size + add_nul > client_stage_max(c)) {
                client_set_error("a module of %zu bytes does not fit the data area (%llu bytes)", size,
                                 (unsigned long long)client_stage_max(c));
                return -EMSGSIZE;
        }
        d.u.module_load.format = (uint32_t)format;
        d.u.module_load.length = size + add_nul;
        return call(c, &d,
                    (SubmitSpec){.payload = image, .payload_size = size, .stage_size = size + add_nul,
                                 .zero_tail = add_nul, .ret_handle = ret, .reason_back = true});
}

/* The one place that knows how the host names its built-in module: adapt here if that convention moves. */
VGPU_API int vgpu_module_builtin(VgpuClient *c, VgpuModuleHandle *ret)
{
        static const char image[] = VGPU_BUILTIN_MODULE_NAME;

        return vgpu_module_load(c, VGPU_IMAGE_PTX, image, sizeof(image), ret);
}

VGPU_API int vgpu_get_function(VgpuClient *c, VgpuModuleHandle module, const char *name, VgpuFunctionHandle *ret)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_GET_FUNCTION};
        size_t n;
        int r = usable(c);

        if (r < 0)
                return r;
        if (module == VGPU_HANDLE_NULL || !name || !ret)
                return -EINVAL;
        n = strlen(name);
        if (n == 0 || n > VGPU_FUNCTION_NAME_MAX)
                return -EINVAL;
        d.u.get_function.module = module;
        d.u.get_function.name_length = (uint32_t)n;
        r = call(c, &d, (SubmitSpec){.payload = name, .payload_size = n, .stage_size = n, .ret_handle = ret});
        if (r < 0 && !c->dead)
                client_set_error("no function '%s' in module %#llx: %s", name, (unsigned long long)module,
                                 vgpu_strerror(r));
        return r;
}

VGPU_API int vgpu_launch(VgpuClient *c, VgpuFunctionHandle function, VgpuDim3 grid, VgpuDim3 block,
                         uint32_t shared_mem, const VgpuParam *params, size_t n)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_LAUNCH};
        int r = usable(c);

        if (r < 0)
                return r;
        if (function == VGPU_HANDLE_NULL || n > VGPU_LAUNCH_PARAMS_MAX || (n > 0 && !params))
                return -EINVAL;
        if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0)
                return -EINVAL;
        d.u.launch = (VgpuLaunchArgs){
                .function = function,
                .grid = {grid.x, grid.y, grid.z},
                .block = {block.x, block.y, block.z},
                .shared_mem = shared_mem,
                .param_count = (uint16_t)n,
        };
        return queue(c, &d,
                     &(SubmitSpec){.payload = params, .payload_size = n * sizeof(VgpuParam),
                                   .stage_size = n * sizeof(VgpuParam)});
}

VGPU_API VgpuParam vgpu_param_buffer(VgpuMemHandle mem, uint64_t offset)
{
        return (VgpuParam){.kind = VGPU_PARAM_BUFFER, .size = 8, .value = mem, .offset = offset};
}

VGPU_API VgpuParam vgpu_param_u32(uint32_t v)
{
        return (VgpuParam){.kind = VGPU_PARAM_VALUE, .size = 4, .value = v};
}

VGPU_API VgpuParam vgpu_param_i32(int32_t v)
{
        return vgpu_param_u32((uint32_t)v);
}

VGPU_API VgpuParam vgpu_param_f32(float v)
{
        uint32_t bits;

        memcpy(&bits, &v, sizeof(bits));
        return vgpu_param_u32(bits);
}

VGPU_API int vgpu_flush(VgpuClient *c)
{
        int r = usable(c);

        return r < 0 ? r : client_publish(c);
}

VGPU_API int vgpu_sync(VgpuClient *c)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_SYNC};
        int r = usable(c);

        if (r < 0)
                return r;
        r = call(c, &d, (SubmitSpec){});
        if (c->dead)
                return c->dead;
        c->reported = c->failure;
        c->failure = (VgpuFailure){};
        if (c->reported.error < 0) {
                client_set_error("%s (seq %llu) failed: %s", c->reported.op, (unsigned long long)c->reported.seq,
                                 vgpu_strerror(c->reported.error));
                return c->reported.error;
        }
        return r;
}

VGPU_API int vgpu_last_failure(const VgpuClient *c, VgpuFailure *ret)
{
        if (!c || !ret)
                return -EINVAL;
        *ret = c->reported;
        return 0;
}

VGPU_API int vgpu_stats(VgpuClient *c, VgpuStatsSnapshot *ret)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_STATS};
        VgpuStats s = {};
        int r = usable(c);

        if (r < 0)
                return r;
        if (!ret)
                return -EINVAL;
        d.u.stats.length = sizeof(s);
        r = call(c, &d, (SubmitSpec){.stage_size = sizeof(s), .copy_out = &s});
        if (r < 0)
                return r;
        *ret = c->counters;
        ret->mem_used = s.mem_used;
        ret->mem_quota = s.mem_quota;
        ret->host_requests = s.requests;
        ret->host_errors = s.errors;
        ret->queue_wait_ns = s.queue_wait_ns;
        ret->exec_ns = s.exec_ns;
        ret->priority = s.priority;
        return 0;
}
