/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The verb table: each verb's name, the options it takes and needs, its handler and its help text, which
 * follows vgpu-admin(8). */
#include "admin.h"

#define PRIVILEGED "Changes the configuration: needs root or membership of the vgpu-admin group.\n"

#define O_VM_ID    "  --vm-id=N                 the VM's id, 1 to 2147483647\n"
#define O_POOL     "  --pool=POOL               a pool id: a letter, then up to 15 letters, digits or '_'\n"
#define O_PRIORITY "  --priority=LEVEL          high, medium or low\n"
#define O_QUOTA    "  --memory-quota=SIZE       GPU memory the VM may hold: bytes, or K, M, G, T (e.g. 8G)\n"
#define O_CAPACITY "  --capacity=N              how many VMs the pool holds, 1 to 65536\n"
#define O_MODE                                                                                                         \
        "  --mode=MODE               isolated (each VM its own fault domain, time-sliced) or\n"                        \
        "                            shared (MPS: faster, but one VM's fault can abort the others' work)\n"
#define O_GPU                                                                                                          \
        "  --gpu=RESOURCE            gpu:<PCI address or GPU uuid>, mig:<MIG uuid>, sm-share:<gpu>:<percent>,\n"       \
        "                            or \"\" for none yet\n"
#define O_DEFAULT_QUOTA "  --default-memory-quota=SIZE  memory quota of VMs registered without --memory-quota\n"
#define O_DESCRIPTION   "  --description=TEXT        free text, at most 256 bytes\n"

#define POOL_SETTINGS                                                                                                  \
        (OPT(OPT_CAPACITY) | OPT(OPT_MODE) | OPT(OPT_GPU) | OPT(OPT_DEFAULT_MEMORY_QUOTA) | OPT(OPT_DESCRIPTION))

