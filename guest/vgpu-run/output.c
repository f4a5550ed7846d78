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

/* The vgpu-stub registers (vm_id, pool, priority) are read by a later release; say so plainly. */
void print_info(const VgpuClientInfo *info, bool json)
{
        if (json) {
                printf("{\"vm_id\":%u,\"transport\":\"%s\",\"socket\":", info->vm_id, transport_name(info->transport));
                json_string(info->socket_path);
                printf(",\"protocol_version\":%u,\"host_version_min\":%u,\"requests\":%u,\"completions\":%u,"
                       "\"data_size\":%llu,\"vgpu_stub\":null}\n",
                       info->protocol_version, info->host_version_min, info->requests, info->completions,
                       (unsigned long long)info->data_size);
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
        printf("vgpu-stub:  no vgpu-stub device found\n");
}
