#!/usr/bin/env bash
# The command-path demonstration, run inside vgpu-devstack by ./vgpu-demo after the configuration one:
# every registered VM of pools A and B runs a guest process (vgpu-load: the built-in gemm, launch + sync,
# over its own channel) at the same time; then latency by priority, throughput per pool and the
# schedulers' own queue statistics.
set -uo pipefail

bold=$'\e[1m' off=$'\e[0m'
[ -t 1 ] || bold='' off=''
count=${VGPU_DEMO_COMMANDS:-300}
size=${VGPU_DEMO_GEMM:-64}

printf '\n%s== Every VM of pools A and B sends real work at once: %s gemm %sx%s launches each ==%s\n' "$bold" \
        "$count" "$size" "$size" "$off"
vms=$(vgpu-admin --json list-vms | jq -c '[.[] | select(.pool == "A" or .pool == "B")]')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s%N)
for id in $(jq -r '.[].vm_id' <<<"$vms"); do
        vgpu-load --vm-id "$id" --count "$count" --size "$size" >"$out/$id.json" 2>"$out/$id.err" &
done
wait
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
printf '%s guest processes finished in %d.%03d s.\n' "$(jq length <<<"$vms")" $((elapsed_ms / 1000)) \
        $((elapsed_ms % 1000))

results=$(cat "$out"/*.json | jq -s -c .)
failed=$(jq '[.[] | select(.failed)] | length' <<<"$results")
[ "$failed" -gt 0 ] && printf 'VMs with failures: %s (see their stderr)\n' "$failed"

printf '\n%sLatency by priority, as the guests measured it (launch to completion of each command)%s\n' "$bold" "$off"
jq -r --argjson vms "$vms" '
  (map({(.vm_id | tostring): .}) | add) as $r
  | [$vms[] | . + {res: $r[(.vm_id | tostring)]}]
  | group_by(.pool + "/" + ({"high": "0", "medium": "1", "low": "2"}[.priority]))
  | (["POOL", "PRIORITY", "VMS", "COMMANDS", "P50 US (MEDIAN OF VMS)", "P99 US (WORST VM)", "CMDS/S"] | @tsv),
    (.[] | [.[0].pool, .[0].priority, length, (map(.res.commands) | add),
            (map(.res.p50_us) | sort | .[length / 2 | floor]), (map(.res.p99_us) | max),
            (map(.res.throughput_per_s) | add | floor)] | @tsv)' <<<"$results" |
        awk -F'\t' '{ printf "%-5s %-9s %4s %9s %23s %18s %8s\n", $1, $2, $3, $4, $5, $6, $7 }'

printf '\n%s== The schedulers'"'"' view: queue wait and execution time by priority ==%s\n' "$bold" "$off"
printf '$ vgpu-admin stats --pool=A\n'
vgpu-admin stats --pool=A
printf '$ vgpu-admin stats --pool=B\n'
vgpu-admin stats --pool=B
printf '\nThe schedulers'"'"' p50/p99 columns are the upper edges of log2 histogram buckets. On this machine\n'
printf 'the CPU backend computes every gemm; with the CUDA backend the executors will run them on the GPU.\n'
