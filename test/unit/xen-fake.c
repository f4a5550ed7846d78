/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fake Xen of xen-fake.h: one mutex around everything, so the backend may run in another thread. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vgpu-util.h"
#include "xen-fake-internal.h"

#define MAX_NODES   4096
#define MAX_WATCHES 64
#define MAX_EVENTS  1024
#define MAX_LOG     512

__thread uint32_t xen_fake_domid;

pthread_mutex_t xen_fake_lock = PTHREAD_MUTEX_INITIALIZER;
#define lock xen_fake_lock

typedef struct Node {
        char *path, *value;
        VgpuXsPerm perms[4];
        unsigned n_perms;
} Node;

typedef struct Xs {
        uint32_t domid;
        int efd;
        struct {
                char path[160], token[64];
                bool relative;
        } watches[MAX_WATCHES];
        unsigned n_watches;
        struct {
                char path[160], token[64];
        } events[MAX_EVENTS];
        unsigned n_events;
        bool live;
} Xs;

static Node nodes[MAX_NODES];
static unsigned n_nodes;
static Xs *handles[16];
static uint32_t dead[16];
static unsigned n_dead;
static char *log_entries[MAX_LOG];
static int n_log;

void xen_fake_log_add(const char *fmt, ...)
{
        va_list ap;
        char *s = NULL;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (s && n_log < MAX_LOG)
                log_entries[n_log++] = s;
        else
                free(s);
}

void xen_fake_reset(void)
{
        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < n_nodes; i++) {
                free(nodes[i].path);
                free(nodes[i].value);
        }
        n_nodes = 0;
        xen_fake_grants_reset();
        memset(handles, 0, sizeof(handles));
        n_dead = 0;
        for (int i = 0; i < n_log; i++)
                free(log_entries[i]);
        n_log = 0;
        pthread_mutex_unlock(&lock);
}

/* ---- xenstore ---- */

/* Truncating copy (the fake's paths are short by construction). */
static void copy_str(char *dst, size_t size, const char *src)
{
        size_t n = strnlen(src, size - 1);

        memcpy(dst, src, n);
        dst[n] = '\0';
}

static void resolve(const Xs *h, const char *path, char *buf, size_t size)
{
        if (path[0] == '/' || path[0] == '@')
                snprintf(buf, size, "%s", path);
        else
                snprintf(buf, size, "/local/domain/%u/%s", h ? h->domid : 0, path);
}

static Node *node_get(const char *path)
{
        for (unsigned i = 0; i < n_nodes; i++)
                if (streq(nodes[i].path, path))
                        return &nodes[i];
        return NULL;
}

/* The node itself, else its nearest existing ancestor: whose permissions govern a creation. */
static Node *node_governing(const char *path)
{
        char p[256];

        snprintf(p, sizeof(p), "%s", path);
        for (;;) {
                Node *n = node_get(p);
                char *slash;

                if (n)
                        return n;
                slash = strrchr(p, '/');
                if (!slash || slash == p)
                        return NULL;
                *slash = '\0';
        }
}

static bool allowed(uint32_t domid, const Node *n, unsigned want)
{
        if (domid == 0)
                return true;
        if (!n)
                return false;
        if (n->perms[0].domid == domid)
                return true;
        for (unsigned i = 1; i < n->n_perms; i++)
                if (n->perms[i].domid == domid)
                        return (n->perms[i].perms & want) == want;
        return (n->perms[0].perms & want) == want;
}

static void fire(const char *path)
{
        for (unsigned i = 0; i < ELEMENTSOF(handles); i++) {
                Xs *h = handles[i];

                for (unsigned w = 0; h && h->live && w < h->n_watches; w++) {
                        const char *wp = h->watches[w].path;
                        size_t len = strlen(wp);
                        const char *ev;

                        if (strncmp(path, wp, len) == 0 && (path[len] == '\0' || path[len] == '/'))
                                ev = path;
                        else if (strncmp(wp, path, strlen(path)) == 0 && wp[strlen(path)] == '/')
                                ev = wp; /* a removed ancestor: the watched node is gone too */
                        else
                                continue;
                        if (h->n_events >= MAX_EVENTS)
                                continue;
                        if (h->watches[w].relative) {
                                char home[64];
                                snprintf(home, sizeof(home), "/local/domain/%u/", h->domid);
                                if (strncmp(ev, home, strlen(home)) == 0)
                                        ev += strlen(home);
                        }
                        copy_str(h->events[h->n_events].path, sizeof(h->events[0].path), ev);
                        copy_str(h->events[h->n_events].token, sizeof(h->events[0].token), h->watches[w].token);
                        h->n_events++;
                        (void)!eventfd_write(h->efd, 1);
                }
        }
}

