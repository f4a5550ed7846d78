/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* show-iommu-status: the host's IOMMU verdict as vgpu-iommud (org.vgpu.Iommu1) reports it, with the
 * evidence behind it, and optionally one VM's confinement. The exit status gates automation: 0 only when
 * the host is compliant (and the VM, if one was named, is protected); 1 otherwise, with the reasons. When
 * vgpu-iommud is not running the status is unknown, which is never reported as compliant. */
#include <inttypes.h>

#include "admin.h"

const ServiceInfo iommu_service = {
        .who = "vgpu-iommud",
        .privileged_action = "changing a GPU's binding or acknowledging IOMMU faults",
        .check_hint = "check with vgpu-admin list-gpus",
};

/* One (conclusion, source, text) entry of GetStatus's evidence. */
typedef struct Evidence {
        char *conclusion, *source, *text;
} Evidence;

typedef struct EvidenceList {
        Evidence *items;
        size_t n;
} EvidenceList;

static void evidence_list_done(EvidenceList *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].conclusion);
                free(l->items[i].source);
                free(l->items[i].text);
        }
        l->items = mfree(l->items);
        l->n = 0;
}

static int evidence_list_read(sd_bus_message *m, EvidenceList *ret)
{
        const char *c, *s, *t;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(sss)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(sss)", &c, &s, &t)) > 0) {
                Evidence *grown = realloc(ret->items, (ret->n + 1) * sizeof(*grown));

                if (!grown)
                        return -ENOMEM;
                ret->items = grown;
                grown[ret->n] = (Evidence){strdup(c), strdup(s), strdup(t)};
                if (!grown[ret->n].conclusion || !grown[ret->n].source || !grown[ret->n].text) {
                        ret->n++;
                        return -ENOMEM;
                }
                ret->n++;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 0;
}

int iommu_call(sd_bus *bus, const char *method, sd_bus_message **ret_reply, const char *types, ...)
{
        _cleanup_bus_message_ sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = service_method_new(bus, &m, VGPU_IOMMU_SERVICE, VGPU_IOMMU_PATH, VGPU_IOMMU_INTERFACE, method);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return call_build_failed(method, r);
        }
        return service_call(bus, m, &iommu_service, ret_reply);
}

static void print_strv_lines(const char *prefix, char **l)
{
        for (char **p = l; p && *p; p++)
                printf("%s%s\n", prefix, *p);
}

static void print_status_text(const BusDict *st, const EvidenceList *ev)
{
        const char *vendor = bus_dict_get_string(st, "vendor");

        show_field("Platform", "%s", dash_if_empty(bus_dict_get_string(st, "platform")));
        if (bus_dict_get_bool(st, "iommu_enabled"))
                show_field("IOMMU", "enabled (%s, %s)", dash_if_empty(vendor),
                           dash_if_empty(bus_dict_get_string(st, "mode")));
        else
                show_field("IOMMU", "not enabled");
        show_field("GPUs", "%" PRIu64 ", %" PRIu64 " isolated", bus_dict_get_uint(st, "gpus"),
                   bus_dict_get_uint(st, "gpus_isolated"));
        show_field("Faults", "%" PRIu64 " not acknowledged", bus_dict_get_uint(st, "faults"));
        if (bus_dict_get_strv(st, "test_allow_list"))
                for (char **p = bus_dict_get_strv(st, "test_allow_list"); *p; p++)
                        show_field("TEST ONLY", "device %s admitted as a GPU by the test allow-list", *p);
        show_field("Verdict", "%s", bus_dict_get_bool(st, "compliant") ? "compliant" : "NOT COMPLIANT");
        print_strv_lines("             - ", bus_dict_get_strv(st, "problems"));
        if (ev->n > 0)
                printf("\nEvidence:\n");
        for (size_t i = 0; i < ev->n; i++)
                printf("  %-28s %s: %s\n", ev->items[i].conclusion, ev->items[i].source, ev->items[i].text);
}

