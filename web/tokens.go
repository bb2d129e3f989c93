package web

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vward/vward"
)

// The API token routes (docs/fhir.md, "Machine clients"): admins create,
// list and revoke machine clients' tokens and read each one's audit.
func (s *Server) tokenRoutes(api *http.ServeMux) {
	if s.Tokens == nil {
		return
	}
	api.HandleFunc("GET /api/v1/tokens", s.listTokens)
	api.HandleFunc("POST /api/v1/tokens", s.createToken)
	api.HandleFunc("POST /api/v1/tokens/{name}/revoke", s.revokeToken)
	api.HandleFunc("GET /api/v1/tokens/{name}/audit", s.tokenAudit)
}

// tokenAdmin answers 403 unless the user is an admin.
func tokenAdmin(w http.ResponseWriter, r *http.Request) (User, bool) {
	u, _ := CurrentUser(r)
	if u.Role != RoleAdmin {
		writeError(w, http.StatusForbidden, "only an admin may manage API tokens")
		return u, false
	}
	return u, true
}

func (s *Server) tokenError(w http.ResponseWriter, r *http.Request, err error) {
	if status, refused := kindStatus(err); refused {
		writeError(w, status, err.Error())
		return
	}
	s.log.Error("API tokens", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "the API tokens are unavailable")
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	if _, ok := tokenAdmin(w, r); !ok {
		return
	}
	ts, err := s.Tokens.List(r.Context())
	if err != nil {
		s.tokenError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

type tokenBody struct {
	Name  string         `json:"name"`
	Wards []vward.WardID `json:"wards"`
	// ValidDays is how long the token is valid, in days; 0 is
	// tokens.DefaultValidity.
	ValidDays int `json:"valid_days"`
}

// createToken answers the new token with its secret, shown this once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	u, ok := tokenAdmin(w, r)
	if !ok {
		return
	}
	var in tokenBody
	if !decodeBody(w, r, &in) {
		return
	}
	// A token for a ward that does not exist is a typo, and would read
	// the ward of that name if one were added later.
	for _, wd := range in.Wards {
		if s.Registry == nil {
			break
		}
		if _, err := s.Registry.Ward(r.Context(), wd); errors.Is(err, vward.ErrNotFound) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("wards: no such ward %q", wd))
			return
		} else if err != nil {
			s.tokenError(w, r, err)
			return
		}
	}
	secret, t, err := s.Tokens.Create(r.Context(), in.Name, in.Wards, time.Duration(in.ValidDays)*24*time.Hour, u.Username)
	if err != nil {
		s.tokenError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": t, "secret": secret})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	u, ok := tokenAdmin(w, r)
	if !ok {
		return
	}
	var in reasonBody
	if !decodeBody(w, r, &in) {
		return
	}
	if err := s.Tokens.Revoke(r.Context(), r.PathValue("name"), u.Username, in.Reason); err != nil {
		s.tokenError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) tokenAudit(w http.ResponseWriter, r *http.Request) {
	if _, ok := tokenAdmin(w, r); !ok {
		return
	}
	uses, err := s.Tokens.Audit(r.Context(), r.PathValue("name"), 1000)
	if err != nil {
		s.tokenError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "audit": uses})
}
