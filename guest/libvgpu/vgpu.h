/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvgpu: the guest's client library. A guest program connects to its VM's channel, allocates device
 * memory, copies, loads modules (or uses the built-in one), launches kernels and synchronizes, all over
 * the shared-memory channel of docs/protocol.md. This header is self-contained: it is all a guest
 * developer needs (docs/guest.md has the longer story and a complete example). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef VGPU_API
#define VGPU_API __attribute__((visibility("default")))
#endif

/* ---- Errors ----
 *
 * Every function that can fail returns 0 (or a documented non-negative value) on success and a negative
 * number on failure, of one of two kinds:
 *   - a negative errno for failures of this side or of the connection: -EINVAL (a bad argument, caught
 *     before anything is sent), -ENOMEM, -ENOENT/-ECONNREFUSED (no channel socket: no host serving this
 *     VM), -ECONNRESET (the host hung up: every pending call gets it), -EPROTO (the host broke the
 *     protocol, e.g. a completion for a request never sent: the client is unusable afterwards), -ETIMEDOUT
 *     (a wait ran past VgpuConnectOptions.timeout_ms), -EMSGSIZE (a single payload larger than the data
 *     area);
 *   - a host status (the VgpuStatus of docs/protocol.md) s, returned as VGPU_ERROR_STATUS(s): the host
 *     refused or failed that request. VGPU_E_* below names them.
 * vgpu_strerror() turns either into a sentence; vgpu_error_status() recovers the status. Once the channel
 * is gone (host hang-up, host closed the channel, protocol violation, timeout) every later call returns
 * that same error at once: the client is dead, free it with vgpu_disconnect(). */

#define VGPU_ERROR_STATUS_BASE 4096
#define VGPU_ERROR_STATUS(s)   (-(VGPU_ERROR_STATUS_BASE + (int)(s)))

enum {
        VGPU_E_INVALID_ARGUMENT = VGPU_ERROR_STATUS(1), /* the host found a field out of its domain */
        VGPU_E_UNKNOWN_OPCODE = VGPU_ERROR_STATUS(2),
        VGPU_E_NO_SUCH_HANDLE = VGPU_ERROR_STATUS(3),   /* freed, never issued, or of the wrong kind */
        VGPU_E_OUT_OF_MEMORY = VGPU_ERROR_STATUS(4),    /* the device has no room */
        VGPU_E_QUOTA_EXCEEDED = VGPU_ERROR_STATUS(5),   /* this VM's memory quota has no room */
        VGPU_E_OUT_OF_BOUNDS = VGPU_ERROR_STATUS(6),    /* a range past an allocation */
        VGPU_E_VERSION_MISMATCH = VGPU_ERROR_STATUS(7), /* connect: no protocol version in common */
        VGPU_E_BUSY = VGPU_ERROR_STATUS(8),
        VGPU_E_DEVICE_ERROR = VGPU_ERROR_STATUS(9),     /* the GPU (or the CPU backend) failed it */
        VGPU_E_CHANNEL_CLOSED = VGPU_ERROR_STATUS(10),  /* the host closed the channel */
        VGPU_E_VM_MOVED = VGPU_ERROR_STATUS(11),        /* the VM changed pool: its handles are gone */
        VGPU_E_NOT_SUPPORTED = VGPU_ERROR_STATUS(12),   /* e.g. PTX on a host without a GPU */
        VGPU_E_NOT_NEGOTIATED = VGPU_ERROR_STATUS(13),
        VGPU_E_PROTOCOL_VIOLATION = VGPU_ERROR_STATUS(14), /* as a close reason: the host says we broke it */
        VGPU_E_STATE_LOST = VGPU_ERROR_STATUS(15),   /* the VM's executor ended: its handles are gone */
        VGPU_E_UNAVAILABLE = VGPU_ERROR_STATUS(16),  /* the executor failed too often: retry later */
};

