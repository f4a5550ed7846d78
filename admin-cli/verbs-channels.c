/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest-channel verbs, answered by vgpu-ingestd (org.vgpu.Ingest1): channels lists what each VM's
 * channel is doing, disconnect-vm closes one. Neither starts vgpu-ingestd; when it is not running they say
 * so and fail. */
#include <inttypes.h>

#include "admin.h"

static const ServiceInfo ingest_service = {
        .who = "vgpu-ingestd",
        .privileged_action = "disconnecting a guest",
        .check_hint = "check with vgpu-admin channels",
};

static int print_channel_table(const BusDictArray *channels)
{
        static const char *const headers[] = {"VM",       "POOL",     "PRIORITY",    "STATE",  "ATTACHMENT",
                                              "PEER PID", "REQUESTS", "COMPLETIONS", "ERRORS", "IN FLIGHT"};
        static const char *const counters[] = {"requests", "completions", "errors", "in_flight"};
        _cleanup_(table_freep) Table *t = table_new(ELEMENTSOF(headers), headers);
        int r = 0;

        if (!t)
                return -ENOMEM;
        table_align_right(t, 0);
        for (size_t c = 5; c < ELEMENTSOF(headers); c++)
                table_align_right(t, c);
        for (size_t i = 0; i < channels->n && r >= 0; i++) {
                const BusDict *ch = &channels->items[i];
                uint64_t pid = bus_dict_get_uint(ch, "peer_pid");

                r = table_addf(t, "%" PRIu64, bus_dict_get_uint(ch, "vm_id"));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(ch, "pool"));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(ch, "priority"));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(ch, "state"));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(ch, "attachment"));
                if (r >= 0)
                        r = pid == 0 ? table_add(t, "-") : table_addf(t, "%" PRIu64, pid);
                for (size_t c = 0; c < ELEMENTSOF(counters) && r >= 0; c++)
                        r = table_addf(t, "%" PRIu64, bus_dict_get_uint(ch, counters[c]));
        }
        if (r >= 0 && channels->n > 0)
                r = table_print(t, stdout);
        return r;
}

/* Keeps only VM arg_vm_id's channel; fails when it has none. */
static int keep_only_vm(BusDictArray *channels)
{
        for (size_t i = 0; i < channels->n; i++) {
                if (bus_dict_get_uint(&channels->items[i], "vm_id") != arg_vm_id)
                        continue;
                if (i > 0) {
                        BusDict kept = channels->items[i];

                        channels->items[i] = channels->items[0];
                        channels->items[0] = kept;
                }
                for (size_t j = 1; j < channels->n; j++)
                        bus_dict_done(&channels->items[j]);
                channels->n = 1;
                return 0;
        }
        admin_error("VM %" PRIu32 " has no channel: vgpu-ingestd has no such VM registered.", arg_vm_id);
        return -ENOENT;
}

int verb_channels(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_dict_array_ BusDictArray channels = {0};
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = service_method_new(bus, &m, VGPU_INGEST_SERVICE, VGPU_INGEST_PATH, VGPU_INGEST_INTERFACE,
                                       "ListChannels");
        if (r >= 0)
                r = service_call(bus, m, &ingest_service, &reply);
        if (r >= 0)
                r = reply_read_dict_array(reply, &channels.items, &channels.n);
        if (r >= 0 && option_given(OPT_VM_ID))
                r = keep_only_vm(&channels);
        if (r < 0)
                return r;

        return print_record_list(&channels, &(RecordListFormat){.json_record = json_channel,
                                                                .print_table = print_channel_table,
                                                                .singular = "channel",
                                                                .plural = "channels"});
}

int verb_disconnect_vm(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = service_method_new(bus, &m, VGPU_INGEST_SERVICE, VGPU_INGEST_PATH, VGPU_INGEST_INTERFACE,
                                       "DisconnectVm");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "u", arg_vm_id);
        if (r < 0)
                return call_build_failed("DisconnectVm", r);
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0 && sd_bus_error_has_name(&error, VGPU_ERROR_NOT_CONNECTED)) {
                admin_error("VM %" PRIu32 " has no guest connected.", arg_vm_id);
                return r;
        }
        if (r < 0)
                return report_service_error(&ingest_service, m, &error, r);

        if (arg_json)
                json_print_vm_outcome(arg_vm_id, "disconnected");
        else
                printf("VM %" PRIu32 ": guest disconnected; its channel is closed and its commands are detached "
                       "from the scheduler. The VM stays registered and its guest may connect again.\n",
                       arg_vm_id);
        return 0;
}
