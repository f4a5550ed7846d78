/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Modules and launches. A guest's module (PTX, cubin or fatbin) is loaded from the executor's private copy,
 * with the JIT's error log handed back on failure; its kernels are launched with exactly the parameters the
 * driver says they take, buffers resolved to device addresses. vgpu.builtin runs from the fatbin built into
 * this plugin, in slices of CUDA_SLICE_COST, each run to completion before the next. Every launch returns
 * when its kernel has finished, so a fault is reported on the LAUNCH that caused it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "cuda-builtin-args.h"
#include "cuda-internal.h"

#define FATBIN_MAGIC UINT32_C(0xBA55ED50)

_Static_assert(CUDA_BUILTIN_ARGS_MAX == BUILTIN_ARGS_MAX, "one argument layout on both sides");

int cuda_builtins_load_into(Backend *b, CUmodule *module, CUfunction **functions, const char **reason)
{
        char name[64], text[160];
        CUresult r;

        r = cuModuleLoadData(module, vgpu_cuda_builtins_fatbin);
        if (r != CUDA_SUCCESS) {
                *module = NULL;
                snprintf(b->log, sizeof(b->log), "the built-in kernels do not load on this GPU (%s)",
                         cuda_result_text(r, text, sizeof(text)));
                *reason = b->log;
                return -ENOEXEC;
        }
        *functions = calloc(builtin_count() ? builtin_count() : 1, sizeof(CUfunction));
        if (!*functions) {
                *reason = "out of memory";
                return -ENOMEM;
        }
        for (size_t i = 0; i < builtin_count(); i++) {
                snprintf(name, sizeof(name), "vgpu_builtin_%s", builtin_get(i)->name);
                if (cuModuleGetFunction(&(*functions)[i], *module, name) != CUDA_SUCCESS) {
                        *reason = "the plugin's built-in kernels do not match the executor's list";
                        return -ENOEXEC;
                }
        }
        return 0;
}

int cuda_builtins_load(Backend *b, const char **reason)
{
        return cuda_builtins_load_into(b, &b->builtins, &b->builtin_functions, reason);
}

void cuda_builtins_unload(Backend *b)
{
        if (b->builtins)
                (void)cuModuleUnload(b->builtins);
        b->builtins = NULL;
        free(b->builtin_functions);
        b->builtin_functions = NULL;
        while (b->functions) {
                CudaFunction *next = b->functions->next;

                free(b->functions->name);
                free(b->functions);
                b->functions = next;
        }
        while (b->modules) {
                CudaModule *next = b->modules->next;

                free(b->modules->image);
                free(b->modules);
                b->modules = next;
        }
}

static uint16_t get16(const uint8_t *p)
{
        uint16_t v;

        memcpy(&v, p, sizeof(v));
        return v;
}

static uint32_t get32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, sizeof(v));
        return v;
}

static uint64_t get64(const uint8_t *p)
{
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        return v;
}

/* [offset, offset + size) inside n bytes, overflow-safe. */
static bool fits(uint64_t offset, uint64_t size, uint64_t n)
{
        return offset <= n && size <= n - offset;
}

/* An ELF64 image whose headers, sections and segments all lie inside the bytes we hold: the driver takes
 * their offsets from the image and would otherwise read past our copy. */
static bool elf_fits(const uint8_t *p, uint64_t n)
{
        uint64_t phoff, shoff;
        uint16_t phentsize, phnum, shentsize, shnum;

        if (n < 64 || memcmp(p, "\177ELF", 4) != 0 || p[4] != 2 /* ELFCLASS64 */)
                return false;
        phoff = get64(p + 0x20), shoff = get64(p + 0x28);
        phentsize = get16(p + 0x36), phnum = get16(p + 0x38), shentsize = get16(p + 0x3a), shnum = get16(p + 0x3c);
        if ((phnum && (phentsize < 56 || !fits(phoff, (uint64_t)phentsize * phnum, n))) ||
            (shnum && (shentsize < 64 || !fits(shoff, (uint64_t)shentsize * shnum, n))))
                return false;
        for (uint16_t i = 0; i < shnum; i++) {
                const uint8_t *sh = p + shoff + (uint64_t)i * shentsize;

                if (get32(sh + 4) != 8 /* SHT_NOBITS */ && !fits(get64(sh + 0x18), get64(sh + 0x20), n))
                        return false;
        }
        for (uint16_t i = 0; i < phnum; i++) {
                const uint8_t *ph = p + phoff + (uint64_t)i * phentsize;

                if (!fits(get64(ph + 0x08), get64(ph + 0x20), n))
                        return false;
        }
        return true;
}

