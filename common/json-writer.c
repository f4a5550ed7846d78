/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Streaming JSON output for vgpu-admin --json and the stats exporters. */
#include <inttypes.h>

#include "json-writer.h"

void json_init(JsonWriter *w, FILE *out, bool pretty)
{
        *w = (JsonWriter){ .out = out, .pretty = pretty };
}

static void newline_indent(JsonWriter *w)
{
        if (!w->pretty)
                return;
        fputc('\n', w->out);
        for (unsigned i = 0; i < w->depth; i++)
                fputs("  ", w->out);
}

/* Called before every value or key: separates it from its predecessor. */
static void before_item(JsonWriter *w)
{
        if (w->after_key) {
                w->after_key = false;
                return;
        }
        if (w->depth == 0)
                return;
        if (w->need_comma[w->depth])
                fputc(',', w->out);
        w->need_comma[w->depth] = true;
        newline_indent(w);
}

static void open_container(JsonWriter *w, char c)
{
        before_item(w);
        fputc(c, w->out);
        if (w->depth + 1 < JSON_DEPTH_MAX)
                w->depth++;
        w->need_comma[w->depth] = false;
}

static void close_container(JsonWriter *w, char c)
{
        bool had_items = w->need_comma[w->depth];

        if (w->depth > 0)
                w->depth--;
        if (had_items)
                newline_indent(w);
        fputc(c, w->out);
}

void json_begin_object(JsonWriter *w)
{
        open_container(w, '{');
}

void json_end_object(JsonWriter *w)
{
        close_container(w, '}');
}

void json_begin_array(JsonWriter *w)
{
        open_container(w, '[');
}

void json_end_array(JsonWriter *w)
{
        close_container(w, ']');
}

void json_write_escaped(FILE *out, const char *s)
{
        fputc('"', out);
        for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
                switch (*p) {
                case '"':
                        fputs("\\\"", out);
                        break;
                case '\\':
                        fputs("\\\\", out);
                        break;
                case '\n':
                        fputs("\\n", out);
                        break;
                case '\r':
                        fputs("\\r", out);
                        break;
                case '\t':
                        fputs("\\t", out);
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                fprintf(out, "\\u%04x", *p);
                        else
                                fputc(*p, out);
                }
        }
        fputc('"', out);
}

void json_key(JsonWriter *w, const char *key)
{
        before_item(w);
        json_write_escaped(w->out, key);
        fputs(w->pretty ? ": " : ":", w->out);
        w->after_key = true;
}

void json_string(JsonWriter *w, const char *s)
{
        before_item(w);
        json_write_escaped(w->out, s);
}

void json_uint(JsonWriter *w, uint64_t v)
{
        before_item(w);
        fprintf(w->out, "%" PRIu64, v);
}

void json_int(JsonWriter *w, int64_t v)
{
        before_item(w);
        fprintf(w->out, "%" PRId64, v);
}

void json_bool(JsonWriter *w, bool v)
{
        before_item(w);
        fputs(v ? "true" : "false", w->out);
}

void json_null(JsonWriter *w)
{
        before_item(w);
        fputs("null", w->out);
}

void json_finish(JsonWriter *w)
{
        fputc('\n', w->out);
        fflush(w->out);
}
