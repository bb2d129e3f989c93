#!/usr/bin/env python3
# Per-second CPU (% of one core) of vward bench's processes (vward serve,
# mosquitto, influxd, the bench itself) and the machine's idle %, read from
# /proc, to line up with the bench's per-second progress (p99, in flight):
#
#   vward bench ... 2> bench.log &  python3 scripts/cpu-per-second.py 400 > cpu.tsv
#
# docs/design/several-subscriber-connections.md used it to find what stalls a run. Its
# first rows are the bench's set-up: the run starts where mosquitto's CPU
# rises. The last columns tell CPU from disk: iowait %, and
# the kernel's pressure stall information, ms per second in which some
# task waited for I/O or for CPU (/proc/pressure; '-' where the kernel
# has none). The last column is the epoch second: the first column counts
# from this script's start and ingest-per-second.py's from vward's, about
# 18 s later, so line them up (and with InfluxDB's log, and
# kernel-waits.py) by the epoch, or a stall is put at the wrong moment.
import os, sys, time
hz = os.sysconf('SC_CLK_TCK')
def procs():
    out = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit(): continue
        try:
            cmd = open(f'/proc/{pid}/cmdline','rb').read().split(b'\0')
        except OSError: continue
        name = os.path.basename(cmd[0].decode(errors='replace')) if cmd and cmd[0] else ''
        args = b' '.join(cmd).decode(errors='replace')
        if name == 'mosquitto': key='mosq'
        elif name == 'influxd': key='influxd'
        elif name == 'vward' and ' serve' in args: key='vward'
        elif name == 'vward' and ' bench' in args: key='bench'
        else: continue
        out[key] = pid
    return out
def cpu(pid):
    try:
        f = open(f'/proc/{pid}/stat').read().rsplit(')',1)[1].split()
        return int(f[11]) + int(f[12])
    except OSError: return None
def sysidle():
    f = open('/proc/stat').readline().split()[1:]
    v = list(map(int, f)); return v[3]+v[4], sum(v), v[4]
def stall(kind):
    try:
        for line in open(f'/proc/pressure/{kind}'):
            if line.startswith('some'): return int(line.split()[-1].split('=')[1])
    except OSError: return None
dur = int(sys.argv[1]); prev = {}; t0 = time.time(); pi = sysidle()
print('t\tvward\tmosq\tinfluxd\tbench\tidle%\tiowait%\tio_stall_ms\tcpu_stall_ms\tepoch')
ps = {k: stall(k) for k in ('io', 'cpu')}
for s in range(dur):
    time.sleep(1)
    p = procs(); row = [f'{time.time()-t0:.0f}']
    for k in ['vward','mosq','influxd','bench']:
        c = cpu(p[k]) if k in p else None
        if c is not None and (k, p[k]) in prev: row.append(f'{(c-prev[(k,p[k])])*100/hz:.0f}')
        else: row.append('-')
        if c is not None: prev[(k,p[k])] = c
    i = sysidle(); d = max(1, i[1]-pi[1])
    row += [f'{(i[0]-pi[0])*100/d:.0f}', f'{(i[2]-pi[2])*100/d:.0f}']; pi = i
    for k in ('io', 'cpu'):
        v = stall(k)
        row.append('-' if v is None or ps[k] is None else f'{(v-ps[k])/1000:.0f}'); ps[k] = v
    row.append(f'{time.time():.0f}')
    print('\t'.join(row), flush=True)
