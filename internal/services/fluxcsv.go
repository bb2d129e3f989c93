package services

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ParseFluxCSV turns Flux's annotated CSV into one map per row.
//
// The response is a series of blocks separated by blank lines; each block has
// its own annotations and header because tables in one result may have
// different columns. encoding/csv skips blank lines, so blocks are split
// first. Column 0 is the annotation column and carries no data.
func ParseFluxCSV(body string) ([]map[string]any, error) {
	rows := []map[string]any{}
	for _, block := range splitBlocks(body) {
		r := csv.NewReader(strings.NewReader(block))
		r.FieldsPerRecord = -1
		var (
			types, defaults []string
			header          []string
		)
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("csv: %w", err)
			}
			switch {
			case strings.HasPrefix(rec[0], "#"):
				switch rec[0] {
				case "#datatype":
					types = rec
				case "#default":
					defaults = rec
				}
				continue
			case header == nil:
				header = rec
				continue
			}
			if len(header) == 3 && header[1] == "error" && header[2] == "reference" {
				return nil, fmt.Errorf("flux error: %s (reference %s)", at(rec, 1), at(rec, 2))
			}
			row := make(map[string]any, len(header)-1)
			for c := 1; c < len(header); c++ {
				cell := at(rec, c)
				if cell == "" {
					cell = at(defaults, c)
				}
				v, err := fluxValue(at(types, c), cell)
				if err != nil {
					return nil, fmt.Errorf("column %q: %w", header[c], err)
				}
				row[header[c]] = v
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

func splitBlocks(body string) []string {
	var blocks []string
	var cur strings.Builder
	for line := range strings.Lines(body) {
		if strings.TrimRight(line, "\r\n") == "" {
			if cur.Len() > 0 {
				blocks = append(blocks, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteString(line)
	}
	if cur.Len() > 0 {
		blocks = append(blocks, cur.String())
	}
	return blocks
}

func at(rec []string, i int) string {
	if i < len(rec) {
		return rec[i]
	}
	return ""
}

// fluxValue converts a cell by its #datatype. Without annotations every value
// stays a string, which is still useful for comparisons in tests.
func fluxValue(typ, cell string) (any, error) {
	if typ == "" || typ == "string" || typ == "duration" || typ == "base64Binary" {
		return cell, nil
	}
	if cell == "" {
		return nil, nil
	}
	switch {
	case typ == "double":
		return strconv.ParseFloat(cell, 64)
	case typ == "long":
		return strconv.ParseInt(cell, 10, 64)
	case typ == "unsignedLong":
		return strconv.ParseUint(cell, 10, 64)
	case typ == "boolean":
		return strconv.ParseBool(cell)
	case strings.HasPrefix(typ, "dateTime"):
		// RFC3339Nano parsing also accepts plain RFC3339.
		return time.Parse(time.RFC3339Nano, cell)
	}
	return cell, nil
}