/* A fatbin: its header (magic, version, header size, size of what follows), then entries, each a header
 * (its own size at +4, its payload's at +8) and a payload, ending exactly where the header says. */
static bool fatbin_fits(const uint8_t *p, uint64_t n)
{
        uint64_t at, end;

        if (n < 16 || get32(p) != FATBIN_MAGIC || get16(p + 6) < 16 || !fits(get16(p + 6), get64(p + 8), n))
                return false;
        at = get16(p + 6);
        end = at + get64(p + 8);
        while (at < end) {
                uint64_t header, payload;

                if (!fits(at, 16, end))
                        return false;
                header = get32(p + at + 4), payload = get64(p + at + 8);
                if (header < 16 || !fits(at, header, end) || !fits(at + header, payload, end))
                        return false;
                at += header + payload;
        }
        return true;
}

/* The driver tells formats apart by their content, not by the format the guest named: the content must be
 * what was named, and whole. */
static const char *image_check(VgpuModuleFormat format, const uint8_t *image, uint64_t length)
{
        bool elf = length >= 4 && memcmp(image, "\177ELF", 4) == 0;
        bool fatbin = length >= 4 && get32(image) == FATBIN_MAGIC;

        switch (format) {
        case VGPU_MODULE_PTX:
                return elf || fatbin || !memchr(image, 0, length) ? "a PTX module must be NUL-terminated text" : NULL;
        case VGPU_MODULE_CUBIN:
                return elf_fits(image, length) ? NULL : "not a whole ELF64 cubin (a header, section or segment "
                                                        "lies past the image)";
        case VGPU_MODULE_FATBIN:
                return fatbin_fits(image, length) ? NULL : "not a whole fatbin (a header or entry lies past the image)";
        }
        return "unknown module format";
}

static VgpuStatus module_refused(Backend *b, CUresult r, const char *jit_log, const char **reason)
{
        char text[160];

        snprintf(b->log, sizeof(b->log), "the driver refused the module (%s)%s%s",
                 cuda_result_text(r, text, sizeof(text)), *jit_log ? ":\n" : "", jit_log);
        *reason = b->log;
        switch (r) {
        case CUDA_ERROR_INVALID_PTX:
        case CUDA_ERROR_INVALID_IMAGE:
        case CUDA_ERROR_INVALID_SOURCE:
        case CUDA_ERROR_INVALID_VALUE:
                return VGPU_STATUS_INVALID_ARGUMENT;
        case CUDA_ERROR_NO_BINARY_FOR_GPU:
        case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
        case CUDA_ERROR_JIT_COMPILER_NOT_FOUND:
        case CUDA_ERROR_JIT_COMPILATION_DISABLED:
                return VGPU_STATUS_NOT_SUPPORTED;
        case CUDA_ERROR_OUT_OF_MEMORY:
                return VGPU_STATUS_OUT_OF_MEMORY;
        default:
                (void)cuda_error(b, r, "cuModuleLoadDataEx");
                return VGPU_STATUS_DEVICE_ERROR;
        }
}

