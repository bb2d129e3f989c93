package deploy_test

import (
	"context"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// composeEnv is what docker-compose.yml refuses to start without; the
// values are placeholders.
var composeEnv = map[string]string{
	"VWARD_MQTT_PASSWORD":    "test-mqtt-password",
	"GRAFANA_ADMIN_PASSWORD": "test-grafana-password",
}

// loadCompose loads ../docker-compose.yml as `docker compose` would, with
// env as the whole environment (neither the process's nor a developer's
// .env), validating it against the compose specification's schema.
func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(kv),
		cli.WithResolvedPaths(true),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	return opts.LoadProject(context.Background())
}

func composeProject(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, composeEnv)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load as docker compose would: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

// The compose file is valid against the compose schema, names every service
// vward needs, and refuses to start without each secret it requires.
func TestComposeFileValid(t *testing.T) {
	p := composeProject(t)
	if p.Name != "vward" {
		t.Errorf("project name %q, want vward", p.Name)
	}
	for _, name := range []string{"mosquitto", "influxdb", "vward", "prometheus", "grafana"} {
		service(t, p, name)
	}
	for name := range composeEnv {
		env := maps.Clone(composeEnv)
		delete(env, name)
		_, err := loadCompose(t, env)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s: load error %v, want one naming it", name, err)
		}
	}
}

// Every file or directory the compose file mounts from the repository
// exists, configuration is mounted read-only, and nothing else escapes the
// repository.
func TestComposeMountsExist(t *testing.T) {
	p := composeProject(t)
	root, _ := filepath.Abs("..")
	binds := 0
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			binds++
			rel, err := filepath.Rel(root, v.Source)
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s mounts %s, outside the repository", name, v.Source)
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s at %s: %v", name, rel, v.Target, err)
			}
			if strings.HasPrefix(rel, "deploy"+string(filepath.Separator)) && !v.ReadOnly {
				t.Errorf("%s mounts %s read-write; configuration is mounted :ro", name, rel)
			}
		}
	}
	if binds == 0 {
		t.Fatal("no bind mounts found: the loader's output changed shape; update this test")
	}
}

// Images are pinned to a release, and the operator's UIs are on loopback
// only.
func TestComposeImagesAndPorts(t *testing.T) {
	p := composeProject(t)
	pinned := regexp.MustCompile(`:v?\d+\.\d+`)
	for name, s := range p.Services {
		if s.Build != nil {
			continue
		}
		if !pinned.MatchString(s.Image) {
			t.Errorf("%s: image %q is not pinned to a release", name, s.Image)
		}
	}
	for _, name := range []string{"influxdb", "prometheus", "grafana"} {
		s := service(t, p, name)
		if len(s.Ports) == 0 {
			t.Errorf("%s publishes no port", name)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %d on %q; its UI is for the operator on the host: 127.0.0.1 only", name, port.Target, port.HostIP)
			}
		}
	}
}

