/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vgpu wire format: the one definition of every byte a guest and the host share. docs/protocol.md is
 * its prose; a change here is a change there. Everything is little-endian, fixed-width and explicitly
 * padded; no pointer ever crosses the channel (GPU memory, modules and functions are opaque host handles). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "The vgpu wire format is little-endian; a big-endian port must byte-swap every field."
#endif

/* ---- The channel: one shared region = header | request ring | completion ring | data area ---- */

#define VGPU_CHANNEL_MAGIC  UINT32_C(0x43504756) /* "VGPC" as bytes in memory */
#define VGPU_LAYOUT_VERSION 1                    /* of the header below; commands are versioned by HELLO */

#define VGPU_PROTOCOL_VERSION_MIN 1 /* command-set versions this code speaks, negotiated in HELLO */
#define VGPU_PROTOCOL_VERSION_MAX 1

#define VGPU_REQUEST_SIZE    64u
#define VGPU_COMPLETION_SIZE 32u
#define VGPU_RING_COUNT_MIN  2u /* slots per ring; a power of two */
#define VGPU_RING_COUNT_MAX  4096u
#define VGPU_AREA_ALIGN      64u                 /* rings and data area start on a cache line */
#define VGPU_REGION_SIZE_MAX (UINT64_C(4) << 30) /* whole region, header included */

/* Each ring's indices. The two halves sit on separate cache lines because they have different writers:
 * the producer writes only the first line, the consumer only the second. Each side reads the other's line
 * and trusts nothing in it: see docs/protocol.md, "Memory ordering". Indices are free-running: the fill
 * level is prod - cons (mod 2^32), the slot of index i is i & (count - 1). */
typedef struct VgpuRingControl {
        /* written by the producer */
        uint32_t prod;       /* descriptors published so far */
        uint32_t cons_event; /* "notify me when cons passes this": set by a producer waiting for space */
        uint8_t reserved0[56];
        /* written by the consumer */
        uint32_t cons;       /* descriptors consumed so far; their slots are free again */
        uint32_t prod_event; /* "notify me when prod passes this": set by a consumer about to sleep */
        uint8_t reserved1[56];
} VgpuRingControl;

_Static_assert(sizeof(VgpuRingControl) == 128, "ring control is two cache lines");
_Static_assert(offsetof(VgpuRingControl, prod) == 0, "wire offset");
_Static_assert(offsetof(VgpuRingControl, cons_event) == 4, "wire offset");
_Static_assert(offsetof(VgpuRingControl, cons) == 64, "consumer line starts a cache line");
_Static_assert(offsetof(VgpuRingControl, prod_event) == 68, "wire offset");

/* Values of the state bytes. Each side writes only its own byte; Xen's unmap-notify clears a dead
 * frontend's byte, the local backend sees the socket hang up. */
enum {
        VGPU_PEER_ABSENT = 0, /* never attached, or gone (process died, channel unmapped) */
        VGPU_PEER_ALIVE = 1,
        VGPU_PEER_CLOSED = 2, /* detached on purpose; the host also writes close_reason */
};

/* At offset 0 of the region. The creator (the guest frontend, or a test) fills the geometry line; the
 * other side copies it once at attach, checks it, and never reads it again. */
typedef struct VgpuChannelHeader {
        uint32_t magic;          /* VGPU_CHANNEL_MAGIC */
        uint16_t layout_version; /* VGPU_LAYOUT_VERSION */
        uint16_t header_size;    /* sizeof(VgpuChannelHeader) */
        uint64_t region_size;    /* must equal the size the host mapped */
        uint32_t req_offset;     /* request ring: req_count slots of VGPU_REQUEST_SIZE bytes */
        uint32_t req_count;
        uint32_t cpl_offset; /* completion ring: cpl_count slots of VGPU_COMPLETION_SIZE bytes */
        uint32_t cpl_count;
        uint64_t data_offset; /* data area: bulk payloads, addressed by (offset, length) from its start */
        uint64_t data_size;
        uint32_t flags;         /* none defined: must be 0 */
        uint32_t close_reason;  /* written by the host: the VgpuStatus that made it close the channel */
        uint8_t frontend_state; /* written by the guest: VGPU_PEER_* */
        uint8_t backend_state;  /* written by the host: VGPU_PEER_* */
        uint8_t reserved0[6];
        VgpuRingControl req; /* producer: guest; consumer: host */
        VgpuRingControl cpl; /* producer: host; consumer: guest */
        uint8_t reserved1[128];
} VgpuChannelHeader;

