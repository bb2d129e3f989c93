package web

import (
	"context"
	"net/http"
	"slices"

	"github.com/vward/vward"
)

// Roles a clinician account may have.
const (
	RoleAdmin     = "admin"     // every ward; manages the registry
	RoleClinician = "clinician" // their wards; acts on alerts
	RoleViewer    = "viewer"    // their wards; reads only
)

// User is the signed-in clinician a request acts for.
type User struct {
	Username string         `json:"username"`
	Role     string         `json:"role"`
	Wards    []vward.WardID `json:"wards"`
}

// Sees reports whether the user may see a ward.
func (u User) Sees(w vward.WardID) bool {
	return u.Role == RoleAdmin || slices.Contains(u.Wards, w)
}

// MayAct reports whether the user may change clinical state (acknowledge,
// resolve, shelve): viewers may not.
func (u User) MayAct() bool { return u.Role == RoleAdmin || u.Role == RoleClinician }

type userKey struct{}

// WithUser returns ctx carrying u; the session middleware sets it.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// CurrentUser returns the user the request acts for.
func CurrentUser(r *http.Request) (User, bool) {
	u, ok := r.Context().Value(userKey{}).(User)
	return u, ok
}
