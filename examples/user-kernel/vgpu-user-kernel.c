/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-user-kernel: a guest program that runs its developer's own CUDA C kernels (user-kernels.cu, compiled
 * to PTX) through libvgpu, using nothing but vgpu.h: connect, allocate, copy in, load the PTX, look the
 * kernels up, launch them with buffer handles and values (one of them a struct passed by value), copy the
 * results out and compare them with the same arithmetic done here. Prints one RESULT line; exit status 0
 * when every element agrees bit for bit, 1 otherwise.
 *
 * With --expect-refusal it checks the other side instead: a pool that runs no guest modules (a shared
 * pool) must refuse the module with NOT_SUPPORTED and its reason in vgpu_last_error(); the pool's
 * vgpu.builtin must still run. Exit status 0 when both hold.
 *
 *   vgpu-user-kernel [--vm-id N] [--expect-refusal] KERNELS.ptx */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vgpu.h"

#define SAXPY_N      1000003u /* not a multiple of the block: the kernel's bound check matters */
#define SAXPY_A      2.5f
#define SAXPY_BLOCK  256u
#define T_WIDTH      1000u
#define T_HEIGHT     777u
#define T_SCALE      3.0f
#define T_BLOCK      16u

/* The kernel's struct Shape2D, byte for byte: 8 bytes, passed as one 8-byte value parameter. */
typedef struct Shape2D {
        uint32_t width;
        uint32_t height;
} Shape2D;
_Static_assert(sizeof(Shape2D) == 8, "Shape2D must have the layout of the kernel's struct");

static uint32_t arg_vm_id;
static int arg_expect_refusal;
static const char *arg_ptx;

static int fail(const char *what, int r)
{
        fprintf(stderr, "vgpu-user-kernel: %s: %s (%s)\n", what, vgpu_strerror(r), vgpu_last_error());
        return 1;
}

/* A struct of 1, 2, 4 or 8 bytes by value: a value parameter of its size, its bytes in the low bytes of
 * `value` (the wire's little-endian layout, as the kernel reads its parameter). */
static VgpuParam param_struct(const void *s, uint32_t size)
{
        VgpuParam p = {.kind = 1 /* value */, .size = size};

        memcpy(&p.value, s, size);
        return p;
}

static char *read_file(const char *path, size_t *ret_size)
{
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        long n;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
                buf[n] = 0;
                *ret_size = (size_t)n + 1; /* PTX is text: its NUL goes with it */
        } else {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        return buf;
}

static double ms_since(const struct timespec *t0)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static size_t count_differences(const float *a, const float *b, size_t n)
{
        size_t d = 0;

        for (size_t i = 0; i < n; i++)
                d += memcmp(&a[i], &b[i], sizeof(float)) != 0;
        return d;
}

/* y = a x + y on the device, against the same float arithmetic here (the PTX is built without fused
 * multiply-adds, this file with -ffp-contract=off: both round after the multiply and after the add). */
static int run_saxpy(VgpuClient *c, VgpuModuleHandle mod, size_t *ret_diff)
{
        float *x = malloc(SAXPY_N * sizeof(float)), *y = malloc(SAXPY_N * sizeof(float)),
              *want = malloc(SAXPY_N * sizeof(float)), *got = malloc(SAXPY_N * sizeof(float));
        VgpuMemHandle dx = 0, dy = 0;
        VgpuFunctionHandle fn;
        int r;

        if (!x || !y || !want || !got) {
                r = -ENOMEM;
                goto out;
        }
        for (uint32_t i = 0; i < SAXPY_N; i++) {
                x[i] = (float)(i % 1024) * 0.125f - 17.0f;
                y[i] = 1.0f / (float)(i % 97 + 1);
                want[i] = SAXPY_A * x[i] + y[i];
        }
        if ((r = vgpu_get_function(c, mod, "saxpy", &fn)) < 0 ||
            (r = vgpu_mem_alloc(c, SAXPY_N * sizeof(float), &dx)) < 0 ||
            (r = vgpu_mem_alloc(c, SAXPY_N * sizeof(float), &dy)) < 0)
                goto out;
        vgpu_memcpy_htod(c, dx, 0, x, SAXPY_N * sizeof(float)); /* queued: errors come at the sync */
        vgpu_memcpy_htod(c, dy, 0, y, SAXPY_N * sizeof(float));
        VgpuParam p[] = {vgpu_param_u32(SAXPY_N), vgpu_param_f32(SAXPY_A), vgpu_param_buffer(dx, 0),
                         vgpu_param_buffer(dy, 0)};
        vgpu_launch(c, fn, VGPU_DIM3((SAXPY_N + SAXPY_BLOCK - 1) / SAXPY_BLOCK, 1, 1), VGPU_DIM3(SAXPY_BLOCK, 1, 1), 0,
                    p, 4);
        if ((r = vgpu_sync(c)) < 0 || (r = vgpu_memcpy_dtoh(c, got, dy, 0, SAXPY_N * sizeof(float))) < 0)
                goto out;
        *ret_diff = count_differences(want, got, SAXPY_N);
out:
        if (dx)
                vgpu_mem_free(c, dx);
        if (dy)
                vgpu_mem_free(c, dy);
        free(x), free(y), free(want), free(got);
        return r;
}

