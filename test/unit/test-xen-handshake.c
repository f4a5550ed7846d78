/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Xen channel over a fake Xen (xen-fake.h): the toolstack's directories and permissions, both sides of the
 * xenbus handshake to Connected, refusals told to the guest, hostile keys refused before anything is mapped,
 * teardown in order (notify page, region, then the port), @releaseDomain, and libvgpu's in-flight commands
 * answered with errors when the host closes the channel or dies. The backend runs in its own thread, as
 * dom0; the test thread is domain 5. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto/channel.h"
#include "proto/ring.h"
#include "transport/xen.h"
#include "vgpu-util.h"
#include "vgpu.h"
#include "xen-fake.h"

#define DOMID   5
#define UUID    "0a1b2c3d-0000-4000-8000-00000000abcd"
#define FE      "/local/domain/5/device/vgpu/0"
#define BE      "/local/domain/0/backend/vgpu/5/0"
#define REGION  (16u * 4096u)
#define WAIT_MS 5000

typedef enum ServeMode { SERVE_NONE, SERVE_CLOSE_ON_ALLOC, SERVE_CRASH_ON_ALLOC } ServeMode;

static struct {
        pthread_t thread;
        pthread_mutex_t lock;
        bool stop, refuse;
        ServeMode serve;
        VgpuEndpoint *served; /* what the bus handed to "ingestd" */
        VgpuRequestConsumer req;
        VgpuCompletionProducer cpl;
        int disconnects;
        char last_why[256];
        char journal[8192];
} be = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int cb_accept(void *userdata, uint32_t domid, const char *vm_uuid, char *why, size_t size)
{
        if (be.refuse || !streq(vm_uuid, UUID)) {
                snprintf(why, size, "no VM with uuid %s is registered", vm_uuid);
                return -ENOENT;
        }
        return 0;
}

static int cb_connected(void *userdata, uint32_t domid, const char *vm_uuid, VgpuEndpoint *e)
{
        be.served = e;
        return vgpu_channel_attach_host(e->region, &e->geometry, &be.req, &be.cpl);
}

/* What ingestd's channel_close() does: the reason in the header, a wake-up, then the endpoint freed. */
static void host_close(VgpuStatus reason)
{
        VgpuEndpoint *e = TAKE_PTR(be.served);

        vgpu_channel_set_backend_state(e->region, VGPU_PEER_CLOSED, reason);
        (void)vgpu_endpoint_notify(e);
        vgpu_endpoint_free(e);
}

static void cb_disconnect(void *userdata, uint32_t domid, VgpuEndpoint *e, const char *why)
{
        ck_assert_ptr_eq(e, be.served);
        be.disconnects++;
        snprintf(be.last_why, sizeof(be.last_why), "%s", why);
        host_close(VGPU_STATUS_CHANNEL_CLOSED);
}

static void cb_log(void *userdata, int level, uint32_t domid, const char *message)
{
        size_t n = strlen(be.journal);

        snprintf(be.journal + n, sizeof(be.journal) - n, "%s\n", message);
}

static const VgpuXenBusCallbacks callbacks = {
        .accept = cb_accept, .connected = cb_connected, .disconnect = cb_disconnect, .log = cb_log};

/* A host that answers HELLO and, on MEM_ALLOC, closes the channel or dies with it in flight. */
static void serve(void)
{
        VgpuRequestDesc d;
        bool answered = false;

        (void)vgpu_endpoint_ack(be.served);
        while (be.served && vgpu_request_pop(&be.req, &d) == 0) {
                VgpuCompletionDesc c = {.seq = d.seq, .opcode = d.opcode};

                if (d.opcode == VGPU_OP_MEM_ALLOC) {
                        if (be.serve == SERVE_CLOSE_ON_ALLOC)
                                host_close(VGPU_STATUS_CHANNEL_CLOSED);
                        else
                                vgpu_endpoint_free(TAKE_PTR(be.served)); /* no reason: as if the host died */
                        return;
                }
                c.u.hello.version = c.u.hello.version_min = 1;
                ck_assert_int_eq(vgpu_completion_push(&be.cpl, &c), 0);
                answered = true;
        }
        if (answered) {
                (void)vgpu_ring_consumer_release(&be.req.ring);
                (void)vgpu_ring_producer_publish(&be.cpl.ring);
                (void)vgpu_endpoint_notify(be.served);
        }
}

