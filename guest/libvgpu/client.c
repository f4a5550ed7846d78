/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Connecting: which VM, which transport, which socket (docs/architecture.md), the
 * channel's geometry, and the HELLO that negotiates the protocol version. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client-internal.h"
#include "proto/channel.h"
#include "transport/local.h"
#include "transport/poller.h"
#include "transport/xen.h"
#include "vgpu-util.h"

#define PAGE           4096u
#define RUNTIME_DIR    "/run/vgpu"
#define DATA_SIZE_MIN  PAGE

static uint64_t page_align(uint64_t v)
{
        return (v + PAGE - 1) & ~(uint64_t)(PAGE - 1);
}

/* Explicit, else $VGPU_VM_ID, else the platform. Only the socket path needs the VM; an explicit path
 * does without. */
static int resolve_vm_id(const VgpuConnectOptions *o, uint32_t *ret)
{
        const char *env = getenv("VGPU_VM_ID");
        VgpuStubInfo stub;
        unsigned long v;
        char *end;

        if (o->vm_id != 0) {
                *ret = o->vm_id;
                return 0;
        }
        if (!isempty(env)) {
                errno = 0;
                v = strtoul(env, &end, 10);
                if (errno != 0 || *end != '\0' || env[0] == '-' || v == 0 || v > UINT32_MAX) {
                        client_set_error("VGPU_VM_ID='%s' is not a VM id (a number from 1 to %u)", env, UINT32_MAX);
                        return -EINVAL;
                }
                *ret = (uint32_t)v;
                return 0;
        }
        /* The platform: the VM_ID register of the vgpu-stub device the host's toolstack gave this VM. */
        if (vgpu_stub_read(&stub) == 0) {
                *ret = stub.vm_id;
                return 0;
        }
        *ret = 0;
        if (o->socket_path)
                return 0;
        client_set_error("no VM id: pass one, set VGPU_VM_ID, or run in a VM with a vgpu-stub device "
                         "(no vgpu-stub device found, or its registers are readable by root only) or in a "
                         "Xen domain with a vgpu device");
        return -ENODEV;
}

/* A Xen domU with the devices the frontend needs: the hypervisor says xen and gntalloc is there. */
static bool in_xen_domu(void)
{
        char type[8] = "";
        FILE *f = fopen("/sys/hypervisor/type", "re");
        bool xen;

        if (f) {
                xen = fgets(type, sizeof(type), f) && strncmp(type, "xen", 3) == 0;
                fclose(f);
        } else
                xen = access("/proc/xen", F_OK) == 0;
        return xen && access("/dev/xen/gntalloc", F_OK) == 0;
}

/* Asked for: the option, else $VGPU_TRANSPORT, else AUTO. */
static int requested_transport(const VgpuConnectOptions *o, VgpuTransportChoice *ret)
{
        const char *env = getenv("VGPU_TRANSPORT");

        if (o->transport > VGPU_CONNECT_XEN)
                return -EINVAL;
        *ret = o->transport;
        if (*ret != VGPU_CONNECT_AUTO || isempty(env))
                return 0;
        if (streq(env, "local"))
                *ret = VGPU_CONNECT_LOCAL;
        else if (streq(env, "xen"))
                *ret = VGPU_CONNECT_XEN;
        else {
                client_set_error("VGPU_TRANSPORT='%s': expected 'local' or 'xen'", env);
                return -EINVAL;
        }
        return 0;
}

