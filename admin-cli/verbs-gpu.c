/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The GPU and IOMMU verbs answered by vgpu-iommud (org.vgpu.Iommu1): list-gpus, bind-gpu, unbind-gpu,
 * iommu-faults and iommu-setup. None of them starts vgpu-iommud; when it is not running they say so and
 * fail. The host is changed only by the service, which checks every refusal rule itself. */
#include <inttypes.h>

#include "admin.h"

static int add_gpu_row(Table *t, const BusDict *g)
{
        int64_t group = bus_dict_get_int(g, "iommu_group");
        const char *name = bus_dict_get_string(g, "device_name");
        int r;

        r = table_add(t, bus_dict_get_string(g, "address"));
        if (r >= 0)
                r = table_addf(t, "%04" PRIx64 ":%04" PRIx64, bus_dict_get_uint(g, "vendor_id"),
                               bus_dict_get_uint(g, "device_id"));
        if (r >= 0)
                r = table_add(t, dash_if_empty(bus_dict_get_string(g, "driver")));
        if (r >= 0)
                r = group < 0 ? table_add(t, "-") : table_addf(t, "%" PRId64, group);
        if (r >= 0)
                r = table_add(t, group < 0 ? "-" : bus_dict_get_bool(g, "group_viable") ? "yes" : "no");
        if (r >= 0)
                r = table_add(t, bus_dict_get_bool(g, "isolated") ? "yes" : "no");
        if (r >= 0)
                r = table_add(t, bus_dict_get_bool(g, "allowed_by_test_list") ? "TEST ALLOW-LIST"
                                 : bus_dict_get_bool(g, "boot_vga")            ? "host console"
                                                                       : "");
        if (r >= 0)
                r = table_add(t, dash_if_empty(name));
        return r;
}

static int print_gpu_table(const BusDictArray *gpus)
{
        static const char *const headers[] = {"ADDRESS", "ID",       "DRIVER", "GROUP",
                                              "VIABLE",  "ISOLATED", "NOTE",   "NAME"};
        _cleanup_(table_freep) Table *t = table_new(ELEMENTSOF(headers), headers);
        int r = 0;

        if (!t)
                return -ENOMEM;
        table_align_right(t, 3);
        for (size_t i = 0; i < gpus->n && r >= 0; i++)
                r = add_gpu_row(t, &gpus->items[i]);
        if (r >= 0 && gpus->n > 0)
                r = table_print(t, stdout);
        /* A non-viable group's reason is what an administrator needs next: say it under the table. */
        for (size_t i = 0; i < gpus->n && r >= 0 && arg_legend; i++) {
                const char *why = bus_dict_get_string(&gpus->items[i], "group_viable_reason");

                if (!isempty(why))
                        printf("%s: %s\n", bus_dict_get_string(&gpus->items[i], "address"), why);
        }
        return r;
}

int verb_list_gpus(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        _cleanup_bus_dict_array_ BusDictArray gpus = {0};
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = iommu_call(bus, "ListGpus", &reply, NULL);
        if (r >= 0)
                r = reply_read_dict_array(reply, &gpus.items, &gpus.n);
        if (r < 0)
                return r;
        return print_record_list(&gpus, &(RecordListFormat){.json_record = json_dict,
                                                            .print_table = print_gpu_table,
                                                            .singular = "GPU",
                                                            .plural = "GPUs"});
}

/* Prints the devices a bind or unbind moved: a JSON outcome, or one sentence. */
static void print_moved(const char *done, char **devices)
{
        JsonWriter w;

        if (arg_json) {
                json_start(&w);
                json_begin_object(&w);
                json_key(&w, "address");
                json_string(&w, arg_address);
                json_key(&w, done);
                json_begin_array(&w);
                for (char **p = devices; p && *p; p++)
                        json_string(&w, *p);
                json_end_array(&w);
                json_end_object(&w);
                json_finish(&w);
                return;
        }
        printf("GPU %s: %s", arg_address, done);
        for (char **p = devices; p && *p; p++)
                printf("%s%s", p == devices ? " " : ", ", *p);
        printf(".\n");
}

static int call_moving(const char *method, const char *done, const char *types, ...)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_strv_ char **devices = NULL;
        va_list ap;
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = service_method_new(bus, &m, VGPU_IOMMU_SERVICE, VGPU_IOMMU_PATH, VGPU_IOMMU_INTERFACE, method);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return call_build_failed(method, r);
        r = service_call(bus, m, &iommu_service, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(reply, &devices);
        if (r < 0)
                return call_reply_bad(r);
        print_moved(done, devices);
        return 0;
}

int verb_bind_gpu(void)
{
        return call_moving("BindGpu", "bound", "ss", arg_address, option_given(OPT_DRIVER) ? arg_driver : "");
}

