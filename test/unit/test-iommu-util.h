/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers the vgpu-iommud unit tests share: recorded trees and their copies, small trees written by the
 * tests themselves, and snapshots that prove a refusal wrote nothing. */
#pragma once

#include "gpus.h"

/* test/data/iommu/NAME in the source tree. */
char *recorded_tree(const char *name);
/* A fresh temporary directory; a copy of `src` in it when src is not NULL. */
char *tree_new(const char *src);
void tree_remove(char *dir);

/* Writes a file (creating its directories) / a symlink below `root`. */
void tree_write(const char *root, const char *rel, const char *content);
void tree_link(const char *root, const char *rel, const char *target);
/* The content of a file below `root` ("" when missing), for comparisons. */
char *tree_read(const char *root, const char *rel);

/* Every path, link target and file content below `root`, as one string. */
char *tree_snapshot(const char *root);

/* A Host over `dir`, the platform detected as the service does. */
void host_open(Host *h, const char *dir);
void host_close(Host *h);

/* A small Linux tree: an IOMMU group per call, written by the test. */
void tree_add_device(const char *root, const char *address, const char *vendor, const char *device, const char *class,
                     int group, const char *driver);
