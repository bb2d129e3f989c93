package history_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vward/vward/history"
	"github.com/vward/vward/internal/testenv"
)

func TestInfluxConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		url, bucket, want string
	}{
		{"http://127.0.0.1:8086", "vward", ""},
		{"https://influx.example.org", "vward/autogen", ""},
		{"localhost:8086", "vward", "want http:// or https://"},
		{"127.0.0.1:8086", "vward", "InfluxDB URL"},
		{"tcp://127.0.0.1:8086", "vward", "want http:// or https://"},
		{"http://", "vward", "no host"},
		{"http://admin:pw@127.0.0.1:8086", "vward", "not in the URL"},
		{"http://127.0.0.1:8086", " ", "bucket is empty"},
	} {
		err := history.InfluxConfig{URL: tc.url, Bucket: tc.bucket}.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v, want valid", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q bucket %q: %v, want an error saying %q", tc.url, tc.bucket, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), ":pw@") {
			t.Errorf("%q: the error repeats the password: %v", tc.url, err)
		}
	}
}

// InfluxDB's answers to the start-up check, as 2.x gives them: a refused
// token and a missing bucket are configuration errors; an overloaded
// server is weather.
func TestVerifySortsInfluxAnswers(t *testing.T) {
	for _, tc := range []struct {
		code          int
		body          string
		misconfigured bool
		want          string
	}{
		{204, "", false, ""},
		{401, `{"code":"unauthorized","message":"unauthorized access"}`, true, "refused the token (HTTP 401: unauthorized access)"},
		{404, `{"code":"not found","message":"bucket \"vwrd\" not found"}`, true, `bucket "vwrd" not found (HTTP 404)`},
		{503, `{"code":"unavailable","message":"too busy"}`, false, "HTTP 503: too busy"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/v2/write" || r.URL.Query().Get("bucket") != "vwrd" || r.Header.Get("Authorization") != "Token t0k" {
				http.Error(w, "unexpected request "+r.URL.String(), http.StatusTeapot)
				return
			}
			w.WriteHeader(tc.code)
			w.Write([]byte(tc.body))
		}))
		s := history.NewInflux(history.InfluxConfig{URL: srv.URL, Bucket: "vwrd", Org: "o", Token: "t0k"})
		err := s.Verify(context.Background())
		s.Close()
		srv.Close()
		if tc.want == "" {
			if err != nil {
				t.Errorf("HTTP %d: %v, want nil", tc.code, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, history.ErrMisconfigured) != tc.misconfigured {
			t.Errorf("HTTP %d: %v, want an error saying %q (misconfigured %v)", tc.code, err, tc.want, tc.misconfigured)
		}
	}
}

// Against a real InfluxDB 1.8: the database and retention policy must exist;
// nothing listening is weather, not misconfiguration.
func TestVerifyAgainstInflux(t *testing.T) {
	influx := testenv.StartInflux(t)
	ctx := context.Background()
	for _, tc := range []struct {
		url, bucket   string
		misconfigured bool
		want          string
	}{
		{influx.URL, influx.Bucket, false, ""},
		{influx.URL, "nosuchdb/autogen", true, `database not found: "nosuchdb"`},
		{influx.URL, influx.Database + "/nosuchpolicy", true, "retention policy not found: nosuchpolicy"},
		{"http://127.0.0.1:1", influx.Bucket, false, "connection refused"},
	} {
		s := history.NewInflux(history.InfluxConfig{URL: tc.url, Bucket: tc.bucket})
		err := s.Verify(ctx)
		s.Close()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %s: %v", tc.url, tc.bucket, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, history.ErrMisconfigured) != tc.misconfigured {
			t.Errorf("%s %s: %v, want an error saying %q (misconfigured %v)", tc.url, tc.bucket, err, tc.want, tc.misconfigured)
		}
	}
	// The empty write stored nothing.
	if rows := influx.Query(t, `from(bucket: "`+influx.Bucket+`") |> range(start: 0)`); len(rows) != 0 {
		t.Errorf("the check wrote %d rows", len(rows))
	}
}
