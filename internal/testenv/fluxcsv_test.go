package testenv

import (
	"strings"
	"testing"
	"time"
)

func TestParseFluxCSV(t *testing.T) {
	// Two tables with different columns, as InfluxDB 1.8 sends them: CRLF
	// line ends, a blank line between blocks, defaults for "result".
	body := strings.ReplaceAll(`#datatype,string,long,dateTime:RFC3339,double,string,string
#group,false,false,false,false,true,true
#default,_result,,,,,
,result,table,_time,_value,_field,device_id
,,0,2026-11-23T10:15:00.123Z,94,spo2,ox-1
,,0,2026-11-23T10:16:00Z,,spo2,ox-1

#datatype,string,long,boolean,string
#group,false,false,false,true
#default,_result,,,
,result,table,_value,_field
,,1,false,supplemental_oxygen

`, "\n", "\r\n")
	rows, err := parseFluxCSV(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want 3: %v", len(rows), rows)
	}
	want0 := time.Date(2026, 11, 23, 10, 15, 0, 123e6, time.UTC)
	if r := rows[0]; r["result"] != "_result" || r["table"] != int64(0) || r["_value"] != 94.0 ||
		r["device_id"] != "ox-1" || !r["_time"].(time.Time).Equal(want0) {
		t.Errorf("row 0 = %v", r)
	}
	if v, ok := rows[1]["_value"]; !ok || v != nil {
		t.Errorf("row 1 empty double = %v (present %v), want nil", v, ok)
	}
	if r := rows[2]; r["_value"] != false || r["table"] != int64(1) {
		t.Errorf("row 2 = %v", r)
	}
}

func TestParseFluxCSVError(t *testing.T) {
	body := "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,type error: undefined identifier x,\r\n\r\n"
	if _, err := parseFluxCSV(body); err == nil || !strings.Contains(err.Error(), "undefined identifier") {
		t.Fatalf("got %v, want the flux error", err)
	}
}

func TestParseFluxCSVEmpty(t *testing.T) {
	rows, err := parseFluxCSV("\r\n")
	if err != nil || len(rows) != 0 {
		t.Fatalf("got %v, %v; want no rows", rows, err)
	}
}
