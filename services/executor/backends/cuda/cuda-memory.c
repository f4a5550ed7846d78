/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device memory and copies. Memory is zeroed when it is allocated and again before it is freed, so nothing
 * a VM wrote outlives its allocation. Copies run straight between the GPU and the VM's data area, which is
 * registered with the driver once (pinned: the GPU's DMA engine reads and writes it directly); where the
 * driver refuses that, they go through two pinned staging buffers, one filling while the other is in
 * flight. Everything runs on the context's default stream, so every command is ordered after the last. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "cuda-internal.h"

static int staging_setup(Backend *b)
{
        CUresult r;

        for (size_t i = 0; i < CUDA_STAGING_BUFFERS; i++) {
                r = cuMemAllocHost(&b->staging[i], CUDA_STAGING_SIZE);
                if (r != CUDA_SUCCESS)
                        return cuda_error(b, r, "cuMemAllocHost (staging)");
                r = cuEventCreate(&b->staging_free[i], CU_EVENT_DISABLE_TIMING);
                if (r != CUDA_SUCCESS)
                        return cuda_error(b, r, "cuEventCreate");
        }
        return 0;
}

int cuda_data_area_setup(Backend *b)
{
        const char *mode = getenv("VGPU_CUDA_COPY");
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), start, end;
        char text[160];
        CUresult r;

        b->data = b->config.data;
        b->data_size = b->config.data_size;
        if (!b->data || b->data_size == 0)
                return 0; /* no data area, no copies */
        if (!mode || strcmp(mode, "staged") != 0) {
                /* Whole pages: the area starts page-aligned in a channel the host formatted, but need not. */
                start = (uintptr_t)b->data & ~(page - 1);
                end = ((uintptr_t)b->data + b->data_size + page - 1) & ~(page - 1);
                r = cuMemHostRegister((void *)start, end - start, 0);
                if (r == CUDA_SUCCESS) {
                        b->registered = (void *)start;
                        cuda_log(b, LOG_INFO, "Copies run by DMA straight from the VM's data area (%llu MiB, "
                                 "registered with the driver).", (unsigned long long)(b->data_size >> 20));
                        return 0;
                }
                cuda_log(b, LOG_NOTICE, "The driver did not register the VM's data area (%s): copies are "
                         "staged through %d pinned buffers of %llu MiB.", cuda_result_text(r, text, sizeof(text)),
                         CUDA_STAGING_BUFFERS, (unsigned long long)(CUDA_STAGING_SIZE >> 20));
        } else
                cuda_log(b, LOG_NOTICE, "VGPU_CUDA_COPY=staged: copies are staged through %d pinned buffers of "
                         "%llu MiB.", CUDA_STAGING_BUFFERS, (unsigned long long)(CUDA_STAGING_SIZE >> 20));
        return staging_setup(b);
}

void cuda_data_area_done(Backend *b)
{
        if (b->registered)
                (void)cuMemHostUnregister(b->registered);
        b->registered = NULL;
        for (size_t i = 0; i < CUDA_STAGING_BUFFERS; i++) {
                if (b->staging_free[i])
                        (void)cuEventDestroy(b->staging_free[i]);
                if (b->staging[i]) {
                        /* It held the VM's bytes on their way. */
                        explicit_bzero(b->staging[i], CUDA_STAGING_SIZE);
                        (void)cuMemFreeHost(b->staging[i]);
                }
                b->staging_free[i] = NULL;
                b->staging[i] = NULL;
        }
}

int cuda_mem_alloc(Backend *b, uint64_t size, void **ret)
{
        CUdeviceptr p;
        CUresult r;

        if (cuda_usable(b) < 0)
                return -EIO;
        if (size == 0)
                return -EINVAL;
        r = cuMemAlloc(&p, size);
        if (r != CUDA_SUCCESS)
                return cuda_error(b, r, "cuMemAlloc");
        /* The driver makes no promise about what fresh device memory holds. */
        r = cuMemsetD8(p, 0, size);
        if (r != CUDA_SUCCESS) {
                int e = cuda_error(b, r, "cuMemsetD8 (zeroing a new allocation)");

                (void)cuMemFree(p);
                return e;
        }
        b->primary_dirty = true; /* the zeroing runs on: a launch in another context waits for it */
        *ret = (void *)(uintptr_t)p;
        return 0;
}

