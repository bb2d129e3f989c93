package simulator_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/vward/vward/news2"
	"github.com/vward/vward/simulator"
)

func TestShow(t *testing.T) {
	files, _ := filepath.Glob("/work/main/simulator/scenarios/*.json")
	if f := os.Getenv("ONLY"); f != "" {
		files = []string{f}
	}
	for _, f := range files {
		sc, err := simulator.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		plan, _ := sc.Plan()
		t.Logf("==== %s", sc.Name)
		bands := simulator.Bands(plan, time.Minute)
		ids := []string{}
		for id := range bands {
			ids = append(ids, string(id))
		}
		sort.Strings(ids)
		for _, id := range ids {
			b := bands[plan.Patients[0].ID]
			for _, p := range plan.Patients {
				if string(p.ID) == id {
					b = bands[p.ID]
				}
			}
			if len(b) == 0 {
				continue
			}
			t.Logf("  %s truth: lm %v  med %v  high %v", id, show(b, news2.LowMedium), show(b, news2.Medium), show(b, news2.High))
		}
		origin := time.Now()
		clock := sc.NewClock(origin, 0)
		obs, st := simulator.DryRun(plan, clock)
		rep := simulator.Evaluate(plan, obs)
		var sb = &stringsBuilder{}
		rep.WriteTo(sb)
		t.Logf("dry run stats %+v\n%s", st, sb.s)
	}
}

func show(b map[news2.Risk]time.Duration, r news2.Risk) string {
	if d, ok := b[r]; ok {
		return d.String()
	}
	return "-"
}

type stringsBuilder struct{ s string }

func (b *stringsBuilder) Write(p []byte) (int, error) { b.s += string(p); return len(p), nil }
