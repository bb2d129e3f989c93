package vward

import (
	"errors"
	"fmt"
)

// The kinds of refusal a caller may test for with errors.Is, whichever
// package refused: the registry or the alert engine. The web layer answers
// each kind with one HTTP status; the CLI and the simulator branch on them.
var (
	// ErrNotFound marks a request for something that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid marks a request refused as it stands (a bad NHS number,
	// an unknown pathway, a shelve without a reason); the message says
	// what to change.
	ErrInvalid = errors.New("invalid")
	// ErrConflict marks a request that clashes with the current state (an
	// id taken, a patient already discharged, an alert already resolved).
	ErrConflict = errors.New("conflict")
)

// Errorf returns an error of kind (ErrNotFound, ErrInvalid or ErrConflict)
// whose message, formatted as fmt.Sprintf formats, is all that people see:
// the kind's own text is not added to it.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// kindError is an error whose message is for people and which matches one
// of the kinds above.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