/* The host status carried by err, or -1 when err is a plain errno (or 0). */
VGPU_API int vgpu_error_status(int err);
/* A sentence for err (negative errno or VGPU_E_*); never NULL. */
VGPU_API const char *vgpu_strerror(int err);
/* The last failure of a vgpu_* call in this thread, with its detail ("host speaks protocol versions 2–3,
 * this library 1–1", "LAUNCH (seq 17) failed: invalid argument"); "" when there was none. */
VGPU_API const char *vgpu_last_error(void);

/* ---- Connecting ---- */

typedef enum VgpuTransportChoice {
        VGPU_CONNECT_AUTO = 0,  /* $VGPU_TRANSPORT, else local when the socket exists, else Xen in a Xen domU
                                 * (/sys/hypervisor/type or /proc/xen, and /dev/xen/gntalloc), else
                                 * -EOPNOTSUPP */
        VGPU_CONNECT_LOCAL = 1, /* the per-VM unix socket $VGPU_RUNTIME_DIR/vm/N.sock */
        VGPU_CONNECT_XEN = 2,   /* grants + an event channel to domain 0, found through the domain's xenstore
                                 * device/vgpu/0 (docs/xen.md); needs no VM id: the host knows the domain */
} VgpuTransportChoice;

#define VGPU_CONNECT_REQUESTS_DEFAULT  256u               /* request ring slots */
#define VGPU_CONNECT_DATA_SIZE_DEFAULT (64u * 1024 * 1024) /* data area bytes */

/* Zero-initialize and set what you need; every zero field takes its default. */
typedef struct VgpuConnectOptions {
        uint32_t vm_id;          /* 0: $VGPU_VM_ID, else the platform (vgpu-stub / Xen): -ENODEV if none */
        const char *socket_path; /* NULL: $VGPU_RUNTIME_DIR (or /run/vgpu) + "/vm/<vm_id>.sock" */
        VgpuTransportChoice transport;
        uint32_t requests;    /* request ring slots, a power of two 2 … 4096 (default 256) */
        uint32_t completions; /* completion ring slots, likewise (default: as requests) */
        uint64_t data_size;   /* data area bytes, rounded up to pages (default 64 MiB, minimum 4 KiB) */
        uint32_t timeout_ms;  /* the longest a call waits for the host; 0: no limit (a dead host is still
                               * noticed at once through the hang-up) */
        uint32_t reserved[7]; /* 0 */
} VgpuConnectOptions;

typedef struct VgpuClient VgpuClient;

/* Connects to the VM's channel and negotiates the protocol version (HELLO). opts may be NULL. On
 * VGPU_E_VERSION_MISMATCH vgpu_last_error() names both sides' versions. */
VGPU_API int vgpu_connect(const VgpuConnectOptions *opts, VgpuClient **ret);
/* Waits for nothing: pending work is abandoned (the host still finishes it). Takes NULL; returns NULL. */
VGPU_API VgpuClient *vgpu_disconnect(VgpuClient *c);

typedef struct VgpuClientInfo {
        uint32_t vm_id;
        VgpuTransportChoice transport;  /* as chosen */
        const char *socket_path;  /* local: the socket, valid while the client lives; Xen: NULL */
        uint16_t protocol_version; /* negotiated in HELLO */
        uint16_t host_version_min;
        uint32_t requests, completions; /* ring slots */
        uint64_t data_size;             /* data area bytes */
} VgpuClientInfo;

VGPU_API int vgpu_client_info(const VgpuClient *c, VgpuClientInfo *ret);

/* ---- Device memory ----
 *
 * Handles are opaque host values (never 0, never device addresses). Calls marked "queued" return as soon as
 * the request is in the ring (the host's answer comes later): their errors are reported by the next
 * vgpu_sync(). Queued requests are made visible to the host together, with one notification, when a
 * call has to wait, at vgpu_flush() or vgpu_sync(). */

