package auth

// Evaluations returns how many Argon2 evaluations Check and Refuse ran.
func (p *Passcodes) Evaluations() int64 { return p.evaluations.Load() }
