/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ingestd's side of a pool link, for the scheduler's integration test. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ingest.h"
#include "proto/channel.h"
#include "transport/local.h"
#include "transport/transport.h"

#define REGION_SIZE (4u << 20)

int ingest_connect(Ingest *in, const char *socket_path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        VgpuLinkGeometry g;
        VgpuLinkReady ready;
        VgpuLinkStart start;
        int r;

        *in = (Ingest){.next_tag = 1};
        in->link_size = vgpu_link_region_size(INGEST_RING_COUNT, INGEST_RING_COUNT);
        in->link_fd = memfd_create("pool-link", MFD_CLOEXEC);
        if (in->link_fd < 0 || ftruncate(in->link_fd, (off_t)in->link_size) < 0)
                return -errno;
        in->link = mmap(NULL, in->link_size, PROT_READ | PROT_WRITE, MAP_SHARED, in->link_fd, 0);
        if (in->link == MAP_FAILED)
                return -errno;
        if ((r = vgpu_link_format(in->link, in->link_size, INGEST_RING_COUNT, INGEST_RING_COUNT, &g)) < 0 ||
            (r = vgpu_link_attach_scheduler(in->link, &g, &in->req, &in->cpl)) < 0)
                return r;
        in->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        in->notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        in->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
        if (connect(in->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        start = (VgpuLinkStart){.magic = VGPU_LINK_START_MAGIC, .version = VGPU_LINK_VERSION, .size = sizeof(start),
                                .link_size = in->link_size};
        if ((r = vgpu_link_start_send(in->sock, &start, in->link_fd, in->kick, in->notify)) < 0 ||
            (r = vgpu_link_ready_receive(in->sock, INGEST_WAIT_MS, &ready)) < 0)
                return r;
        return -ready.error;
}

void ingest_close(Ingest *in)
{
        close(in->sock);
        close(in->kick);
        close(in->notify);
        close(in->link_fd);
        munmap(in->link, in->link_size);
}

int guest_vm_create(GuestVm *vm, uint32_t vm_id, uint64_t generation)
{
        VgpuChannelGeometry g;
        void *p;
        int r;

        *vm = (GuestVm){.vm_id = vm_id, .generation = generation};
        vm->region_fd = memfd_create("vm-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (vm->region_fd < 0 || ftruncate(vm->region_fd, REGION_SIZE) < 0)
                return -errno;
        p = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, vm->region_fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        r = vgpu_channel_format(p, REGION_SIZE, 4, 4, &g);
        munmap(p, REGION_SIZE);
        if (r < 0)
                return r;
        return fcntl(vm->region_fd, F_ADD_SEALS, VGPU_LOCAL_SEALS_REQUIRED) < 0 ? -errno : 0;
}

void guest_vm_destroy(GuestVm *vm)
{
        close(vm->region_fd);
}

int ingest_attach(Ingest *in, const GuestVm *vm, uint64_t quota, VgpuPoolEvent *ret)
{
        VgpuPoolAttach a = {.magic = VGPU_POOL_ATTACH_MAGIC, .version = VGPU_POOL_LINK_VERSION, .size = sizeof(a),
                            .vm_id = vm->vm_id, .generation = vm->generation, .memory_quota = quota};
        VgpuRegionRef ref = {.kind = VGPU_TRANSPORT_LOCAL, .size = REGION_SIZE, .fd = vm->region_fd};
        int r;

        if (send(in->sock, &a, sizeof(a), MSG_NOSIGNAL) != sizeof(a))
                return -errno;
        r = vgpu_region_ref_send(in->sock, &ref);
        if (r < 0)
                return r;
        return ingest_event(in, INGEST_WAIT_MS, ret);
}

int ingest_send_detach(Ingest *in, const GuestVm *vm, uint32_t status)
{
        VgpuPoolDetach d = {.magic = VGPU_POOL_DETACH_MAGIC, .version = VGPU_POOL_LINK_VERSION, .size = sizeof(d),
                            .vm_id = vm->vm_id, .status = status, .generation = vm->generation};

        return send(in->sock, &d, sizeof(d), MSG_NOSIGNAL) == sizeof(d) ? 0 : -errno;
}

int ingest_event(Ingest *in, int timeout_ms, VgpuPoolEvent *ret)
{
        struct pollfd p = {.fd = in->sock, .events = POLLIN};

        if (poll(&p, 1, timeout_ms) != 1)
                return -ETIMEDOUT;
        if (recv(in->sock, ret, sizeof(*ret), 0) != sizeof(*ret) || ret->magic != VGPU_POOL_EVENT_MAGIC)
                return -EBADMSG;
        return 0;
}

uint64_t ingest_submit(Ingest *in, const GuestVm *vm, uint8_t priority, const VgpuRequestDesc *d)
{
        struct timespec ts;
        VgpuHostRequest r = {.req = *d, .vm_id = vm->vm_id, .priority = priority, .tag = in->next_tag++,
                             .generation = vm->generation};

        clock_gettime(CLOCK_MONOTONIC, &ts);
        r.ingest_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        if (vgpu_host_request_push(&in->req, &r) < 0)
                return 0;
        return r.tag;
}

void ingest_publish(Ingest *in)
{
        uint64_t one = 1;

        if (vgpu_ring_producer_publish(&in->req.ring) > 0)
                (void)!write(in->kick, &one, sizeof(one));
}

int ingest_next(Ingest *in, int timeout_ms, VgpuHostCompletion *ret)
{
        uint64_t one = 1, v;
        int r;

        while ((r = vgpu_host_completion_pop(&in->cpl, ret)) == -EAGAIN) {
                struct pollfd p = {.fd = in->notify, .events = POLLIN};

                if (vgpu_ring_consumer_prepare_wait(&in->cpl.ring) != 0)
                        continue;
                if (poll(&p, 1, timeout_ms) != 1)
                        return -ETIMEDOUT;
                (void)!read(in->notify, &v, sizeof(v));
        }
        if (r < 0)
                return r;
        if (vgpu_ring_consumer_release(&in->cpl.ring) > 0)
                (void)!write(in->kick, &one, sizeof(one));
        return 0;
}

int ingest_call(Ingest *in, const GuestVm *vm, uint8_t priority, const VgpuRequestDesc *d, VgpuHostCompletion *ret)
{
        uint64_t tag = ingest_submit(in, vm, priority, d);
        int r;

        ingest_publish(in);
        r = ingest_next(in, INGEST_WAIT_MS, ret);
        if (r == 0 && ret->tag != tag)
                return -EBADMSG;
        return r;
}