typedef uint64_t VgpuMemHandle;
typedef uint64_t VgpuModuleHandle;
typedef uint64_t VgpuFunctionHandle;

/* Waits for the answer. */
VGPU_API int vgpu_mem_alloc(VgpuClient *c, uint64_t size, VgpuMemHandle *ret);
/* Queued. */
VGPU_API int vgpu_mem_free(VgpuClient *c, VgpuMemHandle mem);

/* Queued: src is copied into the data area before this returns, so it may be reused at once. A copy
 * larger than the data area is cut into chunks (and then waits whenever the data area is full). */
VGPU_API int vgpu_memcpy_htod(VgpuClient *c, VgpuMemHandle dst, uint64_t dst_offset, const void *src, size_t size);
/* Waits until dst holds the bytes (chunked like htod). Earlier queued requests execute first. */
VGPU_API int vgpu_memcpy_dtoh(VgpuClient *c, void *dst, VgpuMemHandle src, uint64_t src_offset, size_t size);
/* Queued. */
VGPU_API int vgpu_memcpy_dtod(VgpuClient *c, VgpuMemHandle dst, uint64_t dst_offset, VgpuMemHandle src,
                              uint64_t src_offset, uint64_t size);
/* Queued. Fills size bytes (a multiple of element_size: 1, 2 or 4) with the low element_size bytes of
 * value; offset is a multiple of element_size too. */
VGPU_API int vgpu_memset(VgpuClient *c, VgpuMemHandle mem, uint64_t offset, uint32_t value, uint8_t element_size,
                         uint64_t size);

/* ---- Modules and functions ---- */

typedef enum VgpuImageFormat {
        VGPU_IMAGE_PTX = 1, /* text; a NUL is appended when the image lacks one */
        VGPU_IMAGE_CUBIN = 2,
        VGPU_IMAGE_FATBIN = 3,
} VgpuImageFormat;

/* The well-known module of portable kernels (docs/builtins.md). */
#define VGPU_BUILTIN_MODULE_NAME "vgpu.builtin"

/* Waits. The image must fit the data area (-EMSGSIZE otherwise). When the host refuses the module,
 * vgpu_last_error() carries its reason (for PTX, the JIT compiler's log), at most as long as the image. */
VGPU_API int vgpu_module_load(VgpuClient *c, VgpuImageFormat format, const void *image, size_t size,
                              VgpuModuleHandle *ret);
/* Waits. The handle of vgpu.builtin, whose functions are gemm, conv2d, relu, add, … */
VGPU_API int vgpu_module_builtin(VgpuClient *c, VgpuModuleHandle *ret);
/* Waits. */
VGPU_API int vgpu_get_function(VgpuClient *c, VgpuModuleHandle module, const char *name, VgpuFunctionHandle *ret);

/* ---- Launching ---- */

typedef struct VgpuDim3 {
        uint32_t x, y, z;
} VgpuDim3;

#define VGPU_DIM3(x_, y_, z_) ((VgpuDim3){(x_), (y_), (z_)})

/* One kernel parameter, built with the functions below and passed by value. */
typedef struct VgpuParam {
        uint8_t kind; /* 1 value, 2 buffer (as the wire's VgpuParamKind) */
        uint8_t reserved[3];
        uint32_t size;
        uint64_t value;
        uint64_t offset;
} VgpuParam;

/* A device pointer to mem + offset (the host translates the handle). */
VGPU_API VgpuParam vgpu_param_buffer(VgpuMemHandle mem, uint64_t offset);
VGPU_API VgpuParam vgpu_param_u32(uint32_t v);
VGPU_API VgpuParam vgpu_param_i32(int32_t v);
VGPU_API VgpuParam vgpu_param_f32(float v);

/* Queued. params[0 … n-1] in the kernel's order (for built-ins: docs/builtins.md; they ignore grid,
 * block and shared_mem but the host still wants grid and block ≥ 1). */