_Static_assert(sizeof(VgpuChannelHeader) == 448, "header size is part of the wire format");
_Static_assert(offsetof(VgpuChannelHeader, region_size) == 8, "wire offset");
_Static_assert(offsetof(VgpuChannelHeader, req_offset) == 16, "wire offset");
_Static_assert(offsetof(VgpuChannelHeader, data_offset) == 32, "wire offset");
_Static_assert(offsetof(VgpuChannelHeader, flags) == 48, "wire offset");
_Static_assert(offsetof(VgpuChannelHeader, frontend_state) == 56, "wire offset");
_Static_assert(offsetof(VgpuChannelHeader, req) == 64, "request ring control on its own cache lines");
_Static_assert(offsetof(VgpuChannelHeader, cpl) == 192, "completion ring control on its own cache lines");

/* ---- Requests (guest → host): 64 bytes: 16 bytes common + 48 bytes of operands ---- */

typedef enum VgpuOpcode {
        VGPU_OP_HELLO = 1,
        VGPU_OP_MEM_ALLOC = 2,
        VGPU_OP_MEM_FREE = 3,
        VGPU_OP_COPY_H2D = 4, /* data area → device memory */
        VGPU_OP_COPY_D2H = 5, /* device memory → data area */
        VGPU_OP_COPY_D2D = 6,
        VGPU_OP_MEMSET = 7,
        VGPU_OP_MODULE_LOAD = 8,
        VGPU_OP_GET_FUNCTION = 9,
        VGPU_OP_LAUNCH = 10,
        VGPU_OP_SYNC = 11,
        VGPU_OP_STATS = 12,
        _VGPU_OP_MAX,
} VgpuOpcode;

#define VGPU_HANDLE_NULL UINT64_C(0) /* never issued by the host */

typedef struct VgpuHelloArgs {
        uint16_t version_min; /* the guest speaks every version in [min, max] */
        uint16_t version_max;
        uint32_t reserved;
        uint64_t features; /* offered feature bits; the host accepts those it knows (none in version 1) */
} VgpuHelloArgs;

typedef struct VgpuMemAllocArgs {
        uint64_t size;  /* bytes, 1 … VGPU_MEM_ALLOC_MAX */
        uint32_t flags; /* none defined: must be 0 */
        uint32_t reserved;
} VgpuMemAllocArgs;

typedef struct VgpuMemFreeArgs {
        uint64_t handle;
} VgpuMemFreeArgs;

/* COPY_H2D and COPY_D2H: one device range, one data-area range of the same length. */
typedef struct VgpuCopyHostArgs {
        uint64_t handle;      /* device memory */
        uint64_t offset;      /* into that allocation */
        uint64_t data_offset; /* into the data area */
        uint64_t length;
} VgpuCopyHostArgs;

typedef struct VgpuCopyD2DArgs {
        uint64_t dst_handle;
        uint64_t dst_offset;
        uint64_t src_handle;
        uint64_t src_offset;
        uint64_t length;
} VgpuCopyD2DArgs;

typedef struct VgpuMemsetArgs {
        uint64_t handle;
        uint64_t offset;
        uint64_t length;      /* bytes; a multiple of element_size, as is offset */
        uint32_t value;       /* the low element_size bytes are the pattern */
        uint8_t element_size; /* 1, 2 or 4 */
        uint8_t reserved[3];
} VgpuMemsetArgs;

typedef enum VgpuModuleFormat {
        VGPU_MODULE_PTX = 1, /* text, NUL-terminated within length */
        VGPU_MODULE_CUBIN = 2,
        VGPU_MODULE_FATBIN = 3,
} VgpuModuleFormat;

typedef struct VgpuModuleLoadArgs {
        uint32_t format; /* VgpuModuleFormat */
        uint32_t reserved;
        uint64_t data_offset;
        uint64_t length; /* 1 … VGPU_MODULE_SIZE_MAX */
} VgpuModuleLoadArgs;

typedef struct VgpuGetFunctionArgs {
        uint64_t module;      /* handle from MODULE_LOAD */
        uint64_t name_offset; /* the name in the data area, without a terminating NUL */
        uint32_t name_length; /* 1 … VGPU_FUNCTION_NAME_MAX */
        uint32_t reserved;
} VgpuGetFunctionArgs;

