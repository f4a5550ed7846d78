/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Random valid launches of every built-in over guarded buffers, for the built-ins' tests (builtin-launch.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "builtin-launch.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

uint32_t rnd(uint32_t lo, uint32_t hi)
{
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        return lo + (uint32_t) (rng % ((uint64_t) hi - lo + 1));
}

float rnd_float(void)
{
        return (float) rnd(0, 1 << 24) / (1 << 23) - 1.0f; /* [-1, 1] */
}

static void random_gemm(Launch *l)
{
        uint32_t m = rnd(1, 37), n = rnd(1, 150), k = rnd(1, 300);

        set(l, "M", m), set(l, "N", n), set(l, "K", k), set(l, "transA", rnd(0, 1)), set(l, "transB", rnd(0, 1));
        l->args[idx(l, "alpha")].f32 = rnd(0, 1) ? 1.0f : rnd_float();
        l->args[idx(l, "beta")].f32 = (float[]) { 0.0f, 1.0f, rnd_float() }[rnd(0, 2)];
        need(l, "A", (uint64_t) m * k), need(l, "B", (uint64_t) k * n), need(l, "C", (uint64_t) m * n);
}

static void random_binary(Launch *l)
{
        uint32_t rows = rnd(1, 20), cols = rnd(1, 40), mode = rnd(0, 3);

        set(l, "rows", rows), set(l, "cols", cols), set(l, "b_mode", mode);
        need(l, "A", rows * cols), need(l, "Y", rows * cols);
        need(l, "B", (uint32_t[]) { rows * cols, cols, rows, 1 }[mode]);
}

static void random_rows(Launch *l)
{
        uint32_t rows = rnd(1, 12), cols = rnd(1, 100);

        set(l, "rows", rows), set(l, "cols", cols), need(l, "X", rows * cols);
        need(l, "Y", streq(l->k->name, "sum_rows") ? rows : rows * cols);
}

static void random_conv2d(Launch *l)
{
        static const char *const dims[2][6] = { { "H", "KH", "stride_h", "pad_h", "dil_h" },
                                                { "W", "KW", "stride_w", "pad_w", "dil_w" } };
        uint32_t n = rnd(1, 2), c = rnd(1, 4), o = rnd(1, 4), in[2], out[2];

        for (int d = 0; d < 2; d++) {
                uint32_t k = rnd(1, 4), dil = rnd(1, 3), ext = dil * (k - 1) + 1, pad = rnd(0, ext - 1);
                uint32_t stride = rnd(1, 3);

                in[d] = (ext > 2 * pad ? ext - 2 * pad : 1) + rnd(0, 12);
                out[d] = out_extent(in[d], k, stride, pad, dil);
                set(l, dims[d][0], in[d]), set(l, dims[d][1], k), set(l, dims[d][2], stride);
                set(l, dims[d][3], pad), set(l, dims[d][4], dil);
        }
        set(l, "N", n), set(l, "C", c), set(l, "O", o), set(l, "has_bias", rnd(0, 1));
        need(l, "X", n * c * in[0] * in[1]), need(l, "weight", o * c * U(l, "KH") * U(l, "KW"));
        need(l, "bias", U(l, "has_bias") ? o : 0), need(l, "Y", n * o * out[0] * out[1]);
}

static void random_maxpool2d(Launch *l)
{
        static const char *const dims[2][4] = { { "H", "KH", "stride_h", "pad_h" }, { "W", "KW", "stride_w", "pad_w" } };
        uint32_t n = rnd(1, 2), c = rnd(1, 4), in[2], out[2];

        for (int d = 0; d < 2; d++) {
                uint32_t k = rnd(1, 4), pad = rnd(0, k / 2), stride = rnd(1, 3);

                in[d] = (k > 2 * pad ? k - 2 * pad : 1) + rnd(0, 12);
                out[d] = out_extent(in[d], k, stride, pad, 1);
                set(l, dims[d][0], in[d]), set(l, dims[d][1], k), set(l, dims[d][2], stride), set(l, dims[d][3], pad);
        }
        set(l, "N", n), set(l, "C", c);
        need(l, "X", n * c * in[0] * in[1]), need(l, "Y", n * c * out[0] * out[1]);
}

