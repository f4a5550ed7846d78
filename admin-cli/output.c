/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How vgpu-admin prints: column-aligned tables, key/value blocks, and JSON records whose keys stay put
 * (the documented ones first, in a fixed order, then any the service adds later). */
#include <langinfo.h>
#include <stdarg.h>
#include <time.h>

#include "admin.h"

#define SHOW_LABEL_WIDTH 14

struct Table {
        size_t n_columns;
        const char *const *headers;
        bool right[16];
        char **cells;
        size_t n_cells;
};

Table *table_new(size_t n_columns, const char *const *headers)
{
        Table *t;

        if (n_columns > ELEMENTSOF(t->right))
                return NULL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->headers = headers;
        return t;
}

Table *table_free(Table *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        return mfree(t);
}

void table_align_right(Table *t, size_t column)
{
        if (column < t->n_columns)
                t->right[column] = true;
}

/* Stored data is validated text, but a terminal must never receive control characters from it. */
static void sanitize(char *s)
{
        for (unsigned char *p = (unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        *p = '?';
}

int table_add(Table *t, const char *cell)
{
        char **grown;
        char *copy;

        copy = strdup(dash_if_empty(cell));
        if (!copy)
                return -ENOMEM;
        grown = realloc(t->cells, (t->n_cells + 1) * sizeof(*t->cells));
        if (!grown) {
                free(copy);
                return -ENOMEM;
        }
        sanitize(copy);
        t->cells = grown;
        t->cells[t->n_cells++] = copy;
        return 0;
}

int table_addf(Table *t, const char *format, ...)
{
        char buf[1024];
        va_list ap;

        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        return table_add(t, buf);
}

/* Display width of UTF-8 text, counting each code point as one column. */
static size_t text_width(const char *s)
{
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if ((*p & 0xc0) != 0x80)
                        n++;
        return n;
}

static void print_cell(FILE *out, const char *s, size_t width, bool right, bool last)
{
        size_t pad = width - text_width(s);

        if (right)
                fprintf(out, "%*s", (int)pad, "");
        fputs(s, out);
        if (!right && !last)
                fprintf(out, "%*s", (int)pad, "");
        if (!last)
                fputs("  ", out);
}

int table_print(Table *t, FILE *out)
{
        size_t width[ELEMENTSOF(t->right)] = {0};

        if (t->n_cells % t->n_columns != 0)
                return -EINVAL;
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t w = text_width(t->cells[i]);

                if (w > width[i % t->n_columns])
                        width[i % t->n_columns] = w;
        }
        if (arg_legend)
                for (size_t c = 0; c < t->n_columns; c++) {
                        size_t w = text_width(t->headers[c]);

                        if (w > width[c])
                                width[c] = w;
                }
        if (arg_legend)
                for (size_t c = 0; c < t->n_columns; c++)
                        print_cell(out, t->headers[c], width[c], t->right[c], c + 1 == t->n_columns);
        if (arg_legend)
                fputc('\n', out);
        for (size_t i = 0; i < t->n_cells; i++) {
                bool last = (i + 1) % t->n_columns == 0;

                print_cell(out, t->cells[i], width[i % t->n_columns], t->right[i % t->n_columns], last);
                if (last)
                        fputc('\n', out);
        }
        return 0;
}

void list_footer(size_t n, const char *singular, const char *plural)
{
        if (!arg_legend)
                return;
        if (n == 0)
                printf("No %s.\n", plural);
        else
                printf("\n%zu %s listed.\n", n, n == 1 ? singular : plural);
}

typedef struct RecordField {
        const char *key;
        BusValueType type;
} RecordField;

static const RecordField vm_fields[] = {
        {"vm_id", BUS_VALUE_UINT},          {"pool", BUS_VALUE_STRING},         {"priority", BUS_VALUE_STRING},
        {"uuid", BUS_VALUE_STRING},         {"name", BUS_VALUE_STRING},         {"memory_quota", BUS_VALUE_UINT},
        {"iommu_policy", BUS_VALUE_STRING}, {"iommu_domain", BUS_VALUE_STRING}, {"iommu_group", BUS_VALUE_INT},
        {"created_usec", BUS_VALUE_UINT},   {"updated_usec", BUS_VALUE_UINT},
};

static const RecordField pool_fields[] = {
        {"pool", BUS_VALUE_STRING},
        {"vm_count", BUS_VALUE_UINT},
        {"capacity", BUS_VALUE_UINT},
        {"vm_count_high", BUS_VALUE_UINT},
        {"vm_count_medium", BUS_VALUE_UINT},
        {"vm_count_low", BUS_VALUE_UINT},
        {"mode", BUS_VALUE_STRING},
        {"gpu_resource", BUS_VALUE_STRING},
        {"default_memory_quota", BUS_VALUE_UINT},
        {"description", BUS_VALUE_STRING},
        {"created_usec", BUS_VALUE_UINT},
        {"updated_usec", BUS_VALUE_UINT},
};

static const RecordField audit_fields[] = {
        {"seq", BUS_VALUE_UINT},    {"time_usec", BUS_VALUE_UINT},   {"uid", BUS_VALUE_UINT},
        {"pid", BUS_VALUE_UINT},    {"action", BUS_VALUE_STRING},    {"vm_id", BUS_VALUE_UINT},
        {"pool", BUS_VALUE_STRING}, {"old_value", BUS_VALUE_STRING}, {"new_value", BUS_VALUE_STRING},
};

/* As org.vgpu.Ingest1.xml lists them. */
static const RecordField channel_fields[] = {
        {"vm_id", BUS_VALUE_UINT},       {"pool", BUS_VALUE_STRING},         {"priority", BUS_VALUE_STRING},
        {"state", BUS_VALUE_STRING},     {"attachment", BUS_VALUE_STRING},   {"peer_pid", BUS_VALUE_UINT},
        {"peer_uid", BUS_VALUE_UINT},    {"negotiated", BUS_VALUE_BOOL},     {"requests", BUS_VALUE_UINT},
        {"completions", BUS_VALUE_UINT}, {"errors", BUS_VALUE_UINT},         {"in_flight", BUS_VALUE_UINT},
        {"generation", BUS_VALUE_UINT},  {"connected_usec", BUS_VALUE_UINT},
};

void json_start(JsonWriter *w)
{
        /* Indented for a person at a terminal, one line for a pipe. */
        json_init(w, stdout, isatty(STDOUT_FILENO));
}

static void json_value(JsonWriter *w, const BusDictEntry *e)
{
        switch (e->type) {
        case BUS_VALUE_STRING:
                json_string(w, e->str);
                break;
        case BUS_VALUE_UINT:
                json_uint(w, e->u);
                break;
        case BUS_VALUE_INT:
                json_int(w, e->i);
                break;
        case BUS_VALUE_BOOL:
                json_bool(w, e->b);
                break;
        case BUS_VALUE_STRV:
                json_begin_array(w);
                for (char **p = e->strv; p && *p; p++)
                        json_string(w, *p);
                json_end_array(w);
                break;
        }
}

static bool field_known(const RecordField *fields, size_t n, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (streq(fields[i].key, key))
                        return true;
        return false;
}

static void json_record_fields(JsonWriter *w, const BusDict *d, const RecordField *fields, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const BusDictEntry *e = bus_dict_get(d, fields[i].key);

                json_key(w, fields[i].key);
                if (e)
                        json_value(w, e);
                else
                        json_null(w); /* the service left it out: say so rather than invent a value */
        }
        for (size_t i = 0; i < d->n; i++)
                if (!field_known(fields, n, d->entries[i].key)) {
                        json_key(w, d->entries[i].key);
                        json_value(w, &d->entries[i]);
                }
}