typedef struct VgpuLaunchArgs {
        uint64_t function; /* handle from GET_FUNCTION */
        uint32_t grid[3];
        uint32_t block[3];
        uint32_t shared_mem;  /* dynamic shared memory, bytes */
        uint16_t param_count; /* VgpuLaunchParam entries at params_offset in the data area */
        uint16_t reserved;
        uint64_t params_offset; /* 0 when param_count is 0 */
} VgpuLaunchArgs;

typedef struct VgpuStatsArgs {
        uint64_t data_offset; /* where the host writes a VgpuStats */
        uint64_t length;      /* at least sizeof(VgpuStats) */
} VgpuStatsArgs;

typedef struct VgpuRequestDesc {
        uint16_t opcode;   /* VgpuOpcode */
        uint16_t flags;    /* none defined: must be 0 */
        uint32_t reserved; /* must be 0 */
        uint64_t seq;      /* chosen by the guest, echoed in the completion */
        union {
                VgpuHelloArgs hello;
                VgpuMemAllocArgs mem_alloc;
                VgpuMemFreeArgs mem_free;
                VgpuCopyHostArgs copy_host; /* COPY_H2D, COPY_D2H */
                VgpuCopyD2DArgs copy_d2d;
                VgpuMemsetArgs memset;
                VgpuModuleLoadArgs module_load;
                VgpuGetFunctionArgs get_function;
                VgpuLaunchArgs launch;
                VgpuStatsArgs stats;
                uint8_t raw[48]; /* bytes an opcode's operands do not use must be 0 */
        } u;
} VgpuRequestDesc;

_Static_assert(sizeof(VgpuHelloArgs) == 16, "wire size");
_Static_assert(sizeof(VgpuMemAllocArgs) == 16, "wire size");
_Static_assert(sizeof(VgpuMemFreeArgs) == 8, "wire size");
_Static_assert(sizeof(VgpuCopyHostArgs) == 32, "wire size");
_Static_assert(sizeof(VgpuCopyD2DArgs) == 40, "wire size");
_Static_assert(sizeof(VgpuMemsetArgs) == 32, "wire size");
_Static_assert(offsetof(VgpuMemsetArgs, element_size) == 28, "wire offset");
_Static_assert(sizeof(VgpuModuleLoadArgs) == 24, "wire size");
_Static_assert(sizeof(VgpuGetFunctionArgs) == 24, "wire size");
_Static_assert(sizeof(VgpuLaunchArgs) == 48, "wire size");
_Static_assert(offsetof(VgpuLaunchArgs, shared_mem) == 32, "wire offset");
_Static_assert(offsetof(VgpuLaunchArgs, param_count) == 36, "wire offset");
_Static_assert(offsetof(VgpuLaunchArgs, params_offset) == 40, "wire offset");
_Static_assert(sizeof(VgpuStatsArgs) == 16, "wire size");
_Static_assert(sizeof(VgpuRequestDesc) == VGPU_REQUEST_SIZE, "a request is one 64-byte slot");
_Static_assert(offsetof(VgpuRequestDesc, seq) == 8, "wire offset");
_Static_assert(offsetof(VgpuRequestDesc, u) == 16, "wire offset");

/* A kernel parameter, in an array of param_count entries in the data area. */
typedef enum VgpuParamKind {
        VGPU_PARAM_VALUE = 1,  /* size 1, 2, 4 or 8 bytes, in the low bytes of value */
        VGPU_PARAM_BUFFER = 2, /* a device pointer: value is a memory handle, offset a byte offset into it */
        VGPU_PARAM_BYTES = 3,  /* a by-value struct: size bytes at data offset value */
} VgpuParamKind;

typedef struct VgpuLaunchParam {
        uint8_t kind; /* VgpuParamKind */
        uint8_t reserved[3];
        uint32_t size; /* VALUE: 1, 2, 4, 8; BUFFER: 8; BYTES: 1 … VGPU_LAUNCH_PARAM_BYTES_MAX */
        uint64_t value;
        uint64_t offset; /* BUFFER only; 0 otherwise */
} VgpuLaunchParam;

_Static_assert(sizeof(VgpuLaunchParam) == 24, "wire size");
_Static_assert(offsetof(VgpuLaunchParam, value) == 8, "wire offset");

/* Written by the host into the data area in answer to STATS. */
typedef struct VgpuStats {
        uint64_t mem_used;      /* bytes allocated by this VM */
        uint64_t mem_quota;     /* 0: none */
        uint64_t requests;      /* completed since HELLO */
        uint64_t errors;        /* completions with a status other than OK */
        uint64_t queue_wait_ns; /* sum of time spent queued in the scheduler */
        uint64_t exec_ns;       /* sum of execution time */
        uint8_t priority;       /* 0 high, 1 medium, 2 low: as the host stamped it */
        uint8_t reserved[7];
        uint64_t reserved1;
} VgpuStats;