static bool socket_exists(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int resolve_socket(const VgpuConnectOptions *o, uint32_t vm_id, char *buf, size_t size)
{
        const char *dir = getenv("VGPU_RUNTIME_DIR");
        int r;

        if (o->socket_path) {
                if (isempty(o->socket_path) || strlen(o->socket_path) >= size)
                        return -ENAMETOOLONG;
                memcpy(buf, o->socket_path, strlen(o->socket_path) + 1);
                return 0;
        }
        r = vgpu_local_socket_path(isempty(dir) ? RUNTIME_DIR : dir, vm_id, buf, size);
        if (r < 0)
                client_set_error("the socket path of VM %u under %s is too long", vm_id, isempty(dir) ? RUNTIME_DIR : dir);
        return r;
}

static int check_options(VgpuConnectOptions *o)
{
        for (size_t i = 0; i < ELEMENTSOF(o->reserved); i++)
                if (o->reserved[i] != 0)
                        return -EINVAL;
        if (o->requests == 0)
                o->requests = VGPU_CONNECT_REQUESTS_DEFAULT;
        if (o->completions == 0)
                o->completions = o->requests;
        if (o->data_size == 0)
                o->data_size = VGPU_CONNECT_DATA_SIZE_DEFAULT;
        if (!vgpu_ring_count_is_valid(o->requests) || !vgpu_ring_count_is_valid(o->completions)) {
                client_set_error("ring sizes must be powers of two from %u to %u", VGPU_RING_COUNT_MIN,
                                 VGPU_RING_COUNT_MAX);
                return -EINVAL;
        }
        o->data_size = page_align(o->data_size < DATA_SIZE_MIN ? DATA_SIZE_MIN : o->data_size);
        if (o->data_size > VGPU_REGION_SIZE_MAX / 2) {
                client_set_error("a data area of %llu bytes is too large", (unsigned long long)o->data_size);
                return -EINVAL;
        }
        return 0;
}

/* HELLO: the highest version both speak. A mismatch leaves the channel open but is of no use to us. */
static int hello(VgpuClient *c)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_HELLO};
        uint64_t result = 0;
        int err = 0;
        int64_t seq;
        uint16_t version, host_min;

        d.u.hello.version_min = VGPU_PROTOCOL_VERSION_MIN;
        d.u.hello.version_max = VGPU_PROTOCOL_VERSION_MAX;
        seq = client_submit(c, &d, &(SubmitSpec){.ret_error = &err, .ret_handle = &result});
        if (seq < 0)
                return (int)seq;
        if (client_wait_seq(c, (uint64_t)seq) < 0 && err == 0)
                err = c->dead;
        version = (uint16_t)result;
        host_min = (uint16_t)(result >> 16);
        if (err == VGPU_E_VERSION_MISMATCH) {
                client_set_error("the host speaks protocol versions %u to %u, this library %u to %u", host_min,
                                 version, VGPU_PROTOCOL_VERSION_MIN, VGPU_PROTOCOL_VERSION_MAX);
                return err;
        }
        if (err < 0) {
                if (err != c->dead)
                        client_set_error("HELLO failed: %s", vgpu_strerror(err));
                return err;
        }
        if (version < VGPU_PROTOCOL_VERSION_MIN || version > VGPU_PROTOCOL_VERSION_MAX) {
                client_set_error("the host chose protocol version %u, which this library never offered", version);
                return -EPROTO;
        }
        c->info.protocol_version = version;
        c->info.host_version_min = host_min;
        return 0;
}

static int attach(VgpuClient *c, const VgpuConnectOptions *o)
{
        const VgpuChannelGeometry *g = &c->endpoint->geometry;
        uint64_t spin_usec = 0;
        int r;

        r = vgpu_channel_attach_guest(c->endpoint->region, g, &c->req, &c->cpl);
        if (r < 0)
                return r;
        c->data = (uint8_t *)c->endpoint->region + g->data_offset;
        c->data_size = g->data_size;
        c->pending_size = g->req_count + g->cpl_count;
        c->pending = calloc(c->pending_size, sizeof(PendingOp));
        if (!c->pending)
                return -ENOMEM;
        c->next_seq = c->oldest_seq = 1;
        if (vgpu_poller_spin_usec_from_environment(&spin_usec) < 0)
                spin_usec = 0; /* a bad VGPU_SPIN_USEC: block, the safe choice */
        c->spin_ns = spin_usec * 1000;
        c->timeout_ms = o->timeout_ms;
        c->info.requests = g->req_count;
        c->info.completions = g->cpl_count;
        c->info.data_size = g->data_size;
        return 0;
}