static void random_other(Launch *l)
{
        uint32_t n = rnd(1, 3), c = rnd(1, 5), hw = rnd(1, 50);

        if (streq(l->k->name, "relu")) {
                set(l, "n", hw * 10), need(l, "X", hw * 10), need(l, "Y", hw * 10);
                return;
        }
        set(l, "N", n), set(l, "C", c), set(l, "HW", hw); /* bias_add */
        need(l, "X", n * c * hw), need(l, "bias", c), need(l, "Y", n * c * hw);
}

/* A buffer of `bytes` that ends where a PROT_NONE page begins (at_end), or starts right after one. */
static void *guarded(Launch *l, size_t i, uint64_t bytes, bool at_end)
{
        size_t page = (size_t) sysconf(_SC_PAGESIZE), body = (bytes + page - 1) / page * page;
        uint8_t *base = mmap(NULL, body + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        ck_assert_msg(base != MAP_FAILED, "mmap failed");
        ck_assert_int_eq(mprotect(base, page, PROT_NONE), 0);
        ck_assert_int_eq(mprotect(base + page + body, page, PROT_NONE), 0);
        l->map[i] = base, l->map_len[i] = body + 2 * page;
        return at_end ? base + page + body - bytes : base + page;
}

Launch launch_new(const char *name, bool at_end)
{
        Launch l = { .k = builtin_find(name, strlen(name)) };

        ck_assert_msg(l.k, "no built-in %s", name);
        l.n = strlen(l.k->signature);
        if (streq(name, "gemm"))
                random_gemm(&l);
        else if (streq(name, "add") || streq(name, "mul"))
                random_binary(&l);
        else if (streq(name, "softmax") || streq(name, "sum_rows"))
                random_rows(&l);
        else if (streq(name, "conv2d"))
                random_conv2d(&l);
        else if (streq(name, "maxpool2d"))
                random_maxpool2d(&l);
        else
                random_other(&l);
        for (size_t i = 0; i < l.n; i++) {
                if (l.k->signature[i] != 'b')
                        continue;
                l.args[i].data = guarded(&l, i, l.floats[i] * sizeof(float), at_end);
                l.args[i].size = l.floats[i] * sizeof(float);
                for (uint64_t j = 0; j < l.floats[i]; j++)
                        ((float *) l.args[i].data)[j] = rnd_float() * 4.0f;
                if (streq(l.k->params[i], "Y") || streq(l.k->params[i], "C"))
                        l.out = i;
        }
        return l;
}

void launch_free(Launch *l)
{
        for (size_t i = 0; i < l->n; i++)
                if (l->map[i])
                        munmap(l->map[i], l->map_len[i]);
}

void launch_protect(Launch *l, int prot)
{
        size_t page = (size_t) sysconf(_SC_PAGESIZE);

        for (size_t i = 0; i < l->n; i++)
                if (l->map[i])
                        ck_assert_int_eq(mprotect((uint8_t *) l->map[i] + page, l->map_len[i] - 2 * page, prot), 0);
}

VgpuStatus launch_run(Launch *l, uint64_t begin, uint64_t end)
{
        const char *reason = NULL;
        VgpuStatus r = builtin_run(l->k, l->args, l->n, begin, end, &reason);

        ck_assert_msg(r == VGPU_STATUS_OK, "%s [%llu, %llu) refused: %s", l->k->name, (unsigned long long) begin,
                      (unsigned long long) end, reason);
        return r;
}

VgpuStatus validate(Launch *l)
{
        const char *reason = NULL;
        VgpuStatus r = builtin_validate(l->k, l->args, l->n, &reason);

        ck_assert_msg((r == VGPU_STATUS_OK) == (reason == NULL), "%s: a refusal without reason, or vice versa",
                      l->k->name);
        return r;
}
