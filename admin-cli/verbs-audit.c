/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The audit verb: who changed what, from what to what, read page by page from vgpu-configd. */
#include <inttypes.h>

#include "admin.h"

#define AUDIT_PAGE 1000u /* ReadAudit's own default page */

/* Reads one page of entries after `after` and appends them to `all`. Returns how many it read. */
static int read_audit_page(sd_bus *bus, uint64_t after, uint32_t limit, BusDictArray *all)
{
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_dict_array_ BusDictArray page = {0};
        BusDict *grown;
        int r;

        r = config_method_new(bus, &m, "ReadAudit");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "tuu", after, limit, option_given(OPT_VM_ID) ? arg_vm_id : 0);
        if (r < 0)
                return call_build_failed("ReadAudit", r);
        r = config_call(bus, m, &reply);
        if (r >= 0)
                r = reply_read_dict_array(reply, &page.items, &page.n);
        if (r < 0)
                return r;
        if (page.n == 0)
                return 0;
        grown = realloc(all->items, (all->n + page.n) * sizeof(*all->items));
        if (!grown) {
                admin_error("out of memory");
                return -ENOMEM;
        }
        all->items = grown;
        memcpy(all->items + all->n, page.items, page.n * sizeof(*page.items));
        all->n += page.n;
        page.items = mfree(page.items); /* the entries now belong to `all` */
        r = (int)page.n;
        page.n = 0;
        return r;
}

static int read_audit(sd_bus *bus, BusDictArray *all)
{
        size_t want = option_given(OPT_LIMIT) ? arg_limit : SIZE_MAX;
        uint64_t after = arg_after;

        while (all->n < want) {
                size_t left = want - all->n;
                uint64_t last;
                int n;

                n = read_audit_page(bus, after, left < AUDIT_PAGE ? (uint32_t)left : AUDIT_PAGE, all);
                if (n < 0)
                        return n;
                if (n == 0)
                        break;
                last = bus_dict_get_uint(&all->items[all->n - 1], "seq");
                if (last <= after)
                        break; /* a service that does not move forward must not keep us here */
                after = last;
        }
        while (all->n > want) /* a service that ignored the limit */
                bus_dict_done(&all->items[--all->n]);
        return 0;
}

static int add_audit_row(Table *t, const BusDict *e)
{
        char when[64];
        uint64_t vm_id = bus_dict_get_uint(e, "vm_id");
        int r;

        r = table_addf(t, "%" PRIu64, bus_dict_get_uint(e, "seq"));
        if (r >= 0)
                r = table_add(t, format_timestamp(bus_dict_get_uint(e, "time_usec"), when, sizeof(when)));
        if (r >= 0)
                r = table_addf(t, "%" PRIu64, bus_dict_get_uint(e, "uid"));
        if (r >= 0)
                r = table_addf(t, "%" PRIu64, bus_dict_get_uint(e, "pid"));
        if (r >= 0)
                r = table_add(t, bus_dict_get_string(e, "action"));
        if (r >= 0)
                r = vm_id == 0 ? table_add(t, "-") : table_addf(t, "%" PRIu64, vm_id);
        if (r >= 0)
                r = table_add(t, bus_dict_get_string(e, "pool"));
        if (r >= 0)
                r = table_add(t, bus_dict_get_string(e, "old_value"));
        if (r >= 0)
                r = table_add(t, bus_dict_get_string(e, "new_value"));
        return r;
}

static int print_audit_table(const BusDictArray *entries)
{
        static const char *const headers[] = {"SEQ", "TIME", "UID", "PID", "ACTION", "VM", "POOL", "OLD", "NEW"};
        _cleanup_(table_freep) Table *t = table_new(ELEMENTSOF(headers), headers);
        int r = 0;

        if (!t)
                return -ENOMEM;
        table_align_right(t, 0);
        table_align_right(t, 2);
        table_align_right(t, 3);
        table_align_right(t, 5);
        for (size_t i = 0; i < entries->n && r >= 0; i++)
                r = add_audit_row(t, &entries->items[i]);
        if (r >= 0 && entries->n > 0)
                r = table_print(t, stdout);
        return r;
}

int verb_audit(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_dict_array_ BusDictArray entries = {0};
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = read_audit(bus, &entries);
        if (r < 0)
                return r;

        return print_record_list(&entries, &(RecordListFormat){ .json_record = json_audit_entry, .print_table = print_audit_table,
                                                            .singular = "audit entry", .plural = "audit entries" });
}