const Verb verbs[] = {
        {
                .name = "register-vm",
                .allowed = OPT(OPT_VM_ID) | OPT(OPT_POOL) | OPT(OPT_PRIORITY) | OPT(OPT_UUID) | OPT(OPT_NAME) |
                           OPT(OPT_MEMORY_QUOTA) | OPT(OPT_IOMMU_POLICY),
                .required = OPT(OPT_VM_ID) | OPT(OPT_POOL) | OPT(OPT_PRIORITY),
                .run = verb_register_vm,
                .synopsis = "--vm-id=N --pool=POOL --priority=LEVEL [--uuid=UUID] [--name=NAME]\n"
                            "                        [--memory-quota=SIZE] [--iommu-policy=POLICY]",
                .summary = "Register a VM in a pool with a priority",
                .help = O_VM_ID O_POOL O_PRIORITY
                "  --uuid=UUID               the VM's uuid (Xen's), so that its channel can be matched to it\n"
                "  --name=NAME               a name for people, at most 128 bytes\n" O_QUOTA
                "                            (default: the pool's default memory quota)\n"
                "  --iommu-policy=POLICY     required (default): serve the VM only while IOMMU protection is\n"
                "                            in force; audit: serve it regardless and report every lapse\n"
                "                            (stored and shown; not yet enforced by vgpu-ingestd)\n"
                "\nRefused when the VM id or uuid is already registered or the pool is full.\n" PRIVILEGED,
        },
        {
                .name = "unregister-vm",
                .allowed = OPT(OPT_VM_ID),
                .required = OPT(OPT_VM_ID),
                .run = verb_unregister_vm,
                .synopsis = "--vm-id=N",
                .summary = "Remove a VM; its history stays in the audit log",
                .help = O_VM_ID "\n" PRIVILEGED,
        },
        {
                .name = "set-priority",
                .allowed = OPT(OPT_VM_ID) | OPT(OPT_PRIORITY),
                .required = OPT(OPT_VM_ID) | OPT(OPT_PRIORITY),
                .run = verb_set_priority,
                .synopsis = "--vm-id=N --priority=LEVEL",
                .summary = "Change a VM's priority within its pool",
                .help = O_VM_ID O_PRIORITY
                "\nThe new priority applies to the VM's next command; no service restarts.\n" PRIVILEGED,
        },
        {
                .name = "set-pool",
                .allowed = OPT(OPT_VM_ID) | OPT(OPT_POOL),
                .required = OPT(OPT_VM_ID) | OPT(OPT_POOL),
                .run = verb_set_pool,
                .synopsis = "--vm-id=N --pool=POOL",
                .summary = "Move a VM to another pool",
                .help = O_VM_ID O_POOL
                "\nRefused when the target pool is full. Keeps the VM's priority.\n"
                "A connected guest keeps its channel, but its GPU memory is freed and zeroed, its handles\n"
                "(memory, modules, functions) are gone, and its queued commands complete vm-moved; its next\n"
                "command is served by the new pool.\n" PRIVILEGED,
        },
        {
                .name = "set-memory-quota",
                .allowed = OPT(OPT_VM_ID) | OPT(OPT_MEMORY_QUOTA),
                .required = OPT(OPT_VM_ID) | OPT(OPT_MEMORY_QUOTA),
                .run = verb_set_memory_quota,
                .synopsis = "--vm-id=N --memory-quota=SIZE",
                .summary = "Change how much GPU memory a VM may hold",
                .help = O_VM_ID O_QUOTA "\n" PRIVILEGED,
        },
        {
                .name = "set-iommu-policy",
                .allowed = OPT(OPT_VM_ID) | OPT(OPT_POLICY) | OPT(OPT_IOMMU_POLICY),
                .required = OPT(OPT_VM_ID),
                .one_of = OPT(OPT_POLICY) | OPT(OPT_IOMMU_POLICY),
                .exclusive = OPT(OPT_POLICY) | OPT(OPT_IOMMU_POLICY),
                .run = verb_set_iommu_policy,
                .synopsis = "--vm-id=N --policy=POLICY",
                .summary = "Change a VM's IOMMU policy",
                .help = O_VM_ID
                "  --policy=POLICY           required: serve the VM only while IOMMU protection is in force;\n"
                "                            audit: serve it regardless and report every lapse\n"
                "                            (--iommu-policy=POLICY is the same; stored and shown, not yet\n"
                "                            enforced by vgpu-ingestd)\n"
                "\n" PRIVILEGED,
        },
        {
                .name = "show-vm",
                .argument = VERB_ARG_VM_ID,
                .allowed = OPT(OPT_VM_ID) | OPT(OPT_UUID),
                .one_of = OPT(OPT_VM_ID) | OPT(OPT_UUID),
                .exclusive = OPT(OPT_VM_ID) | OPT(OPT_UUID),
                .run = verb_show_vm,
                .synopsis = "{N | --vm-id=N | --uuid=UUID}",
                .summary = "Show one VM's configuration",
                .help = O_VM_ID "  --uuid=UUID               find the VM by its uuid instead\n",
        },
        {
                .name = "list-vms",
                .allowed = OPT(OPT_POOL) | OPT(OPT_PRIORITY),
                .run = verb_list_vms,
                .synopsis = "[--pool=POOL] [--priority=LEVEL]",
                .summary = "List VMs, ordered by id",
                .help = "  --pool=POOL               only the VMs in this pool\n"
                        "  --priority=LEVEL          only the VMs with this priority (high, medium or low)\n"
                        "\nColumns: VM, POOL, PRIORITY, QUOTA (GPU memory), UUID, NAME.\n",
        },
        {
                .name = "list-pools",
                .run = verb_list_pools,
                .synopsis = "",
                .summary = "List pools and how full they are",
                .help = "Columns: POOL, VMS (registered), CAPACITY, HIGH, MEDIUM, LOW (VMs per priority), MODE, GPU.\n",
        },
        {
                .name = "show-pool",
                .argument = VERB_ARG_POOL,
                .allowed = OPT(OPT_POOL),
                .required = OPT(OPT_POOL),
                .run = verb_show_pool,
                .synopsis = "{POOL | --pool=POOL}",
                .summary = "Show one pool's settings and members",
                .help = O_POOL,
        },
        {
                .name = "create-pool",
                .allowed = OPT(OPT_POOL) | POOL_SETTINGS,
                .required = OPT(OPT_POOL) | OPT(OPT_CAPACITY),
                .run = verb_create_pool,
                .synopsis = "--pool=POOL --capacity=N [--mode=MODE] [--gpu=RESOURCE]\n"
                            "                        [--default-memory-quota=SIZE] [--description=TEXT]",
                .summary = "Create a pool",
                .help = O_POOL O_CAPACITY O_MODE O_GPU O_DEFAULT_QUOTA O_DESCRIPTION "\n" PRIVILEGED,
        },
        {
                .name = "configure-pool",
                .allowed = OPT(OPT_POOL) | POOL_SETTINGS,
                .required = OPT(OPT_POOL),
                .one_of = POOL_SETTINGS,
                .run = verb_configure_pool,
                .synopsis = "--pool=POOL [--capacity=N] [--mode=MODE] [--gpu=RESOURCE]\n"
                            "                        [--default-memory-quota=SIZE] [--description=TEXT]",
                .summary = "Change a pool's settings (at least one)",
                .help = O_POOL O_CAPACITY O_MODE O_GPU O_DEFAULT_QUOTA O_DESCRIPTION
                "\nThe capacity cannot go below the number of VMs in the pool.\n" PRIVILEGED,
        },
        {
                .name = "delete-pool",
                .allowed = OPT(OPT_POOL),
                .required = OPT(OPT_POOL),
                .run = verb_delete_pool,
                .synopsis = "--pool=POOL",
                .summary = "Delete an empty pool",
                .help = O_POOL "\nRefused while VMs are registered in the pool.\n" PRIVILEGED,
        },
        {
                .name = "audit",
                .allowed = OPT(OPT_VM_ID) | OPT(OPT_AFTER) | OPT(OPT_LIMIT),
                .run = verb_audit,
                .synopsis = "[--vm-id=N] [--after=SEQ] [--limit=N]",
                .summary = "Show who changed what, oldest first",
                .help = "  --vm-id=N                 only the changes to this VM\n"
                        "  --after=SEQ               only the entries after sequence number SEQ\n"
                        "  --limit=N                 at most N entries (default: all)\n"
                        "\nColumns: SEQ, TIME (local), UID and PID of the caller, ACTION, VM, POOL, OLD and NEW "
                        "value.\n",
        },
        {
                .name = "show-iommu-status",
                .allowed = OPT(OPT_VM_ID),
                .run = verb_show_iommu_status,
                .synopsis = "[--vm-id=N]",
                .summary = "Show whether the IOMMU protects this host, with the evidence",
                .help = "  --vm-id=N                 also show this VM's confinement: its pool's GPU, the IOMMU\n"
                        "                            domain and group, its IOMMU policy, and whether it is protected\n"
                        "\nThe verdict comes from vgpu-iommud (org.vgpu.Iommu1): the platform (Linux, or Xen dom0),\n"
                        "whether the IOMMU is on, its vendor and mode, how many GPUs are isolated, the IOMMU\n"
                        "faults not yet acknowledged, and each fact's evidence (what was read, and where).\n"
                        "\nExit status 0 only when the host is compliant: the IOMMU on in strict mode, every GPU\n"
                        "isolated, no unacknowledged fault (and, with --vm-id, the VM protected). Otherwise 1,\n"
                        "with each reason; also 1 when vgpu-iommud is not running (the status is unknown).\n",
        },
        {
                .name = "list-gpus",
                .run = verb_list_gpus,
                .synopsis = "",
                .summary = "List the host's GPUs, their drivers and IOMMU groups",
                .help = "Columns: ADDRESS (PCI), ID (vendor:device), DRIVER (bound now), GROUP (IOMMU group; - on\n"
                        "Xen, where the hypervisor keeps them), VIABLE (every other member of the group may go\n"
                        "with the GPU), ISOLATED (the whole group on vfio-pci, or the GPU on pciback), NOTE (host\n"
                        "console; or TEST ALLOW-LIST: not a GPU, admitted by a test-only setting), NAME.\n",
        },
        {
                .name = "bind-gpu",
                .argument = VERB_ARG_ADDRESS,
                .allowed = OPT(OPT_ADDRESS) | OPT(OPT_DRIVER),
                .required = OPT(OPT_ADDRESS),
                .run = verb_bind_gpu,
                .synopsis = "ADDRESS [--driver=vfio-pci|pciback]",
                .summary = "Hand a GPU's whole IOMMU group to vfio-pci (or pciback on Xen)",
                .help = "  --address=ADDRESS         the GPU's PCI address, [DDDD:]BB:SS.F (or give it as argument)\n"
                        "  --driver=DRIVER           vfio-pci or pciback (default: vfio-pci on Linux, pciback on Xen)\n"
                        "\nRefused, with nothing changed, when the device is not a GPU, its IOMMU group holds a\n"
                        "device bound to a host driver that cannot go with it, a device of the group is in use,\n"
                        "or the host's console is on it.\n"
                        "Needs root or membership of the vgpu-admin group.\n",
        },
        {
                .name = "unbind-gpu",
                .argument = VERB_ARG_ADDRESS,
                .allowed = OPT(OPT_ADDRESS),
                .required = OPT(OPT_ADDRESS),
                .run = verb_unbind_gpu,
                .synopsis = "ADDRESS",
                .summary = "Give a GPU's group back to the host's drivers",
                .help = "  --address=ADDRESS         the GPU's PCI address, [DDDD:]BB:SS.F (or give it as argument)\n"
                        "\nReleases every device of the GPU's group from vfio-pci or pciback and lets the host's\n"
                        "drivers probe them again.\n"
                        "Needs root or membership of the vgpu-admin group.\n",
        },
        {
                .name = "iommu-faults",
                .allowed = OPT(OPT_ACKNOWLEDGE),
                .run = verb_iommu_faults,
                .synopsis = "[--acknowledge]",
                .summary = "List the IOMMU faults recorded, or acknowledge them",
                .help = "  --acknowledge             mark every fault recorded so far as seen: they stay listed, but\n"
                        "                            no longer make show-iommu-status fail (needs root or the\n"
                        "                            vgpu-admin group)\n"
                        "\nColumns: SEQ, TIME (when vgpu-iommud read it), SOURCE (dmar, amd-vi or xen), DEVICE (PCI\n"
                        "address), ADDRESS (the I/O virtual address that faulted), REASON (as the hardware gave it).\n"
                        "The faults come from the kernel log (Linux) or the hypervisor's console (Xen).\n",
        },
        {
                .name = "iommu-setup",
                .allowed = OPT(OPT_APPLY),
                .run = verb_iommu_setup,
                .synopsis = "[--apply]",
                .summary = "Show (or write) the boot settings that turn the IOMMU on, strict",
                .help = "  --apply                   write them, after keeping a copy of the file as\n"
                        "                            FILE.vgpu-backup-TIME (needs root or the vgpu-admin group)\n"
                        "\nOn Linux: the kernel command line in /etc/default/grub (intel_iommu=on or amd_iommu=on,\n"
                        "iommu.strict=1; run update-grub afterwards). On XCP-ng: Xen's command line through\n"
                        "xen-cmdline (iommu=force, dom0-iommu=strict). Either way a reboot is needed before the\n"
                        "running kernel or hypervisor uses them; the output says when.\n",
        },
        {
                .name = "channels",
                .allowed = OPT(OPT_VM_ID),
                .run = verb_channels,
                .synopsis = "[--vm-id=N]",
                .summary = "Show each VM's guest channel, as vgpu-ingestd reports it",
                .help = "  --vm-id=N                 only this VM's channel\n"
                        "\nColumns: VM, POOL, PRIORITY (of its next command), STATE (listening, connected or\n"
                        "closed), ATTACHMENT (to its pool's scheduler), PEER PID (of the connected guest), and the\n"
                        "counters of the current connection: REQUESTS, COMPLETIONS, ERRORS (completions that were\n"
                        "not ok), IN FLIGHT (commands in the scheduler).\n"
                        "\nThe channels come from vgpu-ingestd (org.vgpu.Ingest1). When it is not running,\n"
                        "vgpu-admin says so and exits with status 1.\n",
        },
        {
                .name = "stats",
                .argument = VERB_ARG_POOL,
                .allowed = OPT(OPT_POOL),
                .run = verb_stats,
                .synopsis = "[POOL | --pool=POOL]",
                .summary = "Show each pool's scheduler: queues, counters and latencies",
                .help = "  --pool=POOL               only this pool (default: every pool vgpu-configd knows)\n"
                        "\nFor each pool: its mode and GPU as the scheduler read them, its wait policy, commands in\n"
                        "flight and the bound on them, commands received, executors that died and were restarted\n"
                        "(with the crash-loop limit), and per priority: QUEUED, COMPLETED (ok),\n"
                        "FAILED (any other status), and the 50th and 99th percentile of the time a command\n"
                        "waited in the queue (WAIT) and ran (EXEC), in microseconds (the upper edge of a\n"
                        "power-of-two bucket; 0 when there is none yet).\n"
                        "\nA pool whose scheduler (org.vgpu.Scheduler.POOL) is not running is shown without\n"
                        "numbers, and vgpu-admin exits with status 1.\n",
        },
        {
                .name = "disconnect-vm",
                .allowed = OPT(OPT_VM_ID),
                .required = OPT(OPT_VM_ID),
                .run = verb_disconnect_vm,
                .synopsis = "--vm-id=N",
                .summary = "Close a VM's guest channel; the VM stays registered",
                .help = O_VM_ID
                "\nvgpu-ingestd closes the channel (the guest sees channel-closed) and detaches the VM's\n"
                "commands from its scheduler; the guest may connect again. Refused when the VM has no\n"
                "guest connected.\n"
                "Needs root or membership of the vgpu-admin group.\n",
        },
        {
                .name = "help",
                .argument = VERB_ARG_VERB,
                .synopsis = "[VERB]",
                .summary = "Show this help, or a verb's",
                .help = "",
        },
};