VGPU_API int vgpu_launch(VgpuClient *c, VgpuFunctionHandle function, VgpuDim3 grid, VgpuDim3 block,
                         uint32_t shared_mem, const VgpuParam *params, size_t n);

/* ---- Synchronizing ---- */

/* Makes queued requests visible to the host (one notification at most), without waiting. */
VGPU_API int vgpu_flush(VgpuClient *c);
/* Waits until every request sent so far has completed. Returns the error of the first queued request
 * that failed since the last vgpu_sync() (vgpu_last_failure() names it), else 0. */
VGPU_API int vgpu_sync(VgpuClient *c);

typedef struct VgpuFailure {
        int error;          /* as returned */
        uint16_t opcode;    /* the wire opcode that failed */
        const char *op;     /* its name: "LAUNCH", "COPY_H2D", … */
        uint64_t seq;       /* its sequence number */
} VgpuFailure;

/* The queued request whose failure the last vgpu_sync() reported; error 0 when none. */
VGPU_API int vgpu_last_failure(const VgpuClient *c, VgpuFailure *ret);

typedef struct VgpuStatsSnapshot {
        /* from the host (STATS) */
        uint64_t mem_used, mem_quota; /* bytes; quota 0: none */
        uint64_t host_requests, host_errors;
        uint64_t queue_wait_ns, exec_ns;
        uint8_t priority; /* 0 high, 1 medium, 2 low */
        /* this client's own counters */
        uint64_t requests;      /* sent */
        uint64_t publishes;     /* times queued requests were made visible */
        uint64_t notifications; /* wake-ups sent to the host */
        uint64_t waits;         /* times a call slept in poll() */
        uint64_t chunks;        /* copy requests sent for htod/dtoh (more than calls when chunked) */
} VgpuStatsSnapshot;

/* Waits (a STATS request). */
VGPU_API int vgpu_stats(VgpuClient *c, VgpuStatsSnapshot *ret);
/* This client's counters only: no request, never fails on a live or dead client. */
VGPU_API void vgpu_client_counters(const VgpuClient *c, VgpuStatsSnapshot *ret);

/* ---- The platform: the vgpu-stub device ----
 *
 * In a VM started with the vgpu-stub PCI device (docs/vgpu-stub.md), the host's toolstack shows the guest
 * its identity in read-only registers. These read them through sysfs (the device's resource0 file), which
 * needs root. */

#define VGPU_PRIORITY_NONE (-1) /* VgpuStubInfo.priority: the toolstack gave none */

typedef struct VgpuStubInfo {
        char pci_address[32]; /* "0000:00:03.0" */
        uint32_t version;     /* the device's interface version (1 and up: later ones only add registers) */
        uint32_t vm_id;       /* 1 … 2147483647 */
        char pool_id[17];     /* "" when the toolstack gave none */
        int priority;         /* 0 high, 1 medium, 2 low (as VgpuStatsSnapshot.priority), VGPU_PRIORITY_NONE */
        uint32_t status;      /* bit 0: QEMU announced this identity to the host's vgpu-ingestd */
        uint32_t ignored_writes; /* guest writes the device dropped (to its read-only registers) */
        uint32_t doorbell_count; /* doorbell writes */
} VgpuStubInfo;

/* Finds the vgpu-stub device and reads its registers. -ENODEV when there is none ("no vgpu-stub device
 * found"); -EACCES/-EPERM when the registers cannot be mapped (not root, or a locked-down kernel);
 * -EPROTO when the device is not what it should be (wrong magic, a value out of its range).
 * vgpu_last_error() says which. */
VGPU_API int vgpu_stub_read(VgpuStubInfo *ret);
/* "high", "medium", "low"; "" for VGPU_PRIORITY_NONE or anything else. */
VGPU_API const char *vgpu_stub_priority_name(int priority);

#ifdef __cplusplus
}
#endif
