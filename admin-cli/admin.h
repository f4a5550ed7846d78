/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-admin's shared state: the parsed options (arg_*), the verb table's shape, and the helpers the
 * verb files use to reach vgpu-configd and to print. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "bus-util.h"
#include "json-writer.h"
#include "names.h"
#include "vgpu-util.h"

/* Exit statuses, documented in vgpu-admin(8). */
#define EXIT_REFUSED 1 /* the service refused, or something failed */
#define EXIT_USAGE   2 /* the command line was wrong; nothing was sent */

/* Verb options, one bit each, so that the verb table can say which a verb takes and needs. */
typedef enum AdminOption {
        OPT_VM_ID,
        OPT_POOL,
        OPT_PRIORITY,
        OPT_UUID,
        OPT_NAME,
        OPT_MEMORY_QUOTA,
        OPT_POLICY,
        OPT_IOMMU_POLICY,
        OPT_CAPACITY,
        OPT_MODE,
        OPT_GPU,
        OPT_DEFAULT_MEMORY_QUOTA,
        OPT_DESCRIPTION,
        OPT_AFTER,
        OPT_LIMIT,
        OPT_ADDRESS,
        OPT_DRIVER,
        OPT_APPLY,       /* a flag: no value */
        OPT_ACKNOWLEDGE, /* a flag: no value */
        _OPT_MAX,
} AdminOption;

#define OPT(o) (UINT32_C(1) << (o))

/* What a verb's single positional argument, if any, stands for. */
typedef enum VerbArgument {
        VERB_ARG_NONE,
        VERB_ARG_VM_ID, /* show-vm 3 is show-vm --vm-id=3 */
        VERB_ARG_POOL,  /* show-pool A is show-pool --pool=A */
        VERB_ARG_VERB,  /* help VERB */
        VERB_ARG_ADDRESS, /* bind-gpu 41:00.0 is bind-gpu --address=41:00.0 */
} VerbArgument;

typedef struct Verb {
        const char *name;
        VerbArgument argument;
        uint32_t allowed;   /* options this verb takes, besides the global ones */
        uint32_t required;  /* each of these must be given */
        uint32_t one_of;    /* at least one of these must be given */
        uint32_t exclusive; /* at most one of these may be given */
        int (*run)(void);   /* 0, or a negative errno after saying what went wrong */
        const char *synopsis;
        const char *summary;
        const char *help;
} Verb;

/* The option values, validated while parsing. A verb reads a value only if option_given() says so. */
extern bool arg_json;
extern bool arg_legend;
extern uint32_t arg_options;
extern uint32_t arg_vm_id;
extern const char *arg_pool;
extern Priority arg_priority;
extern const char *arg_uuid; /* lowercase */
extern const char *arg_name;
extern uint64_t arg_memory_quota;
extern IommuPolicy arg_iommu_policy; /* from --iommu-policy or --policy */
extern uint32_t arg_capacity;
extern PoolMode arg_mode;
extern const char *arg_gpu;
extern uint64_t arg_default_memory_quota;
extern const char *arg_description;
extern uint64_t arg_after;
extern uint32_t arg_limit;
extern const char *arg_address; /* a PCI address, checked for its shape; the service resolves it */
extern const char *arg_driver;  /* vfio-pci or pciback */

static inline bool option_given(AdminOption o)
{
        return arg_options & OPT(o);
}

/* verbs.c */
extern const Verb verbs[];
extern const size_t verbs_count;
const Verb *verb_find(const char *name);
const char *verb_nearest(const char *name);
void verb_print_help(const Verb *v);
void verbs_print_overview(void);
const char *option_name(AdminOption o);

/* Verb implementations. */
int verb_register_vm(void);
int verb_unregister_vm(void);
int verb_set_priority(void);
int verb_set_pool(void);
int verb_set_memory_quota(void);
int verb_set_iommu_policy(void);
int verb_show_vm(void);
int verb_list_vms(void);
int verb_list_pools(void);
int verb_show_pool(void);
int verb_create_pool(void);
int verb_configure_pool(void);
int verb_delete_pool(void);
int verb_audit(void);
int verb_show_iommu_status(void);
int verb_channels(void);
int verb_disconnect_vm(void);
int verb_stats(void);

int verb_list_gpus(void);
int verb_bind_gpu(void);
int verb_unbind_gpu(void);
int verb_iommu_faults(void);
int verb_iommu_setup(void);

/* verbs-vm.c: the IOMMU lines of show-vm, which show-iommu-status prints too. */
void show_vm_iommu_fields(const BusDict *vm);

/* config-client.c: the connection to the bus and calls to org.vgpu.Config1. Each function says what
 * went wrong on stderr before returning a negative errno. */
void admin_error(const char *format, ...) _printf_(1, 2);
int admin_bus_open(sd_bus **ret);
int config_method_new(sd_bus *bus, sd_bus_message **ret, const char *method);
int call_build_failed(const char *method, int r);
int call_reply_bad(int r);
int config_call(sd_bus *bus, sd_bus_message *m, sd_bus_message **ret_reply);

/* How messages name a service, and what its privileged methods and an unanswered change call for. */
typedef struct ServiceInfo {
        const char *who;               /* "vgpu-ingestd" */
        const char *privileged_action; /* "disconnecting a guest" (needs root or the admin group) */
        const char *check_hint;        /* "check with channels" (after a change that was not answered) */
} ServiceInfo;

