/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* show-iommu-status: the host's IOMMU protection as vgpu-iommud reports it. Until that service can be
 * read, this verb says the status is unknown and fails; it never presents a guess as a status. */
#include <inttypes.h>

#include "admin.h"

static void print_status_json(bool service_running, const BusDict *vm)
{
        static const char *const keys[] = {"iommu_policy", "iommu_domain", "iommu_group"};
        JsonWriter w;

        json_start(&w);
        json_begin_object(&w);
        json_key(&w, "iommu_service");
        json_string(&w, service_running ? "running" : "not-running");
        if (vm) {
                json_key(&w, "vm_id");
                json_uint(&w, bus_dict_get_uint(vm, "vm_id"));
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        const BusDictEntry *e = bus_dict_get(vm, keys[i]);

                        json_key(&w, keys[i]);
                        if (!e)
                                json_null(&w);
                        else if (e->type == BUS_VALUE_STRING)
                                json_string(&w, e->str);
                        else if (e->type == BUS_VALUE_INT)
                                json_int(&w, e->i);
                        else
                                json_uint(&w, e->u);
                }
        }
        json_end_object(&w);
        json_finish(&w);
}

int verb_show_iommu_status(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_dict_ BusDict vm = {0};
        bool with_vm = option_given(OPT_VM_ID);
        int running, r;

        r = admin_bus_open(&bus);
        if (r < 0)
                return r;
        if (with_vm) {
                r = config_get_vm(bus, arg_vm_id, &vm);
                if (r < 0)
                        return r;
        }
        running = bus_name_has_owner(bus, VGPU_IOMMU_SERVICE);
        if (running < 0)
                return running;

        if (arg_json)
                print_status_json(running, with_vm ? &vm : NULL);
        else if (with_vm) {
                show_field("VM", "%" PRIu64, bus_dict_get_uint(&vm, "vm_id"));
                show_vm_iommu_fields(&vm);
        }

        if (!running) {
                admin_error("vgpu-iommud is not running: the IOMMU status of this host is unknown.");
                return -ESRCH;
        }
        admin_error("vgpu-iommud is running, but this vgpu-admin cannot read its status yet: "
                    "the IOMMU status of this host is unknown.");
        return -EOPNOTSUPP;
}
