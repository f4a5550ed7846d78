/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A small streaming JSON writer: correct escaping, commas and indentation, nothing more. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 32

typedef struct JsonWriter {
        FILE *out;
        bool pretty;
        unsigned depth;
        bool need_comma[JSON_DEPTH_MAX];
        bool after_key;
} JsonWriter;

void json_init(JsonWriter *w, FILE *out, bool pretty);
void json_begin_object(JsonWriter *w);
void json_end_object(JsonWriter *w);
void json_begin_array(JsonWriter *w);
void json_end_array(JsonWriter *w);
void json_key(JsonWriter *w, const char *key);
void json_string(JsonWriter *w, const char *s);
void json_uint(JsonWriter *w, uint64_t v);
void json_int(JsonWriter *w, int64_t v);
void json_bool(JsonWriter *w, bool v);
void json_null(JsonWriter *w);
/* Ends the document with a newline. */
void json_finish(JsonWriter *w);

/* Writes `s` as a JSON string literal, escaping quotes, backslashes and control characters. */
void json_write_escaped(FILE *out, const char *s);