static void json_record(JsonWriter *w, const BusDict *d, const RecordField *fields, size_t n)
{
        json_begin_object(w);
        json_record_fields(w, d, fields, n);
        json_end_object(w);
}

void json_dict_fields(JsonWriter *w, const BusDict *d)
{
        json_record_fields(w, d, NULL, 0);
}

void json_dict(JsonWriter *w, const BusDict *d)
{
        json_record(w, d, NULL, 0);
}

void json_vm(JsonWriter *w, const BusDict *vm)
{
        json_record(w, vm, vm_fields, ELEMENTSOF(vm_fields));
}

void json_pool(JsonWriter *w, const BusDict *pool)
{
        json_record(w, pool, pool_fields, ELEMENTSOF(pool_fields));
}

void json_pool_with_members(JsonWriter *w, const BusDict *pool, const BusDictArray *vms)
{
        json_begin_object(w);
        json_record_fields(w, pool, pool_fields, ELEMENTSOF(pool_fields));
        json_key(w, "vm_ids");
        json_begin_array(w);
        for (size_t i = 0; i < vms->n; i++)
                json_uint(w, bus_dict_get_uint(&vms->items[i], "vm_id"));
        json_end_array(w);
        json_end_object(w);
}

void json_audit_entry(JsonWriter *w, const BusDict *entry)
{
        json_record(w, entry, audit_fields, ELEMENTSOF(audit_fields));
}