static void *backend_main(void *arg)
{
        VgpuXenBus *bus = NULL;

        xen_fake_domid = 0;
        ck_assert_int_eq(vgpu_xen_bus_new(&xen_fake_ops, &callbacks, NULL, &bus), 0);
        for (;;) {
                struct pollfd p[2] = {{.fd = vgpu_xen_bus_fd(bus), .events = POLLIN}, {.fd = -1, .events = POLLIN}};

                pthread_mutex_lock(&be.lock);
                if (be.stop)
                        break;
                if (be.served && be.serve != SERVE_NONE)
                        p[1].fd = be.served->wait_fd;
                pthread_mutex_unlock(&be.lock);
                (void)poll(p, 2, 10);
                pthread_mutex_lock(&be.lock);
                ck_assert_int_ge(vgpu_xen_bus_dispatch(bus), 0);
                if (be.served && be.serve != SERVE_NONE)
                        serve();
                pthread_mutex_unlock(&be.lock);
        }
        vgpu_xen_bus_free(bus);
        pthread_mutex_unlock(&be.lock);
        return NULL;
}

static void backend_start(ServeMode mode)
{
        be.serve = mode;
        ck_assert_int_eq(pthread_create(&be.thread, NULL, backend_main, NULL), 0);
}

static void setup(void)
{
        VgpuXs *xs;

        xen_fake_reset();
        vgpu_xen_ops_override(&xen_fake_ops);
        be.stop = be.refuse = false;
        be.served = NULL;
        be.disconnects = 0;
        be.journal[0] = be.last_why[0] = '\0';
        be.thread = 0;
        xen_fake_domid = 0;
        ck_assert_int_eq(xen_fake_ops.xs_open(&xs), 0);
        ck_assert_int_eq(vgpu_xen_channel_create(&xen_fake_ops, xs, DOMID, UUID), 0);
        xen_fake_ops.xs_close(xs);
        xen_fake_domid = DOMID;
}

static void teardown(void)
{
        if (be.thread) {
                pthread_mutex_lock(&be.lock);
                be.stop = true;
                pthread_mutex_unlock(&be.lock);
                pthread_join(be.thread, NULL);
        }
        vgpu_xen_ops_override(NULL);
}

/* Until path holds value, or fail. */
static void await(const char *path, const char *value)
{
        for (int i = 0; i < WAIT_MS / 5; i++) {
                _cleanup_free_ char *v = xen_fake_read(path);

                if (v && streq(v, value))
                        return;
                usleep(5000);
        }
        ck_abort_msg("%s never became '%s' (is '%s'); backend said:\n%s", path, value, strempty(xen_fake_read(path)),
                     be.journal);
}

static VgpuEndpoint *guest_connect(void)
{
        VgpuEndpoint *e = NULL;
        char why[512];
        int r = vgpu_xen_guest_connect(&xen_fake_ops, REGION, 8, 8, &e, why, sizeof(why));

        ck_assert_msg(r == 0, "connect: %s (%s); backend said:\n%s", strerror(-r), why, be.journal);
        return e;
}

static bool readable(int fd)
{
        struct pollfd p = {.fd = fd, .events = POLLIN};

        return poll(&p, 1, WAIT_MS) == 1;
}