static Node *node_create(uint32_t creator, const char *path)
{
        Node *parent = node_governing(path), *n;

        if (n_nodes >= MAX_NODES)
                return NULL;
        n = &nodes[n_nodes++];
        *n = (Node){.path = strdup(path), .value = strdup("")};
        if (parent) {
                memcpy(n->perms, parent->perms, sizeof(n->perms));
                n->n_perms = parent->n_perms;
        } else {
                n->perms[0] = (VgpuXsPerm){creator, VGPU_XS_PERM_NONE};
                n->n_perms = 1;
        }
        if (creator != 0)
                n->perms[0].domid = creator; /* domains own what they create */
        return n;
}

/* Creates path and every missing ancestor under /local/domain. */
static Node *node_ensure(uint32_t creator, const char *path)
{
        char p[256];
        Node *n = NULL;

        snprintf(p, sizeof(p), "%s", path);
        for (char *s = p + 1;; s++) {
                if (*s == '/' || *s == '\0') {
                        char c = *s;
                        *s = '\0';
                        n = node_get(p);
                        if (!n) {
                                n = node_create(creator, p);
                                fire(p);
                        }
                        *s = c;
                        if (c == '\0')
                                break;
                }
        }
        return n;
}

static int do_write(uint32_t domid, const char *path, const char *value)
{
        Node *n = node_get(path);

        if (!allowed(domid, n ? n : node_governing(path), VGPU_XS_PERM_WRITE))
                return -EACCES;
        if (!n)
                n = node_ensure(domid, path);
        if (!n)
                return -ENOSPC;
        free(n->value);
        n->value = strdup(value);
        if (strlen(path) > 6 && streq(path + strlen(path) - 6, "/state"))
                xen_fake_log_add("state %s=%s", path, value);
        fire(path);
        return 0;
}

int xen_fake_write(const char *path, const char *value)
{
        int r;

        pthread_mutex_lock(&lock);
        r = do_write(0, path, value);
        pthread_mutex_unlock(&lock);
        return r;
}

char *xen_fake_read(const char *path)
{
        char *v = NULL;
        Node *n;

        pthread_mutex_lock(&lock);
        n = node_get(path);
        if (n)
                v = strdup(n->value);
        pthread_mutex_unlock(&lock);
        return v;
}

bool xen_fake_exists(const char *path)
{
        bool r;

        pthread_mutex_lock(&lock);
        r = node_get(path) != NULL;
        pthread_mutex_unlock(&lock);
        return r;
}

void xen_fake_destroy_domain(uint32_t domid)
{
        pthread_mutex_lock(&lock);
        if (n_dead < ELEMENTSOF(dead))
                dead[n_dead++] = domid;
        fire("@releaseDomain");
        pthread_mutex_unlock(&lock);
}

static int fx_xs_open(VgpuXs **ret)
{
        Xs *h = calloc(1, sizeof(*h));

        h->domid = xen_fake_domid;
        h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        h->live = true;
        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < ELEMENTSOF(handles); i++)
                if (!handles[i]) {
                        handles[i] = h;
                        break;
                }
        pthread_mutex_unlock(&lock);
        *ret = (VgpuXs *)h;
        return 0;
}

static void fx_xs_close(VgpuXs *xs)
{
        Xs *h = (Xs *)xs;

        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < ELEMENTSOF(handles); i++)
                if (handles[i] == h)
                        handles[i] = NULL;
        pthread_mutex_unlock(&lock);
        close(h->efd);
        free(h);
}

static int fx_xs_fileno(VgpuXs *xs)
{
        return ((Xs *)xs)->efd;
}

static int fx_xs_read(VgpuXs *xs, uint32_t t, const char *path, char **ret)
{
        Xs *h = (Xs *)xs;
        char p[256];
        Node *n;
        int r = 0;

        resolve(h, path, p, sizeof(p));
        pthread_mutex_lock(&lock);
        n = node_get(p);
        if (!n)
                r = -ENOENT;
        else if (!allowed(h->domid, n, VGPU_XS_PERM_READ))
                r = -EACCES;
        else if (strchr(n->value, '\x01'))
                r = -EBADMSG; /* stands in for a value with a NUL inside */
        else
                *ret = strdup(n->value);
        pthread_mutex_unlock(&lock);
        return r;
}

static int fx_xs_write(VgpuXs *xs, uint32_t t, const char *path, const char *value)
{
        char p[256];
        int r;

        resolve((Xs *)xs, path, p, sizeof(p));
        pthread_mutex_lock(&lock);
        r = do_write(((Xs *)xs)->domid, p, value);
        pthread_mutex_unlock(&lock);
        return r;
}