_Static_assert(sizeof(VgpuStats) == 64, "wire size");

/* ---- Completions (host → guest): 32 bytes ---- */

typedef enum VgpuStatus {
        VGPU_STATUS_OK = 0,
        VGPU_STATUS_INVALID_ARGUMENT = 1, /* a field out of its domain: reserved bits, zero sizes, dims */
        VGPU_STATUS_UNKNOWN_OPCODE = 2,
        VGPU_STATUS_NO_SUCH_HANDLE = 3,      /* not issued to this VM, already freed, or of the wrong kind */
        VGPU_STATUS_OUT_OF_MEMORY = 4,       /* the device has no room */
        VGPU_STATUS_QUOTA_EXCEEDED = 5,      /* the VM's quota has no room */
        VGPU_STATUS_OUT_OF_BOUNDS = 6,       /* a range past the data area or past an allocation */
        VGPU_STATUS_VERSION_MISMATCH = 7,    /* HELLO: no common version */
        VGPU_STATUS_BUSY = 8,                /* try again later */
        VGPU_STATUS_DEVICE_ERROR = 9,        /* the GPU (or CPU backend) failed the command */
        VGPU_STATUS_CHANNEL_CLOSED = 10,     /* the host closed the channel; also a close_reason */
        VGPU_STATUS_VM_MOVED = 11,           /* the VM changed pool: its GPU state is gone; HELLO again */
        VGPU_STATUS_NOT_SUPPORTED = 12,      /* known opcode or format this host cannot serve */
        VGPU_STATUS_NOT_NEGOTIATED = 13,     /* a command before a successful HELLO */
        VGPU_STATUS_PROTOCOL_VIOLATION = 14, /* close_reason only: the guest broke ring discipline */
        VGPU_STATUS_STATE_LOST = 15,         /* the VM's executor ended: its GPU state is gone; later
                                              * commands run on a fresh executor (channel stays open) */
        VGPU_STATUS_UNAVAILABLE = 16,        /* the VM's executor failed too often: not restarted for a
                                              * while (docs/scheduler.md, "Executor restarts") */
        _VGPU_STATUS_MAX,
} VgpuStatus;

typedef struct VgpuCompletionDesc {
        uint64_t seq;    /* the request's */
        uint32_t status; /* VgpuStatus */
        uint16_t opcode; /* the request's, echoed */
        uint16_t reserved;
        union {
                uint64_t handle; /* MEM_ALLOC, MODULE_LOAD, GET_FUNCTION */
                struct {
                        uint16_t version;     /* chosen; on VERSION_MISMATCH the host's maximum */
                        uint16_t version_min; /* the host's minimum */
                        uint32_t reserved;
                        uint64_t features; /* accepted subset of the offered bits */
                } hello;
                uint64_t raw[2]; /* 0 where an opcode returns nothing */
        } u;
} VgpuCompletionDesc;

_Static_assert(sizeof(VgpuCompletionDesc) == VGPU_COMPLETION_SIZE, "a completion is one 32-byte slot");
_Static_assert(offsetof(VgpuCompletionDesc, status) == 8, "wire offset");
_Static_assert(offsetof(VgpuCompletionDesc, u) == 16, "wire offset");

/* ---- Limits the validator enforces (docs/protocol.md, "Limits") ---- */

#define VGPU_MEM_ALLOC_MAX           (UINT64_C(1) << 40) /* one allocation; quotas are lower */
#define VGPU_MODULE_SIZE_MAX         (UINT64_C(64) << 20)
#define VGPU_FUNCTION_NAME_MAX       1024u
#define VGPU_LAUNCH_PARAMS_MAX       256u   /* entries */
#define VGPU_LAUNCH_PARAM_BYTES_MAX  4096u  /* one BYTES parameter */
#define VGPU_LAUNCH_PARAMS_TOTAL_MAX 32764u /* sum of sizes: CUDA 12.1+'s kernel parameter limit */
#define VGPU_GRID_X_MAX              UINT32_C(0x7fffffff)
#define VGPU_GRID_YZ_MAX             65535u
#define VGPU_BLOCK_XY_MAX            1024u
#define VGPU_BLOCK_Z_MAX             64u
#define VGPU_BLOCK_THREADS_MAX       1024u
#define VGPU_SHARED_MEM_MAX          (227u * 1024u) /* H100 opt-in maximum per block */