/* out = scale · inᵀ on a 2-D grid, the shape passed as a struct by value. */
static int run_transpose(VgpuClient *c, VgpuModuleHandle mod, size_t *ret_diff)
{
        const size_t n = (size_t)T_WIDTH * T_HEIGHT;
        float *in = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
        Shape2D shape = {.width = T_WIDTH, .height = T_HEIGHT};
        VgpuMemHandle din = 0, dout = 0;
        VgpuFunctionHandle fn;
        int r;

        if (!in || !want || !got) {
                r = -ENOMEM;
                goto out;
        }
        for (uint32_t y = 0; y < T_HEIGHT; y++)
                for (uint32_t x = 0; x < T_WIDTH; x++)
                        in[(size_t)y * T_WIDTH + x] = (float)y - (float)x / 7.0f;
        for (uint32_t y = 0; y < T_HEIGHT; y++)
                for (uint32_t x = 0; x < T_WIDTH; x++)
                        want[(size_t)x * T_HEIGHT + y] = in[(size_t)y * T_WIDTH + x] * T_SCALE;
        if ((r = vgpu_get_function(c, mod, "transpose_scale", &fn)) < 0 ||
            (r = vgpu_mem_alloc(c, n * sizeof(float), &din)) < 0 || (r = vgpu_mem_alloc(c, n * sizeof(float), &dout)) < 0)
                goto out;
        vgpu_memcpy_htod(c, din, 0, in, n * sizeof(float));
        VgpuParam p[] = {vgpu_param_buffer(din, 0), vgpu_param_buffer(dout, 0), param_struct(&shape, sizeof(shape)),
                         vgpu_param_f32(T_SCALE)};
        vgpu_launch(c, fn, VGPU_DIM3((T_WIDTH + T_BLOCK - 1) / T_BLOCK, (T_HEIGHT + T_BLOCK - 1) / T_BLOCK, 1),
                    VGPU_DIM3(T_BLOCK, T_BLOCK, 1), 0, p, 4);
        if ((r = vgpu_sync(c)) < 0 || (r = vgpu_memcpy_dtoh(c, got, dout, 0, n * sizeof(float))) < 0)
                goto out;
        *ret_diff = count_differences(want, got, n);
out:
        if (din)
                vgpu_mem_free(c, din);
        if (dout)
                vgpu_mem_free(c, dout);
        free(in), free(want), free(got);
        return r;
}

/* After a refusal: the pool's built-in kernels still run for this VM (add, 1 × 4). */
static int run_builtin_add(VgpuClient *c)
{
        const float a[4] = {1.5f, -2.0f, 3.25f, 0.0f}, b[4] = {0.5f, 2.0f, -1.25f, 7.0f};
        VgpuMemHandle da, db, dc;
        VgpuModuleHandle mod;
        VgpuFunctionHandle add;
        float got[4];
        int r;

        if ((r = vgpu_module_builtin(c, &mod)) < 0 || (r = vgpu_get_function(c, mod, "add", &add)) < 0 ||
            (r = vgpu_mem_alloc(c, sizeof(a), &da)) < 0 || (r = vgpu_mem_alloc(c, sizeof(b), &db)) < 0 ||
            (r = vgpu_mem_alloc(c, sizeof(got), &dc)) < 0)
                return r;
        vgpu_memcpy_htod(c, da, 0, a, sizeof(a));
        vgpu_memcpy_htod(c, db, 0, b, sizeof(b));
        VgpuParam p[] = {vgpu_param_buffer(da, 0), vgpu_param_buffer(db, 0), vgpu_param_buffer(dc, 0),
                         vgpu_param_u32(1), vgpu_param_u32(4), vgpu_param_u32(0)};
        vgpu_launch(c, add, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, p, 6);
        if ((r = vgpu_sync(c)) < 0 || (r = vgpu_memcpy_dtoh(c, got, dc, 0, sizeof(got))) < 0)
                return r;
        for (int i = 0; i < 4; i++)
                if (got[i] != a[i] + b[i])
                        return VGPU_E_DEVICE_ERROR;
        return 0;
}

