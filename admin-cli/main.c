/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-admin: the administrator's command line for vgpu's VMs, pools and priorities. This file parses the
 * command line, checks it against the verb table (verbs.c) and runs the verb; nothing is sent to the
 * bus before the whole command line has been found valid. */
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>

#include "admin.h"

bool arg_json = false;
bool arg_legend = true;
uint32_t arg_options = 0;
uint32_t arg_vm_id = 0;
const char *arg_pool = NULL;
Priority arg_priority = _PRIORITY_INVALID;
const char *arg_uuid = NULL;
const char *arg_name = NULL;
uint64_t arg_memory_quota = 0;
IommuPolicy arg_iommu_policy = _IOMMU_POLICY_INVALID;
uint32_t arg_capacity = 0;
PoolMode arg_mode = _POOL_MODE_INVALID;
const char *arg_gpu = NULL;
uint64_t arg_default_memory_quota = 0;
const char *arg_description = NULL;
uint64_t arg_after = 0;
uint32_t arg_limit = 0;
const char *arg_address = NULL;
const char *arg_driver = NULL;

static bool arg_help = false;
static bool arg_version = false;
static char arg_uuid_buf[UUID_STRING_LEN + 1];

enum {
        ARG_VERB_OPTION = 0x100, /* + AdminOption */
        ARG_JSON = 0x200,
        ARG_NO_LEGEND,
        ARG_VERSION,
};

static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, ARG_VERSION},
        {"json", no_argument, NULL, ARG_JSON},
        {"no-legend", no_argument, NULL, ARG_NO_LEGEND},
        {"vm-id", required_argument, NULL, ARG_VERB_OPTION + OPT_VM_ID},
        {"pool", required_argument, NULL, ARG_VERB_OPTION + OPT_POOL},
        {"priority", required_argument, NULL, ARG_VERB_OPTION + OPT_PRIORITY},
        {"uuid", required_argument, NULL, ARG_VERB_OPTION + OPT_UUID},
        {"name", required_argument, NULL, ARG_VERB_OPTION + OPT_NAME},
        {"memory-quota", required_argument, NULL, ARG_VERB_OPTION + OPT_MEMORY_QUOTA},
        {"iommu-policy", required_argument, NULL, ARG_VERB_OPTION + OPT_IOMMU_POLICY},
        {"policy", required_argument, NULL, ARG_VERB_OPTION + OPT_POLICY},
        {"capacity", required_argument, NULL, ARG_VERB_OPTION + OPT_CAPACITY},
        {"mode", required_argument, NULL, ARG_VERB_OPTION + OPT_MODE},
        {"gpu", required_argument, NULL, ARG_VERB_OPTION + OPT_GPU},
        {"default-memory-quota", required_argument, NULL, ARG_VERB_OPTION + OPT_DEFAULT_MEMORY_QUOTA},
        {"description", required_argument, NULL, ARG_VERB_OPTION + OPT_DESCRIPTION},
        {"after", required_argument, NULL, ARG_VERB_OPTION + OPT_AFTER},
        {"limit", required_argument, NULL, ARG_VERB_OPTION + OPT_LIMIT},
        {"address", required_argument, NULL, ARG_VERB_OPTION + OPT_ADDRESS},
        {"driver", required_argument, NULL, ARG_VERB_OPTION + OPT_DRIVER},
        {"apply", no_argument, NULL, ARG_VERB_OPTION + OPT_APPLY},
        {"acknowledge", no_argument, NULL, ARG_VERB_OPTION + OPT_ACKNOWLEDGE},
        {},
};

const char *option_name(AdminOption o)
{
        for (const struct option *opt = options; opt->name; opt++)
                if (opt->val == ARG_VERB_OPTION + (int)o)
                        return opt->name;
        return "?";
}

/* A decimal number in [min, max] with no sign, spaces or leading zeros ("0" itself is fine). */
static int parse_decimal(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;

        if (isempty(s) || (s[0] == '0' && s[1] != '\0'))
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* Quotes a value from the command line for a message, with control characters shown as \xNN. */
static const char *quote_value(const char *s, char *buf, size_t len)
{
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *)s; *p && n + 5 < len; p++)
                if (*p < 0x20 || *p == 0x7f)
                        n += (size_t)snprintf(buf + n, len - n, "\\x%02x", *p);
                else
                        buf[n++] = (char)*p;
        buf[n] = '\0';
        return buf;
}

