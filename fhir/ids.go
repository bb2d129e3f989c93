package fhir

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// ID writes a vward id (a patient's, a device's) as a FHIR id. vward's ids
// may hold '_', which a FHIR id may not ([A-Za-z0-9\-\.]{1,64}), so '.'
// escapes: '.' is written "..", '_' ".-". Every other id is its own FHIR
// id. The result is "" when escaping makes it longer than 64 characters.
func ID(s string) string {
	if !strings.ContainsAny(s, "._") {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '.':
			b.WriteString("..")
		case '_':
			b.WriteString(".-")
		default:
			b.WriteRune(c)
		}
	}
	if b.Len() > 64 {
		return ""
	}
	return b.String()
}

// ParseID reads a FHIR id written by ID back into vward's id; ok is false
// for an id ID never writes.
func ParseID(id string) (s string, ok bool) {
	if !strings.Contains(id, ".") {
		return id, id != ""
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		if id[i] != '.' {
			b.WriteByte(id[i])
			continue
		}
		if i+1 == len(id) {
			return "", false
		}
		i++
		switch id[i] {
		case '.':
			b.WriteByte('.')
		case '-':
			b.WriteByte('_')
		default:
			return "", false
		}
	}
	return b.String(), true
}

// hashID is a stable id for what vward keeps no id of its own for (a
// reading, a score): the same record always gets the same id.
func hashID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:12])
}

// DateTime writes a time as a FHIR dateTime or instant, in UTC.
func DateTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
