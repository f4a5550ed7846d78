/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-run: runs one vgpu.builtin kernel on .npy float32 files over the VM's channel and says what it
 * did; or, with --info, which channel it would use. Exit status: 0 done, 1 failed, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "vgpu-util.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

static uint32_t arg_vm_id;
static const char *arg_socket;
static VgpuTransportChoice arg_transport = VGPU_CONNECT_AUTO;
static bool arg_json;
static bool arg_info;
static RunArgs arg_run = {.alpha = 1.0f, .stride = {1, 1}, .dilation = {1, 1}};

static void help(void)
{
        printf("vgpu-run [--vm-id N] [--socket PATH] [--transport local|xen] [--json] OP [OPTIONS]\n"
               "vgpu-run [--vm-id N] [--socket PATH] [--transport local|xen] [--json] --info\n\n"
               "Runs one vgpu.builtin kernel on .npy float32 files (C order, rank <= 4) over this VM's\n"
               "vgpu channel and prints the shapes, the time and the status.\n\n"
               "  --vm-id N       the VM (default: $VGPU_VM_ID, else the platform)\n"
               "  --socket PATH   the channel socket (default: $VGPU_RUNTIME_DIR/vm/N.sock)\n"
               "  --transport T   local or xen (default: $VGPU_TRANSPORT, else local when the socket\n"
               "                  exists, else xen in a Xen domain)\n"
               "  --json          print one JSON object instead of text\n"
               "  --info          print the channel (VM, transport, socket, protocol version) and what the\n"
               "                  vgpu-stub device says (vm_id, pool, priority)\n"
               "  -h --help       this text\n\nOperations:\n");
        for (unsigned i = 0; run_op_get(i); i++)
                printf("  %-10s %s\n", run_op_get(i)->name, run_op_get(i)->usage);
        printf("\nExit status: 0 done, 1 failed, 2 usage.\n");
}

static int parse_u32(const char *s, uint32_t min, uint32_t *ret)
{
        unsigned long v;
        char *end;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v < min || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t)v;
        return 0;
}

/* "3" or "3,2" into [h, w]. */
static int parse_pair(const char *s, uint32_t min, uint32_t ret[2])
{
        char buf[64];
        char *comma;

        if (strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s);
        comma = strchr(buf, ',');
        if (comma)
                *comma = '\0';
        if (parse_u32(buf, min, &ret[0]) < 0)
                return -EINVAL;
        if (comma)
                return parse_u32(comma + 1, min, &ret[1]);
        ret[1] = ret[0];
        return 0;
}

static int parse_float(const char *s, float *ret)
{
        char *end;

        errno = 0;
        *ret = strtof(s, &end);
        return errno || end == s || *end ? -EINVAL : 0;
}

static int parse_run_option(int c, const char *v)
{
        RunArgs *a = &arg_run;

        switch (c) {
        case 'A': a->a = v; return OPT_A;
        case 'B': a->b = v; return OPT_B;
        case 'C': a->c = v; return OPT_C;
        case 'I': a->in = v; return OPT_IN;
        case 'W': a->weight = v; return OPT_WEIGHT;
        case 'b': a->bias = v; return OPT_BIAS;
        case 'o': a->out = v; return OPT_OUT;
        case 'a': return parse_float(v, &a->alpha) < 0 ? -1 : OPT_ALPHA;
        case 'e': return parse_float(v, &a->beta) < 0 ? -1 : OPT_BETA;
        case 't': a->trans_a = true; return OPT_TRANS_A;
        case 'T': a->trans_b = true; return OPT_TRANS_B;
        case 's': return parse_pair(v, 1, a->stride) < 0 ? -1 : OPT_STRIDE;
        case 'p': return parse_pair(v, 0, a->padding) < 0 ? -1 : OPT_PADDING;
        case 'd': return parse_pair(v, 1, a->dilation) < 0 ? -1 : OPT_DILATION;
        case 'k': return parse_pair(v, 1, a->kernel) < 0 ? -1 : OPT_KERNEL;
        default: return -2;
        }
}

static const char *option_name(const struct option *options, int val)
{
        for (; options->name; options++)
                if (options->val == val)
                        return options->name;
        return "?";
}

static int parse_argv(int argc, char **argv)
{
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},      {"vm-id", required_argument, NULL, 'v'},
                {"socket", required_argument, NULL, 'S'}, {"json", no_argument, NULL, 'j'},
                {"info", no_argument, NULL, 'i'},      {"a", required_argument, NULL, 'A'},
                {"b", required_argument, NULL, 'B'},   {"c", required_argument, NULL, 'C'},
                {"in", required_argument, NULL, 'I'},  {"weight", required_argument, NULL, 'W'},
                {"bias", required_argument, NULL, 'b'}, {"out", required_argument, NULL, 'o'},
                {"alpha", required_argument, NULL, 'a'}, {"beta", required_argument, NULL, 'e'},
                {"trans-a", no_argument, NULL, 't'},   {"trans-b", no_argument, NULL, 'T'},
                {"stride", required_argument, NULL, 's'}, {"padding", required_argument, NULL, 'p'},
                {"dilation", required_argument, NULL, 'd'}, {"kernel", required_argument, NULL, 'k'},
                {"transport", required_argument, NULL, 'X'},
                {},
        };
        int c, bit;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help(); return 0;
                case 'v':
                        if (parse_u32(optarg, 1, &arg_vm_id) < 0) {
                                fprintf(stderr, "vgpu-run: --vm-id: '%s' is not a VM id (1 … %u)\n", optarg, UINT32_MAX);
                                return -EINVAL;
                        }
                        break;
                case 'S': arg_socket = optarg; break;
                case 'X':
                        if (streq(optarg, "local"))
                                arg_transport = VGPU_CONNECT_LOCAL;
                        else if (streq(optarg, "xen"))
                                arg_transport = VGPU_CONNECT_XEN;
                        else {
                                fprintf(stderr, "vgpu-run: --transport: '%s' is not 'local' or 'xen'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'j': arg_json = true; break;
                case 'i': arg_info = true; break;
                case '?': return -EINVAL;
                default:
                        bit = parse_run_option(c, optarg);
                        if (bit < 0) {
                                fprintf(stderr, "vgpu-run: --%s: '%s' is not a valid value\n", option_name(options, c),
                                        strempty(optarg));
                                return -EINVAL;
                        }
                        arg_run.given |= (unsigned)bit;
                }
        }
        return 1;
}