static int invalid(const char *option, const char *value, const char *expected)
{
        char quoted[512];

        admin_error("invalid %s '%s': %s", option, quote_value(value, quoted, sizeof(quoted)), expected);
        return -EINVAL;
}

static int parse_vm_id(const char *what, const char *s, uint32_t *ret)
{
        int r = vm_id_parse(s, ret);

        if (r == -ERANGE)
                return invalid(what, s, "out of range: a VM id is a number from 1 to 2147483647");
        if (r < 0)
                return invalid(what, s, "expected a VM id, a number from 1 to 2147483647");
        return 0;
}

static int parse_pool(const char *what, const char *s, const char **ret)
{
        if (!pool_id_is_valid(s))
                return invalid(what, s,
                               "a pool id is a letter followed by up to 15 letters, digits or '_' (e.g. A, gpu0_mig1)");
        *ret = s;
        return 0;
}

static int parse_size_option(const char *what, const char *s, uint64_t *ret)
{
        int r = size_parse(s, ret);

        if (r == -ERANGE)
                return invalid(what, s, "too large");
        if (r < 0)
                return invalid(what, s, "expected a size in bytes, or with a K, M, G or T suffix (e.g. 8G)");
        return 0;
}

static int parse_number_option(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        char expected[96];
        int r = parse_decimal(s, min, max, ret);

        if (r < 0) {
                snprintf(expected, sizeof(expected), "expected a number from %" PRIu64 " to %" PRIu64, min, max);
                return invalid(what, s, expected);
        }
        return 0;
}

static int parse_text_option(const char *what, const char *s, size_t max, const char **ret)
{
        char expected[96];

        if (!text_is_valid(s, max)) {
                snprintf(expected, sizeof(expected), "expected printable UTF-8 text of at most %zu bytes", max);
                return invalid(what, s, expected);
        }
        *ret = s;
        return 0;
}

/* [DDDD:]BB:SS.F in hexadecimal, as lspci prints it; vgpu-iommud resolves and checks it again. */
static int parse_pci_address(const char *what, const char *s, const char **ret)
{
        unsigned domain, bus, slot, function;
        int consumed = -1;

        if (strlen(s) > 12 ||
            (sscanf(s, "%4x:%2x:%2x.%1u%n", &domain, &bus, &slot, &function, &consumed) != 4 &&
             sscanf(s, "%2x:%2x.%1u%n", &bus, &slot, &function, &consumed) != 3) ||
            consumed != (int)strlen(s) || slot > 0x1f || function > 7 || strspn(s, "0123456789abcdefABCDEF:.") != strlen(s))
                return invalid(what, s, "expected a PCI address, [DDDD:]BB:SS.F as lspci prints it (e.g. 0000:41:00.0)");
        *ret = s;
        return 0;
}