const size_t verbs_count = ELEMENTSOF(verbs);

const Verb *verb_find(const char *name)
{
        for (size_t i = 0; i < verbs_count; i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        size_t row[64];

        if (lb >= ELEMENTSOF(row))
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diagonal = row[0];

                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t above = row[j];
                        size_t best = diagonal + (a[i - 1] != b[j - 1]);

                        if (above + 1 < best)
                                best = above + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diagonal = above;
                }
        }
        return row[lb];
}

/* The verb closest to a mistyped one, if one is close enough to be what was meant. */
const char *verb_nearest(const char *name)
{
        const char *best = NULL;
        size_t best_distance = SIZE_MAX;

        for (size_t i = 0; i < verbs_count; i++) {
                size_t d = edit_distance(name, verbs[i].name);

                if (d < best_distance) {
                        best_distance = d;
                        best = verbs[i].name;
                }
        }
        return best_distance <= 3 ? best : NULL;
}

void verb_print_help(const Verb *v)
{
        printf("vgpu-admin [--json] [--no-legend] %s %s\n\n%s.\n\n", v->name, v->synopsis, v->summary);
        if (!isempty(v->help))
                printf("%s%s\n", strncmp(v->help, "  --", 4) == 0 ? "Options:\n" : "", v->help);
        printf("See vgpu-admin(8) for more.\n");
}