START_TEST(test_toolstack_creates_both_directories_with_their_permissions)
{
        VgpuXsPerm *perms = NULL;
        unsigned n = 0;
        VgpuXs *xs;

        ck_assert_str_eq(xen_fake_read(FE "/backend"), BE);
        ck_assert_str_eq(xen_fake_read(FE "/backend-id"), "0");
        ck_assert_str_eq(xen_fake_read(FE "/state"), "1");
        ck_assert_str_eq(xen_fake_read(BE "/frontend"), FE);
        ck_assert_str_eq(xen_fake_read(BE "/frontend-id"), "5");
        ck_assert_str_eq(xen_fake_read(BE "/vm-uuid"), UUID);
        ck_assert_str_eq(xen_fake_read(BE "/state"), "1");
        ck_assert_int_eq(xen_fake_ops.xs_open(&xs), 0); /* as domain 5 */
        ck_assert_int_eq(xen_fake_ops.xs_get_permissions(xs, FE, &perms, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(perms[0].domid, DOMID); /* the guest owns its frontend */
        ck_assert_uint_eq(perms[1].domid, 0);
        ck_assert_uint_eq(perms[1].perms, VGPU_XS_PERM_READ);
        free(perms);
        /* The guest writes its own keys, reads the backend's, and can never write the VM's identity. */
        ck_assert_int_eq(xen_fake_ops.xs_write(xs, 0, "device/vgpu/0/state", "2"), 0);
        ck_assert_int_eq(xen_fake_ops.xs_write(xs, 0, BE "/vm-uuid", "ffffffff-0000-4000-8000-000000000000"), -EACCES);
        ck_assert_int_eq(xen_fake_ops.xs_write(xs, 0, BE "/state", "4"), -EACCES);
        xen_fake_ops.xs_close(xs);
        xen_fake_domid = 0;
        ck_assert_int_eq(xen_fake_ops.xs_open(&xs), 0);
        ck_assert_int_eq(vgpu_xen_channel_create(&xen_fake_ops, xs, DOMID, UUID), -EEXIST);
        ck_assert_int_eq(vgpu_xen_channel_create(&xen_fake_ops, xs, 6, "not-a-uuid"), -EINVAL);
        ck_assert_int_eq(vgpu_xen_channel_destroy(&xen_fake_ops, xs, DOMID), 0);
        ck_assert(!xen_fake_exists(FE) && !xen_fake_exists(BE));
        ck_assert_int_eq(vgpu_xen_channel_destroy(&xen_fake_ops, xs, DOMID), -ENOENT);
        xen_fake_ops.xs_close(xs);
}
END_TEST

START_TEST(test_guest_and_backend_walk_to_connected_and_share_pages)
{
        VgpuEndpoint *g;
        uint8_t *guest_data, *host_data;

        backend_start(SERVE_NONE);
        g = guest_connect();
        ck_assert_str_eq(xen_fake_read(FE "/state"), "4");
        ck_assert_str_eq(xen_fake_read(BE "/state"), "4");
        ck_assert_str_eq(xen_fake_read(FE "/region-size"), "65536");
        ck_assert_str_eq(xen_fake_read(FE "/nr-page-dir-refs"), "1");
        ck_assert_int_ge(xen_fake_log_find(0, "gntshr_unshare 1"), 0); /* the directory, once read */
        pthread_mutex_lock(&be.lock);
        ck_assert_ptr_nonnull(be.served);
        ck_assert_int_eq(memcmp(&be.served->geometry, &g->geometry, sizeof(g->geometry)), 0);
        ck_assert_uint_eq(be.served->peer.domid, DOMID);
        guest_data = (uint8_t *)g->region + g->geometry.data_offset;
        host_data = (uint8_t *)be.served->region + g->geometry.data_offset;
        memcpy(guest_data, "from the guest", 15);
        ck_assert_str_eq((char *)host_data, "from the guest");
        ck_assert_msg(strstr(be.journal, "mapped 16 pages"), "%s", be.journal);
        ck_assert_msg(strstr(be.journal, "backend state Initialised → Connected") || strstr(be.journal, "→ Connected"),
                      "%s", be.journal);
        /* Each side wakes the other through the event channel, and ack re-arms it. */
        ck_assert_int_eq(vgpu_endpoint_notify(g), 0);
        ck_assert(readable(be.served->wait_fd));
        ck_assert_int_eq(vgpu_endpoint_ack(be.served), 0);
        ck_assert_int_eq(vgpu_endpoint_notify(be.served), 0);
        pthread_mutex_unlock(&be.lock);
        ck_assert(readable(g->wait_fd));
        ck_assert_int_eq(vgpu_endpoint_ack(g), 0);
        ck_assert_int_eq(vgpu_endpoint_notify(g), 0);
        ck_assert(readable(be.served->wait_fd)); /* unmasked again: a second notification fires too */
        vgpu_endpoint_free(g);
        await(BE "/state", "6");
        ck_assert_int_eq(be.disconnects, 1);
        ck_assert_uint_eq(xen_fake_live_mappings(), 0);
}
END_TEST

START_TEST(test_the_executor_maps_the_same_pages_from_the_reference)
{
        VgpuRegionRef ref = VGPU_REGION_REF_NULL;
        VgpuRegionMap map = {};
        VgpuEndpoint *g;

        backend_start(SERVE_NONE);
        g = guest_connect();
        pthread_mutex_lock(&be.lock);
        ck_assert_int_eq(vgpu_endpoint_region_ref(be.served, &ref), 0);
        pthread_mutex_unlock(&be.lock);
        ck_assert_uint_eq(ref.n_refs, REGION / 4096);
        ck_assert_int_eq(vgpu_endpoint_region_ref(g, &ref), -EOPNOTSUPP); /* never from a guest */
        xen_fake_domid = 0;
        ck_assert_int_eq(vgpu_region_ref_map(&ref, &map), 0);
        xen_fake_domid = DOMID;
        memcpy((uint8_t *)g->region + 8192, "to the executor", 16);
        ck_assert_str_eq((char *)map.addr + 8192, "to the executor");
        vgpu_region_unmap(&map);
        vgpu_region_ref_done(&ref);
        vgpu_endpoint_free(g);
}
END_TEST

START_TEST(test_unknown_vm_is_refused_with_the_backends_reason)
{
        VgpuEndpoint *e = NULL;
        char why[512];

        be.refuse = true;
        backend_start(SERVE_NONE);
        ck_assert_int_eq(vgpu_xen_guest_connect(&xen_fake_ops, REGION, 8, 8, &e, why, sizeof(why)), -ECONNREFUSED);
        ck_assert_msg(strstr(why, "no VM with uuid " UUID), "%s", why);
        ck_assert_ptr_null(e);
        ck_assert_uint_eq(xen_fake_live_mappings(), 0);
        await(BE "/state", "6"); /* the guest said Closed; so does the backend */
        ck_assert_str_eq(xen_fake_read(FE "/state"), "6");
}
END_TEST

/* Keys written by hand, as a hostile guest would, then Initialised. */
static void hostile_frontend(const char *key, const char *value)
{
        ck_assert_int_eq(xen_fake_write(FE "/protocol-version", "1"), 0);
        ck_assert_int_eq(xen_fake_write(FE "/region-size", "65536"), 0);
        ck_assert_int_eq(xen_fake_write(FE "/nr-page-dir-refs", "1"), 0);
        ck_assert_int_eq(xen_fake_write(FE "/page-dir-ref-0", "8"), 0);
        ck_assert_int_eq(xen_fake_write(FE "/event-channel", "1"), 0);
        ck_assert_int_eq(xen_fake_write(key, value), 0);
        ck_assert_int_eq(xen_fake_write(FE "/state", "3"), 0);
}

static const char *const hostile[][2] = {
        {FE "/nr-page-dir-refs", "2"}, /* too many references */
        {FE "/region-size", "banana"}, {FE "/region-size", "8589934592"}, {FE "/event-channel", "-1"},
        {FE "/page-dir-ref-0", "3"},   {FE "/protocol-version", ""},
};

START_TEST(test_hostile_frontend_keys_are_refused_before_anything_is_mapped)
{
        _cleanup_free_ char *error = NULL;
        const char *key = strrchr(hostile[_i][0], '/') + 1;

        backend_start(SERVE_NONE);
        await(BE "/state", "2");
        hostile_frontend(hostile[_i][0], hostile[_i][1]);
        await(BE "/state", "5");
        error = xen_fake_read(BE "/error");
        ck_assert_msg(error && strstr(error, key), "error for %s='%s': %s", key, hostile[_i][1], strempty(error));
        ck_assert_uint_eq(xen_fake_live_mappings(), 0);
        ck_assert_int_eq(xen_fake_log_find(0, "gnttab"), -1);
        /* Starting over is welcome. */
        ck_assert_int_eq(xen_fake_write(FE "/state", "1"), 0);
        await(BE "/state", "2");
}
END_TEST

START_TEST(test_frontend_closing_tears_down_notify_page_then_region_then_port)
{
        const VgpuChannelHeader *h;
        VgpuEndpoint *g;
        int at, notify, unmap1, unmap_region, unbind, closed, closing, closed_state;
        char state_prefix[96];

        backend_start(SERVE_NONE);
        g = guest_connect();
        h = g->region;
        at = xen_fake_log_count();
        ck_assert_int_eq(xen_fake_write(FE "/state", "5"), 0);
        await(BE "/state", "6");
        notify = xen_fake_log_find(at, "notify port");
        unmap1 = xen_fake_log_find(at, "gnttab_unmap 1");
        unmap_region = xen_fake_log_find(at, "gnttab_unmap 16");
        unbind = xen_fake_log_find(at, "evtchn_unbind");
        closed = xen_fake_log_find(at, "evtchn_close");
        snprintf(state_prefix, sizeof(state_prefix), "state %s/state=5", BE);
        closing = xen_fake_log_find(at, state_prefix);
        snprintf(state_prefix, sizeof(state_prefix), "state %s/state=6", BE);
        closed_state = xen_fake_log_find(at, state_prefix);
        ck_assert_msg(notify >= 0 && notify < unmap1 && unmap1 < unmap_region && unmap_region < unbind &&
                              unbind < closed && closed < closing && closing < closed_state,
                      "order: notify %d, unmap header %d, unmap region %d, unbind %d, close %d, Closing %d, "
                      "Closed %d",
                      notify, unmap1, unmap_region, unbind, closed, closing, closed_state);
        ck_assert_msg(!strstr(xen_fake_log_entry(notify), "unbound"), "%s", xen_fake_log_entry(notify));
        /* The guest learns it from its own header (zeroed by the unmap-notify, reason kept) and a wake-up. */
        ck_assert_uint_eq(vgpu_channel_backend_state(g->region), VGPU_PEER_ABSENT);
        ck_assert_uint_eq(h->close_reason, VGPU_STATUS_CHANNEL_CLOSED);
        ck_assert(readable(g->wait_fd));
        ck_assert_msg(strstr(be.last_why, "frontend is closing"), "%s", be.last_why);
        vgpu_endpoint_free(g);
}
END_TEST

START_TEST(test_release_domain_tears_down_a_vanished_domain)
{
        VgpuEndpoint *g;

        backend_start(SERVE_NONE);
        g = guest_connect();
        xen_fake_destroy_domain(DOMID);
        await(BE "/state", "6");
        ck_assert_int_eq(be.disconnects, 1);
        ck_assert_msg(strstr(be.last_why, "domain was destroyed"), "%s", be.last_why);
        ck_assert_uint_eq(xen_fake_live_mappings(), 0);
        ck_assert_msg(strstr(be.journal, "(@releaseDomain)"), "%s", be.journal);
        vgpu_endpoint_free(g);
}
END_TEST

START_TEST(test_too_few_grants_names_max_grant_frames)
{
        VgpuEndpoint *e = NULL;
        char why[512];

        backend_start(SERVE_NONE);
        xen_fake_set_grant_limit(8);
        ck_assert_int_eq(vgpu_xen_guest_connect(&xen_fake_ops, REGION, 8, 8, &e, why, sizeof(why)), -ENOSPC);
        ck_assert_msg(strstr(why, "max_grant_frames") && strstr(why, "gntalloc"), "%s", why);
}
END_TEST

START_TEST(test_a_domain_without_a_device_is_told_so)
{
        VgpuEndpoint *e = NULL;
        char why[512];

        xen_fake_domid = 6;
        ck_assert_int_eq(vgpu_xen_guest_connect(&xen_fake_ops, REGION, 8, 8, &e, why, sizeof(why)), -ENODEV);
        ck_assert_msg(strstr(why, "vgpu-xen-channel create"), "%s", why);
        ck_assert(!xen_fake_exists("/local/domain/6/device/vgpu/0/state"));
}
END_TEST

static int alloc_in_flight(void)
{
        VgpuConnectOptions o = {.transport = VGPU_CONNECT_XEN, .requests = 8, .data_size = 16 * 4096};
        VgpuMemHandle mem = 0;
        VgpuClient *c = NULL;
        int r;

        r = vgpu_connect(&o, &c);
        ck_assert_msg(r == 0, "vgpu_connect over Xen: %s; backend said:\n%s", vgpu_last_error(), be.journal);
        r = vgpu_mem_alloc(c, 4096, &mem);
        ck_assert_int_eq(vgpu_sync(c), r); /* the client is dead: every later call says the same */
        vgpu_disconnect(c);
        return r;
}

START_TEST(test_libvgpu_in_flight_command_fails_when_the_host_closes)
{
        backend_start(SERVE_CLOSE_ON_ALLOC);
        ck_assert_int_eq(alloc_in_flight(), VGPU_E_CHANNEL_CLOSED);
        ck_assert_msg(strstr(vgpu_last_error(), "closed the channel"), "%s", vgpu_last_error());
        await(BE "/state", "6");
}
END_TEST

START_TEST(test_libvgpu_in_flight_command_fails_when_the_host_dies)
{
        backend_start(SERVE_CRASH_ON_ALLOC);
        ck_assert_int_eq(alloc_in_flight(), -ECONNRESET);
        ck_assert_msg(strstr(vgpu_last_error(), "let go of the channel"), "%s", vgpu_last_error());
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("xen-handshake");
        TCase *tc = tcase_create("handshake");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_toolstack_creates_both_directories_with_their_permissions);
        tcase_add_test(tc, test_guest_and_backend_walk_to_connected_and_share_pages);
        tcase_add_test(tc, test_the_executor_maps_the_same_pages_from_the_reference);
        tcase_add_test(tc, test_unknown_vm_is_refused_with_the_backends_reason);
        tcase_add_loop_test(tc, test_hostile_frontend_keys_are_refused_before_anything_is_mapped, 0,
                            ELEMENTSOF(hostile));
        tcase_add_test(tc, test_frontend_closing_tears_down_notify_page_then_region_then_port);
        tcase_add_test(tc, test_release_domain_tears_down_a_vanished_domain);
        tcase_add_test(tc, test_too_few_grants_names_max_grant_frames);
        tcase_add_test(tc, test_a_domain_without_a_device_is_told_so);
        tcase_add_test(tc, test_libvgpu_in_flight_command_fails_when_the_host_closes);
        tcase_add_test(tc, test_libvgpu_in_flight_command_fails_when_the_host_dies);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