void cuda_mem_free(Backend *b, void *memory, uint64_t size)
{
        CUresult r;

        /* Zeroed, and the zeroing finished, before the driver may hand the bytes to anyone. After a fault
         * the context can do neither; its memory goes when the process ends. */
        if (cuda_usable(b) == 0) {
                r = cuMemsetD8(cuda_ptr(memory), 0, size);
                if (r == CUDA_SUCCESS)
                        r = cuCtxSynchronize();
                if (r != CUDA_SUCCESS)
                        (void)cuda_error(b, r, "cuMemsetD8 (zeroing before free)");
        }
        (void)cuMemFree(cuda_ptr(memory));
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
        return a < b ? a : b;
}

static int staged_h2d(Backend *b, CUdeviceptr dst, const uint8_t *src, uint64_t length)
{
        CUresult r = CUDA_SUCCESS;
        unsigned i = 0;

        for (uint64_t done = 0; done < length && r == CUDA_SUCCESS; done += CUDA_STAGING_SIZE, i ^= 1) {
                uint64_t n = min_u64(CUDA_STAGING_SIZE, length - done);

                r = cuEventSynchronize(b->staging_free[i]); /* the copy out of this buffer two rounds ago */
                if (r != CUDA_SUCCESS)
                        break;
                memcpy(b->staging[i], src + done, n);
                r = cuMemcpyHtoDAsync(dst + done, b->staging[i], n, NULL);
                if (r == CUDA_SUCCESS)
                        r = cuEventRecord(b->staging_free[i], NULL);
        }
        if (r == CUDA_SUCCESS)
                r = cuStreamSynchronize(NULL);
        return r == CUDA_SUCCESS ? 0 : cuda_error(b, r, "a staged host-to-device copy");
}

static CUresult staged_d2h_issue(Backend *b, CUdeviceptr src, uint64_t length, uint64_t chunk)
{
        uint64_t at = chunk * CUDA_STAGING_SIZE;
        CUresult r;

        r = cuMemcpyDtoHAsync(b->staging[chunk % 2], src + at, min_u64(CUDA_STAGING_SIZE, length - at), NULL);
        return r == CUDA_SUCCESS ? cuEventRecord(b->staging_free[chunk % 2], NULL) : r;
}

/* Chunk k+1 is on its way into one buffer while chunk k is copied out of the other. */
static int staged_d2h(Backend *b, uint8_t *dst, CUdeviceptr src, uint64_t length)
{
        uint64_t chunks = (length + CUDA_STAGING_SIZE - 1) / CUDA_STAGING_SIZE;
        CUresult r = staged_d2h_issue(b, src, length, 0);

        for (uint64_t k = 0; k < chunks && r == CUDA_SUCCESS; k++) {
                uint64_t at = k * CUDA_STAGING_SIZE;

                if (k + 1 < chunks)
                        r = staged_d2h_issue(b, src, length, k + 1);
                if (r == CUDA_SUCCESS)
                        r = cuEventSynchronize(b->staging_free[k % 2]);
                if (r == CUDA_SUCCESS)
                        memcpy(dst + at, b->staging[k % 2], min_u64(CUDA_STAGING_SIZE, length - at));
        }
        return r == CUDA_SUCCESS ? 0 : cuda_error(b, r, "a staged device-to-host copy");
}