/* Parses and checks the value of one verb option. */
static int parse_verb_option(AdminOption o, const char *s)
{
        char what[32];
        uint64_t v;
        int r = 0;

        snprintf(what, sizeof(what), "--%s", option_name(o));
        switch (o) {
        case OPT_VM_ID:
                return parse_vm_id(what, s, &arg_vm_id);
        case OPT_POOL:
                return parse_pool(what, s, &arg_pool);
        case OPT_PRIORITY:
                arg_priority = priority_from_string(s);
                return arg_priority < 0 ? invalid(what, s, "expected high, medium or low") : 0;
        case OPT_UUID:
                if (uuid_normalize(s, arg_uuid_buf) < 0)
                        return invalid(what, s,
                                       "expected a uuid, 8-4-4-4-12 hexadecimal digits "
                                       "(e.g. 123e4567-e89b-12d3-a456-426614174000)");
                arg_uuid = arg_uuid_buf;
                return 0;
        case OPT_NAME:
                return parse_text_option(what, s, VM_NAME_MAX, &arg_name);
        case OPT_MEMORY_QUOTA:
                return parse_size_option(what, s, &arg_memory_quota);
        case OPT_IOMMU_POLICY:
        case OPT_POLICY:
                arg_iommu_policy = iommu_policy_from_string(s);
                return arg_iommu_policy < 0 ? invalid(what, s, "expected required or audit") : 0;
        case OPT_CAPACITY:
                r = parse_number_option(what, s, 1, POOL_CAPACITY_MAX, &v);
                arg_capacity = (uint32_t)v;
                return r;
        case OPT_MODE:
                arg_mode = pool_mode_from_string(s);
                return arg_mode < 0 ? invalid(what, s, "expected isolated or shared") : 0;
        case OPT_GPU:
                if (!gpu_resource_is_valid(s))
                        return invalid(what, s,
                                       "expected gpu:<PCI address or GPU uuid>, mig:<MIG uuid>, "
                                       "sm-share:<gpu>:<percent>, or \"\" for none");
                arg_gpu = s;
                return 0;
        case OPT_DEFAULT_MEMORY_QUOTA:
                return parse_size_option(what, s, &arg_default_memory_quota);
        case OPT_DESCRIPTION:
                return parse_text_option(what, s, POOL_DESCRIPTION_MAX, &arg_description);
        case OPT_AFTER:
                return parse_number_option(what, s, 0, UINT64_MAX, &arg_after);
        case OPT_LIMIT:
                r = parse_number_option(what, s, 1, UINT32_MAX, &v);
                arg_limit = (uint32_t)v;
                return r;
        case OPT_ADDRESS:
                return parse_pci_address(what, s, &arg_address);
        case OPT_DRIVER:
                if (!streq(s, "vfio-pci") && !streq(s, "pciback"))
                        return invalid(what, s, "expected vfio-pci (a Linux/KVM host) or pciback (a Xen host)");
                arg_driver = s;
                return 0;
        case OPT_APPLY:
        case OPT_ACKNOWLEDGE:
                return 0;
        case _OPT_MAX:
                break;
        }
        return -EINVAL;
}

static int bad_option(int c, char *argv[])
{
        const char *given = argv[optind - 1];

        if (c == ':') {
                admin_error("option '%s' needs a value, e.g. %s=VALUE.", given, given);
        } else if (optopt >= ARG_VERB_OPTION || optopt == 'h') {
                admin_error("option '%s' takes no value.", given);
        } else if (optopt != 0)
                admin_error("unknown option '-%c'. See 'vgpu-admin --help'.", optopt);
        else
                admin_error("unknown option '%s'. See 'vgpu-admin --help'.", given);
        return -EINVAL;
}

static int parse_argv(int argc, char *argv[])
{
        int c, r;

        opterr = 0; /* our own messages, which name the program as documented */
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        arg_help = true;
                        break;
                case ARG_VERSION:
                        arg_version = true;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_NO_LEGEND:
                        arg_legend = false;
                        break;
                case ':':
                case '?':
                        return bad_option(c, argv);
                default:
                        if (c < ARG_VERB_OPTION || c >= ARG_VERB_OPTION + _OPT_MAX)
                                return bad_option('?', argv);
                        r = parse_verb_option((AdminOption)(c - ARG_VERB_OPTION), optarg);
                        if (r < 0)
                                return r;
                        arg_options |= OPT(c - ARG_VERB_OPTION);
                }
        }
        return 0;
}

/* Names the options in `mask` as "--a, --b or --c" for messages. */
static void options_list(uint32_t mask, const char *conjunction, char *buf, size_t len)
{
        size_t n = 0, left = (size_t)__builtin_popcount(mask);

        buf[0] = '\0';
        for (int o = 0; o < _OPT_MAX && n < len; o++) {
                if (!(mask & OPT(o)))
                        continue;
                left--;
                n += (size_t)snprintf(buf + n, len - n, "--%s%s", option_name((AdminOption)o),
                                      left == 0   ? ""
                                      : left == 1 ? conjunction
                                                  : ", ");
        }
}

/* The verb's positional argument, if it takes one, stands for an option. */
static int verb_take_argument(const Verb *v, int n_args, char *args[])
{
        AdminOption o = v->argument == VERB_ARG_POOL      ? OPT_POOL
                        : v->argument == VERB_ARG_ADDRESS ? OPT_ADDRESS
                                                          : OPT_VM_ID;
        int max = v->argument == VERB_ARG_NONE ? 0 : 1;
        int r;

        if (n_args > max) {
                admin_error("%s takes %s, but '%s' was given. See 'vgpu-admin %s --help'.", v->name,
                            max == 0 ? "no arguments besides its options" : "one argument", args[max], v->name);
                return -EINVAL;
        }
        if (n_args == 0)
                return 0;
        if (option_given(o)) {
                admin_error("%s: give the %s either as an argument or with --%s, not both.", v->name,
                            o == OPT_POOL ? "pool" : o == OPT_ADDRESS ? "PCI address" : "VM", option_name(o));
                return -EINVAL;
        }
        r = o == OPT_POOL      ? parse_pool("pool id", args[0], &arg_pool)
            : o == OPT_ADDRESS ? parse_pci_address("PCI address", args[0], &arg_address)
                               : parse_vm_id("VM id", args[0], &arg_vm_id);
        if (r < 0)
                return r;
        arg_options |= OPT(o);
        return 0;
}

