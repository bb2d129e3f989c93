package journal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/history"
	"github.com/vward/vward/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t *testing.T, cfg Config, next history.Store) *Journal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j, err := Open(ctx, cfg, next, nil, quiet)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j
}

// run starts the forwarder; stop ends it and closes the journal.
func run(t *testing.T, j *Journal) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		j.Close()
	}
	t.Cleanup(stop)
	return stop
}

// batch is n device messages of two readings each, numbered from first.
func batch(first, n int, at time.Time) []vward.Reading {
	var rs []vward.Reading
	for i := first; i < first+n; i++ {
		id := fmt.Sprintf("m%d", i)
		rs = append(rs, reading("ox-1", "p1", id, vward.SpO2, 97, at.Add(time.Duration(i)*time.Second)),
			reading("ox-1", "p1", id, vward.HeartRate, float64(60+i%40), at.Add(time.Duration(i)*time.Second)))
	}
	return rs
}

func write(t *testing.T, j *Journal, rs []vward.Reading) {
	t.Helper()
	if err := j.WriteReadings(context.Background(), rs); err != nil {
		t.Fatalf("WriteReadings: %v", err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func memoryHas(m *history.Memory, n int, from time.Time) func() bool {
	return func() bool {
		rs, _ := m.Readings(context.Background(), "p1", from.Add(-time.Hour), from.Add(100*time.Hour))
		return len(rs) >= n
	}
}

func TestForwardsInOrderAndForgets(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	mem := history.NewMemory(100000)
	j := open(t, Config{Dir: t.TempDir()}, mem)
	run(t, j)
	for b := range 10 {
		write(t, j, batch(b*100, 100, at))
	}
	eventually(t, "2000 readings in the history", memoryHas(mem, 2000, at))
	eventually(t, "the journal emptied", func() bool { s := j.State(); return s.Messages == 0 && s.Bytes == 0 })
	rs, _ := mem.Readings(context.Background(), "p1", at.Add(-time.Hour), at.Add(100*time.Hour))
	if len(rs) != 2000 {
		t.Fatalf("history has %d readings, want 2000", len(rs))
	}
	if s := j.State(); !s.Oldest.IsZero() || s.Full || s.HistoryErr != nil {
		t.Errorf("State after forwarding everything = %+v, want nothing waiting", s)
	}
}

// More than the handoff holds (a long outage): what it does not hold is
// read back from the engine, in order, and nothing is forwarded twice.
func TestForwardsBeyondTheHandoff(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	mem := history.NewMemory(1 << 20)
	j := open(t, Config{Dir: t.TempDir()}, mem)
	const perBatch = 1000 // messages of two readings
	batches := maxHandoffReadings/(2*perBatch) + 20
	for b := range batches {
		write(t, j, batch(b*perBatch, perBatch, at))
	}
	if held := j.handoff.readings; held > maxHandoffReadings || held == 0 {
		t.Fatalf("the handoff holds %d readings, want some and at most %d", held, maxHandoffReadings)
	}
	run(t, j)
	want := 2 * perBatch * batches
	eventually(t, fmt.Sprintf("%d readings in the history", want), memoryHas(mem, want, at))
	eventually(t, "the journal emptied", func() bool { return j.State().Messages == 0 })
	rs, _ := mem.Readings(context.Background(), "p1", at.Add(-time.Hour), at.Add(1000*time.Hour))
	if len(rs) != want {
		t.Fatalf("history has %d readings, want %d", len(rs), want)
	}
}

// An outage of InfluxDB: the journal takes every write, keeps it, says the
// history is behind, and forwards everything once InfluxDB is back; each
// reading is stored once.
func TestOutageIsForwardedAfterwards(t *testing.T) {
	influx := testenv.StartInflux(t)
	store := history.NewInflux(history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket, Org: influx.Org, Token: influx.Token})
	defer store.Close()
	j := open(t, Config{Dir: t.TempDir(), RetryMax: 200 * time.Millisecond}, store)
	run(t, j)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	write(t, j, batch(0, 50, at))
	eventually(t, "the first batch forwarded", func() bool { return j.State().Messages == 0 })

	influx.Stop(t)
	for b := 1; b < 6; b++ {
		write(t, j, batch(b*50, 50, at))
	}
	eventually(t, "the journal to see the history down", func() bool { return j.State().HistoryErr != nil })
	s := j.State()
	if s.Messages != 250 || s.Oldest.IsZero() {
		t.Errorf("State during the outage = %+v, want 250 messages waiting with an oldest time", s)
	}
	influx.Start(t)
	eventually(t, "the journal emptied after the outage", func() bool { s := j.State(); return s.Messages == 0 && s.HistoryErr == nil })
	rows := influx.Query(t, fmt.Sprintf(`from(bucket: %q) |> range(start: 0) |> filter(fn: (r) => r._field == "msg_id") |> group() |> count()`, influx.Bucket))
	if len(rows) != 1 || rows[0]["_value"] != int64(300) {
		t.Fatalf("InfluxDB holds %v points, want 300", rows)
	}
}

// What the journal held at Close, unforwarded, is forwarded after Open,
// and the first Latest includes it for the board's restore.
func TestReopenForwardsWhatWasNotConfirmed(t *testing.T) {
	dir := t.TempDir()
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	j := open(t, Config{Dir: dir}, history.NewMemory(1000))
	write(t, j, batch(0, 30, at))
	write(t, j, batch(30, 30, at))
	j.Close()

	mem := history.NewMemory(100000)
	j = open(t, Config{Dir: dir}, mem)
	if s := j.State(); s.Messages != 60 {
		t.Fatalf("State after reopening = %+v, want 60 messages waiting", s)
	}
	latest, err := j.Latest(context.Background(), at.Add(-time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := at.Add(59 * time.Second)
	if len(latest) != 2 || !latest[0].At.Equal(want) || !latest[1].At.Equal(want) {
		t.Errorf("Latest after reopening = %v, want p1's spo2 and heart rate at %v", latest, want)
	}
	run(t, j)
	eventually(t, "120 readings forwarded", memoryHas(mem, 120, at))
	eventually(t, "the journal emptied", func() bool { return j.State().Messages == 0 })
}

// Restarted while InfluxDB is down, the journal still gives the board's
// restore the newest readings it holds, with InfluxDB's error.
func TestLatestWhileTheHistoryIsDown(t *testing.T) {
	dir := t.TempDir()
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	j := open(t, Config{Dir: dir}, history.NewMemory(1000))
	write(t, j, batch(0, 5, at))
	j.Close()

	down := history.NewInflux(history.InfluxConfig{URL: "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), Bucket: "vward/autogen"})
	defer down.Close()
	j = open(t, Config{Dir: dir}, down)
	defer j.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	latest, err := j.Latest(ctx, at.Add(-time.Hour), time.Now())
	if err == nil {
		t.Error("Latest with InfluxDB down returned no error")
	}
	if len(latest) != 2 || !latest[0].At.Equal(at.Add(4*time.Second)) {
		t.Errorf("Latest with InfluxDB down = %v, want p1's two newest readings from the journal", latest)
	}
}

// A tiny journal fills: writes are refused with ErrFull (the pipeline then
// holds acknowledgements), and taken again once forwarding makes room.
func TestFullRefusesUntilThereIsRoom(t *testing.T) {
	influx := testenv.StartInflux(t)
	store := history.NewInflux(history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket, Org: influx.Org, Token: influx.Token})
	defer store.Close()
	j := open(t, Config{Dir: t.TempDir(), MaxBytes: 64 << 10, RetryMax: 200 * time.Millisecond}, store)
	run(t, j)
	influx.Stop(t)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	written := 0
	var err error
	for ; written < 10000; written += 100 {
		if err = j.WriteReadings(context.Background(), batch(written, 100, at)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("writing %d messages to a 64 KiB journal: err %v, want ErrFull", written, err)
	}
	if !j.State().Full || j.Ping(context.Background()) == nil {
		t.Errorf("a full journal says State %+v, Ping %v; want Full and a Ping error", j.State(), j.Ping(context.Background()))
	}
	influx.Start(t)
	eventually(t, "room again", func() bool {
		return j.WriteReadings(context.Background(), batch(written, 100, at)) == nil
	})
	written += 100
	eventually(t, "the journal emptied", func() bool { return j.State().Messages == 0 })
	if j.State().Full {
		t.Error("the journal still says it is full after taking a write")
	}
	rows := influx.Query(t, fmt.Sprintf(`from(bucket: %q) |> range(start: 0) |> filter(fn: (r) => r._field == "msg_id") |> group() |> count()`, influx.Bucket))
	if len(rows) != 1 || rows[0]["_value"] != int64(written) {
		t.Fatalf("InfluxDB holds %v points, want %d", rows, written)
	}
}

// A batch larger than the whole of a small journal is written in parts,
// each waiting for the forwarder to make room, rather than refused for
// ever: the pipeline retries a refused batch as it was, and would never get
// past it.
func TestBatchLargerThanTheJournal(t *testing.T) {
	mem := history.NewMemory(100000)
	j := open(t, Config{Dir: t.TempDir(), MaxBytes: MinMaxBytes}, mem)
	run(t, j)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	rs := batch(0, 3000, at)
	if data, _ := appendEntry(nil, rs); len(data) <= 2*MinMaxBytes {
		t.Fatalf("the batch is %d bytes as one entry, want more than twice the journal's %d", len(data), MinMaxBytes)
	}
	write(t, j, rs)
	eventually(t, "6000 readings in the history", memoryHas(mem, 6000, at))
	eventually(t, "the journal emptied", func() bool { return j.State().Messages == 0 })
	if s := j.State(); s.Full {
		t.Errorf("State after the batch = %+v, want room", s)
	}
}

// A torn tail (the newest block cut short or garbled, as a crash mid-write
// leaves it) does not stop the journal from opening: the entries before it
// are kept and forwarded, and writing goes on.
func TestTornTail(t *testing.T) {
	for _, tear := range []struct {
		name string
		do   func(t *testing.T, block string)
	}{
		{"cut short", func(t *testing.T, block string) {
			fi, err := os.Stat(block)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(block, fi.Size()-7); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbled", func(t *testing.T, block string) {
			f, err := os.OpenFile(block, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			if _, err := f.WriteAt([]byte("garbage!"), fi.Size()-20); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tear.name, func(t *testing.T) {
			dir := t.TempDir()
			at := time.Now().Add(-time.Hour).Truncate(time.Second)
			j := open(t, Config{Dir: dir}, history.NewMemory(1000))
			for b := range 5 {
				write(t, j, batch(b*10, 10, at))
			}
			j.Close()
			tear.do(t, newestBlock(t, dir))

			mem := history.NewMemory(100000)
			j = open(t, Config{Dir: dir}, mem)
			if s := j.State(); s.Messages != 40 {
				t.Errorf("State after the torn tail = %+v, want the 40 messages before it", s)
			}
			run(t, j)
			write(t, j, batch(100, 10, at))
			eventually(t, "the kept and the new forwarded", memoryHas(mem, 100, at))
			rs, _ := mem.Readings(context.Background(), "p1", at.Add(-time.Hour), at.Add(100*time.Hour))
			var ids []string
			for _, r := range rs {
				ids = append(ids, r.MsgID)
			}
			for _, id := range []string{"m0", "m39", "m100", "m109"} {
				if !slices.Contains(ids, id) {
					t.Errorf("history lacks %s after the torn tail", id)
				}
			}
			if slices.Contains(ids, "m40") {
				t.Errorf("the torn entry (m40…m49) was forwarded")
			}
		})
	}
}

func newestBlock(t *testing.T, dir string) string {
	t.Helper()
	blocks, err := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", streamName, "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no journal blocks under %s (%v)", dir, err)
	}
	slices.SortFunc(blocks, func(a, b string) int { return blockIndex(a) - blockIndex(b) })
	return blocks[len(blocks)-1]
}

func blockIndex(path string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(path), ".blk"))
	return n
}

// A writer killed with SIGKILL mid-stream loses nothing it was told is
// written: every batch whose WriteReadings returned is there after Open.
func TestKilledWriterKeepsWhatItConfirmed(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "VWARD_JOURNAL_WRITER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	confirmed := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "written "))
		if err != nil {
			continue
		}
		confirmed = n
		if confirmed >= 200 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if confirmed < 0 {
		t.Fatal("the writer confirmed nothing before it was killed")
	}
	mem := history.NewMemory(1 << 20)
	j := open(t, Config{Dir: dir}, mem)
	run(t, j)
	at := time.Unix(1_700_000_000, 0).UTC()
	want := 2 * 10 * (confirmed + 1)
	eventually(t, fmt.Sprintf("the %d confirmed readings forwarded", want), memoryHas(mem, want, at))
	eventually(t, "the journal emptied", func() bool { return j.State().Messages == 0 })
	rs, _ := mem.Readings(context.Background(), "p1", at.Add(-time.Hour), at.Add(100000*time.Hour))
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.MsgID] = true
	}
	for i := range 10 * (confirmed + 1) {
		if !seen[fmt.Sprintf("m%d", i)] {
			t.Fatalf("message m%d was confirmed written but is not in the history", i)
		}
	}
}

// TestMain runs the writer TestKilledWriterKeepsWhatItConfirmed kills
// when this test binary is started as it: it writes batches of 10
// messages and says each one it was told is written.
func TestMain(m *testing.M) {
	dir := os.Getenv("VWARD_JOURNAL_WRITER")
	if dir == "" {
		os.Exit(m.Run())
	}
	ctx := context.Background()
	j, err := Open(ctx, Config{Dir: dir}, history.NewMemory(10), nil, quiet)
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(1)
	}
	at := time.Unix(1_700_000_000, 0).UTC()
	for b := 0; ; b++ {
		if err := j.WriteReadings(ctx, batch(b*10, 10, at)); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		fmt.Printf("written %d\n", b)
	}
}
