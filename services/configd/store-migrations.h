/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The schema's ordered migrations, generated from the db/migrations SQL files by db/embed-migrations.py. */
#pragma once

typedef struct StoreMigration {
        unsigned version;
        const char *name;
        const char *sql;
} StoreMigration;

extern const StoreMigration store_migrations[];
extern const unsigned store_migrations_count;