static int connect_channel(VgpuClient **ret)
{
        VgpuConnectOptions o = {.vm_id = arg_vm_id, .socket_path = arg_socket, .transport = arg_transport};
        int r = vgpu_connect(&o, ret);

        if (r < 0)
                fprintf(stderr, "vgpu-run: cannot connect: %s\n",
                        *vgpu_last_error() ? vgpu_last_error() : vgpu_strerror(r));
        return r;
}

/* The channel, and the vgpu-stub device's identity when the VM has one; either may be missing. */
static int run_info(void)
{
        VgpuClient *c = NULL;
        VgpuClientInfo info;
        VgpuStubInfo stub;
        char stub_error[256] = "", error[512] = "";
        bool have_stub;
        int r;

        have_stub = vgpu_stub_read(&stub) >= 0;
        if (!have_stub)
                snprintf(stub_error, sizeof(stub_error), "%s", vgpu_last_error());
        r = connect_channel(&c);
        if (r < 0) {
                snprintf(error, sizeof(error), "%s", *vgpu_last_error() ? vgpu_last_error() : vgpu_strerror(r));
                print_info(NULL, error, have_stub ? &stub : NULL, stub_error, arg_json);
                return EXIT_FAILED;
        }
        vgpu_client_info(c, &info);
        print_info(&info, NULL, have_stub ? &stub : NULL, stub_error, arg_json);
        vgpu_disconnect(c);
        return EXIT_SUCCESS;
}

/* Every required option given, nothing the operation does not take. */
static int check_op_options(const RunOp *op)
{
        static const char *const names[] = {"a", "b", "c", "in", "weight", "bias", "out", "alpha",
                                            "beta", "trans-a", "trans-b", "stride", "padding", "dilation", "kernel"};

        for (unsigned i = 0; i < ELEMENTSOF(names); i++) {
                unsigned bit = 1u << i;

                if ((op->required & bit) && !(arg_run.given & bit)) {
                        fprintf(stderr, "vgpu-run: %s needs --%s\nusage: vgpu-run %s %s\n", op->name, names[i],
                                op->name, op->usage);
                        return -EINVAL;
                }
                if (!((op->required | op->optional) & bit) && (arg_run.given & bit)) {
                        fprintf(stderr, "vgpu-run: %s takes no --%s\nusage: vgpu-run %s %s\n", op->name, names[i],
                                op->name, op->usage);
                        return -EINVAL;
                }
        }
        return 0;
}

static int run(const RunOp *op)
{
        RunReport rep = {.kernel = op->name};
        VgpuClient *c = NULL;
        int r;

        if (connect_channel(&c) < 0) {
                print_failure(op->name, vgpu_last_error(), arg_json);
                return EXIT_FAILED;
        }
        r = op->run(c, &arg_run, &rep);
        if (r == 0) {
                char err[256] = "";

                if (npy_write(arg_run.out, &rep.output, err, sizeof(err)) < 0) {
                        snprintf(run_error, sizeof(run_error), "%s: %s", arg_run.out, err);
                        fprintf(stderr, "vgpu-run: %s: %s\n", op->name, run_error);
                        r = EXIT_FAILED;
                }
        }
        if (r == 0)
                print_report(&rep, arg_json);
        else if (arg_json)
                print_failure(op->name, run_error, arg_json);
        run_report_done(&rep);
        vgpu_disconnect(c);
        return r;
}

int main(int argc, char **argv)
{
        const RunOp *op;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
        if (arg_info) {
                if (optind != argc) {
                        fprintf(stderr, "vgpu-run: --info takes no operation\n");
                        return EXIT_USAGE;
                }
                return run_info();
        }
        if (optind >= argc) {
                fprintf(stderr, "vgpu-run: no operation given (try --help)\n");
                return EXIT_USAGE;
        }
        if (optind + 1 < argc) {
                fprintf(stderr, "vgpu-run: unexpected argument '%s'\n", argv[optind + 1]);
                return EXIT_USAGE;
        }
        op = run_op_find(argv[optind]);
        if (!op) {
                fprintf(stderr, "vgpu-run: unknown operation '%s' (try --help)\n", argv[optind]);
                return EXIT_USAGE;
        }
        if (check_op_options(op) < 0)
                return EXIT_USAGE;
        return run(op);
}
