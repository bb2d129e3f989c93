package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/vward/vward"
)

// Ward is a virtual ward.
type Ward struct {
	ID       vward.WardID `json:"id"`
	Name     string       `json:"name"`
	Pathway  string       `json:"pathway"`
	Place    string       `json:"place"`
	Capacity int          `json:"capacity"` // beds (virtual); 0 when not set
	// Managed counts the patients on the ward now (admitted or paused). It is
	// filled in by Wards and Ward, and ignored by AddWard.
	Managed int `json:"managed"`
}

// Pathways are the clinical pathways a virtual ward may run, as NHS England
// names them; "other" covers the rest.
var Pathways = []string{
	"frailty", "respiratory", "heart failure", "step-up", "step-down",
	"care home", "end of life", "paediatric", "general", "other",
}

// NormalizePathway returns the pathway as Pathways spells it, accepting any
// case and "-", "_" or " " between words ("heart-failure", "Step up").
// Empty stays empty: a ward need not name one.
func NormalizePathway(s string) (string, error) {
	key := func(s string) string {
		return strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(strings.TrimSpace(s)))
	}
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	for _, p := range Pathways {
		if key(p) == key(s) {
			return p, nil
		}
	}
	return "", invalidf("pathway %q is not one of: %s", s, strings.Join(Pathways, ", "))
}

// AddWard creates or updates a ward.
func (r *Registry) AddWard(ctx context.Context, w Ward) error {
	if err := ValidID(string(w.ID)); err != nil {
		return fmt.Errorf("add ward: %w", err)
	}
	w.Name = strings.TrimSpace(w.Name)
	if w.Name == "" {
		return invalidf("add ward %s: give it a name", w.ID)
	}
	p, err := NormalizePathway(w.Pathway)
	if err != nil {
		return fmt.Errorf("add ward %s: %w", w.ID, err)
	}
	w.Pathway = p
	if w.Capacity < 0 {
		return invalidf("add ward %s: capacity %d is negative", w.ID, w.Capacity)
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add ward %s: %w", w.ID, err)
	}
	defer tx.Rollback()
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM wards WHERE id = ?`, w.ID).Scan(&exists); err != nil {
		return fmt.Errorf("add ward %s: %w", w.ID, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO wards (id, name, pathway, place, capacity) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name, pathway = excluded.pathway, place = excluded.place, capacity = excluded.capacity`,
		w.ID, w.Name, w.Pathway, w.Place, w.Capacity)
	if err != nil {
		return fmt.Errorf("add ward %s: %w", w.ID, err)
	}
	action := "ward.add"
	if exists > 0 {
		action = "ward.update"
	}
	detail := fmt.Sprintf("name %q, pathway %q, place %q, capacity %d", w.Name, w.Pathway, w.Place, w.Capacity)
	if err := audit(ctx, tx, action, wardSubject(string(w.ID)), detail, ""); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add ward %s: %w", w.ID, err)
	}
	return nil
}

const wardColumns = `w.id, w.name, w.pathway, w.place, w.capacity,
	(SELECT COUNT(*) FROM patients p WHERE p.ward_id = w.id AND p.status != 'discharged')`

func scanWard(row interface{ Scan(...any) error }) (Ward, error) {
	var w Ward
	err := row.Scan(&w.ID, &w.Name, &w.Pathway, &w.Place, &w.Capacity, &w.Managed)
	return w, err
}

// Ward returns one ward.
func (r *Registry) Ward(ctx context.Context, id vward.WardID) (Ward, error) {
	w, err := scanWard(r.db.QueryRowContext(ctx, `SELECT `+wardColumns+` FROM wards w WHERE w.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Ward{}, notFoundf("ward %s not found", id)
	}
	if err != nil {
		return Ward{}, fmt.Errorf("ward %s: %w", id, err)
	}
	return w, nil
}

// Wards lists every ward by name. Callers acting for a person filter the
// list by what that person may see.
func (r *Registry) Wards(ctx context.Context) ([]Ward, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+wardColumns+` FROM wards w ORDER BY w.name, w.id`)
	if err != nil {
		return nil, fmt.Errorf("list wards: %w", err)
	}
	defer rows.Close()
	out := []Ward{}
	for rows.Next() {
		w, err := scanWard(rows)
		if err != nil {
			return nil, fmt.Errorf("list wards: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}
