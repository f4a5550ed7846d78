/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whether a GPU is usable here, asked of libcuda.so.1 through dlopen(): the gpu suite must start, and skip,
 * on machines with no NVIDIA driver. */
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpu-pair.h"

/* 0: usable; 1, 2, 3: the reasons below. */
static int probe(void)
{
        int (*init)(unsigned), (*count)(int *);
        void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        int n = 0;

        if (!cuda)
                return 1;
        init = (int (*)(unsigned))dlsym(cuda, "cuInit");
        count = (int (*)(int *))dlsym(cuda, "cuDeviceGetCount");
        if (!init || !count || init(0) != 0)
                return 2;
        return count(&n) != 0 || n < 1 ? 3 : 0;
}

bool gpu_available(const char **why)
{
        static const char *const reasons[] = {
                "",
                "libcuda.so.1 is not installed (no NVIDIA driver)",
                "cuInit() failed (no usable driver or GPU)",
                "the driver reports no CUDA device",
        };
        int status = 0;
        pid_t pid;

        /* Asked in a child: a process that initialized CUDA cannot use it in the children it forks, and
         * the callers fork theirs. */
        pid = fork();
        if (pid == 0)
                _exit(probe());
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) > 3) {
                *why = "the probe for a GPU failed";
                return false;
        }
        *why = reasons[WEXITSTATUS(status)];
        return WEXITSTATUS(status) == 0;
}