static void overview_section(const char *title, const char *const names[], size_t n)
{
        printf("\n%s:\n", title);
        for (size_t i = 0; i < n; i++) {
                const Verb *v = verb_find(names[i]);

                if (v)
                        printf("  %-18s %s\n", v->name, v->summary);
        }
}

void verbs_print_overview(void)
{
        static const char *const vm_verbs[] = {"list-vms",     "show-vm",  "register-vm",      "unregister-vm",
                                               "set-priority", "set-pool", "set-memory-quota", "set-iommu-policy"};
        static const char *const pool_verbs[] = {"list-pools", "show-pool", "create-pool", "configure-pool",
                                                 "delete-pool"};
        static const char *const path_verbs[] = {"channels", "stats", "disconnect-vm"};
        static const char *const security_verbs[] = {"show-iommu-status", "list-gpus", "bind-gpu", "unbind-gpu",
                                                     "iommu-faults", "iommu-setup", "audit"};
        static const char *const other_verbs[] = {"help"};

        printf("vgpu-admin [OPTIONS...] VERB [VERB OPTIONS...]\n\n"
               "Manage the VMs, pools and priorities of vgpu, through vgpu-configd, and watch the command\n"
               "path: the guest channels (vgpu-ingestd) and the pools' schedulers.\n");
        overview_section("VMs", vm_verbs, ELEMENTSOF(vm_verbs));
        overview_section("Pools", pool_verbs, ELEMENTSOF(pool_verbs));
        overview_section("Command path", path_verbs, ELEMENTSOF(path_verbs));
        overview_section("IOMMU, GPUs and audit", security_verbs, ELEMENTSOF(security_verbs));
        overview_section("Help", other_verbs, ELEMENTSOF(other_verbs));
        printf("\nOptions:\n"
               "  -h --help          Show this help; 'vgpu-admin VERB --help' shows a verb's\n"
               "     --version       Show the version\n"
               "     --json          Print JSON instead of text (keys listed in vgpu-admin(8))\n"
               "     --no-legend     Leave out table headers and footers\n"
               "\nOptions take their value as --vm-id=3 or --vm-id 3.\n"
               "Exit status: 0 done, 1 refused or failed, 2 bad command line (nothing was changed).\n"
               "See vgpu-admin(8) for more.\n");
}
