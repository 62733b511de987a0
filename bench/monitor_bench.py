#!/usr/bin/env python3
"""Times N calls of an OCF agent's monitor action: wall time and CPU time (user+sys of the
agent, every process it ran, and the share of a server process that answered for it), and
prints per-agent medians and the ratio as a table."""
import os
import statistics
import sys
import time


def run_once(argv, env):
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execve(argv[0], argv, env)
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    # wait4's usage includes the descendants the agent waited for (virsh, sed, ...).
    return wall, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status)


def server_cpu(pidfile):
    """CPU seconds used so far by the process whose pid is in pidfile (0 without one)."""
    if not pidfile:
        return 0.0
    with open(pidfile) as f:
        pid = f.read().strip()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name, agent, env, n):
    walls, cpus = [], []
    # Work done for the agent by a server process counts as the agent's: spread it evenly.
    pidfile = env.pop("BENCH_SERVER_PIDFILE", None)
    before = server_cpu(pidfile)
    for _ in range(n):
        wall, cpu, rc = run_once([agent, "monitor"], env)
        if rc != 0:
            sys.exit(f"{name}: monitor returned {rc}, expected 0 (is the guest running?)")
        walls.append(wall)
        cpus.append(cpu)
    served = (server_cpu(pidfile) - before) / n
    return statistics.median(walls) * 1000, (statistics.median(cpus) + served) * 1000


def main():
    n = int(os.environ.get("BENCH_CALLS", "100"))
    base = {k: v for k, v in os.environ.items() if k.startswith(("PATH", "OCF_"))}
    base["OCF_RESKEY_CRM_meta_interval"] = "10000"
    base["OCF_RESKEY_CRM_meta_timeout"] = "30000"
    rows = []
    for spec in sys.argv[1:]:
        name, agent, *params = spec.split(",")
        env = dict(base)
        env.update(p.split("=", 1) for p in params)
        rows.append((name, *measure(name, agent, env, n)))
    ref_wall, ref_cpu = rows[-1][1], rows[-1][2]
    print(f"monitor action, {n} calls each, medians per call")
    print(f"{'agent':<28} {'wall ms':>9} {'cpu ms':>9} {'wall x':>8} {'cpu x':>8}")
    for name, wall, cpu in rows:
        print(f"{name:<28} {wall:>9.2f} {cpu:>9.2f} {ref_wall / wall:>8.1f} {ref_cpu / max(cpu, 1e-3):>8.1f}")
    print(f"(x = how many times cheaper than {rows[-1][0]})")


if __name__ == "__main__":
    main()