static int verb_check_options(const Verb *v)
{
        char list[256];
        uint32_t missing;

        for (int o = 0; o < _OPT_MAX; o++)
                if (option_given((AdminOption)o) && !(v->allowed & OPT(o))) {
                        admin_error("option --%s is not valid for %s. See 'vgpu-admin %s --help'.",
                                    option_name((AdminOption)o), v->name, v->name);
                        return -EINVAL;
                }
        missing = v->required & ~arg_options;
        if (missing) {
                options_list(missing, " and ", list, sizeof(list));
                admin_error("%s needs %s. See 'vgpu-admin %s --help'.", v->name, list, v->name);
                return -EINVAL;
        }
        if (v->one_of && !(arg_options & v->one_of)) {
                options_list(v->one_of, " or ", list, sizeof(list));
                admin_error("%s needs %s. See 'vgpu-admin %s --help'.", v->name, list, v->name);
                return -EINVAL;
        }
        if (__builtin_popcount(arg_options & v->exclusive) > 1) {
                options_list(v->exclusive, " or ", list, sizeof(list));
                admin_error("%s takes only one of %s.", v->name, list);
                return -EINVAL;
        }
        return 0;
}

static const Verb *find_verb_or_suggest(const char *name)
{
        const Verb *v = verb_find(name);
        const char *nearest;

        if (v)
                return v;
        nearest = verb_nearest(name);
        if (nearest)
                admin_error("unknown verb '%s'. Did you mean '%s'?", name, nearest);
        else
                admin_error("unknown verb '%s'. See 'vgpu-admin --help' for the list of verbs.", name);
        return NULL;
}

/* "VERB --help", "help VERB", "help": returns the exit status. */
static int dispatch_help(const Verb *v, int n_args, char *args[])
{
        const Verb *about = v;

        if (v->argument == VERB_ARG_VERB) {
                if (n_args > 2) {
                        admin_error("help takes one verb, but '%s' was given too.", args[2]);
                        return EXIT_USAGE;
                }
                if (n_args == 2 && !(about = find_verb_or_suggest(args[1])))
                        return EXIT_USAGE;
                if (about == v && !arg_help) {
                        verbs_print_overview();
                        return EXIT_SUCCESS;
                }
        }
        verb_print_help(about);
        return EXIT_SUCCESS;
}

/* Returns the exit status. */
static int dispatch(int n_args, char *args[])
{
        const Verb *v;
        int r;

        if (n_args == 0) {
                if (arg_help) {
                        verbs_print_overview();
                        return EXIT_SUCCESS;
                }
                admin_error("no verb given. See 'vgpu-admin --help' for the list of verbs.");
                return EXIT_USAGE;
        }
        v = find_verb_or_suggest(args[0]);
        if (!v)
                return EXIT_USAGE;
        if (arg_help || v->argument == VERB_ARG_VERB)
                return dispatch_help(v, n_args, args);
        if (verb_take_argument(v, n_args - 1, args + 1) < 0 || verb_check_options(v) < 0)
                return EXIT_USAGE;
        r = v->run();
        return r < 0 ? EXIT_REFUSED : EXIT_SUCCESS;
}

int main(int argc, char *argv[])
{
        int status;

        setlocale(LC_ALL, "");
        if (parse_argv(argc, argv) < 0)
                return EXIT_USAGE;
        if (arg_version) {
                printf("vgpu-admin %s\n", VGPU_VERSION);
                return EXIT_SUCCESS;
        }
        status = dispatch(argc - optind, argv + optind);
        if (fflush(stdout) != 0 || ferror(stdout)) {
                admin_error("could not write the output: %s", strerror(errno));
                return EXIT_REFUSED;
        }
        return status;
}
