#!/usr/bin/env python3
"""CPU per message of each step, per process: runs zapgate-bench with the
given arguments while a sampler reads, every 0.25 s, the machine's busy time
(/proc/stat) and the CPU time of every zapgate, postgres and zapgate-bench
process (/proc/<pid>/stat). Each step's figures are the CPU used between the
previous step line and its own, over the messages it delivered.
"Bench" is the load generator and the Chatwoot double or webhook receiver,
and in a baseline step the forwarder too.

usage: bench/profile-cpu.py [zapgate-bench arguments, e.g. --only inbound]
The release binaries must be built (bench/run.sh builds them); set BENCH to
use another zapgate-bench (zapgate is taken from beside it). PostgreSQL is
reached as bench/run.sh reaches it (ZAPGATE_BENCH_POSTGRES_URL)."""
import os, re, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.environ.get("BENCH", os.path.join(ROOT, "target", "release", "zapgate-bench"))
GROUPS = {"zapgate": 0, "postgres": 1, "zapgate-bench": 2}
TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")
STEP = re.compile(
    r"(Zapgate|Baseline) (\w+)\s+(\d+) (?:msg|events)/s: sent \d+ delivered (\d+) "
    r"errors \d+ achieved (\d+)/s p50 [\d.]+ p99 ([\d.]+)"
)


def sample():
    """(time, busy ms, idle ms, [ms per group]) for processes alive now."""
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:9]]
    idle = cpu[3] + cpu[4]
    groups = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        group = GROUPS.get(stat[stat.index("(") + 1 : stat.rindex(")")])
        if group is not None:
            fields = stat[stat.rindex(")") + 2 :].split()
            # Keyed by pid and start time: a pid reused later is another process.
            groups[(pid, fields[19])] = (group, int(fields[11]) + int(fields[12]))
    return time.time(), (sum(cpu) - idle) * TICK_MS, idle * TICK_MS, groups


def main():
    samples = []
    seen = {}
    done = threading.Event()

    def sampler():
        while not done.is_set():
            t, busy, idle, groups = sample()
            # A process that ended keeps its last reading, so sums never drop.
            seen.update(groups)
            per_group = [0.0, 0.0, 0.0]
            for group, ticks in seen.values():
                per_group[group] += ticks * TICK_MS
            samples.append((t, busy, idle, per_group))
            done.wait(0.25)

    os.environ.setdefault(
        "ZAPGATE_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
    )
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    bench = subprocess.Popen(
        [BENCH, "--out", os.devnull, *sys.argv[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in bench.stdout:
        sys.stderr.write(line)
        lines.append((time.time(), line))
    bench.wait()
    done.set()
    thread.join()

    def at(t):
        return next((s for s in samples if s[0] >= t), samples[-1])

    print("CPU ms per message delivered, by process")
    print(f"{'':8} {'phase':9} {'rate':>5} {'achieved':>8} {'p99 ms':>8} | "
          f"{'machine':>7} {'zapgate':>7} {'postgres':>8} {'bench':>6}")
    prev = None
    for t, line in lines:
        step = STEP.search(line)
        if step and prev is not None:
            a, b = at(prev), at(t)
            n = max(int(step.group(4)), 1)
            zap, pg, bench_ms = ((b[3][i] - a[3][i]) / n for i in range(3))
            print(f"{step.group(1):8} {step.group(2):9} {step.group(3):>5} {step.group(5):>8} "
                  f"{step.group(6):>8} | {(b[1] - a[1]) / n:7.3f} {zap:7.3f} {pg:8.3f} "
                  f"{bench_ms:6.3f}")
        # A step's window starts at the line before it (a step or a header).
        if step or line.startswith(("==", " -")):
            prev = t
    sys.exit(bench.returncode)


if __name__ == "__main__":
    main()
