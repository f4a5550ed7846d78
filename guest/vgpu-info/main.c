/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-info: prints the identity the host gave this VM through the vgpu-stub device — vm_id, pool,
 * priority — as text or as one JSON object. Exit status: 0 shown, 1 no device (or unreadable), 2 usage. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "vgpu.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

static bool arg_json;

static void help(void)
{
        printf("vgpu-info [--json]\n\n"
               "Shows what the vgpu-stub device tells this VM: its vm_id, pool and priority, as the host's\n"
               "toolstack set them. Reads the device's registers through sysfs, so it needs root.\n\n"
               "  --json      print one JSON object instead of text\n"
               "  -h --help   this text\n\n"
               "Exit status: 0 shown, 1 no vgpu-stub device (or its registers could not be read), 2 usage.\n");
}

static int parse_argv(int argc, char **argv)
{
        static const struct option options[] = {
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'j': arg_json = true; break;
                case 'h': help(); return 0;
                default: return -1;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "vgpu-info: unexpected argument '%s'\n", argv[optind]);
                return -1;
        }
        return 1;
}

/* Every string printed here was validated by vgpu_stub_read() (ASCII letters, digits, '_', ':', '.'). */
static void print_json(const VgpuStubInfo *s)
{
        printf("{\"pci_address\":\"%s\",\"version\":%u,\"vm_id\":%u,", s->pci_address, s->version, s->vm_id);
        if (s->pool_id[0])
                printf("\"pool_id\":\"%s\",", s->pool_id);
        else
                printf("\"pool_id\":null,");
        if (s->priority != VGPU_PRIORITY_NONE)
                printf("\"priority\":\"%s\",", vgpu_stub_priority_name(s->priority));
        else
                printf("\"priority\":null,");
        printf("\"announced\":%s,\"ignored_writes\":%u,\"doorbell_count\":%u}\n", s->status & 1 ? "true" : "false",
               s->ignored_writes, s->doorbell_count);
}

static void print_text(const VgpuStubInfo *s)
{
        printf("Device:         %s (vgpu-stub, interface version %u)\n", s->pci_address, s->version);
        printf("VM:             %u\n", s->vm_id);
        printf("Pool:           %s\n", s->pool_id[0] ? s->pool_id : "(not set by the host)");
        printf("Priority:       %s\n",
               s->priority != VGPU_PRIORITY_NONE ? vgpu_stub_priority_name(s->priority) : "(not set by the host)");
        printf("Announced:      %s\n", s->status & 1 ? "yes (QEMU told the host's vgpu-ingestd)" : "no");
        printf("Ignored writes: %u\n", s->ignored_writes);
        printf("Doorbell:       %u\n", s->doorbell_count);
}

int main(int argc, char **argv)
{
        VgpuStubInfo stub;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
        r = vgpu_stub_read(&stub);
        if (r < 0) {
                fprintf(stderr, "vgpu-info: %s\n", vgpu_last_error());
                return EXIT_FAILED;
        }
        if (arg_json)
                print_json(&stub);
        else
                print_text(&stub);
        return EXIT_SUCCESS;
}