static int fx_xs_mkdir(VgpuXs *xs, uint32_t t, const char *path)
{
        char p[256];
        int r = 0;

        resolve((Xs *)xs, path, p, sizeof(p));
        pthread_mutex_lock(&lock);
        if (!node_get(p)) {
                if (!allowed(((Xs *)xs)->domid, node_governing(p), VGPU_XS_PERM_WRITE))
                        r = -EACCES;
                else if (!node_ensure(((Xs *)xs)->domid, p))
                        r = -ENOSPC;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

static int fx_xs_rm(VgpuXs *xs, uint32_t t, const char *path)
{
        char p[256];
        size_t len;
        int r = -ENOENT;

        resolve((Xs *)xs, path, p, sizeof(p));
        len = strlen(p);
        pthread_mutex_lock(&lock);
        if (node_get(p) && !allowed(((Xs *)xs)->domid, node_get(p), VGPU_XS_PERM_WRITE))
                r = -EACCES;
        else
                for (unsigned i = n_nodes; i > 0; i--) {
                        Node *n = &nodes[i - 1];

                        if (strncmp(n->path, p, len) != 0 || (n->path[len] != '\0' && n->path[len] != '/'))
                                continue;
                        free(n->path);
                        free(n->value);
                        *n = nodes[--n_nodes];
                        r = 0;
                }
        if (r == 0)
                fire(p);
        pthread_mutex_unlock(&lock);
        return r;
}

static int fx_xs_set_permissions(VgpuXs *xs, uint32_t t, const char *path, const VgpuXsPerm *perms, unsigned n)
{
        char p[256];
        Node *node;
        int r = 0;

        resolve((Xs *)xs, path, p, sizeof(p));
        pthread_mutex_lock(&lock);
        node = node_get(p);
        if (!node)
                r = -ENOENT;
        else if (((Xs *)xs)->domid != 0 && node->perms[0].domid != ((Xs *)xs)->domid)
                r = -EACCES;
        else if (n == 0 || n > ELEMENTSOF(node->perms))
                r = -EINVAL;
        else {
                memcpy(node->perms, perms, n * sizeof(*perms));
                node->n_perms = n;
                fire(p);
        }
        pthread_mutex_unlock(&lock);
        return r;
}

static int fx_xs_get_permissions(VgpuXs *xs, const char *path, VgpuXsPerm **ret, unsigned *ret_n)
{
        char p[256];
        Node *node;
        int r = 0;

        resolve((Xs *)xs, path, p, sizeof(p));
        pthread_mutex_lock(&lock);
        node = node_get(p);
        if (!node)
                r = -ENOENT;
        else {
                *ret = calloc(node->n_perms, sizeof(VgpuXsPerm));
                memcpy(*ret, node->perms, node->n_perms * sizeof(VgpuXsPerm));
                *ret_n = node->n_perms;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

/* Like libxenstore: one block holding the pointer array and the strings. */
static int fx_xs_directory(VgpuXs *xs, const char *path, char ***ret, unsigned *ret_n)
{
        char p[256], names[64][64];
        unsigned n = 0;
        size_t len;
        char **block, *s;

        resolve((Xs *)xs, path, p, sizeof(p));
        len = strlen(p);
        pthread_mutex_lock(&lock);
        if (!node_get(p)) {
                pthread_mutex_unlock(&lock);
                return -ENOENT;
        }
        for (unsigned i = 0; i < n_nodes && n < 64; i++) {
                const char *c = nodes[i].path;

                if (strncmp(c, p, len) == 0 && c[len] == '/' && !strchr(c + len + 1, '/'))
                        snprintf(names[n++], sizeof(names[0]), "%s", c + len + 1);
        }
        pthread_mutex_unlock(&lock);
        block = malloc(n * sizeof(char *) + n * 64 + 1);
        s = (char *)(block + n);
        for (unsigned i = 0; i < n; i++) {
                block[i] = s;
                s = stpcpy(s, names[i]) + 1;
        }
        *ret = block;
        *ret_n = n;
        return 0;
}

static int fx_xs_transaction_start(VgpuXs *xs, uint32_t *ret)
{
        *ret = 1;
        return 0;
}

static int fx_xs_transaction_end(VgpuXs *xs, uint32_t t, bool abort)
{
        return 0;
}

static int fx_xs_watch(VgpuXs *xs, const char *path, const char *token)
{
        Xs *h = (Xs *)xs;
        char p[256];

        resolve(h, path, p, sizeof(p));
        pthread_mutex_lock(&lock);
        if (h->n_watches < MAX_WATCHES) {
                copy_str(h->watches[h->n_watches].path, sizeof(h->watches[0].path), p);
                copy_str(h->watches[h->n_watches].token, sizeof(h->watches[0].token), token);
                h->watches[h->n_watches].relative = path[0] != '/' && path[0] != '@';
                h->n_watches++;
                /* Like xenstored: every watch fires once when it is set. */
                if (h->n_events < MAX_EVENTS) {
                        copy_str(h->events[h->n_events].path, sizeof(h->events[0].path), path);
                        copy_str(h->events[h->n_events].token, sizeof(h->events[0].token), token);
                        h->n_events++;
                        (void)!eventfd_write(h->efd, 1);
                }
        }
        pthread_mutex_unlock(&lock);
        return 0;
}

static int fx_xs_unwatch(VgpuXs *xs, const char *path, const char *token)
{
        Xs *h = (Xs *)xs;
        char p[256];

        resolve(h, path, p, sizeof(p));
        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < h->n_watches; i++)
                if (streq(h->watches[i].path, p) && streq(h->watches[i].token, token)) {
                        h->watches[i] = h->watches[--h->n_watches];
                        break;
                }
        pthread_mutex_unlock(&lock);
        return 0;
}

static int fx_xs_check_watch(VgpuXs *xs, char ***ret)
{
        Xs *h = (Xs *)xs;
        char **block;
        int r = 0;

        pthread_mutex_lock(&lock);
        if (h->n_events > 0) {
                block = malloc(2 * sizeof(char *) + sizeof(h->events[0]));
                block[0] = (char *)(block + 2);
                strcpy(block[0], h->events[0].path);
                block[1] = block[0] + strlen(block[0]) + 1;
                strcpy(block[1], h->events[0].token);
                memmove(h->events, h->events + 1, --h->n_events * sizeof(h->events[0]));
                *ret = block;
                r = 1;
        }
        if (h->n_events == 0) {
                eventfd_t v;
                (void)eventfd_read(h->efd, &v);
        }
        pthread_mutex_unlock(&lock);
        return r;
}

static int fx_xs_domain_exists(VgpuXs *xs, uint32_t domid)
{
        int r = 1;

        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < n_dead; i++)
                if (dead[i] == domid)
                        r = 0;
        pthread_mutex_unlock(&lock);
        return r;
}

const VgpuXenOps xen_fake_ops = {
        .name = "fake",
        .xs_open = fx_xs_open,
        .xs_close = fx_xs_close,
        .xs_fileno = fx_xs_fileno,
        .xs_read = fx_xs_read,
        .xs_write = fx_xs_write,
        .xs_mkdir = fx_xs_mkdir,
        .xs_rm = fx_xs_rm,
        .xs_set_permissions = fx_xs_set_permissions,
        .xs_get_permissions = fx_xs_get_permissions,
        .xs_directory = fx_xs_directory,
        .xs_transaction_start = fx_xs_transaction_start,
        .xs_transaction_end = fx_xs_transaction_end,
        .xs_watch = fx_xs_watch,
        .xs_unwatch = fx_xs_unwatch,
        .xs_check_watch = fx_xs_check_watch,
        .xs_domain_exists = fx_xs_domain_exists,
        .gnttab_open = fx_gnttab_open,
        .gnttab_close = fx_gnttab_close,
        .gnttab_map = fx_gnttab_map,
        .gnttab_map_notify = fx_gnttab_map_notify,
        .gnttab_unmap = fx_gnttab_unmap,
        .gntshr_open = fx_gntshr_open,
        .gntshr_close = fx_gntshr_close,
        .gntshr_share = fx_gntshr_share,
        .gntshr_unshare = fx_gntshr_unshare,
        .evtchn_open = fx_evtchn_open,
        .evtchn_close = fx_evtchn_close,
        .evtchn_fd = fx_evtchn_fd,
        .evtchn_bind_unbound = fx_evtchn_bind_unbound,
        .evtchn_bind_interdomain = fx_evtchn_bind_interdomain,
        .evtchn_unbind = fx_evtchn_unbind,
        .evtchn_notify = fx_evtchn_notify,
        .evtchn_pending = fx_evtchn_pending,
        .evtchn_unmask = fx_evtchn_unmask,
};

int xen_fake_log_count(void)
{
        return n_log;
}

const char *xen_fake_log_entry(int i)
{
        return i >= 0 && i < n_log ? log_entries[i] : "";
}

int xen_fake_log_find(int from, const char *prefix)
{
        int r = -1;

        pthread_mutex_lock(&lock);
        for (int i = from < 0 ? 0 : from; i < n_log; i++)
                if (strncmp(log_entries[i], prefix, strlen(prefix)) == 0) {
                        r = i;
                        break;
                }
        pthread_mutex_unlock(&lock);
        return r;
}
