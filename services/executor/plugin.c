/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Choosing the backend: the CUDA plugin is a dlopen()ed file so that the executor (and every service
 * that starts it) runs on hosts without an NVIDIA driver; there it falls back to the CPU backend and says
 * so in exactly one line (docs/architecture.md, "Names that every part relies on": GPU backend). */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>

#include "backend.h"
#include "log.h"

#ifndef VGPU_BACKEND_DIR
#define VGPU_BACKEND_DIR "/usr/local/lib/vgpu" /* meson passes $libdir/vgpu */
#endif

static const char *const choice_names[_BACKEND_CHOICE_MAX] = {
        [BACKEND_AUTO] = "auto",
        [BACKEND_CPU] = "cpu",
        [BACKEND_CUDA] = "cuda",
};

BackendChoice backend_choice_from_string(const char *s)
{
        for (int i = 0; i < _BACKEND_CHOICE_MAX; i++)
                if (streq_ptr(s, choice_names[i]))
                        return (BackendChoice)i;
        return _BACKEND_CHOICE_INVALID;
}

const char *backend_plugin_path(void)
{
        const char *e = getenv("VGPU_BACKEND_PATH");

        return !isempty(e) ? e : VGPU_BACKEND_DIR "/" VGPU_BACKEND_CUDA_FILE;
}

/* Loads and initializes the plugin. On failure *why is a sentence for the log (dlerror()'s text is
 * copied into why_buf, since the next dl call may overwrite it). */
static int plugin_load(const BackendConfig *config, const BackendOps **ret_ops, Backend **ret, void **ret_handle,
                       char *why_buf, size_t why_size, const char **why)
{
        const char *path = backend_plugin_path(), *reason = NULL;
        BackendInitFunc init;
        void *handle;
        int r;

        /* RTLD_LOCAL: the CUDA runtime's symbols stay inside the plugin; RTLD_NOW: a missing symbol fails
         * here, not at the first launch. */
        handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
                snprintf(why_buf, why_size, "cannot load %s: %s", path, strempty(dlerror()));
                *why = why_buf;
                return -ENOENT;
        }
        init = (BackendInitFunc)(uintptr_t)dlsym(handle, VGPU_BACKEND_CUDA_SYMBOL);
        if (!init) {
                snprintf(why_buf, why_size, "%s has no %s()", path, VGPU_BACKEND_CUDA_SYMBOL);
                *why = why_buf;
                dlclose(handle);
                return -ENOEXEC;
        }
        r = init(config, ret_ops, ret, &reason);
        if (r >= 0 && (!*ret_ops || (*ret_ops)->abi_version != VGPU_BACKEND_ABI_VERSION)) {
                if (*ret_ops && (*ret_ops)->done)
                        (*ret_ops)->done(*ret);
                reason = "it was built for another backend ABI version";
                r = -EPROTO;
        }
        if (r < 0) {
                snprintf(why_buf, why_size, "%s did not initialize: %s", path,
                         reason ? reason : "no reason given");
                *why = why_buf;
                dlclose(handle);
                return r;
        }
        *ret_handle = handle;
        return 0;
}

int backend_open(BackendChoice choice, const BackendConfig *config, const BackendOps **ret_ops, Backend **ret,
                 void **ret_handle)
{
        const char *why = NULL, *reason = NULL;
        char why_buf[512];
        int r;

        *ret_handle = NULL;
        if (choice == BACKEND_AUTO || choice == BACKEND_CUDA) {
                r = plugin_load(config, ret_ops, ret, ret_handle, why_buf, sizeof(why_buf), &why);
                if (r >= 0) {
                        log_vm(LOG_INFO, config->vm_id, config->pool, NULL, "Using the %s backend (%s).",
                               (*ret_ops)->name, backend_plugin_path());
                        return 0;
                }
                if (choice == BACKEND_CUDA) {
                        log_vm(LOG_ERR, config->vm_id, config->pool, NULL,
                               "The CUDA backend was requested (--backend=cuda) but %s.", why);
                        return r;
                }
        }
        r = backend_cpu_init(config, ret_ops, ret, &reason);
        if (r < 0) {
                log_vm(LOG_ERR, config->vm_id, config->pool, NULL, "The CPU backend failed to start: %s.", reason);
                return r;
        }
        if (choice == BACKEND_AUTO)
                log_vm(LOG_NOTICE, config->vm_id, config->pool, NULL,
                       "Using the CPU backend: the CUDA plugin is unavailable (%s).", why);
        else
                log_vm(LOG_INFO, config->vm_id, config->pool, NULL, "Using the CPU backend (--backend=cpu).");
        return 0;
}

void backend_close(const BackendOps *ops, Backend *b, void *handle)
{
        if (ops && b)
                ops->done(b);
        if (handle)
                dlclose(handle);
}
