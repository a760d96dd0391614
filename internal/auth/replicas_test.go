package auth_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/imprint-osd/imprint/internal/auth"
)

// TestSettingsChangesFromTwoReplicas runs the passcode and admin-token
// services twice over one store, as two server replicas on one database
// are: changes made at once through both lose nothing and never hand out
// one passcode generation twice (the state is changed with
// Store.UpdateSetting, not a read-modify-write under a per-process lock).
func TestSettingsChangesFromTwoReplicas(t *testing.T) {
	clock := newClock()
	db, _ := openStore(t, clock)
	const perReplica = 8
	ctx := t.Context()

	pcs := []*auth.Passcodes{newPasscodes(t, db, clock), newPasscodes(t, db, clock)}
	toks := []*auth.AdminTokens{{Store: db, Now: clock.Now}, {Store: db, Now: clock.Now}}
	var mu sync.Mutex
	gens := map[int]int{}
	var wg sync.WaitGroup
	for r := range 2 {
		for i := range perReplica {
			wg.Go(func() {
				ch, err := pcs[r].Generate(ctx)
				if err != nil {
					t.Errorf("replica %d: Generate: %v", r, err)
					return
				}
				mu.Lock()
				gens[ch.Generation]++
				mu.Unlock()
			})
			wg.Go(func() {
				if _, _, err := toks[r].Create(ctx, fmt.Sprintf("r%d-%d", r, i), 0); err != nil {
					t.Errorf("replica %d: Create token: %v", r, err)
				}
			})
		}
	}
	wg.Wait()

	for g, n := range gens {
		if n != 1 {
			t.Errorf("passcode generation %d was handed out %d times", g, n)
		}
	}
	st, err := pcs[0].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Generation != 2*perReplica {
		t.Errorf("generation after %d changes = %d: changes were lost", 2*perReplica, st.Generation)
	}
	list, err := toks[1].List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2*perReplica {
		t.Errorf("admin tokens after %d creations = %d: creations were lost", 2*perReplica, len(list))
	}
}
