package bench

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// latencies keeps every sample (milliseconds, float32): a five-minute run at
// 12,700/s is under 16 MB, and exact percentiles need no histogram design.
type latencies struct{ ms []float32 }

func (l *latencies) add(d time.Duration) { l.ms = append(l.ms, float32(d.Seconds()*1000)) }

func (l *latencies) clone() latencies { return latencies{ms: slices.Clone(l.ms)} }

// Percentiles is a latency summary in milliseconds.
type Percentiles struct {
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Count int     `json:"count"`
}

func (l latencies) percentiles() Percentiles {
	if len(l.ms) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(l.ms)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q * float64(len(s)-1))
		return round(float64(s[i]), 1)
	}
	return Percentiles{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: round(float64(s[len(s)-1]), 1), Count: len(s)}
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// procStat is a process's CPU time and memory, from /proc/<pid>.
type procStat struct {
	cpu      time.Duration // user + system
	rss, hwm int64         // bytes: resident now, and its peak (VmHWM)
	nice     int           // its scheduling niceness
}

// renice sets the niceness of every thread of process pid (on Linux
// setpriority's PRIO_PROCESS names one thread, and a Go program such as
// influxd has many; threads made later inherit it from their maker) and
// returns it as read back from each thread's /proc stat.
func renice(pid, nice int) (int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("list the threads of %d: %w", pid, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return 0, fmt.Errorf("set thread %d of %d to niceness %d (below 0 takes root): %w", tid, pid, nice, err)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
		if err != nil {
			return 0, fmt.Errorf("read thread %d of %d back: %w", tid, pid, err)
		}
		if got := statNice(string(b)); got != nice {
			return got, fmt.Errorf("thread %d of %d has niceness %d after setting %d", tid, pid, got, nice)
		}
	}
	return nice, nil
}

// statNice is the niceness field of a /proc stat line.
func statNice(s string) int {
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 17 {
		return 0
	}
	n, _ := strconv.Atoi(f[16])
	return n
}

var clockTick = 100.0 // USER_HZ; 100 on every Linux we run on

func readProc(pid int) (procStat, error) {
	var ps procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// Fields after the command, which may hold spaces, in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 17 {
		return ps, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ps.nice = statNice(s)
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	ps.cpu = time.Duration((ut + st) / clockTick * float64(time.Second))
	st2, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	defer st2.Close()
	sc := bufio.NewScanner(st2)
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []struct {
			p string
			v *int64
		}{{"VmRSS:", &ps.rss}, {"VmHWM:", &ps.hwm}} {
			if strings.HasPrefix(line, k.p) {
				kb, _ := strconv.ParseInt(strings.Fields(line[len(k.p):])[0], 10, 64)
				*k.v = kb << 10
			}
		}
	}
	return ps, nil
}