void json_channel(JsonWriter *w, const BusDict *channel)
{
        json_record(w, channel, channel_fields, ELEMENTSOF(channel_fields));
}

void json_pool_stats(JsonWriter *w, const char *pool, const BusDict *stats, const BusDictArray *vms)
{
        json_begin_object(w);
        json_key(w, "pool");
        json_string(w, pool);
        json_key(w, "running");
        json_bool(w, stats != NULL);
        for (size_t i = 0; stats && i < stats->n; i++)
                if (!streq(stats->entries[i].key, "pool") && !streq(stats->entries[i].key, "running")) {
                        json_key(w, stats->entries[i].key);
                        json_value(w, &stats->entries[i]);
                }
        if (stats && vms) {
                json_key(w, "vms");
                json_begin_array(w);
                for (size_t i = 0; i < vms->n; i++)
                        json_dict(w, &vms->items[i]);
                json_end_array(w);
        }
        json_end_object(w);
}

void show_field(const char *label, const char *format, ...)
{
        char value[1024];
        va_list ap;

        va_start(ap, format);
        vsnprintf(value, sizeof(value), format, ap);
        va_end(ap);
        sanitize(value);
        printf("%*s: %s\n", SHOW_LABEL_WIDTH, label, value);
}

const char *format_size(uint64_t bytes, char *buf, size_t len)
{
        return size_format(bytes, buf, len);
}

/* Local time in ISO 8601 with the offset spelled out: 2025-11-24T13:42:05+01:00. */
const char *format_timestamp(uint64_t usec, char *buf, size_t len)
{
        time_t sec = (time_t)(usec / 1000000);
        struct tm tm;
        char zone[24];
        long off;

        if (usec == 0 || !localtime_r(&sec, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
                snprintf(buf, len, "-");
                return buf;
        }
        off = tm.tm_gmtoff / 60;
        snprintf(zone, sizeof(zone), "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
        strncat(buf, zone, len - strlen(buf) - 1);
        return buf;
}

const char *glyph_arrow(void)
{
        return streq(nl_langinfo(CODESET), "UTF-8") ? "→" : "->";
}

const char *dash_if_empty(const char *s)
{
        return isempty(s) ? "-" : s;
}

int print_record_list(const BusDictArray *records, const RecordListFormat *format)
{
        int r;

        if (arg_json) {
                JsonWriter w;

                json_start(&w);
                json_begin_array(&w);
                for (size_t i = 0; i < records->n; i++)
                        format->json_record(&w, &records->items[i]);
                json_end_array(&w);
                json_finish(&w);
                return 0;
        }
        r = format->print_table(records);
        if (r < 0) {
                admin_error("cannot print the list of %s: %s", format->plural, strerror(-r));
                return r;
        }
        list_footer(records->n, format->singular, format->plural);
        return 0;
}

static void json_print_outcome(const char *key, const char *text, uint64_t number, const char *done)
{
        JsonWriter w;

        json_start(&w);
        json_begin_object(&w);
        json_key(&w, key);
        if (text)
                json_string(&w, text);
        else
                json_uint(&w, number);
        json_key(&w, done);
        json_bool(&w, true);
        json_end_object(&w);
        json_finish(&w);
}

void json_print_vm_outcome(uint32_t vm_id, const char *done)
{
        json_print_outcome("vm_id", NULL, vm_id, done);
}

void json_print_pool_outcome(const char *pool, const char *done)
{
        json_print_outcome("pool", pool, 0, done);
}