VgpuStatus cuda_module_load(Backend *b, VgpuModuleFormat format, const void *image, uint64_t length, void **ret,
                            const char **reason)
{
        static char jit_log[CUDA_LOG_MAX - 256]; /* the executor is single-threaded */
        CUjit_option options[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
        void *values[] = {jit_log, (void *)(uintptr_t)sizeof(jit_log)};
        const char *bad;
        CUmodule module;
        CudaModule *m;
        CUresult r;

        if (cuda_usable(b) < 0) {
                *reason = b->failure;
                return VGPU_STATUS_DEVICE_ERROR;
        }
        bad = image_check(format, image, length);
        if (bad) {
                *reason = bad;
                return VGPU_STATUS_INVALID_ARGUMENT;
        }
        jit_log[0] = 0;
        r = cuModuleLoadDataEx(&module, image, 2, options, values);
        jit_log[sizeof(jit_log) - 1] = 0;
        if (r != CUDA_SUCCESS)
                return module_refused(b, r, jit_log, reason);
        m = calloc(1, sizeof(*m));
        if (m && b->sm_limits) {
                /* A lane loads it again on its first launch there. */
                m->image = malloc(length);
                if (m->image) {
                        memcpy(m->image, image, length);
                        m->length = length;
                }
        }
        if (!m || (b->sm_limits && !m->image)) {
                free(m);
                (void)cuModuleUnload(module);
                return VGPU_STATUS_OUT_OF_MEMORY;
        }
        m->module = module;
        m->next = b->modules;
        b->modules = m;
        *ret = m;
        return VGPU_STATUS_OK;
}

VgpuStatus cuda_get_function(Backend *b, void *module, const char *name, size_t length, void **ret,
                             const char **reason)
{
        size_t offset, size, n = 0;
        CudaFunction *f;
        CUfunction fn;
        CUresult r;

        if (cuda_usable(b) < 0) {
                *reason = b->failure;
                return VGPU_STATUS_DEVICE_ERROR;
        }
        if (strlen(name) != length) {
                *reason = "a kernel name cannot contain NUL";
                return VGPU_STATUS_INVALID_ARGUMENT;
        }
        r = cuModuleGetFunction(&fn, ((CudaModule *)module)->module, name);
        if (r == CUDA_ERROR_NOT_FOUND) {
                *reason = "the module has no kernel of that name";
                return VGPU_STATUS_INVALID_ARGUMENT;
        }
        if (r != CUDA_SUCCESS) {
                (void)cuda_error(b, r, "cuModuleGetFunction");
                *reason = "the driver failed to look the kernel up";
                return VGPU_STATUS_DEVICE_ERROR;
        }
        while (n <= VGPU_LAUNCH_PARAMS_MAX && (r = cuFuncGetParamInfo(fn, n, &offset, &size)) == CUDA_SUCCESS)
                n++;
        /* The end of the list is INVALID_VALUE; anything else means the driver cannot say. */
        if (n <= VGPU_LAUNCH_PARAMS_MAX && r != CUDA_ERROR_INVALID_VALUE) {
                (void)cuda_error(b, r, "cuFuncGetParamInfo");
                *reason = "the driver cannot describe the kernel's parameters";
                return VGPU_STATUS_NOT_SUPPORTED;
        }
        if (n > VGPU_LAUNCH_PARAMS_MAX) {
                *reason = "the kernel takes more parameters than a launch can carry";
                return VGPU_STATUS_NOT_SUPPORTED;
        }
        f = malloc(sizeof(*f) + n * sizeof(uint32_t));
        if (!f)
                return VGPU_STATUS_OUT_OF_MEMORY;
        *f = (CudaFunction){.next = b->functions, .function = fn, .module = module, .name = strdup(name),
                            .n_params = (uint32_t)n};
        if (!f->name) {
                free(f);
                return VGPU_STATUS_OUT_OF_MEMORY;
        }
        b->functions = f;
        for (size_t i = 0; i < n; i++) {
                (void)cuFuncGetParamInfo(fn, i, &offset, &size);
                f->param_size[i] = (uint32_t)size;
        }
        *ret = f;
        return VGPU_STATUS_OK;
}

/* A launch that failed: the configuration (grid, block, shared memory, registers) is the guest's mistake;
 * anything else is the device's, and may have cost the context. */
static VgpuStatus launch_failed(Backend *b, CUresult r, const char *what, const char **reason)
{
        char text[160];

        switch (r) {
        case CUDA_ERROR_INVALID_VALUE:
        case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES:
        case CUDA_ERROR_INVALID_HANDLE:
                snprintf(b->log, sizeof(b->log), "the driver refused the launch configuration (%s)",
                         cuda_result_text(r, text, sizeof(text)));
                *reason = b->log;
                return VGPU_STATUS_INVALID_ARGUMENT;
        default:
                if (cuda_error(b, r, what) == -ENOMEM) {
                        *reason = "the device ran out of memory during the launch";
                        return VGPU_STATUS_OUT_OF_MEMORY;
                }
                snprintf(b->log, sizeof(b->log), "the kernel failed on the GPU (%s)%s",
                         cuda_result_text(r, text, sizeof(text)),
                         b->failed ? "; the VM's GPU context is lost and the executor ends" : "");
                *reason = b->log;
                return VGPU_STATUS_DEVICE_ERROR;
        }
}

/* A guest kernel: every parameter must have the size the kernel declares, buffers being 8-byte device
 * addresses, so the driver reads exactly the values we built and nothing beyond. */
static VgpuStatus launch_guest(Backend *b, const BackendLaunch *l, CudaLane *lane, const char **reason)
{
        CudaFunction *f = l->function;
        CUfunction fn = f->function;
        uint64_t slots[VGPU_LAUNCH_PARAMS_MAX];
        void *params[VGPU_LAUNCH_PARAMS_MAX];
        CUresult r;

        if (l->n_args != f->n_params) {
                snprintf(b->log, sizeof(b->log), "the kernel takes %u parameters, the launch passed %zu",
                         f->n_params, l->n_args);
                *reason = b->log;
                return VGPU_STATUS_INVALID_ARGUMENT;
        }
        for (size_t i = 0; i < l->n_args; i++) {
                const BackendArg *a = &l->args[i];

                if (a->size != f->param_size[i]) {
                        snprintf(b->log, sizeof(b->log), "parameter %zu has %u bytes, the kernel takes %u", i,
                                 a->size, f->param_size[i]);
                        *reason = b->log;
                        return VGPU_STATUS_INVALID_ARGUMENT;
                }
                switch (a->kind) {
                case VGPU_PARAM_BUFFER:
                        slots[i] = cuda_ptr(a->memory) + a->offset;
                        params[i] = &slots[i];
                        break;
                case VGPU_PARAM_BYTES:
                        params[i] = (void *)a->bytes;
                        break;
                default:
                        slots[i] = a->value; /* little-endian: the low a->size bytes come first */
                        params[i] = &slots[i];
                }
        }
        if (lane) {
                fn = cuda_lane_function(b, lane, f, reason);
                if (!fn)
                        return VGPU_STATUS_DEVICE_ERROR;
        }
        r = cuLaunchKernel(fn, l->grid[0], l->grid[1], l->grid[2], l->block[0], l->block[1], l->block[2],
                           l->shared_mem, NULL, params, NULL);
        if (r == CUDA_SUCCESS)
                r = cuCtxSynchronize();
        return r == CUDA_SUCCESS ? VGPU_STATUS_OK : launch_failed(b, r, "a guest kernel", reason);
}

/* (in + 2 pad - (dil (k - 1) + 1)) / stride + 1, as the built-ins' validation computed it. */
static uint64_t window_out(uint32_t in, uint32_t k, uint32_t stride, uint32_t pad, uint32_t dil)
{
        return ((uint64_t)in + 2 * (uint64_t)pad - ((uint64_t)dil * (k - 1) + 1)) / stride + 1;
}

/* Threads one work item of the kernel spreads over (0: one block per item). */
static uint64_t item_threads(const BuiltinKernel *k, const CudaBuiltinArgs *a)
{
        const uint32_t *v = a->val;

        if (!strcmp(k->name, "gemm"))
                return v[4]; /* N */
        if (!strcmp(k->name, "add") || !strcmp(k->name, "mul"))
                return v[4]; /* cols */
        if (!strcmp(k->name, "bias_add"))
                return v[5]; /* HW */
        if (!strcmp(k->name, "conv2d"))
                return window_out(v[6], v[9], v[11], v[13], v[15]) * window_out(v[7], v[10], v[12], v[14], v[16]);
        if (!strcmp(k->name, "maxpool2d"))
                return window_out(v[4], v[6], v[8], v[10], 1) * window_out(v[5], v[7], v[9], v[11], 1);
        if (!strcmp(k->name, "softmax") || !strcmp(k->name, "sum_rows"))
                return 0;
        return 1; /* relu */
}

static VgpuStatus launch_builtin(Backend *b, const BackendLaunch *l, CudaLane *lane, const char **reason)
{
        CUfunction *functions = lane ? lane->builtin_functions : b->builtin_functions;
        BuiltinArg check[BUILTIN_ARGS_MAX] = {};
        CudaBuiltinArgs a = {};
        uint64_t items, cost, per_slice, threads;
        void *params[] = {&a};
        size_t index = 0;
        VgpuStatus s;

        if (l->n_args > BUILTIN_ARGS_MAX) {
                *reason = "too many parameters for a built-in";
                return VGPU_STATUS_INVALID_ARGUMENT;
        }
        for (size_t i = 0; i < l->n_args; i++) {
                const BackendArg *arg = &l->args[i];

                if (arg->kind == VGPU_PARAM_BUFFER) {
                        a.ptr[i] = cuda_ptr(arg->memory) + arg->offset;
                        /* The validators compare addresses and sizes, never dereference: device addresses
                         * serve as well as host ones (alignment, overlap). */
                        check[i].data = (void *)(uintptr_t)a.ptr[i];
                        check[i].size = arg->extent;
                } else
                        a.val[i] = check[i].u32 = (uint32_t)arg->value;
        }
        s = builtin_validate(l->builtin, check, l->n_args, reason);
        if (s != VGPU_STATUS_OK)
                return s;
        /* By name: l->builtin is the executor's table entry, this plugin holds its own copy of the table. */
        while (index < builtin_count() && strcmp(builtin_get(index)->name, l->builtin->name) != 0)
                index++;
        if (index == builtin_count()) {
                *reason = "the plugin has no GPU version of this built-in";
                return VGPU_STATUS_NOT_SUPPORTED;
        }

        items = l->builtin->work_items(check);
        cost = l->builtin->item_cost(check);
        threads = item_threads(l->builtin, &a);
        per_slice = cost == 0 || cost >= CUDA_SLICE_COST ? 1 : CUDA_SLICE_COST / cost;
        for (uint64_t begin = 0; begin < items;) {
                uint64_t end = items - begin > per_slice ? begin + per_slice : items;
                uint64_t blocks = threads ? ((end - begin) * threads + CUDA_BUILTIN_BLOCK - 1) / CUDA_BUILTIN_BLOCK
                                          : end - begin;
                CUresult r;

                if (b->config.should_stop && b->config.should_stop(b->config.userdata)) {
                        *reason = "the executor is shutting down";
                        return VGPU_STATUS_CHANNEL_CLOSED;
                }
                a.begin = begin, a.end = end;
                r = cuLaunchKernel(functions[index], (unsigned)(blocks < 65536 ? blocks : 65536), 1, 1,
                                   CUDA_BUILTIN_BLOCK, 1, 1, 0, NULL, params, NULL);
                /* Each slice finishes before the next starts: a bounded wait for anyone behind it. */
                if (r == CUDA_SUCCESS)
                        r = cuCtxSynchronize();
                if (r != CUDA_SUCCESS)
                        return launch_failed(b, r, "a built-in kernel", reason);
                begin = end;
        }
        return VGPU_STATUS_OK;
}

VgpuStatus cuda_launch(Backend *b, const BackendLaunch *l, const char **reason)
{
        CudaLane *lane;
        VgpuStatus s;

        if (cuda_usable(b) < 0) {
                *reason = b->failure;
                return VGPU_STATUS_DEVICE_ERROR;
        }
        lane = cuda_lane_enter(b, l->priority);
        s = l->builtin ? launch_builtin(b, l, lane, reason) : launch_guest(b, l, lane, reason);
        cuda_lane_leave(b, lane);
        return s;
}
