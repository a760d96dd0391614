package disksteps

import "github.com/imprint-osd/imprint/internal/sequence"

var (
	_ sequence.Step = Format{}
	_ sequence.Step = ApplyOS{}
	_ sequence.Step = PrepareOS{}
	_ sequence.Step = WholeDisk{}
	_ sequence.Step = Capture{}
)
