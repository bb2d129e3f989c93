#!/usr/bin/env python3
# Where a process's threads wait in the kernel, per second: every 50 ms it
# reads /proc/PID/task/*/stack (root only) for each thread of the process
# named NAME (influxd by default) and counts, per second, the threads that
# were runnable but preempted (waiting for a CPU) and those asleep in
# something other than a futex, epoll or timer (an fsync, a flush, a discard),
# named by their first three kernel frames. A line is printed for each second
# with anything to count, the epoch first, so that it lines up with InfluxDB's
# log and with cpu-per-second.py:
#
#   sudo python3 scripts/kernel-waits.py influxd > waits.txt &  vward bench ...
#
# docs/design/influxdb-compactions-default.md used it to ask whether InfluxDB's write
# stalls were waits for CPU or for the disk.
import collections, os, sys, time

name = sys.argv[1] if len(sys.argv) > 1 else 'influxd'
IDLE = ('do_compat_epoll', 'do_epoll', 'ep_poll', '__do_sys_sched_yield', 'hrtimer_nanosleep', 'do_nanosleep')
PREEMPTED = ('irqentry_exit_to_user_mode', 'exit_to_user_mode_loop')
PLUMBING = ('schedule', 'do_syscall', 'entry_SYSCALL', '__x64_sys', 'x64_sys_call')


def find():
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            argv0 = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')[0]
        except OSError:
            continue
        if os.path.basename(argv0.decode(errors='replace')) == name:
            return pid
    return None


def frames(pid, tid):
    try:
        lines = open(f'/proc/{pid}/task/{tid}/stack').read().splitlines()
    except OSError:
        return []
    # "[<0>] folio_wait_bit+0x12f/0x2a0" -> "folio_wait_bit"
    return [l.split('] ', 1)[-1].split('+')[0] for l in lines if l.strip()]


pid, second, counts = None, int(time.time()), collections.Counter()
while True:
    if pid is None or not os.path.exists(f'/proc/{pid}'):
        pid = find()
        if pid is None:
            time.sleep(1)
            continue
    try:
        tids = os.listdir(f'/proc/{pid}/task')
    except OSError:
        pid = None
        continue
    for tid in tids:
        f = frames(pid, tid)
        if not f or f[0].startswith('futex') or any(x.startswith(IDLE) for x in f[:2]):
            continue
        if any(x.startswith(PREEMPTED) for x in f[:3]):
            counts['preempted'] += 1
            continue
        where = [x for x in f if not x.startswith(PLUMBING)]
        if where:
            counts['<'.join(where[:3])] += 1
    now = int(time.time())
    if now != second:
        if counts:
            print(second, ' '.join(f'{k}:{v}' for k, v in counts.most_common(6)), flush=True)
        second, counts = now, collections.Counter()
    time.sleep(0.05)