int verb_unbind_gpu(void)
{
        return call_moving("UnbindGpu", "released", "s", arg_address);
}

static int print_fault_table(const BusDictArray *faults)
{
        static const char *const headers[] = {"SEQ", "TIME", "SOURCE", "DEVICE", "ADDRESS", "REASON"};
        _cleanup_(table_freep) Table *t = table_new(ELEMENTSOF(headers), headers);
        char time[64];
        int r = 0;

        if (!t)
                return -ENOMEM;
        table_align_right(t, 0);
        for (size_t i = 0; i < faults->n && r >= 0; i++) {
                const BusDict *f = &faults->items[i];

                r = table_addf(t, "%" PRIu64, bus_dict_get_uint(f, "seq"));
                if (r >= 0)
                        r = table_add(t, format_timestamp(bus_dict_get_uint(f, "realtime_usec"), time, sizeof(time)));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(f, "source"));
                if (r >= 0)
                        r = table_add(t, dash_if_empty(bus_dict_get_string(f, "device")));
                if (r >= 0)
                        r = table_addf(t, "0x%" PRIx64, bus_dict_get_uint(f, "address"));
                if (r >= 0)
                        r = table_add(t, dash_if_empty(bus_dict_get_string(f, "reason")));
        }
        if (r >= 0 && faults->n > 0)
                r = table_print(t, stdout);
        return r;
}

static int acknowledge_faults(sd_bus *bus)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        uint32_t n;
        int r;

        r = iommu_call(bus, "AcknowledgeFaults", &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_read_basic(reply, 'u', &n);
        if (r < 0)
                return call_reply_bad(r);
        if (arg_json) {
                JsonWriter w;

                json_start(&w);
                json_begin_object(&w);
                json_key(&w, "acknowledged");
                json_uint(&w, n);
                json_end_object(&w);
                json_finish(&w);
        } else
                printf("%" PRIu32 " IOMMU fault(s) acknowledged; they stay listed but no longer make the host "
                       "non-compliant.\n",
                       n);
        return 0;
}

int verb_iommu_faults(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        _cleanup_bus_dict_array_ BusDictArray faults = {0};
        int r;

        r = admin_bus_open(&bus);
        if (r < 0)
                return r;
        if (option_given(OPT_ACKNOWLEDGE))
                return acknowledge_faults(bus);
        r = iommu_call(bus, "ListFaults", &reply, NULL);
        if (r >= 0)
                r = reply_read_dict_array(reply, &faults.items, &faults.n);
        if (r < 0)
                return r;
        return print_record_list(&faults, &(RecordListFormat){.json_record = json_dict,
                                                              .print_table = print_fault_table,
                                                              .singular = "IOMMU fault",
                                                              .plural = "IOMMU faults"});
}

static void print_boot_settings(const BusDict *s, bool applied)
{
        bool change = bus_dict_get_bool(s, applied ? "changed" : "change_needed");

        show_field("Platform", "%s", dash_if_empty(bus_dict_get_string(s, "platform")));
        show_field("Target", "%s", dash_if_empty(bus_dict_get_string(s, "target")));
        if (!applied) {
                show_field("Now", "%s", dash_if_empty(bus_dict_get_string(s, "current")));
                show_field("Proposed", "%s", dash_if_empty(bus_dict_get_string(s, "proposed")));
                for (char **p = bus_dict_get_strv(s, "add"); p && *p; p++)
                        show_field("Add", "%s", *p);
        } else if (!isempty(bus_dict_get_string(s, "backup")))
                show_field("Backup", "%s", bus_dict_get_string(s, "backup"));

        if (applied && change)
                printf("\nThe boot settings were written.");
        else if (applied)
                printf("\nThe boot settings already turn the IOMMU on in strict mode; nothing was written.");
        else if (change)
                printf("\nRun 'vgpu-admin iommu-setup --apply' to write them (a backup is kept).");
        else
                printf("\nThe boot settings already turn the IOMMU on in strict mode.");
        if (bus_dict_get_bool(s, "reboot_required"))
                printf(" A reboot is needed before the running %s uses them.",
                       streq(strempty(bus_dict_get_string(s, "platform")), "linux") ? "kernel" : "hypervisor");
        printf("\n");
}

int verb_iommu_setup(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        _cleanup_bus_dict_ BusDict settings = {0};
        bool apply = option_given(OPT_APPLY);
        JsonWriter w;
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = iommu_call(bus, apply ? "ApplyBootSettings" : "GetBootSettings", &reply, NULL);
        if (r >= 0)
                r = reply_read_dict(reply, &settings);
        if (r < 0)
                return r;
        if (arg_json) {
                json_start(&w);
                json_dict(&w, &settings);
                json_finish(&w);
        } else
                print_boot_settings(&settings, apply);
        return 0;
}
