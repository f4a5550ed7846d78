/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs every file of a corpus through a fuzz target's entry point, without libFuzzer: any compiler, any
 * CI. Arguments are files or directories (not recursive). Exits non-zero if a file cannot be read; a
 * finding aborts, as it would under the fuzzer. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vgpu-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (1u << 20)

static int replay_file(const char *path)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ uint8_t *buf = malloc(INPUT_MAX);
        size_t n;

        if (!f || !buf) {
                fprintf(stderr, "Failed to open %s: %m\n", path);
                return -errno;
        }
        n = fread(buf, 1, INPUT_MAX, f);
        if (ferror(f)) {
                fprintf(stderr, "Failed to read %s\n", path);
                return -EIO;
        }
        LLVMFuzzerTestOneInput(buf, n);
        return 1;
}

static int replay_dir(const char *path)
{
        DIR *d = opendir(path);
        struct dirent *de;
        int count = 0;

        if (!d) {
                fprintf(stderr, "Failed to open %s: %m\n", path);
                return -errno;
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                int r;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&p, "%s/%s", path, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
                r = replay_file(p);
                if (r < 0) {
                        closedir(d);
                        return r;
                }
                count += r;
        }
        closedir(d);
        return count;
}

int main(int argc, char *argv[])
{
        int total = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                int r;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "Failed to stat %s: %m\n", argv[i]);
                        return EXIT_FAILURE;
                }
                r = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
                if (r < 0)
                        return EXIT_FAILURE;
                total += r;
        }
        printf("%d inputs replayed\n", total);
        return total > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