/* A call to a service of the command path (vgpu-ingestd, a pool's scheduler), which is never started by
 * the call: when its name has no owner the call fails with a "not running" error. */
int service_method_new(sd_bus *bus, sd_bus_message **ret, const char *service, const char *path, const char *interface,
                       const char *method);
int service_call(sd_bus *bus, sd_bus_message *m, const ServiceInfo *s, sd_bus_message **ret_reply);
/* Says what went wrong with the call `m` to `s`; returns r. */
int report_service_error(const ServiceInfo *s, sd_bus_message *m, const sd_bus_error *e, int r);
/* The name the call went to has no owner (and is not started on demand). */
bool bus_error_is_not_running(const sd_bus_error *e);
int config_get_vm(sd_bus *bus, uint32_t vm_id, BusDict *ret);
int config_get_vm_by_uuid(sd_bus *bus, const char *uuid, BusDict *ret);
int config_get_pool(sd_bus *bus, const char *pool, BusDict *ret);
int config_list_vms(sd_bus *bus, const char *pool, const char *priority, BusDict **ret, size_t *ret_n);
int reply_read_dict(sd_bus_message *reply, BusDict *ret);
int reply_read_dict_array(sd_bus_message *reply, BusDict **ret, size_t *ret_n);
int reply_read_string(sd_bus_message *reply, const char **ret);
/* 1 if the bus name has an owner, 0 if not. */
int bus_name_has_owner(sd_bus *bus, const char *name);

/* iommu.c: calls to vgpu-iommud (org.vgpu.Iommu1), which is never started by the call. types and the
 * arguments after it are the method's input (types NULL: none). */
extern const ServiceInfo iommu_service;
int iommu_call(sd_bus *bus, const char *method, sd_bus_message **ret_reply, const char *types, ...);

static inline void bus_dict_donep(BusDict *d)
{
        bus_dict_done(d);
}
#define _cleanup_bus_dict_ _cleanup_(bus_dict_donep)

/* A BusDict array with its length, freed together. */
typedef struct BusDictArray {
        BusDict *items;
        size_t n;
} BusDictArray;

static inline void bus_dict_array_donep(BusDictArray *a)
{
        bus_dict_array_free(a->items, a->n);
        *a = (BusDictArray){0};
}
#define _cleanup_bus_dict_array_ _cleanup_(bus_dict_array_donep)

/* output.c: tables, key/value blocks, JSON records, and the small formatting helpers. */
typedef struct Table Table;
Table *table_new(size_t n_columns, const char *const *headers);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free)
void table_align_right(Table *t, size_t column);
int table_add(Table *t, const char *cell);
int table_addf(Table *t, const char *format, ...) _printf_(2, 3);
int table_print(Table *t, FILE *out);
/* The footer of a list: "N VMs listed." or, for an empty list, "No VMs." (only with the legend). */
void list_footer(size_t n, const char *singular, const char *plural);

void json_start(JsonWriter *w);
/* Every key of a record as the service gave it, with (json_dict) or without (json_dict_fields) braces. */
void json_dict(JsonWriter *w, const BusDict *d);
void json_dict_fields(JsonWriter *w, const BusDict *d);
void json_vm(JsonWriter *w, const BusDict *vm);
void json_pool(JsonWriter *w, const BusDict *pool);
/* A pool record plus "vm_ids": the ids of its VMs. */
void json_pool_with_members(JsonWriter *w, const BusDict *pool, const BusDictArray *vms);
void json_audit_entry(JsonWriter *w, const BusDict *entry);
/* {"vm_id": N, "<done>": true} / {"pool": "P", "<done>": true}: what a verb that removes or ends something
 * prints with --json. */
void json_print_vm_outcome(uint32_t vm_id, const char *done);
void json_print_pool_outcome(const char *pool, const char *done);
void json_channel(JsonWriter *w, const BusDict *channel);
/* {"pool", "running", then the scalar keys of the scheduler's GetStats as it gives them, then "vms": its
 * ListVms records}; stats NULL: no scheduler is running for the pool, and nothing else is said. */
void json_pool_stats(JsonWriter *w, const char *pool, const BusDict *stats, const BusDictArray *vms);

/* Prints a list of records: a JSON array with --json, else the table `print_table` makes and the footer
 * ("N <plural> listed."). Returns 0 or a negative errno (already reported). */
typedef struct RecordListFormat {
        void (*json_record)(JsonWriter *w, const BusDict *record);
        int (*print_table)(const BusDictArray *records);
        const char *singular, *plural;
} RecordListFormat;
int print_record_list(const BusDictArray *records, const RecordListFormat *format);

/* One "      Label: value" line of a show block. */
void show_field(const char *label, const char *format, ...) _printf_(2, 3);
const char *format_size(uint64_t bytes, char *buf, size_t len);
const char *format_timestamp(uint64_t usec, char *buf, size_t len);
/* "→" where the terminal's character set has it, "->" elsewhere. */
const char *glyph_arrow(void);
/* The value, or "-" when it is absent or empty: how tables show "nothing". */
const char *dash_if_empty(const char *s);