int cuda_copy_h2d(Backend *b, void *dst, uint64_t dst_offset, const void *src, uint64_t length)
{
        CUresult r;

        if (cuda_usable(b) < 0)
                return -EIO;
        if (length == 0)
                return 0;
        if (!b->registered)
                return staged_h2d(b, cuda_ptr(dst) + dst_offset, src, length);
        /* From pinned memory the call returns when the data has arrived. */
        r = cuMemcpyHtoD(cuda_ptr(dst) + dst_offset, src, length);
        return r == CUDA_SUCCESS ? 0 : cuda_error(b, r, "cuMemcpyHtoD");
}

int cuda_copy_d2h(Backend *b, void *dst, const void *src, uint64_t src_offset, uint64_t length)
{
        CUresult r;

        if (cuda_usable(b) < 0)
                return -EIO;
        if (length == 0)
                return 0;
        if (!b->registered)
                return staged_d2h(b, dst, cuda_ptr(src) + src_offset, length);
        r = cuMemcpyDtoH(dst, cuda_ptr(src) + src_offset, length);
        return r == CUDA_SUCCESS ? 0 : cuda_error(b, r, "cuMemcpyDtoH");
}

/* Overlapping ranges of one allocation: through a device scratch buffer, chunk by chunk in the direction
 * that never overwrites a source byte before it was read (memmove), the scratch zeroed after use. */
static int copy_d2d_overlapping(Backend *b, CUdeviceptr dst, CUdeviceptr src, uint64_t length)
{
        uint64_t chunk = min_u64(length, UINT64_C(16) << 20);
        CUdeviceptr tmp;
        CUresult r;

        r = cuMemAlloc(&tmp, chunk);
        if (r != CUDA_SUCCESS)
                return cuda_error(b, r, "cuMemAlloc (copy scratch)");
        for (uint64_t done = 0; done < length && r == CUDA_SUCCESS; done += chunk) {
                uint64_t n = min_u64(chunk, length - done);
                uint64_t at = dst < src ? done : length - done - n;

                r = cuMemcpyDtoD(tmp, src + at, n);
                if (r == CUDA_SUCCESS)
                        r = cuMemcpyDtoD(dst + at, tmp, n);
        }
        if (r == CUDA_SUCCESS)
                r = cuMemsetD8(tmp, 0, chunk);
        if (r == CUDA_SUCCESS)
                r = cuCtxSynchronize();
        (void)cuMemFree(tmp);
        return r == CUDA_SUCCESS ? 0 : cuda_error(b, r, "an overlapping device-to-device copy");
}

int cuda_copy_d2d(Backend *b, void *dst, uint64_t dst_offset, const void *src, uint64_t src_offset, uint64_t length)
{
        CUdeviceptr d = cuda_ptr(dst) + dst_offset, s = cuda_ptr(src) + src_offset;
        CUresult r;

        if (cuda_usable(b) < 0)
                return -EIO;
        if (length == 0 || d == s)
                return 0;
        if (dst == src && d < s + length && s < d + length)
                return copy_d2d_overlapping(b, d, s, length);
        r = cuMemcpyDtoD(d, s, length);
        if (r == CUDA_SUCCESS)
                r = cuCtxSynchronize();
        return r == CUDA_SUCCESS ? 0 : cuda_error(b, r, "cuMemcpyDtoD");
}

int cuda_memset(Backend *b, void *memory, uint64_t offset, uint64_t length, uint32_t value, uint8_t element_size)
{
        CUdeviceptr p = cuda_ptr(memory) + offset;
        CUresult r;

        if (cuda_usable(b) < 0)
                return -EIO;
        switch (element_size) {
        case 1:
                r = cuMemsetD8(p, (unsigned char)value, length);
                break;
        case 2:
                r = cuMemsetD16(p, (unsigned short)value, length / 2);
                break;
        case 4:
                r = cuMemsetD32(p, value, length / 4);
                break;
        default:
                return -EINVAL;
        }
        if (r == CUDA_SUCCESS)
                r = cuCtxSynchronize();
        return r == CUDA_SUCCESS ? 0 : cuda_error(b, r, "cuMemset");
}