static void print_vm_text(const BusDict *vm, const BusDict *config_vm)
{
        int64_t group = bus_dict_get_int(vm, "group");

        printf("\n");
        show_field("VM", "%" PRIu64 " (pool %s)", bus_dict_get_uint(vm, "vm_id"),
                   dash_if_empty(bus_dict_get_string(vm, "pool")));
        show_field("Pool's GPU", "%s", dash_if_empty(bus_dict_get_string(vm, "gpu")));
        show_field("Domain", "%s", dash_if_empty(bus_dict_get_string(vm, "domain")));
        show_field("Group", group < 0 ? "-" : "%" PRId64, group);
        show_field("IOMMU policy", "%s", dash_if_empty(bus_dict_get_string(config_vm, "iommu_policy")));
        show_field("Protected", "%s", bus_dict_get_bool(vm, "protected") ? "yes" : "NO");
        if (!isempty(bus_dict_get_string(vm, "reason")))
                printf("             - %s\n", bus_dict_get_string(vm, "reason"));
}

static void print_status_json(const BusDict *st, const EvidenceList *ev, const BusDict *vm, const BusDict *config_vm)
{
        JsonWriter w;

        json_start(&w);
        json_begin_object(&w);
        json_key(&w, "status");
        json_dict(&w, st);
        json_key(&w, "evidence");
        json_begin_array(&w);
        for (size_t i = 0; i < ev->n; i++) {
                json_begin_object(&w);
                json_key(&w, "conclusion");
                json_string(&w, ev->items[i].conclusion);
                json_key(&w, "source");
                json_string(&w, ev->items[i].source);
                json_key(&w, "text");
                json_string(&w, ev->items[i].text);
                json_end_object(&w);
        }
        json_end_array(&w);
        if (vm) {
                json_key(&w, "vm");
                json_begin_object(&w);
                json_dict_fields(&w, vm);
                json_key(&w, "iommu_policy");
                json_string(&w, strempty(bus_dict_get_string(config_vm, "iommu_policy")));
                json_end_object(&w);
        }
        json_end_object(&w);
        json_finish(&w);
}

/* The VM's confinement from vgpu-iommud, and its policy from vgpu-configd. */
static int read_vm(sd_bus *bus, BusDict *ret_vm, BusDict *ret_config_vm)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        int r;

        r = config_get_vm(bus, arg_vm_id, ret_config_vm);
        if (r >= 0)
                r = iommu_call(bus, "GetVmIommu", &reply, "u", arg_vm_id);
        if (r >= 0)
                r = reply_read_dict(reply, ret_vm);
        return r;
}

int verb_show_iommu_status(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        _cleanup_bus_dict_ BusDict status = {0}, vm = {0}, config_vm = {0};
        _cleanup_(evidence_list_done) EvidenceList evidence = {0};
        bool with_vm = option_given(OPT_VM_ID), compliant;
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = iommu_call(bus, "GetStatus", &reply, NULL);
        if (r < 0) {
                admin_error("the IOMMU status of this host is unknown.");
                return r;
        }
        r = reply_read_dict(reply, &status);
        if (r >= 0) {
                r = evidence_list_read(reply, &evidence);
                if (r < 0)
                        return call_reply_bad(r);
        }
        if (r >= 0 && with_vm)
                r = read_vm(bus, &vm, &config_vm);
        if (r < 0)
                return r;

        if (arg_json)
                print_status_json(&status, &evidence, with_vm ? &vm : NULL, &config_vm);
        else {
                print_status_text(&status, &evidence);
                if (with_vm)
                        print_vm_text(&vm, &config_vm);
        }

        compliant = bus_dict_get_bool(&status, "compliant");
        if (!compliant)
                admin_error("the host is not compliant: %zu problem(s), listed %s.",
                            strv_length(bus_dict_get_strv(&status, "problems")),
                            arg_json ? "in status.problems" : "under Verdict");
        if (with_vm && !bus_dict_get_bool(&vm, "protected"))
                admin_error("VM %" PRIu32 " is not protected by the IOMMU: %s", arg_vm_id,
                            dash_if_empty(bus_dict_get_string(&vm, "reason")));
        return compliant && (!with_vm || bus_dict_get_bool(&vm, "protected")) ? 0 : -EPERM;
}
