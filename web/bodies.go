package web

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
)

// A REST request body states what its fields must hold in `validate` tags
// (go-playground/validator) and words each refusal itself, since the API's
// answers are sentences for people, not the validator's field reports.
type body interface {
	// refusals words the rules the body's fields may break, keyed by the
	// field and the rule's tag: "Reason notblank".
	refusals() map[string]string
}

// bodies checks request bodies; it is safe for concurrent use and caches
// each body type's rules.
var bodies = newBodyValidator()

func newBodyValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	// notblank: a reason of spaces is no reason. Blank is what
	// strings.TrimSpace leaves empty, as the registry and alerting trim.
	must(v.RegisterValidation("notblank", func(fl validator.FieldLevel) bool {
		return strings.TrimSpace(fl.Field().String()) != ""
	}))
	// notblank_if=Field value: notblank while the body's Field is value.
	must(v.RegisterValidation("notblank_if", func(fl validator.FieldLevel) bool {
		name, want, _ := strings.Cut(fl.Param(), " ")
		other := fl.Parent().FieldByName(name)
		if !other.IsValid() {
			panic("notblank_if: the body has no field " + name)
		}
		if fmt.Sprint(other.Interface()) != want {
			return true
		}
		return strings.TrimSpace(fl.Field().String()) != ""
	}))
	return v
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// checkBody returns the words for the first field of b, in the body's
// order, that breaks its rules, or "" when b keeps them all.
func checkBody(b body) string {
	err := bodies.Struct(b)
	if err == nil {
		return ""
	}
	var fes validator.ValidationErrors
	if !errors.As(err, &fes) || len(fes) == 0 {
		return err.Error()
	}
	fe := fes[0]
	if msg, ok := b.refusals()[fe.StructField()+" "+fe.Tag()]; ok {
		return msg
	}
	return fmt.Sprintf("%s fails %s", fe.Field(), fe.ActualTag())
}
