#!/usr/bin/env python3
# Per-second view of vward serve's ingest while vward bench runs, from its
# /metrics: messages in flight (received, not yet stored and acknowledged),
# messages stored per second, InfluxDB writes per second and their mean
# duration. Writes per second times their mean duration is how many writes
# were under way on average; in flight pinned at --max-inflight while that
# stays below --store-writers means vward's own loop, not InfluxDB, holds
# the rate back. It finds vward's HTTP port with `ss` and stops when vward
# exits:
#
#   python3 scripts/ingest-per-second.py ingest.tsv &  vward bench ...
#
# The first column counts from vward's start; the last is the epoch second,
# to line it up with cpu-per-second.py and InfluxDB's log.
#
# docs/design/store-writers-and-batches.md used it to find the acknowledgements'
# cost.
import os, re, subprocess, sys, time, urllib.request
out = open(sys.argv[1], 'w')
def serve_pids():
    # vward serve by its command line, whatever its binary is called
    # (an A/B run's second build, say), as cpu-per-second.py finds it.
    pids = set()
    for pid in os.listdir('/proc'):
        if not pid.isdigit(): continue
        try:
            args = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')
        except OSError: continue
        if len(args) > 1 and args[1] == b'serve' and b'vward' in os.path.basename(args[0]):
            pids.add(pid)
    return pids
def port():
    pids = serve_pids()
    s = subprocess.run(['ss', '-ltnpH'], capture_output=True, text=True).stdout
    for line in s.splitlines():
        if any(f'pid={p},' in line for p in pids):
            m = re.search(r'127\.0\.0\.1:(\d+)', line)
            if m: return m.group(1)
    return None
p = None
while p is None:
    p = port(); time.sleep(0.5)
prev = None
t0 = time.time()
out.write('t\tin_flight\tstored_per_s\twrites_per_s\twrite_ms_mean\tepoch\n')
while True:
    try:
        body = urllib.request.urlopen('http://127.0.0.1:%s/metrics' % p, timeout=2).read().decode()
    except Exception as e:
        if port() is None: break
        time.sleep(1); continue
    v = {}
    for k in ['vward_ingest_messages_in_flight', 'vward_ingest_messages_stored_total',
              'vward_ingest_store_write_duration_seconds_sum', 'vward_ingest_store_write_duration_seconds_count']:
        m = re.search('^' + k + r'(?:\{[^}]*\})? (\S+)$', body, re.M)
        v[k] = float(m.group(1)) if m else 0.0
    now = time.time()
    if prev:
        dt = now - prev[0]; pv = prev[1]
        dc = v['vward_ingest_store_write_duration_seconds_count'] - pv['vward_ingest_store_write_duration_seconds_count']
        ds = v['vward_ingest_store_write_duration_seconds_sum'] - pv['vward_ingest_store_write_duration_seconds_sum']
        out.write('%.0f\t%d\t%.0f\t%.1f\t%.1f\t%.0f\n' % (now - t0, v['vward_ingest_messages_in_flight'],
            (v['vward_ingest_messages_stored_total'] - pv['vward_ingest_messages_stored_total']) / dt, dc / dt, 1000 * ds / dc if dc else 0, now))
        out.flush()
    prev = (now, v)
    time.sleep(1)