static int open_channel(VgpuClient *c, const VgpuConnectOptions *o)
{
        uint64_t region = PAGE + page_align((uint64_t)o->requests * VGPU_REQUEST_SIZE) +
                          page_align((uint64_t)o->completions * VGPU_COMPLETION_SIZE) + o->data_size;
        char why[512];
        int r;

        if (c->info.transport == VGPU_CONNECT_XEN) {
                r = vgpu_xen_guest_connect(vgpu_xen_ops(), region, o->requests, o->completions, &c->endpoint, why,
                                           sizeof(why));
                if (r < 0) {
                        client_set_error("cannot connect over Xen: %s", why[0] ? why : vgpu_strerror(r));
                        return r;
                }
                return attach(c, o);
        }
        r = vgpu_local_guest_connect(c->socket_path, region, o->requests, o->completions, &c->endpoint);
        if (r > 0) {
                client_set_error("the host refused the channel at %s: %s", c->socket_path,
                                 vgpu_local_refusal_to_string(r));
                return -EPROTO;
        }
        if (r < 0) {
                client_set_error("cannot connect to %s: %s", c->socket_path, vgpu_strerror(r));
                return r;
        }
        return attach(c, o);
}

/* Which transport, and for the local one which socket (docs/architecture.md): local
 * when the VM's socket exists, else Xen inside a Xen domU; a Xen channel needs no VM id (the host knows
 * the domain). */
static int resolve_channel(VgpuClient *c, const VgpuConnectOptions *o)
{
        VgpuTransportChoice t;
        int r;

        r = requested_transport(o, &t);
        if (r < 0)
                return r;
        if (t == VGPU_CONNECT_AUTO && o->socket_path)
                t = VGPU_CONNECT_LOCAL; /* a socket named explicitly is a local channel */
        if (t == VGPU_CONNECT_XEN) {
                c->info.transport = t;
                if (resolve_vm_id(o, &c->info.vm_id) == -EINVAL)
                        return -EINVAL;
                client_clear_error(); /* no VM id is fine here */
                return 0;
        }
        r = resolve_vm_id(o, &c->info.vm_id);
        if (r >= 0)
                r = resolve_socket(o, c->info.vm_id, c->socket_path, sizeof(c->socket_path));
        c->info.transport = VGPU_CONNECT_LOCAL;
        if (t == VGPU_CONNECT_LOCAL || r == -EINVAL || (r >= 0 && socket_exists(c->socket_path)))
                return r;
        if (in_xen_domu()) {
                client_clear_error();
                c->socket_path[0] = '\0';
                c->info.transport = VGPU_CONNECT_XEN;
                return 0;
        }
        if (r < 0)
                return r;
        client_set_error("no channel socket at %s, and this is not a Xen domain with /dev/xen/gntalloc",
                         c->socket_path);
        return -EOPNOTSUPP;
}

VGPU_API int vgpu_connect(const VgpuConnectOptions *opts, VgpuClient **ret)
{
        VgpuConnectOptions o = opts ? *opts : (VgpuConnectOptions){};
        VgpuClient *c;
        int r;

        client_clear_error();
        if (!ret)
                return -EINVAL;
        r = check_options(&o);
        if (r < 0)
                return r;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        r = resolve_channel(c, &o);
        if (r >= 0)
                r = open_channel(c, &o);
        if (r >= 0)
                r = hello(c);
        if (r < 0) {
                vgpu_disconnect(c);
                return r;
        }
        c->info.socket_path = c->info.transport == VGPU_CONNECT_LOCAL ? c->socket_path : NULL;
        *ret = c;
        return 0;
}

VGPU_API VgpuClient *vgpu_disconnect(VgpuClient *c)
{
        if (!c)
                return NULL;
        if (c->endpoint) {
                (void)client_publish(c);
                vgpu_channel_set_frontend_state(c->endpoint->region, VGPU_PEER_CLOSED);
                client_kill(c, -ECONNRESET);
                vgpu_endpoint_free(c->endpoint);
        }
        free(c->pending);
        free(c);
        return NULL;
}

VGPU_API int vgpu_client_info(const VgpuClient *c, VgpuClientInfo *ret)
{
        if (!c || !ret)
                return -EINVAL;
        *ret = c->info;
        return 0;
}

VGPU_API void vgpu_client_counters(const VgpuClient *c, VgpuStatsSnapshot *ret)
{
        if (!ret)
                return;
        *ret = c ? c->counters : (VgpuStatsSnapshot){};
}
