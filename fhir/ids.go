package fhir

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/vward/vward"
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

// Observation ids are of a patient's records: they carry the patient,
// so that a read by id reads one patient's history rather than every
// ward's. obsPrefixes are their kinds: a reading's, a NEWS2's.
var obsPrefixes = []string{"vs-", "news2-"}

// obsHashLen is the hex digits of an Observation id's hash when the id
// names its patient: the hash need tell apart only one patient's records.
const obsHashLen = 16

// patientHashID is the id of a patient's record: prefix, the patient's
// FHIR id, '-' and a hash of the parts. A patient id too long for that
// within FHIR's 64 characters gets prefix and a longer hash alone, which
// ObservationPatient reports as naming no patient.
func patientHashID(prefix string, patient vward.PatientID, parts ...string) string {
	h := hashID("", append([]string{string(patient)}, parts...)...)
	if pid := ID(string(patient)); pid != "" && len(prefix)+len(pid)+1+obsHashLen <= 64 {
		return prefix + pid + "-" + h[:obsHashLen]
	}
	return prefix + h
}

// ObservationPatient reads the patient an Observation id names. named is
// false for an id of a patient whose id is too long to be written in it
// (patientHashID); ok is false for an id vward never writes.
func ObservationPatient(id string) (patient vward.PatientID, named, ok bool) {
	for _, prefix := range obsPrefixes {
		rest, found := strings.CutPrefix(id, prefix)
		if !found {
			continue
		}
		if len(rest) == 2*12 && isHex(rest) {
			return "", false, true
		}
		cut := len(rest) - obsHashLen - 1
		if cut < 1 || rest[cut] != '-' || !isHex(rest[cut+1:]) {
			return "", false, false
		}
		p, ok := ParseID(rest[:cut])
		return vward.PatientID(p), ok, ok
	}
	return "", false, false
}

// NamesPatient reports whether the ids of a patient's Observations name
// the patient; false for a patient id too long to fit in one.
func NamesPatient(patient vward.PatientID) bool {
	_, named, _ := ObservationPatient(patientHashID("news2-", patient))
	return named
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// DateTime writes a time as a FHIR dateTime or instant, in UTC.
func DateTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