static int parse_argv(int argc, char *argv[])
{
        static const struct option options[] = {
                {"vm-id", required_argument, NULL, 'v'},
                {"expect-refusal", no_argument, NULL, 'r'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'v':
                        arg_vm_id = (uint32_t)strtoul(optarg, NULL, 10);
                        break;
                case 'r':
                        arg_expect_refusal = 1;
                        break;
                case 'h':
                        printf("Usage: vgpu-user-kernel [--vm-id N] [--expect-refusal] KERNELS.ptx\n"
                               "Runs saxpy and transpose_scale from KERNELS.ptx (examples/user-kernel) on VM N's\n"
                               "channel (default: $VGPU_VM_ID) and compares them with the host's results.\n"
                               "--expect-refusal: the pool must refuse the module (a shared pool).\n");
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "vgpu-user-kernel: one PTX file expected; see --help.\n");
                return -EINVAL;
        }
        arg_ptx = argv[optind];
        return 1;
}

int main(int argc, char *argv[])
{
        size_t ptx_size = 0, saxpy_diff = 0, transpose_diff = 0;
        struct timespec t0;
        VgpuModuleHandle mod;
        VgpuClient *c;
        char *ptx;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r == 0 ? 0 : 2;
        ptx = read_file(arg_ptx, &ptx_size);
        if (!ptx) {
                fprintf(stderr, "vgpu-user-kernel: cannot read %s: %s\n", arg_ptx, strerror(errno ? errno : EIO));
                return 1;
        }
        r = vgpu_connect(&(VgpuConnectOptions){.vm_id = arg_vm_id}, &c);
        if (r < 0)
                return fail("connect", r);

        r = vgpu_module_load(c, VGPU_IMAGE_PTX, ptx, ptx_size, &mod);
        if (arg_expect_refusal) {
                if (r >= 0) {
                        fprintf(stderr, "vgpu-user-kernel: the module was loaded; a refusal was expected.\n");
                        return 1;
                }
                printf("REFUSED status=%s reason: %s\n", r == VGPU_E_NOT_SUPPORTED ? "not-supported" : "other",
                       vgpu_last_error());
                if (r != VGPU_E_NOT_SUPPORTED)
                        return fail("module load (expected NOT_SUPPORTED)", r);
                r = run_builtin_add(c);
                if (r < 0)
                        return fail("vgpu.builtin add after the refusal", r);
                printf("RESULT what=user-kernel-refused builtin_add=ok\n");
                vgpu_disconnect(c);
                free(ptx);
                return 0;
        }
        if (r < 0)
                return fail("module load", r);

        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = run_saxpy(c, mod, &saxpy_diff);
        if (r < 0)
                return fail("saxpy", r);
        r = run_transpose(c, mod, &transpose_diff);
        if (r < 0)
                return fail("transpose_scale", r);
        printf("RESULT what=user-kernel saxpy_n=%u saxpy_differ=%zu transpose=%ux%u transpose_differ=%zu ms=%.1f %s\n",
               SAXPY_N, saxpy_diff, T_WIDTH, T_HEIGHT, transpose_diff, ms_since(&t0),
               saxpy_diff == 0 && transpose_diff == 0 ? "ok (bit for bit equal to the host)" : "MISMATCH");
        vgpu_sync(c);
        vgpu_disconnect(c);
        free(ptx);
        return saxpy_diff == 0 && transpose_diff == 0 ? 0 : 1;
}