// vward's healthcheck runs the binary where the Dockerfile puts it: the
// distroless image has no shell to find it with.
func TestComposeVwardHealthcheck(t *testing.T) {
	s := service(t, composeProject(t), "vward")
	if s.HealthCheck == nil {
		t.Fatal("vward has no healthcheck")
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^COPY --from=build /out/vward (\S+)$`).FindSubmatch(dockerfile)
	if m == nil {
		t.Fatal("Dockerfile: no `COPY --from=build /out/vward <path>`; update this test")
	}
	want := []string{"CMD", string(m[1]), "healthcheck"}
	if !slices.Equal(s.HealthCheck.Test, want) {
		t.Errorf("vward healthcheck %q, want %q (the binary's path in the Dockerfile)", s.HealthCheck.Test, want)
	}
}

// Prometheus scrapes the vward service on the port it listens on, and loads
// its configuration from the mount.
func TestComposePrometheusWiring(t *testing.T) {
	p := composeProject(t)
	prom := service(t, p, "prometheus")
	vw := service(t, p, "vward")

	addr := env(vw, "VWARD_HTTP_ADDR")
	_, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("vward VWARD_HTTP_ADDR %q has no port", addr)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &cfg)
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "vward" {
			continue
		}
		found = true
		if sc.MetricsPath != "/metrics" {
			t.Errorf("job vward scrapes %q, want /metrics", sc.MetricsPath)
		}
		var targets []string
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
		if want := []string{"vward:" + port}; !slices.Equal(targets, want) {
			t.Errorf("job vward targets %q, want %q (the compose service and VWARD_HTTP_ADDR's port)", targets, want)
		}
	}
	if !found {
		t.Error("prometheus.yml has no job_name vward; rules.yml and the dashboards select job=\"vward\"")
	}

	configFile := flagValue(prom.Command, "--config.file")
	dir := mountedAt(t, prom, filepath.Dir(configFile))
	if dir == "" || filepath.Base(dir) != "prometheus" {
		t.Errorf("--config.file %s is not in the deploy/prometheus mount (%q)", configFile, dir)
	}
	for _, rf := range cfg.RuleFiles {
		if _, err := os.Stat(filepath.Join("prometheus", rf)); err != nil {
			t.Errorf("prometheus.yml rule_files: %v", err)
		}
	}
}

// Grafana's data sources point at the compose services, every variable the
// provisioning files read is in Grafana's environment, and the dashboard
// provider reads the directory the dashboards are mounted at.
func TestComposeGrafanaWiring(t *testing.T) {
	p := composeProject(t)
	g := service(t, p, "grafana")
	if mountedAt(t, g, "/etc/grafana/provisioning") == "" {
		t.Error("grafana: deploy/grafana/provisioning is not mounted at /etc/grafana/provisioning")
	}
	if env(g, "GF_SECURITY_ADMIN_PASSWORD") != composeEnv["GRAFANA_ADMIN_PASSWORD"] {
		t.Error("grafana: GF_SECURITY_ADMIN_PASSWORD is not GRAFANA_ADMIN_PASSWORD from .env")
	}

	for _, ds := range provisionedDatasources(t) {
		u, err := url.Parse(ds.URL)
		if err != nil {
			t.Errorf("data source %s: url %q: %v", ds.Name, ds.URL, err)
			continue
		}
		s, ok := p.Services[u.Hostname()]
		if !ok {
			t.Errorf("data source %s: %s is not a compose service", ds.Name, u.Hostname())
			continue
		}
		if !exposes(s, u.Port()) {
			t.Errorf("data source %s: service %s does not listen on %s", ds.Name, u.Hostname(), u.Port())
		}
	}
	files, _ := filepath.Glob("grafana/provisioning/*/*.yml")
	envRef := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, m := range envRef.FindAllStringSubmatch(line, -1) {
				if env(g, m[1]) == "" {
					t.Errorf("%s reads $%s, which grafana's environment does not set", f, m[1])
				}
			}
		}
	}

	var providers struct {
		Providers []struct {
			Name    string `yaml:"name"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/vward.yml", &providers)
	if len(providers.Providers) == 0 {
		t.Fatal("no dashboard provider")
	}
	for _, pr := range providers.Providers {
		src := mountedAt(t, g, pr.Options.Path)
		if src == "" || !strings.HasSuffix(filepath.ToSlash(src), "deploy/grafana/dashboards") {
			t.Errorf("dashboard provider %s reads %s, where deploy/grafana/dashboards is not mounted (%q)", pr.Name, pr.Options.Path, src)
		}
	}
}

// env is a service's environment variable after interpolation, "" if unset.
func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// flagValue returns --name=value's value from a command.
func flagValue(cmd []string, name string) string {
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// mountedAt returns the host path bind-mounted at target, "" if none.
func mountedAt(t *testing.T, s types.ServiceConfig, target string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			return v.Source
		}
	}
	return ""
}

// exposes reports whether a service listens on port: published, or the
// port its image is known to serve on the compose network.
func exposes(s types.ServiceConfig, port string) bool {
	for _, p := range s.Ports {
		if port == strconv.FormatUint(uint64(p.Target), 10) {
			return true
		}
	}
	return slices.Contains(s.Expose, port)
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
