/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What vgpu-run prints: a few aligned lines for a person, or one JSON object for a script. */
#include <stdio.h>

#include "run.h"
#include "vgpu-util.h"

static void json_string(const char *s)
{
        putchar('"');
        for (; s && *s; s++) {
                unsigned char ch = (unsigned char)*s;

                if (ch == '"' || ch == '\\')
                        printf("\\%c", ch);
                else if (ch < 0x20)
                        printf("\\u%04x", ch);
                else
                        putchar(ch);
        }
        putchar('"');
}

static void json_shape(const NpyArray *a)
{
        putchar('[');
        for (uint32_t i = 0; i < a->rank; i++)
                printf("%s%llu", i ? "," : "", (unsigned long long)a->shape[i]);
        putchar(']');
}

static void print_report_json(const RunReport *rep)
{
        printf("{\"op\":");
        json_string(rep->kernel);
        printf(",\"status\":\"ok\",\"inputs\":[");
        for (unsigned i = 0; i < rep->n_inputs; i++) {
                printf("%s{\"name\":", i ? "," : "");
                json_string(rep->input_names[i]);
                printf(",\"path\":");
                json_string(rep->input_paths[i]);
                printf(",\"shape\":");
                json_shape(&rep->inputs[i]);
                putchar('}');
        }
        printf("],\"output\":{\"path\":");
        json_string(rep->output_path);
        printf(",\"shape\":");
        json_shape(&rep->output);
        printf("},\"upload_ms\":%.3f,\"kernel_ms\":%.3f,\"download_ms\":%.3f}\n", rep->upload_ms, rep->kernel_ms,
               rep->download_ms);
}

void print_report(const RunReport *rep, bool json)
{
        char shape[128];

        if (json) {
                print_report_json(rep);
                return;
        }
        printf("%s: OK\n", rep->kernel);
        for (unsigned i = 0; i < rep->n_inputs; i++)
                printf("  %-7s %-20s %s\n", rep->input_names[i],
                       npy_shape_to_string(&rep->inputs[i], shape, sizeof(shape)), rep->input_paths[i]);
        printf("  %-7s %-20s %s\n", "output", npy_shape_to_string(&rep->output, shape, sizeof(shape)),
               rep->output_path);
        printf("  time    upload %.3f ms, kernel %.3f ms, download %.3f ms\n", rep->upload_ms, rep->kernel_ms,
               rep->download_ms);
}

void print_failure(const char *op, const char *error, bool json)
{
        if (!json)
                return;
        printf("{\"op\":");
        json_string(op);
        printf(",\"status\":\"failed\",\"error\":");
        json_string(error);
        printf("}\n");
}

static const char *transport_name(VgpuTransportChoice t)
{
        return t == VGPU_CONNECT_LOCAL ? "local" : t == VGPU_CONNECT_XEN ? "xen" : "auto";
}

/* "vgpu_stub": the device's identity as an object; or null, with "vgpu_stub_error" saying why. */
static void json_stub(const VgpuStubInfo *stub, const char *stub_error)
{
        printf("\"vgpu_stub\":");
        if (!stub) {
                printf("null,\"vgpu_stub_error\":");
                json_string(stub_error);
                return;
        }
        printf("{\"pci_address\":");
        json_string(stub->pci_address);
        printf(",\"vm_id\":%u,\"pool_id\":", stub->vm_id);
        if (stub->pool_id[0])
                json_string(stub->pool_id);
        else
                printf("null");
        printf(",\"priority\":");
        if (stub->priority != VGPU_PRIORITY_NONE)
                json_string(vgpu_stub_priority_name(stub->priority));
        else
                printf("null");
        printf(",\"announced\":%s}", stub->status & 1 ? "true" : "false");
}

static void print_stub_text(const VgpuStubInfo *stub, const char *stub_error)
{
        if (!stub) {
                printf("vgpu-stub:  %s\n", strempty(stub_error));
                return;
        }
        printf("vgpu-stub:  %s: VM %u, pool %s, priority %s\n", stub->pci_address, stub->vm_id,
               stub->pool_id[0] ? stub->pool_id : "(not set)",
               stub->priority != VGPU_PRIORITY_NONE ? vgpu_stub_priority_name(stub->priority) : "(not set)");
}

/* info: NULL when no channel could be opened (error says why); stub: NULL when the vgpu-stub device could
 * not be read (stub_error says why). What is known is printed either way. */
void print_info(const VgpuClientInfo *info, const char *error, const VgpuStubInfo *stub, const char *stub_error,
                bool json)
{
        if (json) {
                if (!info) {
                        printf("{\"op\":\"info\",\"status\":\"failed\",\"error\":");
                        json_string(error);
                        putchar(',');
                        json_stub(stub, stub_error);
                        printf("}\n");
                        return;
                }
                printf("{\"vm_id\":%u,\"transport\":\"%s\",\"socket\":", info->vm_id, transport_name(info->transport));
                json_string(info->socket_path);
                printf(",\"protocol_version\":%u,\"host_version_min\":%u,\"requests\":%u,\"completions\":%u,"
                       "\"data_size\":%llu,",
                       info->protocol_version, info->host_version_min, info->requests, info->completions,
                       (unsigned long long)info->data_size);
                json_stub(stub, stub_error);
                printf("}\n");
                return;
        }
        if (!info) {
                printf("Channel:    none (%s)\n", strempty(error));
                print_stub_text(stub, stub_error);
                return;
        }
        if (info->vm_id)
                printf("VM:         %u\n", info->vm_id);
        else
                printf("VM:         not known here (an explicit --socket decides; the host knows it)\n");
        printf("Transport:  %s\n", transport_name(info->transport));
        printf("Socket:     %s\n", strempty(info->socket_path));
        printf("Protocol:   version %u (the host speaks %u and up)\n", info->protocol_version,
               info->host_version_min);
        printf("Channel:    %u request slots, %u completion slots, %llu MiB data area\n", info->requests,
               info->completions, (unsigned long long)(info->data_size >> 20));
        print_stub_text(stub, stub_error);
}
